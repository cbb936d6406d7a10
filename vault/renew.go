package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/hashicorp/vault/api"
)

// Delays between attempts when Vault does not respond to KeepAlive's requests.
const (
	minRetryDelay = time.Second
	maxRetryDelay = 30 * time.Second
)

// tokenLease is the state of the token that KeepAlive keeps valid.
type tokenLease struct {
	token string
	// logins is the login count the token came from, so that KeepAlive
	// notices when a call has logged in again meanwhile.
	logins    uint64
	renewable bool
	// increment is the TTL the token was created with, requested on each
	// renewal. A renewal that returns less has reached the max TTL.
	increment time.Duration
	expires   time.Time
	// renewAt is when KeepAlive next renews the token or logs in again.
	renewAt time.Time
}

// KeepAlive keeps quai's own Vault token valid until ctx ends, then returns.
// It renews a renewable token through auth/token/renew-self when about two
// thirds of its TTL have passed. An AppRole client logs in again instead
// when a renewal returns less than the token's creation TTL or Vault refuses
// to renew (the token is near its max TTL, expired or revoked), and when the
// token is not renewable. The old token is still valid at that point, so
// calls in progress keep working. The re-login on 403 that every call does
// stays as a fallback.
//
// With a token from Config.Token, KeepAlive renews it while it is renewable.
// It returns when the token does not expire, is not renewable, is invalid,
// or reaches its max TTL. In the last three cases it logs a warning or an
// error, because quai cannot obtain another token. KeepAlive also returns,
// logging an error, when the token's policy denies auth/token/lookup-self or
// auth/token/renew-self, which Vault's default policy grants. While Vault
// does not answer, it retries with a delay that doubles up to 30s.
//
// Run KeepAlive in one goroutine per Client while the Client is in use. Other
// calls on the Client may run concurrently with it.
func (c *Client) KeepAlive(ctx context.Context) {
	// KeepAlive's own client sends requests with a given token, so that a
	// login by a concurrent call cannot change which token a response is for.
	tokens, err := c.loginAPI.Clone()
	if err != nil {
		c.logger.Error("vault token renewal not started", "error", err)
		return
	}
	k := keeper{c: c, api: tokens, retry: minRetryDelay}
	k.run(ctx)
}

// keeper is the state of one KeepAlive call.
type keeper struct {
	c     *Client
	api   *api.Client
	retry time.Duration
	// reloggedIn is set after a lookup found the token invalid and logged
	// in again, so that a new token that Vault also rejects gets a delay
	// before the next login instead of a tight loop.
	reloggedIn bool
}

func (k *keeper) run(ctx context.Context) {
	var lease tokenLease
	known := false
	for ctx.Err() == nil {
		if !known {
			next, ok := k.lookup(ctx)
			if !ok {
				return
			}
			if next.token == "" {
				continue
			}
			lease, known = next, true
		}

		if !sleepUntil(ctx, lease.renewAt) {
			return
		}
		if logins, err := k.c.loginCount(ctx); err != nil || logins != lease.logins {
			// A call logged in again after Vault rejected the token.
			known = false
			continue
		}

		next, ok := k.renew(ctx, lease)
		if !ok {
			return
		}
		lease = next
		known = next.token != ""
	}
}

