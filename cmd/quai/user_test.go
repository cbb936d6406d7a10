package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quai-ci/quai/webui"
)

func TestUserAdd(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	writeFile(t, pwFile, "from-file-password\n")
	tests := []struct {
		name     string
		args     []string
		stdin    string
		password string
		role     webui.Role
	}{
		{"stdin", []string{"add", "alice", "--role", "viewer"}, "stdin-password\n", "stdin-password", webui.RoleViewer},
		{"password file", []string{"add", "bob", "--role", "deployer", "--password-file", pwFile}, "", "from-file-password", webui.RoleDeployer},
		{"flags first", []string{"add", "--role", "deployer", "carol"}, "carol-password", "carol-password", webui.RoleDeployer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			config := filepath.Join(t.TempDir(), "config.yml")
			env := map[string]string{"QUAI_CONFIG": config}
			var stdout, stderr bytes.Buffer
			err := userCommand(tt.args, strings.NewReader(tt.stdin), &stdout, &stderr, func(k string) string { return env[k] })
			if err != nil {
				t.Fatalf("user %v: %v; stderr %s", tt.args, err, stderr.String())
			}
			raw, err := os.ReadFile(config)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(raw), tt.password) {
				t.Errorf("config file contains the password:\n%s", raw)
			}
			if strings.Contains(stdout.String()+stderr.String(), tt.password) {
				t.Errorf("output contains the password: %s%s", stdout.String(), stderr.String())
			}
			accounts, err := webui.LoadAccounts(config)
			if err != nil {
				t.Fatal(err)
			}
			if len(accounts.Users) != 1 {
				t.Fatalf("config has %d users, want 1", len(accounts.Users))
			}
			u := accounts.Users[0]
			if u.Role != tt.role {
				t.Errorf("role = %q, want %q", u.Role, tt.role)
			}
			if !strings.HasPrefix(u.PasswordHash, "$2") {
				t.Errorf("password_hash %q is not a bcrypt hash", u.PasswordHash)
			}
		})
	}
}

func TestUserAddRejects(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"no role", []string{"add", "alice"}, "a-password", "invalid --role"},
		{"bad role", []string{"add", "alice", "--role", "admin"}, "a-password", "invalid --role"},
		{"empty password", []string{"add", "alice", "--role", "viewer"}, "\n", "empty"},
		{"short password", []string{"add", "alice", "--role", "viewer"}, "short\n", "want 8 to 72 bytes"},
		{"no name", []string{"add", "--role", "viewer"}, "a-password", "one user name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			config := filepath.Join(t.TempDir(), "config.yml")
			env := map[string]string{"QUAI_CONFIG": config}
			var out bytes.Buffer
			err := userCommand(tt.args, strings.NewReader(tt.stdin), &out, &out, func(k string) string { return env[k] })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("user %v returned %v, want an error containing %q", tt.args, err, tt.want)
			}
			if _, err := os.Stat(config); err == nil {
				t.Error("a rejected command wrote the config file")
			}
		})
	}
}

func TestTokenCreate(t *testing.T) {
	data := t.TempDir()
	env := map[string]string{"QUAI_DATA": data}
	var stdout, stderr bytes.Buffer
	err := tokenCommand([]string{"create", "--role", "deployer", "--name", "ci"}, &stdout, &stderr, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("token create: %v; stderr %s", err, stderr.String())
	}
	token := strings.TrimSpace(stdout.String())
	if !strings.HasPrefix(token, "quai_") || len(token) < 40 {
		t.Fatalf("printed token %q, want quai_ and at least 40 characters", token)
	}
	config := filepath.Join(data, "config.yml")
	raw, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), token) {
		t.Errorf("config file contains the token itself:\n%s", raw)
	}
	accounts, err := webui.LoadAccounts(config)
	if err != nil {
		t.Fatal(err)
	}
	if len(accounts.Tokens) != 1 {
		t.Fatalf("config has %d tokens, want 1", len(accounts.Tokens))
	}
	if tok := accounts.Tokens[0]; tok.Name != "ci" || tok.Role != webui.RoleDeployer {
		t.Errorf("stored token = %+v, want name ci and role deployer", tok)
	}

	// The server lets the printed token through to the handler, which
	// returns 503 because this server has no runner.
	s, err := webui.New(webui.Config{
		Webhook: http.NotFoundHandler(),
		Log:     slog.New(slog.DiscardHandler),
		Auth:    webui.AuthConfig{Accounts: accounts, SessionKey: bytes.Repeat([]byte{1}, 32)},
	})
	if err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]int{token: http.StatusServiceUnavailable, token + "x": http.StatusUnauthorized} {
		req := httptest.NewRequest(http.MethodPost, "/api/runs/1/cancel", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != want {
			t.Errorf("cancel with token (changed: %v) = %d, want %d", tok != token, w.Code, want)
		}
	}
}

