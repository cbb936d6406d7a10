package vault_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/quai-ci/quai/internal/testenv"
	"github.com/quai-ci/quai/vault"
)

const plain = "s.hunter2-do-not-print"

func TestSecretNeverPrinted(t *testing.T) {
	s := vault.Secret(plain)
	cfg := vault.Config{Address: "http://127.0.0.1:8200", Token: s, SecretID: s}
	creds := vault.Credentials{RoleID: "role", SecretID: s, Accessor: "acc"}

	logJSON := func(args ...any) string {
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("msg", args...)
		return buf.String()
	}
	logText := func(args ...any) string {
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).Info("msg", args...)
		return buf.String()
	}
	marshal := func(v any) string {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		return string(data)
	}

	tests := []struct {
		name string
		out  string
	}{
		{"fmt %v", fmt.Sprintf("%v", s)},
		{"fmt %s", fmt.Sprintf("%s", s)},
		{"fmt %#v", fmt.Sprintf("%#v", s)},
		{"fmt %q", fmt.Sprintf("%q", s)},
		{"fmt %x", fmt.Sprintf("%x", s)},
		{"fmt %d", fmt.Sprintf("%d", s)},
		{"fmt Println", fmt.Sprintln(s)},
		{"fmt struct %+v", fmt.Sprintf("%+v", cfg)},
		{"fmt struct %#v", fmt.Sprintf("%#v", creds)},
		{"fmt pointer %+v", fmt.Sprintf("%+v", &creds)},
		{"slog json attr", logJSON("token", s)},
		{"slog json struct", logJSON("config", cfg)},
		{"slog text attr", logText("token", s)},
		{"slog text struct", logText("credentials", creds)},
		{"json value", marshal(s)},
		{"json struct", marshal(creds)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.out, plain) {
				t.Errorf("output contains the secret: %s", tt.out)
			}
			if !strings.Contains(tt.out, "[redacted]") {
				t.Errorf("output lacks [redacted]: %s", tt.out)
			}
		})
	}

	if got := s.Reveal(); got != plain {
		t.Errorf("Reveal() = %q, want %q", got, plain)
	}
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		files   map[string]string // file name in a temporary directory -> contents
		want    vault.Config
		wantErr string
	}{{
		name: "nothing set",
		want: vault.Config{Address: "http://127.0.0.1:8200"},
	}, {
		name: "address and token",
		env:  map[string]string{"VAULT_ADDR": "https://vault.test:8200", "VAULT_TOKEN": "tok-1"},
		want: vault.Config{Address: "https://vault.test:8200", Token: "tok-1"},
	}, {
		name: "endpoint fallback",
		env:  map[string]string{"VAULT_ENDPOINT": "http://10.0.0.5:8200", "VAULT_TOKEN": "tok-1"},
		want: vault.Config{Address: "http://10.0.0.5:8200", Token: "tok-1"},
	}, {
		name: "addr wins over endpoint",
		env: map[string]string{"VAULT_ADDR": "http://a.test:8200",
			"VAULT_ENDPOINT": "http://b.test:8200", "VAULT_TOKEN": "tok-1"},
		want: vault.Config{Address: "http://a.test:8200", Token: "tok-1"},
	}, {
		name:  "token file",
		env:   map[string]string{"VAULT_TOKEN_FILE": "$DIR/token"},
		files: map[string]string{"token": "tok-from-file\n"},
		want:  vault.Config{Address: "http://127.0.0.1:8200", Token: "tok-from-file"},
	}, {
		name:    "token and token file",
		env:     map[string]string{"VAULT_TOKEN": "tok-1", "VAULT_TOKEN_FILE": "$DIR/token"},
		files:   map[string]string{"token": "tok-from-file\n"},
		wantErr: "both VAULT_TOKEN and VAULT_TOKEN_FILE are set",
	}, {
		name:    "missing token file",
		env:     map[string]string{"VAULT_TOKEN_FILE": "$DIR/absent"},
		wantErr: "VAULT_TOKEN_FILE",
	}, {
		name:    "empty token file",
		env:     map[string]string{"VAULT_TOKEN_FILE": "$DIR/token"},
		files:   map[string]string{"token": " \n"},
		wantErr: "is empty",
	}, {
		name: "approle",
		env:  map[string]string{"QUAI_APPROLE_ID": "role-1", "QUAI_APPROLE_SECRET_ID": "sec-1"},
		want: vault.Config{Address: "http://127.0.0.1:8200", RoleID: "role-1", SecretID: "sec-1"},
	}, {
		name:  "approle secret file",
		env:   map[string]string{"QUAI_APPROLE_ID": "role-1", "QUAI_APPROLE_SECRET_ID_FILE": "$DIR/sid"},
		files: map[string]string{"sid": "sec-from-file\n"},
		want: vault.Config{Address: "http://127.0.0.1:8200", RoleID: "role-1",
			SecretID: "sec-from-file"},
	}, {
		name: "approle secret and secret file",
		env: map[string]string{"QUAI_APPROLE_ID": "role-1", "QUAI_APPROLE_SECRET_ID": "sec-1",
			"QUAI_APPROLE_SECRET_ID_FILE": "$DIR/sid"},
		files:   map[string]string{"sid": "sec-from-file\n"},
		wantErr: "both QUAI_APPROLE_SECRET_ID and QUAI_APPROLE_SECRET_ID_FILE are set",
	}, {
		name: "token and approle",
		env: map[string]string{"VAULT_TOKEN": "tok-1", "QUAI_APPROLE_ID": "role-1",
			"QUAI_APPROLE_SECRET_ID": "sec-1"},
		wantErr: "set only one of them",
	}, {
		name:    "role id without secret id",
		env:     map[string]string{"QUAI_APPROLE_ID": "role-1"},
		wantErr: "QUAI_APPROLE_SECRET_ID is missing",
	}, {
		name:    "secret id without role id",
		env:     map[string]string{"QUAI_APPROLE_SECRET_ID": "sec-1"},
		wantErr: "QUAI_APPROLE_ID is missing",
	}, {
		name:    "address without scheme",
		env:     map[string]string{"VAULT_ADDR": "vault.test:8200", "VAULT_TOKEN": "tok-1"},
		wantErr: `invalid Vault address "vault.test:8200"`,
	}, {
		name:    "address with other scheme",
		env:     map[string]string{"VAULT_ADDR": "unix:///run/vault.sock", "VAULT_TOKEN": "tok-1"},
		wantErr: "invalid Vault address",
	}}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, contents := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(contents), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			getenv := func(name string) string {
				return strings.ReplaceAll(tt.env[name], "$DIR", dir)
			}

			got, err := vault.ConfigFromEnv(getenv)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ConfigFromEnv() = %+v, want error containing %q", got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				for _, secret := range []string{"tok-1", "tok-from-file", "sec-1", "sec-from-file"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q contains the secret %q", err, secret)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ConfigFromEnv() error: %v", err)
			}
			if got != tt.want {
				t.Errorf("ConfigFromEnv() = %#v, want %#v (secrets compared by Reveal: %q/%q, %q/%q)",
					got, tt.want, got.Token.Reveal(), tt.want.Token.Reveal(),
					got.SecretID.Reveal(), tt.want.SecretID.Reveal())
			}
		})
	}
}

func TestNewRejectsConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     vault.Config
		wantErr string
	}{
		{"no credentials", vault.Config{Address: "http://127.0.0.1:8200"}, "no Vault credentials"},
		{"bad address", vault.Config{Address: "127.0.0.1", Token: "t"}, "invalid Vault address"},
		{"negative timeout", vault.Config{Address: "http://127.0.0.1:8200", Token: "t",
			Timeout: -time.Second}, "must not be negative"},
		{"token and approle", vault.Config{Address: "http://127.0.0.1:8200", Token: "t",
			RoleID: "r", SecretID: "s"}, "set only one of them"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := vault.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New() error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestIssueAppRoleVaultDown(t *testing.T) {
	t.Parallel() // the client retries a refused connection for about 3s
	addr := closedPortAddr(t)
	c := newTokenClient(t, addr, plain)

	_, err := c.IssueAppRole(context.Background(), "web")
	if !errors.Is(err, vault.ErrUnreachable) {
		t.Fatalf("IssueAppRole() error = %v, want ErrUnreachable", err)
	}
	msg := err.Error()
	for _, want := range []string{`"web"`, addr, "is Vault running", "connection refused"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, plain) {
		t.Errorf("error %q contains the token", msg)
	}
}

func TestAppRoleLoginVaultDown(t *testing.T) {
	t.Parallel()
	addr := closedPortAddr(t)
	c, err := vault.New(vault.Config{Address: addr, RoleID: "role", SecretID: plain})
	if err != nil {
		t.Fatalf("New: %v", err)
	}

	err = c.DestroySecretID(context.Background(), "web", "accessor")
	if !errors.Is(err, vault.ErrUnreachable) {
		t.Fatalf("DestroySecretID() error = %v, want ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the address %s", err, addr)
	}
	if strings.Contains(err.Error(), plain) {
		t.Errorf("error %q contains the secret id", err)
	}
}

func TestIssueAppRoleLogsIn(t *testing.T) {
	v := testenv.StartVault(t)
	v.CreateAppRole(t, "web")
	c := newTokenClient(t, v.Addr, v.RootToken)

	creds, err := c.IssueAppRole(context.Background(), "web")
	if err != nil {
		t.Fatalf("IssueAppRole: %v", err)
	}
	if creds.RoleID == "" || creds.SecretID == "" || creds.Accessor == "" {
		t.Fatalf("IssueAppRole() = %+v with empty fields", creds)
	}
	if err := v.Login(creds.RoleID, creds.SecretID.Reveal()); err != nil {
		t.Errorf("login with issued credentials: %v", err)
	}
	if err := v.Login(creds.RoleID, creds.Accessor); err == nil {
		t.Errorf("login with the accessor as secret id succeeded, want it rejected")
	}
}

func TestDestroySecretID(t *testing.T) {
	v := testenv.StartVault(t)
	v.CreateAppRole(t, "web")
	c := newTokenClient(t, v.Addr, v.RootToken)
	ctx := context.Background()

	old, err := c.IssueAppRole(ctx, "web")
	if err != nil {
		t.Fatalf("first IssueAppRole: %v", err)
	}
	replacement, err := c.IssueAppRole(ctx, "web")
	if err != nil {
		t.Fatalf("second IssueAppRole: %v", err)
	}
	if old.SecretID.Reveal() == replacement.SecretID.Reveal() {
		t.Errorf("two IssueAppRole calls returned the same secret id")
	}
	if old.Accessor == replacement.Accessor {
		t.Errorf("two IssueAppRole calls returned the same accessor %s", old.Accessor)
	}
	if old.RoleID != replacement.RoleID {
		t.Errorf("role id changed between calls: %s then %s", old.RoleID, replacement.RoleID)
	}

	if err := c.DestroySecretID(ctx, "web", old.Accessor); err != nil {
		t.Fatalf("DestroySecretID: %v", err)
	}
	if err := v.Login(old.RoleID, old.SecretID.Reveal()); err == nil {
		t.Errorf("login with the destroyed secret id succeeded")
	}
	if err := v.Login(replacement.RoleID, replacement.SecretID.Reveal()); err != nil {
		t.Errorf("login with the replacement secret id: %v", err)
	}
	if err := c.DestroySecretID(ctx, "web", old.Accessor); err != nil {
		t.Errorf("second DestroySecretID of the same accessor: %v", err)
	}
}

func TestIssueAppRoleUnknownRole(t *testing.T) {
	v := testenv.StartVault(t)
	c := newTokenClient(t, v.Addr, v.RootToken)
	ctx := context.Background()

	_, err := c.IssueAppRole(ctx, "nope")
	if !errors.Is(err, vault.ErrRoleNotFound) {
		t.Fatalf("IssueAppRole() error = %v, want ErrRoleNotFound", err)
	}
	if want := "vault write auth/approle/role/nope"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}

	err = c.DestroySecretID(ctx, "nope", "some-accessor")
	if !errors.Is(err, vault.ErrRoleNotFound) {
		t.Errorf("DestroySecretID() error = %v, want ErrRoleNotFound", err)
	}
}

func TestIssueAppRoleInvalidName(t *testing.T) {
	c := newTokenClient(t, "http://127.0.0.1:8200", "t")
	for _, role := range []string{"", "web/../../sys", "-web", "web app"} {
		_, err := c.IssueAppRole(context.Background(), role)
		if err == nil || !strings.Contains(err.Error(), "invalid AppRole name") {
			t.Errorf("IssueAppRole(%q) error = %v, want invalid AppRole name", role, err)
		}
	}
}

func TestIssueAppRolePermissionDenied(t *testing.T) {
	v := testenv.StartVault(t)
	v.CreateAppRole(t, "web")
	root := v.Client(t)
	writePolicy(t, root, "role-id-only", `path "auth/approle/role/web/role-id" { capabilities = ["read"] }`)
	token, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"role-id-only"}})
	if err != nil {
		t.Fatalf("creating token: %v", err)
	}
	c := newTokenClient(t, v.Addr, token.Auth.ClientToken)

	_, err = c.IssueAppRole(context.Background(), "web")
	if !errors.Is(err, vault.ErrPermissionDenied) {
		t.Fatalf("IssueAppRole() error = %v, want ErrPermissionDenied", err)
	}
	msg := err.Error()
	for _, want := range []string{`"web"`, `"update" on auth/approle/role/web/secret-id`,
		`"read" on auth/approle/role/web/role-id`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, token.Auth.ClientToken) {
		t.Errorf("error %q contains the token", msg)
	}
}

