package haproxy

// Tests against a real HAProxy started by testenv.StartHAProxy. Every server
// is checked every 200ms with `fall 2 rise 1`.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/quai-ci/quai/internal/testenv"
)

var localhost = netip.MustParseAddr("127.0.0.1")

// waitTimeout bounds every wait for a health check result. With checks every
// 200ms, results normally arrive within half a second.
const waitTimeout = 10 * time.Second

func TestServersStateEnabledAndDisabled(t *testing.T) {
	bluePort := testenv.HTTPServer(t, "blue", http.StatusOK)
	greenPort := testenv.HTTPServer(t, "green", http.StatusOK)
	h := testenv.StartHAProxy(t, testenv.HAProxyBackend{Name: "app", Servers: []testenv.HAProxyServer{
		{Name: "blue", Port: bluePort},
		{Name: "green", Port: greenPort, Disabled: true},
	}})
	c := New(h.Socket, 0)
	ctx := context.Background()

	waitForStat(t, c, "app", "blue", func(s Stat) bool { return s.Status == "UP" && s.CheckStatus == "L7OK" })

	states, err := c.ServersState(ctx, "app")
	if err != nil {
		t.Fatalf("ServersState: %v", err)
	}
	if len(states) != 2 {
		t.Fatalf("got %d servers, want 2: %+v", len(states), states)
	}
	blue, green := states[0], states[1]
	if blue.Backend != "app" || blue.Server != "blue" || green.Server != "green" {
		t.Errorf("servers = %s/%s, %s/%s, want app/blue, app/green", blue.Backend, blue.Server, green.Backend, green.Server)
	}
	if blue.Addr != "127.0.0.1" || blue.Port != bluePort {
		t.Errorf("blue address = %s:%d, want 127.0.0.1:%d", blue.Addr, blue.Port, bluePort)
	}
	if blue.Admin != AdminReady {
		t.Errorf("blue Admin = %q, want %q", blue.Admin, AdminReady)
	}
	if blue.Operational != OperationalRunning {
		t.Errorf("blue Operational = %q, want %q", blue.Operational, OperationalRunning)
	}
	if !blue.HasCheck {
		t.Error("blue HasCheck = false, want true")
	}
	if green.Port != greenPort {
		t.Errorf("green port = %d, want %d", green.Port, greenPort)
	}
	if green.Admin != AdminMaint {
		t.Errorf("green Admin = %q, want %q (flags %#x)", green.Admin, AdminMaint, green.AdminFlags)
	}
	if green.Operational != OperationalStopped {
		t.Errorf("green Operational = %q, want %q", green.Operational, OperationalStopped)
	}
	if !green.CheckPaused {
		t.Error("green CheckPaused = false, want true")
	}

	stats, err := c.Stats(ctx, "app")
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if len(stats) != 2 {
		t.Fatalf("got %d stat rows, want 2 (servers only): %+v", len(stats), stats)
	}
	if stats[1].Server != "green" || stats[1].Status != "MAINT" {
		t.Errorf("green stat = %s %q, want green \"MAINT\"", stats[1].Server, stats[1].Status)
	}
	if want := fmt.Sprintf("127.0.0.1:%d", bluePort); stats[0].Addr != want {
		t.Errorf("blue stat Addr = %q, want %q", stats[0].Addr, want)
	}
}

func TestStatsCountsResponses(t *testing.T) {
	// The health check passes, but every other request gets a 503.
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}))
	t.Cleanup(app.Close)
	h := testenv.StartHAProxy(t, testenv.HAProxyBackend{Name: "app", HealthPath: "/health",
		Servers: []testenv.HAProxyServer{{Name: "blue", Port: portOf(t, app.URL)}}})
	c := New(h.Socket, 0)
	waitForStat(t, c, "app", "blue", func(s Stat) bool { return s.Status == "UP" })

	const requests = 5
	for range requests {
		if status, _ := get(t, h.FrontendPort); status != http.StatusServiceUnavailable {
			t.Fatalf("frontend status = %d, want 503", status)
		}
	}

	stats, err := c.Stats(context.Background(), "app")
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if stats[0].Hrsp5xx != requests {
		t.Errorf("Hrsp5xx = %d, want %d", stats[0].Hrsp5xx, requests)
	}
	if stats[0].Stot != requests {
		t.Errorf("Stot = %d, want %d", stats[0].Stot, requests)
	}
}

