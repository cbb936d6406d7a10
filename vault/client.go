// Package vault issues AppRole credentials for app containers through
// HashiCorp Vault, logged in either with a token or with quai's own AppRole.
package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/hashicorp/vault/api"
)

// Client is quai's own Vault session. It is safe for concurrent use.
type Client struct {
	api *api.Client
	// loginAPI never carries a token, because Vault may reject a login
	// request that presents an expired one.
	loginAPI *api.Client
	addr     string
	timeout  time.Duration
	appRole  bool
	roleID   string
	secretID Secret
	logger   *slog.Logger

	// loginSlot is a one-slot semaphore held while logging in, so that a
	// waiting caller can give up when its context ends.
	loginSlot chan struct{}
	loggedIn  bool
	// logins counts successful logins. A caller whose token was rejected
	// logs in again only if no other caller has done so since it read the count.
	logins uint64

	// kvMounts caches the KV version of each mount ReadSecret has read.
	kvMounts kvMounts
}

// New creates the client without contacting Vault, so quai can start while
// Vault is down and calls fail later with errors that report it. With Token set,
// every call uses that token. With RoleID and SecretID set instead, the first
// call logs in through auth/approle/login, and a call that Vault rejects with
// 403 (an expired token) logs in again once and is retried once. New returns
// an error when cfg is invalid or has no credentials.
func New(cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Token == "" && cfg.RoleID == "" {
		return nil, errNoCredentials
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}

	apiCfg := api.DefaultConfig()
	if apiCfg.Error != nil {
		return nil, fmt.Errorf("configuring Vault client from VAULT_* variables: %w", apiCfg.Error)
	}
	apiCfg.Address = cfg.Address
	apiCfg.Timeout = cfg.Timeout
	apiCfg.CheckRetry = retryPolicy

	client, err := api.NewClient(apiCfg)
	if err != nil {
		return nil, fmt.Errorf("creating Vault client for %s: %w", cfg.Address, err)
	}
	// api.NewClient picks up VAULT_TOKEN from the process environment,
	// which must not override the credentials in cfg.
	client.ClearToken()
	loginAPI, err := client.Clone()
	if err != nil {
		return nil, fmt.Errorf("creating Vault login client for %s: %w", cfg.Address, err)
	}
	loginAPI.ClearToken()
	client.SetToken(cfg.Token.Reveal())

	return &Client{
		api:       client,
		loginAPI:  loginAPI,
		addr:      cfg.Address,
		timeout:   cfg.Timeout,
		appRole:   cfg.Token == "",
		roleID:    cfg.RoleID,
		secretID:  cfg.SecretID,
		logger:    logger,
		loginSlot: make(chan struct{}, 1),
	}, nil
}

// Address returns the Vault base URL the client sends requests to.
func (c *Client) Address() string { return c.addr }

// read sends a GET to path and explains a failure using need.
func (c *Client) read(ctx context.Context, path, need string) (*api.Secret, error) {
	return c.do(ctx, need, func(ctx context.Context) (*api.Secret, error) {
		return c.api.Logical().ReadWithContext(ctx, path)
	})
}

// write sends a PUT with data to path and explains a failure using need.
func (c *Client) write(ctx context.Context, path string, data map[string]any,
	need string) (*api.Secret, error) {
	return c.do(ctx, need, func(ctx context.Context) (*api.Secret, error) {
		return c.api.Logical().WriteWithContext(ctx, path, data)
	})
}

// do runs send with a valid token, logging in first if needed and once more
// if Vault rejects the token.
func (c *Client) do(ctx context.Context, need string,
	send func(context.Context) (*api.Secret, error)) (*api.Secret, error) {
	seen, err := c.ensureLogin(ctx)
	if err != nil {
		return nil, err
	}
	secret, err := send(ctx)
	if err == nil {
		return secret, nil
	}
	if !c.appRole || !isPermissionDenied(err) {
		return nil, c.explain(err, need)
	}

	// An AppRole token past its TTL gets the same 403 as a missing
	// capability, so one fresh login distinguishes the two.
	c.logger.Debug("vault rejected token, logging in again", "error", err)
	if err := c.relogin(ctx, seen); err != nil {
		return nil, err
	}
	secret, err = send(ctx)
	if err != nil {
		return nil, c.explain(err, need)
	}
	return secret, nil
}

// ensureLogin logs in through AppRole unless a login already succeeded, and
// returns the login count that the caller's request will run under.
func (c *Client) ensureLogin(ctx context.Context) (uint64, error) {
	if !c.appRole {
		return 0, nil
	}
	if err := c.acquireLogin(ctx); err != nil {
		return 0, err
	}
	defer c.releaseLogin()

	if !c.loggedIn {
		if err := c.login(ctx); err != nil {
			return 0, err
		}
	}
	return c.logins, nil
}

// relogin logs in again unless another caller already did so after seen.
func (c *Client) relogin(ctx context.Context, seen uint64) error {
	if err := c.acquireLogin(ctx); err != nil {
		return err
	}
	defer c.releaseLogin()

	if c.logins != seen {
		return nil
	}
	return c.login(ctx)
}

func (c *Client) acquireLogin(ctx context.Context) error {
	select {
	case c.loginSlot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for Vault login: %w", ctx.Err())
	}
}

func (c *Client) releaseLogin() { <-c.loginSlot }

// login must run while holding loginSlot.
func (c *Client) login(ctx context.Context) error {
	resp, err := c.loginAPI.Logical().WriteWithContext(ctx, "auth/approle/login",
		map[string]any{"role_id": c.roleID, "secret_id": c.secretID.Reveal()})
	if err != nil {
		var respErr *api.ResponseError
		if errors.As(err, &respErr) {
			return fmt.Errorf("%w at %s (%s): check QUAI_APPROLE_ID and "+
				"QUAI_APPROLE_SECRET_ID, and that quai's secret id has not expired",
				ErrLogin, c.addr, vaultMessage(respErr))
		}
		return fmt.Errorf("logging in to Vault: %w", c.explain(err, ""))
	}
	if resp == nil || resp.Auth == nil || resp.Auth.ClientToken == "" {
		return fmt.Errorf("%w at %s: the response has no client token", ErrLogin, c.addr)
	}

	c.api.SetToken(resp.Auth.ClientToken)
	c.loggedIn = true
	c.logins++
	c.logger.Debug("logged in to vault with approle",
		"token_ttl", time.Duration(resp.Auth.LeaseDuration)*time.Second)
	return nil
}

// retryPolicy retries requests that got no response and responses that
// report Vault as briefly unavailable. Other 5xx responses from Vault are handler
// errors, such as an unknown secret id accessor, that a retry cannot fix.
func retryPolicy(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		return api.DefaultRetryPolicy(ctx, resp, err)
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true, nil
	}
	return false, nil
}
