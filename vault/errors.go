package vault

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/hashicorp/vault/api"
)

var (
	// ErrUnreachable is wrapped by errors of calls that got no HTTP response
	// from Vault: connection refused, DNS failure or request timeout.
	ErrUnreachable = errors.New("vault unreachable")

	// ErrRoleNotFound is wrapped by errors of calls on an AppRole role that
	// does not exist, or when AppRole auth is not enabled at auth/approle.
	ErrRoleNotFound = errors.New("approle role not found")

	// ErrPermissionDenied is wrapped by errors of calls that Vault rejected
	// with 403 because quai's token lacks a capability or is no longer valid.
	ErrPermissionDenied = errors.New("vault permission denied")

	// ErrLogin is wrapped by errors of quai's own AppRole login.
	ErrLogin = errors.New("vault approle login failed")
)

// explain wraps the error of one Vault request in an error that states what
// went wrong in plain words and what to check. need names the capabilities
// the request requires, for the permission-denied case.
func (c *Client) explain(err error, need string) error {
	var resp *api.ResponseError
	if errors.As(err, &resp) {
		return c.explainResponse(resp, need)
	}

	var netErr *net.OpError
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: no response from %s before the deadline (request timeout %s; "+
			"is Vault running, and is VAULT_ADDR right?): %w", ErrUnreachable, c.addr, c.timeout, err)
	case errors.As(err, &netErr):
		// The retry client's message repeats the URL and the attempt count,
		// so only the network error is kept.
		return fmt.Errorf("%w at %s: %w (is Vault running, and is VAULT_ADDR right?)",
			ErrUnreachable, c.addr, netErr)
	}
	return fmt.Errorf("%w at %s: %w (is Vault running, and is VAULT_ADDR right?)",
		ErrUnreachable, c.addr, err)
}

func (c *Client) explainResponse(resp *api.ResponseError, need string) error {
	detail := vaultMessage(resp)
	if resp.StatusCode == http.StatusForbidden {
		token := "quai's AppRole token"
		if !c.appRole {
			token = "VAULT_TOKEN"
		}
		// Vault adds "invalid token" when the token itself is unknown,
		// expired or revoked, rather than lacking a capability.
		if slices.Contains(messages(resp), "invalid token") {
			return fmt.Errorf("%w (%s): %s is invalid, expired or revoked",
				ErrPermissionDenied, detail, token)
		}
		return fmt.Errorf("%w (%s): the policy of %s needs %s",
			ErrPermissionDenied, detail, token, need)
	}
	return fmt.Errorf("unexpected status %d from Vault at %s: %s", resp.StatusCode, c.addr, detail)
}

// vaultMessage returns Vault's error messages on one line. The AppRole and
// token errors of Vault 1.19 name paths, roles and accessors, not tokens or
// secret ids.
func vaultMessage(resp *api.ResponseError) string {
	parts := messages(resp)
	if len(parts) == 0 {
		return http.StatusText(resp.StatusCode)
	}
	return strings.Join(parts, "; ")
}

// messages returns Vault's error messages one by one. Vault formats some
// errors as a multi-line "N errors occurred:" list, which is split up.
func messages(resp *api.ResponseError) []string {
	var parts []string
	for _, e := range resp.Errors {
		for _, line := range strings.Split(e, "\n") {
			line = strings.TrimPrefix(strings.TrimSpace(line), "* ")
			if line == "" || strings.HasSuffix(line, " occurred:") {
				continue
			}
			parts = append(parts, line)
		}
	}
	return parts
}

func isPermissionDenied(err error) bool {
	var resp *api.ResponseError
	return errors.As(err, &resp) && resp.StatusCode == http.StatusForbidden
}