// lookup returns the current token's lease, logging in first when no call
// has yet. A lease without a token means "try again". ok is false when
// KeepAlive has nothing more to do.
func (k *keeper) lookup(ctx context.Context) (lease tokenLease, ok bool) {
	token, logins, err := k.c.currentToken(ctx)
	if err != nil {
		return tokenLease{}, k.backOff(ctx, "logging in to vault failed", err)
	}

	start := time.Now()
	k.api.SetToken(token)
	resp, err := k.api.Auth().Token().LookupSelfWithContext(ctx)
	switch {
	case isInvalidToken(err) && k.c.appRole && !k.reloggedIn:
		// The token expired, for example while the machine was suspended.
		k.reloggedIn = true
		return tokenLease{}, k.relogin(ctx, logins)
	case isPermissionDenied(err) && !isInvalidToken(err):
		k.c.logger.Error("vault token renewal stopped: the token may not look itself up",
			"error", k.c.explain(err, `"read" on auth/token/lookup-self`))
		return tokenLease{}, false
	case isPermissionDenied(err) && !k.c.appRole:
		k.c.logger.Error("vault token renewal stopped: VAULT_TOKEN is invalid, expired or revoked",
			"error", k.c.explain(err, `"read" on auth/token/lookup-self`))
		return tokenLease{}, false
	case err != nil:
		// This includes a token that Vault rejected right after a fresh
		// login, which the next lookup logs in again for.
		ok := k.backOff(ctx, "looking up vault token failed",
			k.c.explain(err, `"read" on auth/token/lookup-self`))
		k.reloggedIn = false
		return tokenLease{}, ok
	}
	k.retry = minRetryDelay
	k.reloggedIn = false

	lease, err = parseLease(resp, start)
	if err != nil {
		return tokenLease{}, k.backOff(ctx, "looking up vault token failed", err)
	}
	lease.token, lease.logins = token, logins
	if lease.expires.IsZero() {
		k.c.logger.Debug("vault token does not expire, so it needs no renewal")
		return tokenLease{}, false
	}
	if !lease.renewable && !k.c.appRole {
		k.c.logger.Warn("VAULT_TOKEN is not renewable, so vault calls fail after it expires",
			"expire_time", lease.expires.UTC())
		return tokenLease{}, false
	}
	return lease, true
}

// renew renews the token, or logs in again when it cannot be renewed any
// further. It returns the next lease, or one without a token when the next
// step is a lookup.
func (k *keeper) renew(ctx context.Context, lease tokenLease) (next tokenLease, ok bool) {
	if !lease.renewable {
		k.c.logger.Debug("vault token is not renewable, logging in again")
		return tokenLease{}, k.relogin(ctx, lease.logins)
	}

	start := time.Now()
	resp, err := k.api.Auth().Token().RenewTokenAsSelfWithContext(ctx, lease.token,
		int(lease.increment/time.Second))
	if err != nil {
		explained := k.c.explain(err, `"update" on auth/token/renew-self`)
		switch {
		case isPermissionDenied(err) && !isInvalidToken(err):
			k.c.logger.Error("vault token renewal stopped: the token may not renew itself",
				"error", explained)
			return tokenLease{}, false
		case isTransient(err):
			return k.retryRenewal(ctx, lease, explained)
		}
		// Vault 1.19 returns 500 "past the max TTL, cannot renew" when less
		// than a second is left before the max TTL.
		return tokenLease{}, k.cannotRenew(ctx, lease, explained)
	}
	ttl, err := resp.TokenTTL()
	if err != nil || ttl <= 0 {
		return k.retryRenewal(ctx, lease, fmt.Errorf("the renewal response of %s has no valid TTL", k.c.addr))
	}
	k.retry = minRetryDelay

	next = lease
	next.expires = start.Add(ttl)
	next.renewAt = start.Add(ttl * 2 / 3)
	if ttl < lease.increment {
		return tokenLease{}, k.cannotRenew(ctx, next, fmt.Errorf("renewal returned a TTL of %s "+
			"instead of %s because the token is near its max TTL", ttl, lease.increment))
	}
	k.c.logger.Debug("renewed vault token", "token_ttl", ttl)
	return next, true
}

// cannotRenew handles a token that renewals cannot extend any more: an
// AppRole client logs in again, and with a static token KeepAlive stops.
func (k *keeper) cannotRenew(ctx context.Context, lease tokenLease, cause error) bool {
	if k.c.appRole {
		k.c.logger.Debug("vault token cannot be renewed further, logging in again",
			"expire_time", lease.expires.UTC(), "error", cause)
		return k.relogin(ctx, lease.logins)
	}
	k.c.logger.Error("VAULT_TOKEN cannot be renewed further, so vault calls fail after it "+
		"expires: give quai a new token or use an AppRole login",
		"expire_time", lease.expires.UTC(), "error", cause)
	return false
}

