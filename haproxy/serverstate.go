package haproxy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// AdminState is a server's administrative state, the one `set server
// <backend>/<server> state` sets.
type AdminState string

// The administrative states of HAProxy 2.6.
const (
	// AdminReady lets the server take traffic when its checks pass.
	AdminReady AdminState = "ready"
	// AdminDrain sends the server no new traffic except persistent
	// connections, but keeps checking it.
	AdminDrain AdminState = "drain"
	// AdminMaint sends the server no traffic and pauses its checks.
	AdminMaint AdminState = "maint"
)

// Valid reports whether s is one of AdminReady, AdminDrain and AdminMaint.
func (s AdminState) Valid() bool {
	return s == AdminReady || s == AdminDrain || s == AdminMaint
}

// OperationalState is a server's state as its checks see it (srv_op_state).
type OperationalState string

// The operational states of HAProxy 2.6.
const (
	OperationalStopped  OperationalState = "stopped"  // down
	OperationalStarting OperationalState = "starting" // up but throttled by slowstart
	OperationalRunning  OperationalState = "running"  // fully up
	OperationalStopping OperationalState = "stopping" // up but soft-stopping, for example after a 404 with disable-on-404
)

// CheckResult is the outcome of a server's last health check
// (srv_check_result).
type CheckResult string

// The check results of HAProxy 2.6. A running check shows CheckUnknown.
const (
	CheckUnknown  CheckResult = "unknown"
	CheckNeutral  CheckResult = "neutral"
	CheckFailed   CheckResult = "failed"
	CheckPassed   CheckResult = "passed"
	CheckCondPass CheckResult = "conditionally passed"
)

// ServerState is one server line of `show servers state`.
type ServerState struct {
	Backend   string
	BackendID int
	Server    string
	ServerID  int

	// Addr is the IP address HAProxy connects to, as HAProxy prints it
	// ("127.0.0.1", "::1").
	Addr string
	Port int

	Admin AdminState
	// AdminFlags is the raw srv_admin_state bit mask that Admin is derived
	// from. 0x04 stays set after a server configured `disabled` is made
	// ready, so it does not count as maintenance.
	AdminFlags  int
	Operational OperationalState
	// Weight is the user-visible weight (srv_uweight).
	Weight int
	// SinceLastChange is the time since the last operational change, in
	// whole seconds.
	SinceLastChange time.Duration

	// CheckStatus is the last health check status with the names of the
	// check_status column of `show stat`: "L7OK", "L4CON", "L7STS", and
	// "INI" before the first check.
	CheckStatus string
	CheckResult CheckResult
	// CheckHealth is the rise/fall counter (srv_check_health).
	CheckHealth int
	// HasCheck reports whether the server line has `check`.
	HasCheck bool
	// CheckInProgress reports whether a health check is running. Its
	// CheckResult is then CheckUnknown.
	CheckInProgress bool
	// CheckPaused reports whether checks are paused by maintenance.
	CheckPaused bool
}

// ServersState returns the servers of backend from `show servers state
// <backend>`. An unknown backend returns an error wrapping ErrNoSuchBackend.
func (c *Client) ServersState(ctx context.Context, backend string) ([]ServerState, error) {
	if err := validateName("backend", backend); err != nil {
		return nil, err
	}
	response, err := c.Command(ctx, "show servers state "+backend)
	if err != nil {
		return nil, err
	}
	states, err := parseServersState(response)
	if err != nil {
		return nil, fmt.Errorf("reading `show servers state %s` from HAProxy admin socket %s: %w",
			backend, c.socket, err)
	}
	return states, nil
}

// DumpState returns the response to `show servers state` for all backends, in
// the format HAProxy reads from its server-state file. It fails when the
// response does not start with format version 1.
func (c *Client) DumpState(ctx context.Context) (string, error) {
	response, err := c.Command(ctx, "show servers state")
	if err != nil {
		return "", err
	}
	if _, err := parseServersState(response); err != nil {
		return "", fmt.Errorf("reading `show servers state` from HAProxy admin socket %s: %w", c.socket, err)
	}
	// The response ends with an empty line that marks its end on the socket.
	return strings.TrimRight(response, "\n") + "\n", nil
}

