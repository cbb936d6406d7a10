package haproxy

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeSocket listens on a Unix socket in a temporary directory and responds to
// each connection with response after reading one line, or never when response
// is nil. It returns the socket path and a channel that receives every
// command line read.
func fakeSocket(t *testing.T, response *string) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	received := make(chan string, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(conn).ReadString('\n')
			received <- line
			if response == nil {
				// Hold the connection open without responding until the
				// client gives up.
				_, _ = conn.Read(make([]byte, 1))
			} else {
				_, _ = conn.Write([]byte(*response))
			}
			conn.Close()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return path, received
}

func TestCommandSendsOneLine(t *testing.T) {
	response := "Name: HAProxy\nPid: 42\n\n"
	path, received := fakeSocket(t, &response)
	c := New(path, time.Second)

	got, err := c.Command(context.Background(), "show info")
	if err != nil {
		t.Fatalf("Command: %v", err)
	}
	if got != response {
		t.Errorf("response = %q, want %q", got, response)
	}
	if line := <-received; line != "show info\n" {
		t.Errorf("sent %q, want %q", line, "show info\n")
	}
}

func TestCommandRejectsChains(t *testing.T) {
	c := New(filepath.Join(t.TempDir(), "never-dialed.sock"), time.Second)
	for _, cmd := range []string{"", "   ", "show info; show stat", "show info\nshow stat", "show info\r"} {
		_, err := c.Command(context.Background(), cmd)
		if err == nil {
			t.Errorf("Command(%q) returned no error", cmd)
			continue
		}
		if errors.Is(err, ErrSocketMissing) {
			t.Errorf("Command(%q) dialed the socket instead of rejecting the command: %v", cmd, err)
		}
	}
}

func TestCommandAnswerErrors(t *testing.T) {
	tests := []struct {
		response string
		want     error
	}{
		{"Permission denied\n\n", ErrLevelTooLow},
		{"No such backend.\n\n", ErrNoSuchBackend},
		{"Can't find backend.\n\n", ErrNoSuchBackend},
		{"No such proxy.\n\n", ErrNoSuchBackend},
		{"No such server.\n\n", ErrNoSuchServer},
		{"Unknown command, but maybe one of the following ones is a better match:\n  help\n\n", ErrUnknownCommand},
	}
	for _, tt := range tests {
		t.Run(firstLine(tt.response), func(t *testing.T) {
			response := tt.response
			path, _ := fakeSocket(t, &response)
			_, err := New(path, time.Second).Command(context.Background(), "set server app/blue state drain")
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want one wrapping %v", err, tt.want)
			}
			for _, part := range []string{path, "set server app/blue state drain", firstLine(tt.response)} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not contain %q", err, part)
				}
			}
		})
	}
}

func TestCommandDataMentioningErrors(t *testing.T) {
	// A health check response can put any reason phrase into `show stat`.
	// Only the first line of a response is an error message.
	response := "# pxname,svname,last_chk,\napp,blue,Permission denied,\napp,green,No such server.,\n\n"
	path, _ := fakeSocket(t, &response)
	got, err := New(path, time.Second).Command(context.Background(), "show stat")
	if err != nil {
		t.Fatalf("Command: %v", err)
	}
	if got != response {
		t.Errorf("response = %q, want %q", got, response)
	}
}

func TestCommandTimeout(t *testing.T) {
	path, _ := fakeSocket(t, nil)
	c := New(path, 200*time.Millisecond)

	start := time.Now()
	_, err := c.Command(context.Background(), "show info")
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("error = %v, want one wrapping os.ErrDeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Command returned after %s, want about 200ms", elapsed)
	}
}

func TestCommandContextCanceled(t *testing.T) {
	path, _ := fakeSocket(t, nil)
	c := New(path, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()

	_, err := c.Command(ctx, "show info")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want one wrapping context.DeadlineExceeded", err)
	}
}

func TestCommandSocketErrors(t *testing.T) {
	dir := t.TempDir()

	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	// Closing without unlinking leaves the file of a crashed HAProxy.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()

	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("not a socket"), 0o600); err != nil {
		t.Fatal(err)
	}
	subdir := filepath.Join(dir, "subdir")
	if err := os.Mkdir(subdir, 0o700); err != nil {
		t.Fatal(err)
	}

	// Measured on Linux 6.18: connect(2) returns ECONNREFUSED, not ENOTSOCK,
	// for a regular file or a directory.
	tests := []struct {
		name     string
		path     string
		want     error
		wantText string
	}{
		{"missing", filepath.Join(dir, "missing.sock"), ErrSocketMissing, "level admin"},
		{"missing directory", filepath.Join(dir, "nodir", "admin.sock"), ErrSocketMissing, "not found"},
		{"file as directory", filepath.Join(plain, "admin.sock"), ErrSocketMissing, "not found"},
		{"stale socket file", stale, ErrSocketRefused, "HAProxy is not running"},
		{"regular file", plain, ErrSocketRefused, "is a regular file, not a Unix socket"},
		{"directory", subdir, ErrSocketRefused, "is a directory, not a Unix socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.path, time.Second).Command(context.Background(), "show info")
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want one wrapping %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name the socket %s", err, tt.path)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
		})
	}
}

func TestCommandSocketPermission(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root connects to any Unix socket regardless of its mode; TestDialErrorPermission covers the mapping")
	}
	response := "\n"
	path, _ := fakeSocket(t, &response)
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	_, err := New(path, time.Second).Command(context.Background(), "show info")
	if !errors.Is(err, ErrSocketPermission) {
		t.Fatalf("error = %v, want one wrapping ErrSocketPermission", err)
	}
	if !errors.Is(err, syscall.EACCES) {
		t.Errorf("error = %v, want one also wrapping EACCES", err)
	}
}

func TestDialErrorPermission(t *testing.T) {
	c := New("/run/haproxy/admin.sock", time.Second)
	dialErr := &net.OpError{Op: "dial", Net: "unix",
		Err: os.NewSyscallError("connect", syscall.EACCES)}

	err := c.dialError(dialErr)
	if !errors.Is(err, ErrSocketPermission) {
		t.Fatalf("error = %v, want one wrapping ErrSocketPermission", err)
	}
	if !errors.Is(err, syscall.EACCES) {
		t.Errorf("error = %v, want one also wrapping EACCES", err)
	}
	for _, part := range []string{"/run/haproxy/admin.sock", "group", "mode"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not contain %q", err, part)
		}
	}
}

func TestNewDefaultTimeout(t *testing.T) {
	if c := New("/x", 0); c.timeout != DefaultTimeout {
		t.Errorf("timeout = %s, want %s", c.timeout, DefaultTimeout)
	}
	if c := New("/x", -time.Second); c.timeout != DefaultTimeout {
		t.Errorf("timeout = %s, want %s", c.timeout, DefaultTimeout)
	}
	if c := New("/x", time.Second); c.timeout != time.Second {
		t.Errorf("timeout = %s, want 1s", c.timeout)
	}
}