// retryRenewal schedules another renewal of a token that Vault did not
// renew because it did not respond, while the token is still valid.
func (k *keeper) retryRenewal(ctx context.Context, lease tokenLease, err error) (tokenLease, bool) {
	left := time.Until(lease.expires)
	if left <= 0 {
		// The token has expired, so the next lookup logs in again once
		// Vault responds.
		return tokenLease{}, k.backOff(ctx, "renewing vault token failed", err)
	}
	delay := min(k.retry, left/2)
	k.retry = min(2*k.retry, maxRetryDelay)
	k.c.logger.Warn("renewing vault token failed, retrying", "error", err, "retry_in", delay)
	lease.renewAt = time.Now().Add(delay)
	return lease, true
}

// relogin logs in again through AppRole unless a call already did so after
// login count seen. It returns false only when ctx has ended.
func (k *keeper) relogin(ctx context.Context, seen uint64) bool {
	if err := k.c.relogin(ctx, seen); err != nil {
		return k.backOff(ctx, "logging in to vault again failed", err)
	}
	k.retry = minRetryDelay
	return ctx.Err() == nil
}

// backOff logs err and waits the retry delay, which doubles on each call
// up to maxRetryDelay. It returns false when ctx ends first.
func (k *keeper) backOff(ctx context.Context, msg string, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	k.c.logger.Warn(msg+", retrying", "error", err, "retry_in", k.retry)
	ok := sleepUntil(ctx, time.Now().Add(k.retry))
	k.retry = min(2*k.retry, maxRetryDelay)
	return ok
}

// currentToken returns the token calls use and the login count it came
// from, logging in through AppRole first when no call has yet.
func (c *Client) currentToken(ctx context.Context) (string, uint64, error) {
	if err := c.acquireLogin(ctx); err != nil {
		return "", 0, err
	}
	defer c.releaseLogin()

	if c.appRole && !c.loggedIn {
		if err := c.login(ctx); err != nil {
			return "", 0, err
		}
	}
	return c.api.Token(), c.logins, nil
}

func (c *Client) loginCount(ctx context.Context) (uint64, error) {
	if err := c.acquireLogin(ctx); err != nil {
		return 0, err
	}
	defer c.releaseLogin()
	return c.logins, nil
}

// parseLease reads a lookup-self response received for a request sent at
// start. Vault 1.19 reports ttl and creation_ttl in whole seconds, and a
// ttl of 0 for a token that does not expire, such as a root token.
func parseLease(resp *api.Secret, start time.Time) (tokenLease, error) {
	if resp == nil || resp.Data == nil {
		return tokenLease{}, errors.New("the token lookup response is empty")
	}
	ttl, err := resp.TokenTTL()
	if err != nil {
		return tokenLease{}, fmt.Errorf("reading the token's TTL: %w", err)
	}
	renewable, err := resp.TokenIsRenewable()
	if err != nil {
		return tokenLease{}, fmt.Errorf("reading whether the token is renewable: %w", err)
	}
	lease := tokenLease{renewable: renewable, increment: ttl}
	if n, ok := resp.Data["creation_ttl"].(json.Number); ok {
		if seconds, err := n.Int64(); err == nil && seconds > 0 {
			lease.increment = time.Duration(seconds) * time.Second
		}
	}
	if ttl > 0 {
		lease.expires = start.Add(ttl)
		lease.renewAt = start.Add(ttl * 2 / 3)
	}
	return lease, nil
}

// sleepUntil waits until t and reports whether ctx was still live then.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// isTransient reports whether a request failed without an answer from
// Vault, or with one that retryPolicy also retries.
func isTransient(err error) bool {
	var resp *api.ResponseError
	if !errors.As(err, &resp) {
		return true
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// isInvalidToken reports whether Vault rejected a request because the token
// itself is unknown, expired or revoked.
func isInvalidToken(err error) bool {
	var resp *api.ResponseError
	return errors.As(err, &resp) && slices.Contains(messages(resp), "invalid token")
}
