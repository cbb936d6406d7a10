package testenv

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// haproxyStartTimeout bounds the wait for a started HAProxy to respond on its
// admin socket.
const haproxyStartTimeout = 10 * time.Second

// maxSocketPath keeps socket paths below the 108 bytes of sun_path in Linux's
// struct sockaddr_un, with room for the name HAProxy binds before renaming.
const maxSocketPath = 90

// HAProxy is an HAProxy process started for one test with a configuration
// written by StartHAProxy. Its fields describe the running process; Reload
// updates PID.
type HAProxy struct {
	// Socket is the admin socket (`stats socket ... level admin`).
	Socket string
	// UserSocket is a second stats socket with `level user`, which may read
	// but not change anything.
	UserSocket string
	// StateFile is the server-state file that HAProxy loads when it starts
	// or reloads. It does not exist until a test writes it.
	StateFile string
	// Config is the path of the configuration file.
	Config string
	// FrontendPort is the 127.0.0.1 port of the frontend, which routes every
	// request to the first backend.
	FrontendPort int
	// PID is the process serving the sockets.
	PID int

	bin     string
	logPath string
}

// HAProxyBackend is a backend section of the configuration.
type HAProxyBackend struct {
	Name    string
	Servers []HAProxyServer
	// HealthPath is the path of the HTTP health check, "/" when empty.
	HealthPath string
}

// HAProxyServer is a server line `server NAME 127.0.0.1:PORT check`.
type HAProxyServer struct {
	Name string
	Port int
	// Disabled adds `disabled`, so that the server starts in maintenance.
	Disabled bool
	// NoCheck leaves out `check`, so that HAProxy never checks the server.
	NoCheck bool
	// Fall, when set, replaces the default `fall 2` of the server.
	Fall int
}

// StartHAProxy writes a configuration for backends into a temporary
// directory and starts `haproxy -f <config> -db` in the foreground. The
// configuration has an admin and a user-level stats socket, a server-state
// file loaded with `load-server-state-from-file global`, HTTP health checks
// every 200ms with `fall 2 rise 1`, and a frontend on a free 127.0.0.1 port
// that uses the first backend. StartHAProxy waits up to 10s until the admin
// socket responds to `show info`, and registers a cleanup that kills the started
// process and waits for it to exit. It finds the binary in HAPROXY_BIN, on
// PATH or at /usr/sbin/haproxy, and calls Skip when there is none.
func StartHAProxy(t testing.TB, backends ...HAProxyBackend) *HAProxy {
	t.Helper()
	if len(backends) == 0 {
		t.Fatal("StartHAProxy needs at least one backend for the frontend")
	}
	bin, err := haproxyBinary()
	if err != nil {
		Skip(t, "haproxy", err.Error()+": install Debian's haproxy package or set HAPROXY_BIN")
	}
	dir := socketDir(t)

	// Another process can take the free port between probing and binding
	// it, so a bind failure gets a fresh port.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		h, err := startHAProxy(t, bin, dir, backends)
		if err == nil {
			return h
		}
		if attempt == attempts || !errors.Is(err, errAddressInUse) {
			t.Fatalf("starting HAProxy %s: %v", bin, err)
		}
	}
}

// Reload starts a new HAProxy with the same configuration and `-sf <PID>`,
// which takes over the listeners and signals the old process to finish its
// connections and exit. It loads the server-state file as a production
// reload does. Reload waits until `show info` on the admin socket returns the
// new process ID, sets PID to it, and registers a cleanup on t that kills the
// new process.
func (h *HAProxy) Reload(t testing.TB) {
	t.Helper()
	oldPID := h.PID
	exited, err := h.start(t, "-sf", strconv.Itoa(oldPID))
	if err != nil {
		t.Fatalf("reloading HAProxy %s: %v", h.Config, err)
	}
	if err := h.waitForPID(h.PID, exited); err != nil {
		t.Fatalf("reloading HAProxy %s (old PID %d, new PID %d): %v", h.Config, oldPID, h.PID, err)
	}
}

// Log returns what the HAProxy processes wrote so far, for failure messages.
func (h *HAProxy) Log() string {
	data, err := os.ReadFile(h.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", h.logPath, err)
	}
	return string(data)
}

// HTTPServer starts an HTTP server on a free 127.0.0.1 port that responds to
// every request with status and body, and closes it when the test ends. It
// serves as a fake application behind HAProxy.
func HTTPServer(t testing.TB, body string, status int) (port int) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

