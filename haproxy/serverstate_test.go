package haproxy

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestParseServersStateCaptured(t *testing.T) {
	blue := ServerState{
		Backend: "app", BackendID: 3, Server: "blue", ServerID: 1,
		Addr: "127.0.0.1", Port: 18091,
		Admin: AdminReady, AdminFlags: 0, Operational: OperationalRunning, Weight: 1,
		SinceLastChange: 10 * time.Second,
		CheckStatus:     "L7OK", CheckResult: CheckPassed, CheckHealth: 2, HasCheck: true,
	}
	green := ServerState{
		Backend: "app", BackendID: 3, Server: "green", ServerID: 2,
		Addr: "127.0.0.1", Port: 18092,
		// `disabled` in the configuration sets 0x01 and 0x04.
		Admin: AdminMaint, AdminFlags: 5, Operational: OperationalStopped, Weight: 1,
		SinceLastChange: 10 * time.Second,
		CheckStatus:     "INI", CheckResult: CheckUnknown, CheckHealth: 0, HasCheck: true, CheckPaused: true,
	}
	mixed := []ServerState{
		{
			Backend: "mixed", BackendID: 4, Server: "drained", ServerID: 1, Addr: "127.0.0.1", Port: 18092,
			Admin: AdminDrain, AdminFlags: 8, Operational: OperationalRunning, Weight: 1,
			SinceLastChange: 9 * time.Second,
			CheckStatus:     "L7OK", CheckResult: CheckPassed, CheckHealth: 2, HasCheck: true,
		},
		{
			Backend: "mixed", BackendID: 4, Server: "slow", ServerID: 2, Addr: "127.0.0.1", Port: 18093,
			Admin: AdminReady, Operational: OperationalRunning, Weight: 1,
			SinceLastChange: 10 * time.Second,
			// A running check resets the result but keeps the last status.
			CheckStatus: "L7OK", CheckResult: CheckUnknown, CheckHealth: 2, HasCheck: true,
			CheckInProgress: true,
		},
		{
			Backend: "mixed", BackendID: 4, Server: "flappy", ServerID: 3, Addr: "127.0.0.1", Port: 18094,
			Admin: AdminReady, Operational: OperationalRunning, Weight: 1,
			SinceLastChange: 10 * time.Second,
			CheckStatus:     "L4CON", CheckResult: CheckFailed, CheckHealth: 3, HasCheck: true,
		},
		{
			Backend: "mixed", BackendID: 4, Server: "v6", ServerID: 4, Addr: "::1", Port: 18095,
			Admin: AdminReady, Operational: OperationalStopped, Weight: 1,
			SinceLastChange: 10 * time.Second,
			CheckStatus:     "L4CON", CheckResult: CheckFailed, CheckHealth: 0, HasCheck: true,
		},
		{
			Backend: "mixed", BackendID: 4, Server: "comma", ServerID: 5, Addr: "127.0.0.1", Port: 18083,
			Admin: AdminReady, Operational: OperationalStopped, Weight: 1,
			SinceLastChange: 9 * time.Second,
			CheckStatus:     "L7STS", CheckResult: CheckFailed, CheckHealth: 0, HasCheck: true,
		},
		{
			Backend: "mixed", BackendID: 4, Server: "nocheck", ServerID: 6, Addr: "127.0.0.1", Port: 18096,
			Admin: AdminReady, Operational: OperationalRunning, Weight: 1,
			SinceLastChange: 10 * time.Second,
			CheckStatus:     "INI", CheckResult: CheckUnknown, CheckHealth: 1, HasCheck: false,
		},
	}
	blueLater, greenLater := blue, green
	blueLater.SinceLastChange = 15 * time.Second
	greenLater.SinceLastChange = 15 * time.Second

	tests := []struct {
		file string
		want []ServerState
	}{
		{"servers_state_all.txt", append([]ServerState{blue, green}, mixed...)},
		{"servers_state_app.txt", []ServerState{blueLater, greenLater}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseServersState(readTestdata(t, tt.file))
			if err != nil {
				t.Fatalf("parseServersState: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d servers, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range tt.want {
				if !reflect.DeepEqual(got[i], tt.want[i]) {
					t.Errorf("server %d:\n got %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseServersStateColumnsByName(t *testing.T) {
	// The same server as in the captures with the columns reordered and an
	// unknown column added, as a later format revision might.
	text := "1\n" +
		"# srv_port srv_name be_name future_column srv_addr be_id srv_id srv_op_state srv_admin_state " +
		"srv_uweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state\n" +
		"8080 green app x 10.0.0.7 3 2 2 12 1 4 15 3 2 6\n"
	got, err := parseServersState(text)
	if err != nil {
		t.Fatalf("parseServersState: %v", err)
	}
	want := []ServerState{{
		Backend: "app", BackendID: 3, Server: "green", ServerID: 2, Addr: "10.0.0.7", Port: 8080,
		Admin: AdminDrain, AdminFlags: 12, Operational: OperationalRunning, Weight: 1,
		SinceLastChange: 4 * time.Second,
		CheckStatus:     "L7OK", CheckResult: CheckPassed, CheckHealth: 2, HasCheck: true,
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseServersStateAdminFlags(t *testing.T) {
	tests := []struct {
		flags int
		want  AdminState
	}{
		{0, AdminReady},
		{4, AdminReady}, // `disabled` in the configuration, then `state ready`
		{8, AdminDrain},
		{12, AdminDrain},
		{16, AdminDrain}, // drain inherited from a tracked server
		{1, AdminMaint},
		{2, AdminMaint}, // maintenance inherited from a tracked server
		{5, AdminMaint},
		{9, AdminMaint}, // maintenance wins over drain
		{32, AdminMaint},
		{64, AdminReady}, // FQDN changed, not a state
	}
	header := "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight " +
		"srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health " +
		"srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port\n"
	for _, tt := range tests {
		line := strings.Join([]string{"3", "app", "1", "blue", "127.0.0.1", "2", strconv.Itoa(tt.flags),
			"1", "1", "0", "15", "3", "2", "6", "0", "0", "0", "-", "80"}, " ")
		got, err := parseServersState(header + line + "\n")
		if err != nil {
			t.Fatalf("flags %d: %v", tt.flags, err)
		}
		if got[0].Admin != tt.want {
			t.Errorf("flags %d: Admin = %q, want %q", tt.flags, got[0].Admin, tt.want)
		}
	}
}

func TestParseServersStateInvalid(t *testing.T) {
	header := "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight " +
		"srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health " +
		"srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port\n"
	good := "3 app 1 blue 127.0.0.1 2 0 1 1 10 15 3 2 6 0 0 0 - 18091\n"
	tests := []struct {
		name, text, wantErr string
	}{
		{"empty", "", "unsupported format"},
		{"error response", "Can't find backend.\n\n", "unsupported format"},
		{"version 2", "2\n" + header + good, "unsupported format"},
		{"no header", "1\n" + good, "no header line"},
		{"missing column", "1\n# be_id be_name srv_id srv_name\n3 app 1 blue\n", "header lacks columns"},
		{"short line", "1\n" + header + "3 app 1 blue 127.0.0.1 2 0 1 1 10 15 3 2 6\n", "fields"},
		{"not a number", "1\n" + header + strings.Replace(good, " 18091", " http", 1), "srv_port"},
		{"unknown op state", "1\n" + header + strings.Replace(good, "127.0.0.1 2", "127.0.0.1 7", 1), "srv_op_state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseServersState(tt.text)
			if err == nil {
				t.Fatal("parseServersState returned no error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseServersStateEmptyBackend(t *testing.T) {
	text := "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight " +
		"srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health " +
		"srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port\n\n"
	got, err := parseServersState(text)
	if err != nil {
		t.Fatalf("parseServersState: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("got %d servers, want none", len(got))
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")

	if err := writeFileAtomic(path, []byte("first\n")); err != nil {
		t.Fatalf("first write: %v", err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o644 {
		t.Errorf("new file mode = %o, want 644", perm)
	}

	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(path, []byte("second\n")); err != nil {
		t.Fatalf("second write: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "second\n" {
		t.Errorf("content = %q, want %q", data, "second\n")
	}
	info, err = os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode after overwrite = %o, want the kept 600", perm)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory has %d entries, want only the state file: %v", len(entries), entries)
	}
}

func TestWriteFileAtomicMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "state")
	if err := writeFileAtomic(path, []byte("x")); err == nil {
		t.Fatal("writeFileAtomic into a missing directory returned no error")
	}
}