func TestIssueAppRoleInvalidToken(t *testing.T) {
	v := testenv.StartVault(t)
	v.CreateAppRole(t, "web")
	c := newTokenClient(t, v.Addr, plain)

	_, err := c.IssueAppRole(context.Background(), "web")
	if !errors.Is(err, vault.ErrPermissionDenied) {
		t.Fatalf("IssueAppRole() error = %v, want ErrPermissionDenied", err)
	}
	if want := "VAULT_TOKEN is invalid, expired or revoked"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if strings.Contains(err.Error(), plain) {
		t.Errorf("error %q contains the token", err)
	}
}

func TestAppRoleLoginWrongSecretID(t *testing.T) {
	v := testenv.StartVault(t)
	roleID, _ := createQuaiRole(t, v, "")
	c, err := vault.New(vault.Config{Address: v.Addr, RoleID: roleID, SecretID: plain})
	if err != nil {
		t.Fatalf("New: %v", err)
	}

	_, err = c.IssueAppRole(context.Background(), "web")
	if !errors.Is(err, vault.ErrLogin) {
		t.Fatalf("IssueAppRole() error = %v, want ErrLogin", err)
	}
	if strings.Contains(err.Error(), plain) {
		t.Errorf("error %q contains the secret id", err)
	}
}

func TestAppRoleLogin(t *testing.T) {
	v := testenv.StartVault(t)
	v.CreateAppRole(t, "web")
	roleID, secretID := createQuaiRole(t, v, "")
	c, err := vault.New(vault.Config{Address: v.Addr, RoleID: roleID, SecretID: vault.Secret(secretID)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx := context.Background()

	// Concurrent first calls share one login and all succeed.
	const callers = 8
	results := make([]vault.Credentials, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { results[i], errs[i] = c.IssueAppRole(ctx, "web") })
	}
	wg.Wait()

	seen := map[string]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("IssueAppRole call %d: %v", i, err)
		}
		seen[results[i].SecretID.Reveal()] = true
	}
	if len(seen) != callers {
		t.Errorf("%d calls returned %d distinct secret ids", callers, len(seen))
	}
	if err := v.Login(results[0].RoleID, results[0].SecretID.Reveal()); err != nil {
		t.Errorf("login with credentials issued under quai's AppRole: %v", err)
	}
	if err := c.DestroySecretID(ctx, "web", results[0].Accessor); err != nil {
		t.Errorf("DestroySecretID under quai's AppRole: %v", err)
	}
	if err := v.Login(results[0].RoleID, results[0].SecretID.Reveal()); err == nil {
		t.Errorf("login with the destroyed secret id succeeded")
	}
}