func startHAProxy(t testing.TB, bin, dir string, backends []HAProxyBackend) (*HAProxy, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	h := &HAProxy{
		Socket:       filepath.Join(dir, "admin.sock"),
		UserSocket:   filepath.Join(dir, "user.sock"),
		StateFile:    filepath.Join(dir, "state"),
		Config:       filepath.Join(dir, "haproxy.cfg"),
		FrontendPort: port,
		bin:          bin,
		logPath:      filepath.Join(dir, "haproxy.log"),
	}
	if err := os.WriteFile(h.Config, []byte(h.config(backends)), 0o644); err != nil {
		return nil, fmt.Errorf("writing the configuration: %w", err)
	}
	exited, err := h.start(t)
	if err != nil {
		return nil, err
	}
	if err := h.waitForPID(h.PID, exited); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *HAProxy) config(backends []HAProxyBackend) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
    stats socket %s mode 600 level admin
    stats socket %s mode 600 level user
    server-state-file %s

defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    load-server-state-from-file global
    default-server inter 200ms fall 2 rise 1

frontend web
    bind 127.0.0.1:%d
    default_backend %s
`, h.Socket, h.UserSocket, h.StateFile, h.FrontendPort, backends[0].Name)

	for _, be := range backends {
		path := be.HealthPath
		if path == "" {
			path = "/"
		}
		fmt.Fprintf(&b, "\nbackend %s\n    option httpchk GET %s\n", be.Name, path)
		for _, srv := range be.Servers {
			fmt.Fprintf(&b, "    server %s 127.0.0.1:%d", srv.Name, srv.Port)
			if !srv.NoCheck {
				b.WriteString(" check")
			}
			if srv.Disabled {
				b.WriteString(" disabled")
			}
			if srv.Fall > 0 {
				fmt.Fprintf(&b, " fall %d", srv.Fall)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// start runs HAProxy with the configuration and extra arguments, sets PID
// and registers the cleanup that kills this process by its handle. The
// returned channel closes when the process exits.
func (h *HAProxy) start(t testing.TB, args ...string) (<-chan struct{}, error) {
	logFile, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the HAProxy log: %w", err)
	}
	defer logFile.Close()

	cmd := exec.Command(h.bin, append([]string{"-f", h.Config, "-db"}, args...)...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("running %s: %w", h.bin, err)
	}
	h.PID = cmd.Process.Pid

	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	return exited, nil
}

// waitForPID polls `show info` on the admin socket until it returns pid,
// the process exits or haproxyStartTimeout passes. After a reload the old
// process may still respond for a moment, so the PID must match.
func (h *HAProxy) waitForPID(pid int, exited <-chan struct{}) error {
	deadline := time.Now().Add(haproxyStartTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()

	var last error
	for {
		got, err := queryPID(h.Socket)
		if err == nil && got == pid {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("show info returned Pid %d", got)
		}
		last = err

		select {
		case <-exited:
			log := h.Log()
			if strings.Contains(log, "Address already in use") || strings.Contains(log, "cannot bind socket") {
				return fmt.Errorf("%w: %s", errAddressInUse, log)
			}
			return fmt.Errorf("HAProxy PID %d exited before responding on %s; output:\n%s", pid, h.Socket, log)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("HAProxy PID %d did not response on %s within %s (last: %v); output:\n%s",
				pid, h.Socket, haproxyStartTimeout, last, h.Log())
		}
	}
}

// queryPID sends `show info` and returns its Pid value.
func queryPID(socket string) (int, error) {
	conn, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, "show info\n"); err != nil {
		return 0, err
	}
	response, err := io.ReadAll(conn)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(response)) {
		if value, ok := strings.CutPrefix(line, "Pid:"); ok {
			return strconv.Atoi(strings.TrimSpace(value))
		}
	}
	return 0, fmt.Errorf("no Pid line in show info: %q", response)
}

func haproxyBinary() (string, error) {
	if bin := os.Getenv("HAPROXY_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("HAPROXY_BIN=%s: %w", bin, err)
		}
		return bin, nil
	}
	if bin, err := exec.LookPath("haproxy"); err == nil {
		return bin, nil
	}
	// /usr/sbin is often missing from the PATH of users other than root.
	const debianPath = "/usr/sbin/haproxy"
	if _, err := os.Stat(debianPath); err == nil {
		return debianPath, nil
	}
	return "", errors.New("no haproxy binary on PATH or at /usr/sbin/haproxy")
}

// socketDir returns a directory for the sockets: t.TempDir, or a shorter
// directory under os.TempDir when long test names would make socket paths
// exceed what a Unix socket address can contain.
func socketDir(t testing.TB) string {
	dir := t.TempDir()
	if len(filepath.Join(dir, "admin.sock")) <= maxSocketPath {
		return dir
	}
	dir, err := os.MkdirTemp("", "quai-haproxy-")
	if err != nil {
		t.Fatalf("creating a directory for HAProxy sockets: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}