// TestBlueGreenSwitch moves traffic from blue to green the way a rollout
// does, and shows that after maintenance the old check result stays visible
// until a new check finishes.
func TestBlueGreenSwitch(t *testing.T) {
	bluePort := testenv.HTTPServer(t, "blue", http.StatusOK)
	brokenPort := testenv.HTTPServer(t, "broken", http.StatusServiceUnavailable)
	newPort := testenv.HTTPServer(t, "green", http.StatusOK)
	h := testenv.StartHAProxy(t, testenv.HAProxyBackend{Name: "app", Servers: []testenv.HAProxyServer{
		{Name: "blue", Port: bluePort},
		{Name: "green", Port: brokenPort, Disabled: true},
	}})
	c := New(h.Socket, 0)
	ctx := context.Background()
	waitForStat(t, c, "app", "blue", func(s Stat) bool { return s.Status == "UP" })

	// A failed check result on green, to be left behind by maintenance.
	mustSetState(t, c, "green", AdminReady)
	waitForStat(t, c, "app", "green", func(s Stat) bool { return s.Status == "DOWN" && s.CheckStatus == "L7STS" })
	mustSetState(t, c, "green", AdminMaint)
	waitForStat(t, c, "app", "green", func(s Stat) bool { return s.Status == "MAINT" })

	if err := c.SetAddr(ctx, "app", "green", localhost, newPort); err != nil {
		t.Fatalf("SetAddr: %v", err)
	}
	green := serverState(t, c, "green")
	if green.Addr != "127.0.0.1" || green.Port != newPort {
		t.Errorf("green address after SetAddr = %s:%d, want 127.0.0.1:%d", green.Addr, green.Port, newPort)
	}

	mustSetState(t, c, "green", AdminDrain)
	first := stat(t, c, "green")
	t.Logf("right after drain: status %q, check %q (in progress %v)", first.Status, first.CheckStatus,
		first.CheckInProgress)
	// HAProxy counts a server leaving maintenance as up before any check.
	// A check finished since could only have passed on the new port.
	if state := serverState(t, c, "green"); state.Operational != OperationalRunning {
		t.Errorf("green right after drain is %q, want %q", state.Operational, OperationalRunning)
	}
	if first.CheckStatus != "L7STS" && first.CheckStatus != "L7OK" {
		t.Errorf("check status right after drain = %q, want the old L7STS or a new L7OK", first.CheckStatus)
	}
	waitForStat(t, c, "app", "green", func(s Stat) bool {
		return s.Status == "DRAIN" && s.CheckStatus == "L7OK" && !s.CheckInProgress
	})
	if state := serverState(t, c, "green"); state.Admin != AdminDrain || state.CheckStatus != "L7OK" {
		t.Errorf("green state = %q with check %q, want drain with L7OK", state.Admin, state.CheckStatus)
	}
	if _, body := get(t, h.FrontendPort); body != "blue" {
		t.Errorf("with green drained the frontend returned %q, want blue", body)
	}

	mustSetState(t, c, "green", AdminReady)
	waitForStat(t, c, "app", "green", func(s Stat) bool { return s.Status == "UP" })
	mustSetState(t, c, "blue", AdminMaint)
	if state := serverState(t, c, "blue"); state.Admin != AdminMaint {
		t.Errorf("blue Admin = %q, want %q", state.Admin, AdminMaint)
	}
	if s := stat(t, c, "blue"); s.Status != "MAINT" {
		t.Errorf("blue status = %q, want MAINT", s.Status)
	}
	for range 4 {
		if _, body := get(t, h.FrontendPort); body != "green" {
			t.Errorf("with blue in maintenance the frontend returned %q, want green", body)
		}
	}
}