func TestAppRoleReloginAfterExpiry(t *testing.T) {
	v := testenv.StartVault(t)
	v.CreateAppRole(t, "web")
	roleID, secretID := createQuaiRole(t, v, "2s")
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
	ctx := context.Background()

	if _, err := c.IssueAppRole(ctx, "web"); err != nil {
		t.Fatalf("IssueAppRole before expiry: %v", err)
	}

	// A token from a later login with the same 2s TTL expires after quai's,
	// so once Vault rejects it, quai's token has expired as well.
	probe := loginToken(t, v, roleID, secretID)
	waitFor(t, 10*time.Second, "probe token to expire", func() bool {
		_, err := probe.Auth().Token().LookupSelf()
		return err != nil
	})

	creds, err := c.IssueAppRole(ctx, "web")
	if err != nil {
		t.Fatalf("IssueAppRole after expiry: %v", err)
	}
	if err := v.Login(creds.RoleID, creds.SecretID.Reveal()); err != nil {
		t.Errorf("login with credentials issued after re-login: %v", err)
	}
	if got := strings.Count(logs.String(), `"msg":"logged in to vault with approle"`); got != 2 {
		t.Errorf("quai logged in %d times, want 2 (first use and after expiry); log:\n%s",
			got, logs.String())
	}
	if strings.Contains(logs.String(), secretID) {
		t.Errorf("log contains quai's secret id")
	}
}

