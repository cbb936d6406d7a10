package vault_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/quai-ci/quai/internal/testenv"
	"github.com/quai-ci/quai/vault"
)

// Values written to the dev server, which no error message may contain.
const (
	v2URL  = "postgres://app:pw-v2-Zq81@db.internal/app"
	v2Host = "db-host.internal"
	v1URL  = "mysql://app:pw-v1-Xr52@db.internal/app"
)

func TestReadSecret(t *testing.T) {
	v := testenv.StartVault(t)
	root := v.Client(t)
	enableKV(t, root, "kv1", "1")
	v.WriteKV(t, "app/db", map[string]string{"url": v2URL, "host": v2Host})
	writeVault(t, root, "secret/data/app/typed", map[string]any{"data": map[string]any{
		"port": 5432, "debug": true, "empty": "", "null": nil,
		"nested": map[string]any{"a": "b"},
	}})
	writeVault(t, root, "kv1/app/db", map[string]any{"url": v1URL})
	v.WriteKV(t, "app/deleted", map[string]string{"url": v2URL})
	if _, err := root.Logical().Delete("secret/data/app/deleted"); err != nil {
		t.Fatalf("deleting secret/app/deleted: %v", err)
	}
	v.WriteKV(t, "app/destroyed", map[string]string{"url": v2URL})
	writeVault(t, root, "secret/destroy/app/destroyed", map[string]any{"versions": []int{1}})

	c := newTokenClient(t, v.Addr, v.RootToken)
	tests := []struct {
		name              string
		mount, path, key  string
		want              string
		wantIs            error
		wantErr, wantErr2 string
	}{
		{name: "kv v2", mount: "secret", path: "app/db", key: "url", want: v2URL},
		{name: "kv v2 other key", mount: "secret", path: "app/db", key: "host", want: v2Host},
		{name: "kv v1", mount: "kv1", path: "app/db", key: "url", want: v1URL},
		{name: "slashes trimmed", mount: "/secret/", path: "/app/db/", key: "url", want: v2URL},
		{name: "folder inside mount", mount: "secret/app", path: "db", key: "url", want: v2URL},
		{name: "number", mount: "secret", path: "app/typed", key: "port", want: "5432"},
		{name: "boolean", mount: "secret", path: "app/typed", key: "debug", want: "true"},
		{
			name: "missing path v2", mount: "secret", path: "app/none", key: "url",
			wantIs:  vault.ErrSecretNotFound,
			wantErr: "no secret at secret/app/none (API path secret/data/app/none)",
			wantErr2: "write it with `vault kv put -mount=secret app/none url=VALUE` " +
				"or fix the pipeline's reference",
		},
		{
			name: "missing path v1", mount: "kv1", path: "app/none", key: "url",
			wantIs:   vault.ErrSecretNotFound,
			wantErr:  "no secret at kv1/app/none (API path kv1/app/none)",
			wantErr2: "`vault kv put -mount=kv1 app/none url=VALUE`",
		},
		{
			name: "missing key v2", mount: "secret", path: "app/db", key: "password",
			wantIs:   vault.ErrSecretNotFound,
			wantErr:  `secret/app/db has no key "password" (its keys are "host", "url")`,
			wantErr2: "`vault kv patch -mount=secret app/db password=VALUE`",
		},
		{
			name: "missing key v1", mount: "kv1", path: "app/db", key: "password",
			wantIs:   vault.ErrSecretNotFound,
			wantErr:  `kv1/app/db has no key "password" (its keys are "url")`,
			wantErr2: "a KV v1 write replaces them all",
		},
		{
			name: "empty value", mount: "secret", path: "app/typed", key: "empty",
			wantIs: vault.ErrInvalidSecret, wantErr: `the value is empty`,
			wantErr2: `write a non-empty string to key "empty" of secret/app/typed`,
		},
		{
			name: "null value", mount: "secret", path: "app/typed", key: "null",
			wantIs: vault.ErrInvalidSecret, wantErr: "the value is null",
		},
		{
			name: "object value", mount: "secret", path: "app/typed", key: "nested",
			wantIs: vault.ErrInvalidSecret, wantErr: "is a JSON object or array, not a string",
		},
		{
			name: "deleted version", mount: "secret", path: "app/deleted", key: "url",
			wantIs:   vault.ErrSecretNotFound,
			wantErr:  "the current version 1 of secret/app/deleted was deleted at ",
			wantErr2: "`vault kv undelete -mount=secret -versions=1 app/deleted`",
		},
		{
			name: "destroyed version", mount: "secret", path: "app/destroyed", key: "url",
			wantIs:  vault.ErrSecretNotFound,
			wantErr: "the current version 1 of secret/app/destroyed is destroyed",
		},
		{
			name: "mount missing", mount: "nope", path: "app/db", key: "url",
			wantIs:   vault.ErrPermissionDenied,
			wantErr:  `"read" on nope/data/app/db (KV v2) or nope/app/db (KV v1)`,
			wantErr2: `when mount "nope" does not exist`,
		},
		{
			name: "not a kv mount", mount: "cubbyhole", path: "app/db", key: "url",
			wantErr: `mount "cubbyhole" is a "cubbyhole" secrets engine, not a KV one`,
		},
		{
			name: "dot-dot segment", mount: "secret", path: "app/../../sys/policies/acl", key: "x",
			wantErr: `invalid secret reference: the path "app/../../sys/policies/acl" has an empty`,
		},
		{
			name: "empty segment", mount: "secret", path: "app//db", key: "url",
			wantErr: "invalid secret reference",
		},
		{
			name: "empty path", mount: "secret", path: "/", key: "url",
			wantErr: "invalid secret reference: the path is empty",
		},
		{
			name: "empty mount", mount: "", path: "app/db", key: "url",
			wantErr: "invalid secret reference: the mount is empty",
		},
		{
			name: "empty key", mount: "secret", path: "app/db", key: "",
			wantErr: "invalid secret reference: the key is empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.ReadSecret(context.Background(), tt.mount, tt.path, tt.key)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ReadSecret: %v", err)
				}
				if got.Reveal() != tt.want {
					t.Errorf("ReadSecret = %q, want %q", got.Reveal(), tt.want)
				}
				return
			}

			if err == nil {
				t.Fatalf("ReadSecret returned a value, want an error containing %q", tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q does not wrap %v", err, tt.wantIs)
			}
			msg := err.Error()
			for _, want := range []string{tt.wantErr, tt.wantErr2, "key " + `"` + tt.key + `"`} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			for _, value := range []string{v2URL, v2Host, v1URL} {
				if strings.Contains(msg, value) {
					t.Errorf("error %q contains a secret value", msg)
				}
			}
		})
	}
}