// TestReadyFromMaintSkipsCheck shows why a rollout drains first: `state
// ready` straight from maintenance sends traffic to the server before any
// health check has finished on it.
func TestReadyFromMaintSkipsCheck(t *testing.T) {
	bluePort := testenv.HTTPServer(t, "blue", http.StatusOK)
	// The first check after maintenance can start at once, so the broken
	// server delays its responses to keep the check from finishing for 150ms.
	const delay = 150 * time.Millisecond
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		http.Error(w, "broken", http.StatusServiceUnavailable)
	}))
	t.Cleanup(broken.Close)
	h := testenv.StartHAProxy(t, testenv.HAProxyBackend{Name: "app", Servers: []testenv.HAProxyServer{
		{Name: "blue", Port: bluePort},
		{Name: "green", Port: portOf(t, broken.URL), Disabled: true},
	}})
	c := New(h.Socket, 0)
	waitForStat(t, c, "app", "blue", func(s Stat) bool { return s.Status == "UP" })

	mustSetState(t, c, "green", AdminReady)
	start := time.Now()
	green := stat(t, c, "green")
	if elapsed := time.Since(start); elapsed > delay/2 {
		t.Skipf("reading took %s, too long to see the state before the first check", elapsed)
	}
	if green.Status != "UP 1/2" || green.CheckStatus != "INI" {
		t.Errorf("green right after ready = %q with check %q, want \"UP 1/2\" with INI", green.Status,
			green.CheckStatus)
	}

	// Round-robin sends one of two requests to green. The second starts
	// before green's check can fail unless the first went to green.
	var bodies []string
	for range 2 {
		_, body := get(t, h.FrontendPort)
		bodies = append(bodies, body)
	}
	if bodies[0] != "broken\n" && bodies[1] != "broken\n" {
		t.Errorf("responses %q, want one from the unchecked green server", bodies)
	}
}

func TestReloadKeepsStateFile(t *testing.T) {
	configPort := testenv.HTTPServer(t, "config", http.StatusOK)
	savedPort := testenv.HTTPServer(t, "saved", http.StatusOK)
	unsavedPort := testenv.HTTPServer(t, "unsaved", http.StatusOK)
	h := testenv.StartHAProxy(t, testenv.HAProxyBackend{Name: "app", Servers: []testenv.HAProxyServer{
		{Name: "blue", Port: configPort},
	}})
	c := New(h.Socket, 0)
	ctx := context.Background()

	pid, err := c.WorkerPID(ctx)
	if err != nil {
		t.Fatalf("WorkerPID: %v", err)
	}
	if pid != h.PID {
		t.Errorf("WorkerPID = %d, want the started process %d", pid, h.PID)
	}

	if err := c.SetAddr(ctx, "app", "blue", localhost, savedPort); err != nil {
		t.Fatalf("SetAddr: %v", err)
	}
	if err := c.WriteStateFile(ctx, h.StateFile); err != nil {
		t.Fatalf("WriteStateFile: %v", err)
	}
	data, err := os.ReadFile(h.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := " app 1 blue 127.0.0.1 "; !strings.Contains(string(data), want) {
		t.Errorf("state file lacks %q:\n%s", want, data)
	}

	// Changed after saving, so the reload must bring back savedPort.
	if err := c.SetAddr(ctx, "app", "blue", localhost, unsavedPort); err != nil {
		t.Fatalf("SetAddr: %v", err)
	}
	h.Reload(t)

	newPID, err := c.WorkerPID(ctx)
	if err != nil {
		t.Fatalf("WorkerPID after reload: %v", err)
	}
	if newPID == pid {
		t.Errorf("WorkerPID after reload = %d, unchanged", newPID)
	}
	if newPID != h.PID {
		t.Errorf("WorkerPID after reload = %d, want the new process %d", newPID, h.PID)
	}
	if blue := serverState(t, c, "blue"); blue.Port != savedPort {
		t.Errorf("blue port after reload = %d, want the saved %d (config %d, unsaved %d)",
			blue.Port, savedPort, configPort, unsavedPort)
	}
	waitForStat(t, c, "app", "blue", func(s Stat) bool { return s.Status == "UP" })
	if _, body := get(t, h.FrontendPort); body != "saved" {
		t.Errorf("frontend after reload returned %q, want saved", body)
	}
}

func TestErrorsFromHAProxy(t *testing.T) {
	port := testenv.HTTPServer(t, "blue", http.StatusOK)
	h := testenv.StartHAProxy(t, testenv.HAProxyBackend{Name: "app", Servers: []testenv.HAProxyServer{
		{Name: "blue", Port: port},
	}})
	c := New(h.Socket, 0)
	ctx := context.Background()

	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"ServersState unknown backend", func() error { _, err := c.ServersState(ctx, "nosuch"); return err },
			ErrNoSuchBackend},
		{"Stats unknown backend", func() error { _, err := c.Stats(ctx, "nosuch"); return err }, ErrNoSuchBackend},
		{"SetState unknown backend", func() error { return c.SetState(ctx, "nosuch", "blue", AdminDrain) },
			ErrNoSuchBackend},
		{"SetAddr unknown backend", func() error { return c.SetAddr(ctx, "nosuch", "blue", localhost, 80) },
			ErrNoSuchBackend},
		{"SetState unknown server", func() error { return c.SetState(ctx, "app", "nosuch", AdminDrain) },
			ErrNoSuchServer},
		{"SetAddr unknown server", func() error { return c.SetAddr(ctx, "app", "nosuch", localhost, 80) },
			ErrNoSuchServer},
		{"unknown command", func() error { _, err := c.Command(ctx, "show nonsense"); return err },
			ErrUnknownCommand},
		{"SetState on user-level socket", func() error {
			return New(h.UserSocket, 0).SetState(ctx, "app", "blue", AdminDrain)
		}, ErrLevelTooLow},
		{"SetAddr on user-level socket", func() error {
			return New(h.UserSocket, 0).SetAddr(ctx, "app", "blue", localhost, 80)
		}, ErrLevelTooLow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want one wrapping %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), h.Socket) && !strings.Contains(err.Error(), h.UserSocket) {
				t.Errorf("error %q does not name the socket", err)
			}
		})
	}

	// The user level may read.
	if _, err := New(h.UserSocket, 0).ServersState(ctx, "app"); err != nil {
		t.Errorf("ServersState on user-level socket: %v", err)
	}
	if blue := serverState(t, c, "blue"); blue.Admin != AdminReady || blue.Port != port {
		t.Errorf("blue after rejected commands = %q port %d, want ready port %d", blue.Admin, blue.Port, port)
	}
}

