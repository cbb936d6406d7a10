// Package haproxy drives an HAProxy through its runtime API, the admin stats
// socket: it reads server states and statistics, changes a server's address
// and administrative state, and saves the server-state file that keeps those
// changes across a reload. The response formats it parses are those of
// HAProxy 2.6, checked against 2.6.12.
//
// The package only carries out commands. Deciding when to switch traffic
// belongs to the caller.
package haproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// DefaultTimeout bounds the connect, send and read of one command when New
// gets a timeout of zero or less.
const DefaultTimeout = 5 * time.Second

// maxResponseSize bounds the bytes read for one response. `show stat` on a large
// configuration takes a few hundred bytes per server.
const maxResponseSize = 64 << 20

// Client sends runtime API commands to one HAProxy admin socket. It opens a
// new connection for every command and holds no other state, so it is safe
// for concurrent use.
type Client struct {
	socket  string
	timeout time.Duration
}

// New returns a Client for the Unix socket at path socket, the path of a
// `stats socket` line in haproxy.cfg. Each command must connect, send and
// read its response within timeout, or DefaultTimeout when timeout is zero or
// less. New does not connect.
func New(socket string, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Client{socket: socket, timeout: timeout}
}

// Socket returns the path of the admin socket.
func (c *Client) Socket() string {
	return c.socket
}

// Command sends cmd on a fresh connection and returns HAProxy's whole response.
//
// HAProxy runs every command of a `;`-separated line even when one fails, so
// Command sends exactly one: a cmd containing `;` or a line break is rejected
// before connecting.
//
// Connection failures wrap ErrSocketMissing, ErrSocketPermission or
// ErrSocketRefused. A response whose first line is one of HAProxy's error
// messages wraps ErrLevelTooLow, ErrNoSuchBackend, ErrNoSuchServer or
// ErrUnknownCommand. Every error names the socket. Other responses, including
// error messages of specific commands, are returned as they are for the
// caller to check. A command still running when ctx ends or the timeout
// passes returns an error wrapping the context's error or
// os.ErrDeadlineExceeded.
func (c *Client) Command(ctx context.Context, cmd string) (string, error) {
	if err := validateCommand(cmd); err != nil {
		return "", err
	}

	dialer := net.Dialer{Timeout: c.timeout}
	conn, err := dialer.DialContext(ctx, "unix", c.socket)
	if err != nil {
		return "", c.dialError(err)
	}
	defer conn.Close()

	// The context can end while HAProxy is still writing, so its end moves
	// the deadline into the past to interrupt the read.
	_ = conn.SetDeadline(time.Now().Add(c.timeout))
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	response, err := exchange(conn, cmd)
	switch {
	case err != nil && ctx.Err() != nil:
		return "", fmt.Errorf("sending %q to HAProxy admin socket %s: %w", cmd, c.socket, ctx.Err())
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "", fmt.Errorf("sending %q to HAProxy admin socket %s: no complete response within %s; "+
			"check that HAProxy is not overloaded and that the path is its `stats socket`: %w",
			cmd, c.socket, c.timeout, err)
	case err != nil:
		return "", fmt.Errorf("sending %q to HAProxy admin socket %s: %w", cmd, c.socket, err)
	}
	if sentinel := classifyResponse(response); sentinel != nil {
		return "", fmt.Errorf("sending %q to HAProxy admin socket %s: %w (HAProxy returned %q)",
			cmd, c.socket, sentinel, firstLine(response))
	}
	return response, nil
}

// exchange writes one command line and reads until HAProxy closes the
// connection, which it does after responding when the client has not entered
// interactive mode with `prompt`.
func exchange(conn net.Conn, cmd string) (string, error) {
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", err
	}
	data, err := io.ReadAll(io.LimitReader(conn, maxResponseSize+1))
	if err != nil {
		return "", err
	}
	if len(data) > maxResponseSize {
		return "", fmt.Errorf("response longer than %d bytes", maxResponseSize)
	}
	return string(data), nil
}

func validateCommand(cmd string) error {
	if strings.TrimSpace(cmd) == "" {
		return errors.New("invalid HAProxy command: empty")
	}
	if strings.ContainsAny(cmd, ";\r\n") {
		return fmt.Errorf("invalid HAProxy command %q: it must be a single command without `;` or line breaks", cmd)
	}
	return nil
}

// classifyResponse returns the sentinel for the CLI error messages that HAProxy
// 2.6.12 sends, or nil. Only the first line is
// compared, because data responses such as `show stat` carry text from health
// check responses that could contain the same words.
func classifyResponse(response string) error {
	line := firstLine(response)
	switch {
	case line == "Permission denied":
		return ErrLevelTooLow
	case line == "No such backend." || line == "Can't find backend." || line == "No such proxy.":
		return ErrNoSuchBackend
	case line == "No such server.":
		return ErrNoSuchServer
	case strings.HasPrefix(line, "Unknown command"):
		return ErrUnknownCommand
	}
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

// dialError turns a failed connect into an error that names the fix.
func (c *Client) dialError(err error) error {
	s := c.socket
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENOTDIR):
		return &socketError{sentinel: ErrSocketMissing, cause: err, msg: fmt.Sprintf(
			"HAProxy admin socket %s not found: is HAProxy running with `stats socket %s level admin`?", s, s)}
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return &socketError{sentinel: ErrSocketPermission, cause: err, msg: fmt.Sprintf(
			"permission denied connecting to HAProxy admin socket %s: add quai's user to the socket's "+
				"group or set `mode`/`group` on the stats socket line", s)}
	case errors.Is(err, syscall.ECONNREFUSED):
		return refusedError(s, err)
	}
	return fmt.Errorf("connecting to HAProxy admin socket %s: %w", s, err)
}

// refusedError explains ECONNREFUSED. Linux returns it for a socket file
// without a listener, and also for a path that is not a socket at all.
func refusedError(socket string, err error) error {
	info, statErr := os.Lstat(socket)
	if statErr == nil && info.Mode()&os.ModeSocket == 0 {
		kind := "regular file"
		if info.IsDir() {
			kind = "directory"
		}
		return &socketError{sentinel: ErrSocketRefused, cause: err, msg: fmt.Sprintf(
			"HAProxy admin socket %s is a %s, not a Unix socket: configure the path of the "+
				"`stats socket` line in haproxy.cfg", socket, kind)}
	}
	return &socketError{sentinel: ErrSocketRefused, cause: err, msg: fmt.Sprintf(
		"HAProxy admin socket %s refused the connection: the socket file is left over and "+
			"HAProxy is not running; start HAProxy", socket)}
}

// socketError is a connect failure. Its message carries the advice, and
// errors.Is matches both the sentinel and the system error.
type socketError struct {
	sentinel error
	cause    error
	msg      string
}

func (e *socketError) Error() string {
	return e.msg + " (" + e.cause.Error() + ")"
}

func (e *socketError) Unwrap() []error {
	return []error{e.sentinel, e.cause}
}