func TestReadSecretRestrictedPolicy(t *testing.T) {
	v := testenv.StartVault(t)
	root := v.Client(t)
	enableKV(t, root, "kv1", "1")
	enableKV(t, root, "other", "2")
	v.WriteKV(t, "app/db", map[string]string{"url": v2URL})
	v.WriteKV(t, "team/db", map[string]string{"url": v2URL})
	writeVault(t, root, "kv1/app/db", map[string]any{"url": v1URL})
	writeVault(t, root, "other/data/app/db", map[string]any{"data": map[string]any{"url": v2URL}})
	writePolicy(t, root, "app-reader", `
path "secret/data/app/*" { capabilities = ["read"] }
path "kv1/app/*" { capabilities = ["read"] }
`)
	token := createToken(t, root, "app-reader")
	c := newTokenClient(t, v.Addr, token)
	ctx := context.Background()

	// Version detection works for a token that may only read the secrets.
	if got, err := c.ReadSecret(ctx, "secret", "app/db", "url"); err != nil || got.Reveal() != v2URL {
		t.Errorf("ReadSecret(secret, app/db) = %q, %v; want %q", got.Reveal(), err, v2URL)
	}
	if got, err := c.ReadSecret(ctx, "kv1", "app/db", "url"); err != nil || got.Reveal() != v1URL {
		t.Errorf("ReadSecret(kv1, app/db) = %q, %v; want %q", got.Reveal(), err, v1URL)
	}

	tests := []struct {
		name, mount, path string
		want              []string
	}{
		{"path outside policy", "secret", "team/db", []string{
			"the policy of VAULT_TOKEN needs \"read\" on secret/data/team/db"}},
		{"mount outside policy", "other", "app/db", []string{
			`"read" on other/data/app/db (KV v2) or other/app/db (KV v1)`,
			`detecting the KV version of mount "other"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.ReadSecret(ctx, tt.mount, tt.path, "url")
			if !errors.Is(err, vault.ErrPermissionDenied) {
				t.Fatalf("ReadSecret error = %v, want ErrPermissionDenied", err)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}

func TestReadSecretDetectsVersionOnce(t *testing.T) {
	v := testenv.StartVault(t)
	v.WriteKV(t, "app/db", map[string]string{"url": v2URL})
	target, err := url.Parse(v.Addr)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	requests := map[string]int{}
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests[r.URL.Path]++
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(counting.Close)
	c := newTokenClient(t, counting.URL, v.RootToken)

	// The first read detects the version, and the later ones run
	// concurrently on the cached result.
	const reads = 6
	errs := make([]error, reads)
	_, errs[0] = c.ReadSecret(context.Background(), "secret", "app/db", "url")
	var wg sync.WaitGroup
	for i := 1; i < reads; i++ {
		wg.Go(func() { _, errs[i] = c.ReadSecret(context.Background(), "secret", "app/db", "url") })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("ReadSecret call %d: %v", i, err)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if got := requests["/v1/sys/internal/ui/mounts/secret"]; got != 1 {
		t.Errorf("version detection requests = %d, want 1", got)
	}
	if got := requests["/v1/secret/data/app/db"]; got != reads {
		t.Errorf("secret read requests = %d, want %d", got, reads)
	}
}

func TestReadSecretVaultDown(t *testing.T) {
	c := newTokenClient(t, closedPortAddr(t), "some-token")
	_, err := c.ReadSecret(context.Background(), "secret", "app/db", "url")
	if !errors.Is(err, vault.ErrUnreachable) {
		t.Fatalf("ReadSecret error = %v, want ErrUnreachable", err)
	}
	for _, want := range []string{`key "url" of Vault secret secret/app/db`, "is Vault running"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func enableKV(t *testing.T, root *api.Client, path, version string) {
	t.Helper()
	err := root.Sys().Mount(path, &api.MountInput{Type: "kv", Options: map[string]string{"version": version}})
	if err != nil {
		t.Fatalf("enabling KV v%s at %s: %v", version, path, err)
	}
}

func writeVault(t *testing.T, root *api.Client, path string, data map[string]any) {
	t.Helper()
	if _, err := root.Logical().Write(path, data); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
}

func createToken(t *testing.T, root *api.Client, policies ...string) string {
	t.Helper()
	resp, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: policies})
	if err != nil || resp == nil || resp.Auth == nil {
		t.Fatalf("creating token with policies %v: %v", policies, err)
	}
	return resp.Auth.ClientToken
}