func TestHostnameAddrRejectedByHAProxy(t *testing.T) {
	port := testenv.HTTPServer(t, "blue", http.StatusOK)
	h := testenv.StartHAProxy(t, testenv.HAProxyBackend{Name: "app", Servers: []testenv.HAProxyServer{
		{Name: "blue", Port: port},
	}})
	c := New(h.Socket, 0)

	// SetAddr takes a netip.Addr, so only Command can send a host name.
	response, err := c.Command(context.Background(), "set server app/blue addr localhost port 80")
	if err != nil {
		t.Fatalf("Command: %v", err)
	}
	if want := "Invalid addr 'localhost'"; !strings.HasPrefix(response, want) {
		t.Errorf("response = %q, want it to start with %q", response, want)
	}
	if blue := serverState(t, c, "blue"); blue.Port != port {
		t.Errorf("blue port = %d after the rejected command, want %d", blue.Port, port)
	}
}

func TestCheckBackend(t *testing.T) {
	port := testenv.HTTPServer(t, "ok", http.StatusOK)
	h := testenv.StartHAProxy(t, testenv.HAProxyBackend{Name: "app", Servers: []testenv.HAProxyServer{
		{Name: "blue", Port: port},
		{Name: "green", Port: port, Disabled: true},
		{Name: "plain", Port: port, NoCheck: true},
		{Name: "quick", Port: port, Fall: 1},
	}})
	c := New(h.Socket, 0)
	ctx := context.Background()

	tests := []struct {
		name    string
		backend string
		servers []string
		want    []string // one substring per expected finding
	}{
		{"all fine", "app", []string{"blue", "green"}, nil},
		{"missing backend", "web", []string{"blue"}, []string{`backend "web" not found`}},
		{"missing server", "app", []string{"blue", "purple"}, []string{"server app/purple not found"}},
		{"no check", "app", []string{"plain", "blue"}, []string{"server app/plain has no health check"}},
		{"invalid server name", "app", []string{"blue", "bad name"}, []string{`invalid server name "bad name"`}},
		{"fall 1", "app", []string{"quick", "blue"}, []string{"server app/quick has `fall 1`"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			findings, err := c.CheckBackend(ctx, tt.backend, tt.servers)
			if err != nil {
				t.Fatalf("CheckBackend: %v", err)
			}
			if len(findings) != len(tt.want) {
				t.Fatalf("findings = %q, want %d", findings, len(tt.want))
			}
			for i, want := range tt.want {
				if !strings.Contains(findings[i], want) {
					t.Errorf("finding %q does not contain %q", findings[i], want)
				}
			}
		})
	}

	missing := New(h.Socket+".missing", 0)
	if _, err := missing.CheckBackend(ctx, "app", []string{"blue"}); !errors.Is(err, ErrSocketMissing) {
		t.Errorf("CheckBackend on a missing socket: error = %v, want ErrSocketMissing", err)
	}
}

