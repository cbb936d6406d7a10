package haproxy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// SetAddr points backend/server at ip and port with `set server
// <backend>/<server> addr <ip> port <port>`. It takes an IP address because
// HAProxy 2.6 rejects host names there ("Invalid addr"). The change lasts
// until HAProxy restarts or reloads, unless WriteStateFile saves it first.
//
// SetAddr accepts HAProxy's responses "IP changed from ..." and "no need to
// change the addr ..."; any other response returns an error wrapping
// ErrUnexpectedResponse that contains it. Unknown names return errors wrapping
// ErrNoSuchBackend or ErrNoSuchServer.
func (c *Client) SetAddr(ctx context.Context, backend, server string, ip netip.Addr, port int) error {
	if err := validateServer(backend, server); err != nil {
		return err
	}
	if !ip.IsValid() {
		return fmt.Errorf("setting the address of %s/%s: the IP address is unset", backend, server)
	}
	if ip.Zone() != "" {
		return fmt.Errorf("setting the address of %s/%s: IPv6 zone in %s is not supported", backend, server, ip)
	}
	// HAProxy 2.6 takes a port above 65535 modulo 65536 without complaint.
	if port < 1 || port > 65535 {
		return fmt.Errorf("setting the address of %s/%s: invalid port %d, expected 1 to 65535",
			backend, server, port)
	}

	cmd := fmt.Sprintf("set server %s/%s addr %s port %d", backend, server, ip, port)
	response, err := c.Command(ctx, cmd)
	if err != nil {
		return err
	}
	line := firstLine(response)
	if !strings.HasPrefix(line, "IP changed from ") && !strings.HasPrefix(line, "no need to change the addr") {
		return fmt.Errorf("sending %q to HAProxy admin socket %s: %w: %q", cmd, c.socket, ErrUnexpectedResponse,
			strings.TrimSpace(response))
	}
	return nil
}

// SetState sets the administrative state of backend/server with `set server
// <backend>/<server> state <state>`. HAProxy returns an empty line on
// success, and any other response returns an error wrapping ErrUnexpectedResponse
// that contains it.
//
// Leaving AdminMaint, HAProxy 2.6.12 counts the server as up before any new
// check finishes: its operational state is running, `show stat` shows "UP
// 1/<fall>" or "DRAIN 1/<fall>", and the check status from before the
// maintenance stays until the first new check finishes, which can take up to
// one check interval. So AdminReady straight from AdminMaint sends traffic to
// an unchecked server. Setting AdminDrain first and waiting until the status
// loses its "1/<fall>" suffix with a passing check avoids that. With `fall 1`
// there is no suffix, and a stale check status cannot be told apart.
func (c *Client) SetState(ctx context.Context, backend, server string, state AdminState) error {
	if err := validateServer(backend, server); err != nil {
		return err
	}
	if !state.Valid() {
		return fmt.Errorf("setting the state of %s/%s: invalid state %q, expected %q, %q or %q",
			backend, server, state, AdminReady, AdminDrain, AdminMaint)
	}

	cmd := fmt.Sprintf("set server %s/%s state %s", backend, server, state)
	response, err := c.Command(ctx, cmd)
	if err != nil {
		return err
	}
	if strings.TrimSpace(response) != "" {
		return fmt.Errorf("sending %q to HAProxy admin socket %s: %w: %q", cmd, c.socket, ErrUnexpectedResponse,
			strings.TrimSpace(response))
	}
	return nil
}

// WorkerPID returns the Pid line of `show info`: the ID of the process that
// serves the socket. A reload starts a new process, so the value changes.
func (c *Client) WorkerPID(ctx context.Context) (int, error) {
	response, err := c.Command(ctx, "show info")
	if err != nil {
		return 0, err
	}
	pid, err := parseInfoPID(response)
	if err != nil {
		return 0, fmt.Errorf("reading `show info` from HAProxy admin socket %s: %w", c.socket, err)
	}
	return pid, nil
}

func parseInfoPID(text string) (int, error) {
	for line := range strings.Lines(text) {
		value, ok := strings.CutPrefix(line, "Pid:")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil || pid <= 0 {
			return 0, fmt.Errorf("invalid Pid line %q", strings.TrimSpace(line))
		}
		return pid, nil
	}
	return 0, errors.New("no Pid line")
}

// CheckBackend verifies that HAProxy's running configuration has backend
// with each of servers, and that each of them has `check`, which a rollout
// needs to learn when a new container is healthy. It returns one sentence
// per problem, or none when all is fine. The error is for failures to ask
// HAProxy, not for problems found.
func (c *Client) CheckBackend(ctx context.Context, backend string, servers []string) ([]string, error) {
	states, err := c.ServersState(ctx, backend)
	if errors.Is(err, ErrNoSuchBackend) {
		return []string{fmt.Sprintf("backend %q not found in HAProxy's running configuration: "+
			"add a `backend %s` section to haproxy.cfg and reload HAProxy", backend, backend)}, nil
	}
	if err != nil {
		return nil, err
	}

	byName := make(map[string]ServerState, len(states))
	for _, st := range states {
		byName[st.Server] = st
	}
	// A slot leaving maintenance shows "DRAIN 1/<fall>" until a fresh check
	// passes; with fall 1 it shows a plain "DRAIN" at once, and a rollout
	// could not tell a stale check result from a new one.
	fall := map[string]int{}
	if stats, err := c.Stats(ctx, backend); err == nil {
		for _, s := range stats {
			fall[s.Server] = s.CheckFall
		}
	}
	var findings []string
	for _, name := range servers {
		if f, ok := fall[name]; ok && f == 1 {
			findings = append(findings, fmt.Sprintf("server %s/%s has `fall 1`: use `fall 2` or more, so a "+
				"rollout can tell a fresh health check from the one before maintenance", backend, name))
		}
		st, ok := byName[name]
		switch {
		case validateName("server", name) != nil:
			findings = append(findings, validateName("server", name).Error())
		case !ok:
			findings = append(findings, fmt.Sprintf("server %s/%s not found: add `server %s <ip>:<port> check` "+
				"to backend %s in haproxy.cfg and reload HAProxy", backend, name, name, backend))
		case !st.HasCheck:
			findings = append(findings, fmt.Sprintf("server %s/%s has no health check: add `check` to its "+
				"server line in haproxy.cfg and reload HAProxy", backend, name))
		}
	}
	return findings, nil
}

func validateServer(backend, server string) error {
	if err := validateName("backend", backend); err != nil {
		return err
	}
	return validateName("server", server)
}

// validateName accepts the characters HAProxy 2.6 allows in proxy names:
// letters, digits, '-', '_', '.' and ':'. Anything else could not name a
// backend and might split the command.
func validateName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("invalid %s name: empty", kind)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '-' || r == '_' || r == '.' || r == ':'
		if !ok {
			return fmt.Errorf("invalid %s name %q: HAProxy names contain only letters, digits, '-', '_', '.' and ':'",
				kind, name)
		}
	}
	return nil
}