func TestTokenCreateRejectsBadRole(t *testing.T) {
	config := filepath.Join(t.TempDir(), "config.yml")
	env := map[string]string{"QUAI_CONFIG": config}
	var out bytes.Buffer
	err := tokenCommand([]string{"create", "--role", "owner"}, &out, &out, func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "invalid --role") {
		t.Errorf("token create --role owner returned %v, want an invalid role error", err)
	}
}

func TestInitialAdminPassword(t *testing.T) {
	data := t.TempDir()
	c := serveConfig{data: data, config: filepath.Join(data, "config.yml")}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := authConfig(c, log); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(data, adminPasswordFileName)
	info, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("password file mode = %v, want 0600", mode)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	password := strings.TrimSpace(string(raw))
	if strings.Contains(logs.String(), password) {
		t.Errorf("log contains the initial admin password:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), adminPasswordFileName) {
		t.Errorf("log does not name the password file:\n%s", logs.String())
	}
	key, err := os.Stat(filepath.Join(data, sessionKeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if mode := key.Mode().Perm(); mode != 0o600 {
		t.Errorf("session key mode = %v, want 0600", mode)
	}

	// A second start keeps the admin and writes no new password.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	auth, err := authConfig(c, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); err == nil {
		t.Error("second start wrote another initial password")
	}
	if n := len(auth.Accounts.Users); n != 1 {
		t.Errorf("second start has %d users, want 1", n)
	}
}

func TestParseServeAuthSettings(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeFile(t, tokenFile, "token-from-file\n")
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		config    string
		token     string
		proxies   string
		ttl       time.Duration
		wantError string
	}{
		{"defaults", map[string]string{"QUAI_DATA": "/srv/quai"}, nil,
			"/srv/quai/config.yml", "", "[127.0.0.1/32 ::1/128]", 12 * time.Hour, ""},
		{"environment", map[string]string{"QUAI_CONFIG": "/etc/quai.yml", "QUAI_API_TOKEN": "t0k",
			"QUAI_TRUSTED_PROXIES": "10.0.0.0/8", "QUAI_SESSION_TTL": "30m"}, nil,
			"/etc/quai.yml", "t0k", "[10.0.0.0/8]", 30 * time.Minute, ""},
		{"token file", map[string]string{"QUAI_API_TOKEN_FILE": tokenFile}, nil,
			"data/config.yml", "token-from-file", "[127.0.0.1/32 ::1/128]", 12 * time.Hour, ""},
		{"flags", nil, []string{"--config", "/c.yml", "--trusted-proxies", "192.0.2.1", "--session-ttl", "1h"},
			"/c.yml", "", "[192.0.2.1/32]", time.Hour, ""},
		{"bad proxy", nil, []string{"--trusted-proxies", "proxy.local"}, "", "", "", 0, "invalid --trusted-proxies"},
		{"bad ttl", nil, []string{"--session-ttl", "5s"}, "", "", "", 0, "invalid --session-ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseServe(tt.args, &bytes.Buffer{}, func(k string) string { return tt.env[k] })
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Errorf("parseServe returned %v, want an error containing %q", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.config != tt.config {
				t.Errorf("config = %q, want %q", c.config, tt.config)
			}
			if c.apiToken != tt.token {
				t.Errorf("API token = %q, want %q", c.apiToken, tt.token)
			}
			if got := fmt.Sprint(c.trustedProxies); got != tt.proxies {
				t.Errorf("trusted proxies = %s, want %s", got, tt.proxies)
			}
			if c.sessionTTL != tt.ttl {
				t.Errorf("session TTL = %v, want %v", c.sessionTTL, tt.ttl)
			}
		})
	}
}