// WriteStateFile writes DumpState's output to path so that HAProxy, started
// or reloaded with `server-state-file <path>` and `load-server-state-from-file
// global`, restores the current addresses and states instead of those of
// haproxy.cfg. It writes a temporary file in the same directory, syncs it and
// renames it over path, so HAProxy never reads a partial file. An existing
// file's permissions are kept, and a new file gets 0644.
func (c *Client) WriteStateFile(ctx context.Context, path string) error {
	state, err := c.DumpState(ctx)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, []byte(state)); err != nil {
		return fmt.Errorf("writing HAProxy server-state file %s: %w", path, err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) (err error) {
	mode := os.FileMode(0o644)
	if info, statErr := os.Stat(path); statErr == nil {
		mode = info.Mode().Perm()
	}

	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Bits of srv_admin_state and srv_check_state (HAProxy 2.6 management guide,
// "show servers state").
const (
	adminForcedMaint    = 0x01
	adminInheritedMaint = 0x02
	adminResolverMaint  = 0x20
	adminMaintMask      = adminForcedMaint | adminInheritedMaint | adminResolverMaint
	adminDrainMask      = 0x08 | 0x10

	checkInProgress = 0x01
	checkConfigured = 0x02
	checkPaused     = 0x08
)

// checkStatusNames maps srv_check_status numbers to the names `show stat`
// prints, from the check_statuses table in HAProxy's src/check.c. Numbers
// without a name print as "UNK" there too.
var checkStatusNames = map[int]string{
	0: "UNK", 1: "INI", 3: "CHECKED", 4: "HANA", 5: "SOCKERR",
	6: "L4OK", 7: "L4TOUT", 8: "L4CON",
	9: "L6OK", 10: "L6TOUT", 11: "L6RSP",
	12: "L7TOUT", 13: "L7RSP",
	15: "L7OK", 16: "L7OKC", 17: "L7STS",
	18: "PROCERR", 19: "PROCTOUT", 20: "PROCOK",
}

var operationalStates = map[int]OperationalState{
	0: OperationalStopped, 1: OperationalStarting, 2: OperationalRunning, 3: OperationalStopping,
}

var checkResults = map[int]CheckResult{
	0: CheckUnknown, 1: CheckNeutral, 2: CheckFailed, 3: CheckPassed, 4: CheckCondPass,
}

// parseServersState parses a response to `show servers state` in format
// version 1. It finds columns by the header line, so columns that a later
// HAProxy appends do not matter.
func parseServersState(text string) ([]ServerState, error) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if version := strings.TrimSpace(lines[0]); version != "1" {
		return nil, fmt.Errorf("unsupported format: the first line is %q, expected version \"1\"", firstLine(text))
	}
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "#") {
		return nil, fmt.Errorf("invalid format: no header line starting with '#' after the version")
	}
	cols := columnIndex(strings.Fields(strings.TrimPrefix(lines[1], "#")))
	required := []string{"be_id", "be_name", "srv_id", "srv_name", "srv_addr", "srv_op_state",
		"srv_admin_state", "srv_uweight", "srv_time_since_last_change", "srv_check_status",
		"srv_check_result", "srv_check_health", "srv_check_state", "srv_port"}
	if missing := cols.missing(required); len(missing) > 0 {
		return nil, fmt.Errorf("invalid format: header lacks columns %s", strings.Join(missing, ", "))
	}

	width := cols.width(required)

	var states []ServerState
	for i, line := range lines[2:] {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		st, err := parseServerStateLine(cols, fields)
		if err == nil && len(fields) < width {
			err = fmt.Errorf("%d fields, but the header needs at least %d", len(fields), width)
		}
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", i+3, line, err)
		}
		states = append(states, st)
	}
	return states, nil
}

func parseServerStateLine(cols columns, fields []string) (ServerState, error) {
	r := row{cols: cols, fields: fields}
	st := ServerState{
		Backend:         r.str("be_name"),
		BackendID:       r.int("be_id"),
		Server:          r.str("srv_name"),
		ServerID:        r.int("srv_id"),
		Addr:            r.str("srv_addr"),
		Port:            r.int("srv_port"),
		AdminFlags:      r.int("srv_admin_state"),
		Weight:          r.int("srv_uweight"),
		SinceLastChange: time.Duration(r.int("srv_time_since_last_change")) * time.Second,
		CheckHealth:     r.int("srv_check_health"),
	}
	op, status, result, checkState := r.int("srv_op_state"), r.int("srv_check_status"),
		r.int("srv_check_result"), r.int("srv_check_state")
	if r.err != nil {
		return ServerState{}, r.err
	}

	switch {
	case st.AdminFlags&adminMaintMask != 0:
		st.Admin = AdminMaint
	case st.AdminFlags&adminDrainMask != 0:
		st.Admin = AdminDrain
	default:
		st.Admin = AdminReady
	}
	var ok bool
	if st.Operational, ok = operationalStates[op]; !ok {
		return ServerState{}, fmt.Errorf("unknown srv_op_state %d", op)
	}
	if st.CheckResult, ok = checkResults[result]; !ok {
		return ServerState{}, fmt.Errorf("unknown srv_check_result %d", result)
	}
	if st.CheckStatus, ok = checkStatusNames[status]; !ok {
		st.CheckStatus = "UNK"
	}
	st.HasCheck = checkState&checkConfigured != 0
	st.CheckInProgress = checkState&checkInProgress != 0
	st.CheckPaused = checkState&checkPaused != 0
	return st, nil
}

// columns maps a column name to its position.
type columns map[string]int

func columnIndex(names []string) columns {
	cols := make(columns, len(names))
	for i, name := range names {
		if _, dup := cols[name]; !dup {
			cols[name] = i
		}
	}
	return cols
}

func (c columns) missing(names []string) []string {
	var missing []string
	for _, name := range names {
		if _, ok := c[name]; !ok {
			missing = append(missing, name)
		}
	}
	return missing
}

// width returns the number of fields a line needs to contain all names.
func (c columns) width(names []string) int {
	width := 0
	for _, name := range names {
		width = max(width, c[name]+1)
	}
	return width
}

// row reads fields of one data line by column name and keeps the first error,
// so a parser can read every field and check once.
type row struct {
	cols   columns
	fields []string
	err    error
}

// str returns the named field, or "" when the column is unknown or the line
// is shorter than the header.
func (r *row) str(name string) string {
	i, ok := r.cols[name]
	if !ok || i >= len(r.fields) {
		return ""
	}
	return r.fields[i]
}

// int parses the named field as a decimal integer. An empty field is 0, as
// `show stat` leaves counters empty where they do not apply.
func (r *row) int(name string) int {
	return int(r.int64(name))
}

func (r *row) int64(name string) int64 {
	s := r.str(name)
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("column %s: invalid integer %q", name, s)
	}
	return n
}