func TestDumpStateAllBackends(t *testing.T) {
	port := testenv.HTTPServer(t, "ok", http.StatusOK)
	h := testenv.StartHAProxy(t,
		testenv.HAProxyBackend{Name: "app", Servers: []testenv.HAProxyServer{{Name: "blue", Port: port}}},
		testenv.HAProxyBackend{Name: "api", Servers: []testenv.HAProxyServer{{Name: "green", Port: port}}},
	)
	dump, err := New(h.Socket, 0).DumpState(context.Background())
	if err != nil {
		t.Fatalf("DumpState: %v", err)
	}
	states, err := parseServersState(dump)
	if err != nil {
		t.Fatalf("parsing the dump: %v", err)
	}
	var names []string
	for _, st := range states {
		names = append(names, st.Backend+"/"+st.Server)
	}
	if got := strings.Join(names, ","); got != "app/blue,api/green" {
		t.Errorf("servers in dump = %s, want app/blue,api/green", got)
	}
	if strings.HasSuffix(dump, "\n\n") || !strings.HasSuffix(dump, "\n") {
		t.Errorf("dump should end with exactly one newline: %q", dump[max(0, len(dump)-20):])
	}
}

func mustSetState(t *testing.T, c *Client, server string, state AdminState) {
	t.Helper()
	if err := c.SetState(context.Background(), "app", server, state); err != nil {
		t.Fatalf("SetState %s %s: %v", server, state, err)
	}
}

func serverState(t *testing.T, c *Client, server string) ServerState {
	t.Helper()
	states, err := c.ServersState(context.Background(), "app")
	if err != nil {
		t.Fatalf("ServersState: %v", err)
	}
	for _, st := range states {
		if st.Server == server {
			return st
		}
	}
	t.Fatalf("server app/%s not in %+v", server, states)
	return ServerState{}
}

func stat(t *testing.T, c *Client, server string) Stat {
	t.Helper()
	stats, err := c.Stats(context.Background(), "app")
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	for _, s := range stats {
		if s.Server == server {
			return s
		}
	}
	t.Fatalf("server app/%s not in %+v", server, stats)
	return Stat{}
}

// waitForStat polls Stats until the row of backend/server satisfies ok.
func waitForStat(t *testing.T, c *Client, backend, server string, ok func(Stat) bool) Stat {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last Stat
	for {
		stats, err := c.Stats(context.Background(), backend)
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		for _, s := range stats {
			if s.Server == server {
				last = s
			}
		}
		if last.Server == server && ok(last) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s did not reach the expected state within %s; last: %+v", backend, server, waitTimeout, last)
		}
		<-tick.C
	}
}

// get sends GET / to the frontend without keep-alive, so no connection holds
// an old HAProxy process open after a reload.
func get(t *testing.T, port int) (status int, body string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("GET through HAProxy: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	return resp.StatusCode, string(data)
}

func portOf(t *testing.T, rawURL string) int {
	t.Helper()
	addr, err := netip.ParseAddrPort(strings.TrimPrefix(rawURL, "http://"))
	if err != nil {
		t.Fatalf("parsing %s: %v", rawURL, err)
	}
	return int(addr.Port())
}
