package vault_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/quai-ci/quai/internal/testenv"
	"github.com/quai-ci/quai/vault"
)

// Log messages of KeepAlive and of the client's logins.
const (
	msgRenewed       = `"msg":"renewed vault token"`
	msgLoggedIn      = `"msg":"logged in to vault with approle"`
	msgRejected      = `"msg":"vault rejected token, logging in again"`
	msgNoExpiry      = `"msg":"vault token does not expire, so it needs no renewal"`
	msgStaticMaxTTL  = `"msg":"VAULT_TOKEN cannot be renewed further`
	msgRetryLookup   = `"msg":"looking up vault token failed, retrying"`
	keepAliveTimeout = 10 * time.Second
)

func TestKeepAliveAppRole(t *testing.T) {
	v := testenv.StartVault(t)
	v.WriteKV(t, "app/db", map[string]string{"url": v2URL})
	root := v.Client(t)
	writePolicy(t, root, "quai-reader", `path "secret/data/app/*" { capabilities = ["read"] }`)
	roleID, secretID := createRole(t, root, "quai", map[string]any{
		"token_policies": "quai-reader", "token_ttl": "2s", "token_max_ttl": "4s",
	})
	var logs syncBuffer
	c, err := vault.New(vault.Config{
		Address:  v.Addr,
		RoleID:   roleID,
		SecretID: vault.Secret(secretID),
		Logger:   slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	stop := startKeepAlive(t, c)

	// Reads span two and a half max TTLs, so quai's token is renewed and
	// replaced by new logins along the way.
	ctx := context.Background()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	end := time.Now().Add(10 * time.Second)
	reads := 0
	for time.Now().Before(end) {
		got, err := c.ReadSecret(ctx, "secret", "app/db", "url")
		if err != nil {
			t.Errorf("ReadSecret after %d reads: %v", reads, err)
		} else if got.Reveal() != v2URL {
			t.Errorf("ReadSecret = %q, want %q", got.Reveal(), v2URL)
		}
		reads++
		<-tick.C
	}
	stop()

	out := logs.String()
	if got := strings.Count(out, msgRenewed); got < 2 {
		t.Errorf("KeepAlive renewed the token %d times, want at least 2; log:\n%s", got, out)
	}
	if got := strings.Count(out, msgLoggedIn); got < 2 {
		t.Errorf("quai logged in %d times, want at least 2 (first use and at max TTL); log:\n%s",
			got, out)
	}
	// Every call found a valid token, so none needed the re-login on 403.
	if got := strings.Count(out, msgRejected); got != 0 {
		t.Errorf("Vault rejected quai's token %d times, want 0; log:\n%s", got, out)
	}
	if strings.Contains(out, secretID) {
		t.Errorf("log contains quai's secret id")
	}
}

func TestKeepAliveStaticRootToken(t *testing.T) {
	v := testenv.StartVault(t)
	var logs syncBuffer
	c := newLoggedTokenClient(t, v.Addr, v.RootToken, &logs)

	// A root token never expires, so KeepAlive returns by itself.
	done := make(chan struct{})
	go func() {
		c.KeepAlive(context.Background())
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(keepAliveTimeout):
		t.Fatalf("KeepAlive with a root token did not return within %s", keepAliveTimeout)
	}
	if !strings.Contains(logs.String(), msgNoExpiry) {
		t.Errorf("log lacks %s:\n%s", msgNoExpiry, logs.String())
	}
}

func TestKeepAliveStaticRenewableToken(t *testing.T) {
	v := testenv.StartVault(t)
	v.WriteKV(t, "app/db", map[string]string{"url": v2URL})
	root := v.Client(t)
	writePolicy(t, root, "quai-reader", `path "secret/data/app/*" { capabilities = ["read"] }`)
	resp, err := root.Auth().Token().Create(&api.TokenCreateRequest{
		Policies: []string{"quai-reader"}, TTL: "2s", ExplicitMaxTTL: "5s",
	})
	if err != nil || resp == nil || resp.Auth == nil {
		t.Fatalf("creating token: %v", err)
	}
	token := resp.Auth.ClientToken
	created := time.Now()
	var logs syncBuffer
	c := newLoggedTokenClient(t, v.Addr, token, &logs)

	done := make(chan struct{})
	go func() {
		c.KeepAlive(context.Background())
		close(done)
	}()

	// Past the token's creation TTL, only renewals keep it valid.
	waitFor(t, keepAliveTimeout, "two renewals and the token's creation TTL to pass", func() bool {
		return strings.Count(logs.String(), msgRenewed) >= 2 && time.Since(created) > 2500*time.Millisecond
	})
	if _, err := c.ReadSecret(context.Background(), "secret", "app/db", "url"); err != nil {
		t.Errorf("ReadSecret %s after the token was created with a 2s TTL: %v",
			time.Since(created).Round(time.Millisecond), err)
	}

	// Near its max TTL, renewals cannot extend the token, and quai cannot
	// obtain another one, so KeepAlive reports it and returns.
	select {
	case <-done:
	case <-time.After(keepAliveTimeout):
		t.Fatalf("KeepAlive did not return within %s after the token's max TTL", keepAliveTimeout)
	}
	out := logs.String()
	if !strings.Contains(out, msgRenewed) {
		t.Errorf("log lacks %s:\n%s", msgRenewed, out)
	}
	if !strings.Contains(out, msgStaticMaxTTL) || !strings.Contains(out, `"level":"ERROR"`) {
		t.Errorf("log lacks an error %s:\n%s", msgStaticMaxTTL, out)
	}
	if strings.Contains(out, token) {
		t.Errorf("log contains the token")
	}
}

func TestKeepAliveVaultDown(t *testing.T) {
	var logs syncBuffer
	c := newLoggedTokenClient(t, closedPortAddr(t), "some-token", &logs)
	stop := startKeepAlive(t, c)

	// KeepAlive retries until its context ends.
	waitFor(t, keepAliveTimeout, "a failed token lookup in the log", func() bool {
		return strings.Contains(logs.String(), msgRetryLookup)
	})
	stop()
	if !strings.Contains(logs.String(), "vault unreachable") {
		t.Errorf("log does not say Vault is unreachable:\n%s", logs.String())
	}
}

// startKeepAlive runs c.KeepAlive in a goroutine and returns a function
// that stops it and waits for it to return.
func startKeepAlive(t *testing.T, c *vault.Client) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.KeepAlive(ctx)
		close(done)
	}()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(keepAliveTimeout):
			t.Fatalf("KeepAlive did not return within %s of its context ending", keepAliveTimeout)
		}
	}
	t.Cleanup(cancel)
	return stop
}

// createRole creates AppRole role name with the given settings and returns
// its role id and a new secret id.
func createRole(t *testing.T, root *api.Client, name string, settings map[string]any) (roleID, secretID string) {
	t.Helper()
	writeVault(t, root, "auth/approle/role/"+name, settings)
	resp, err := root.Logical().Read("auth/approle/role/" + name + "/role-id")
	if err != nil || resp == nil {
		t.Fatalf("reading role id of %s: %v", name, err)
	}
	roleID, _ = resp.Data["role_id"].(string)
	resp, err = root.Logical().Write("auth/approle/role/"+name+"/secret-id", nil)
	if err != nil || resp == nil {
		t.Fatalf("creating secret id of %s: %v", name, err)
	}
	secretID, _ = resp.Data["secret_id"].(string)
	if roleID == "" || secretID == "" {
		t.Fatalf("role %s: empty role id or secret id in Vault's responses", name)
	}
	return roleID, secretID
}

func newLoggedTokenClient(t *testing.T, addr, token string, logs *syncBuffer) *vault.Client {
	t.Helper()
	c, err := vault.New(vault.Config{
		Address: addr,
		Token:   vault.Secret(token),
		Logger:  slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}