// createQuaiRole creates the AppRole "quai" with a policy that lets it issue
// and destroy secret ids of role "web", and returns its role id and a secret
// id. A non-empty ttl sets token_ttl and token_max_ttl.
func createQuaiRole(t *testing.T, v *testenv.VaultServer, ttl string) (roleID, secretID string) {
	t.Helper()
	root := v.Client(t)
	writePolicy(t, root, "quai", `
path "auth/approle/role/web/role-id" { capabilities = ["read"] }
path "auth/approle/role/web/secret-id" { capabilities = ["update"] }
path "auth/approle/role/web/secret-id-accessor/destroy" { capabilities = ["update"] }
`)
	role := map[string]any{"token_policies": "quai"}
	if ttl != "" {
		role["token_ttl"] = ttl
		role["token_max_ttl"] = ttl
	}
	if _, err := root.Logical().Write("auth/approle/role/quai", role); err != nil {
		t.Fatalf("creating role quai: %v", err)
	}
	resp, err := root.Logical().Read("auth/approle/role/quai/role-id")
	if err != nil || resp == nil {
		t.Fatalf("reading role id of quai: %v", err)
	}
	roleID, _ = resp.Data["role_id"].(string)
	resp, err = root.Logical().Write("auth/approle/role/quai/secret-id", nil)
	if err != nil || resp == nil {
		t.Fatalf("creating secret id of quai: %v", err)
	}
	secretID, _ = resp.Data["secret_id"].(string)
	if roleID == "" || secretID == "" {
		t.Fatalf("role quai: empty role id or secret id in Vault's responses")
	}
	return roleID, secretID
}

func writePolicy(t *testing.T, root *api.Client, name, rules string) {
	t.Helper()
	if err := root.Sys().PutPolicy(name, rules); err != nil {
		t.Fatalf("writing policy %s: %v", name, err)
	}
}

// loginToken logs in through AppRole and returns a client using the token.
func loginToken(t *testing.T, v *testenv.VaultServer, roleID, secretID string) *api.Client {
	t.Helper()
	client := v.Client(t)
	resp, err := client.Logical().Write("auth/approle/login",
		map[string]any{"role_id": roleID, "secret_id": secretID})
	if err != nil || resp == nil || resp.Auth == nil {
		t.Fatalf("approle login: %v", err)
	}
	client.SetToken(resp.Auth.ClientToken)
	return client
}

func newTokenClient(t *testing.T, addr, token string) *vault.Client {
	t.Helper()
	c, err := vault.New(vault.Config{Address: addr, Token: vault.Secret(token)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// closedPortAddr returns the URL of a 127.0.0.1 port that nothing listens on.
func closedPortAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func waitFor(t *testing.T, timeout time.Duration, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// syncBuffer is a bytes.Buffer that concurrent log writers can share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
