package webui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAccountsSaveAndLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yml")
	a := &Accounts{}
	if _, err := a.AddUser("alice", RoleViewer, []byte(viewerPassword)); err != nil {
		t.Fatal(err)
	}
	token, err := a.AddToken("deploy-bot", RoleDeployer, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Save(path); err != nil {
		t.Fatal(err)
	}

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("config file mode = %v, want 0600", mode)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{viewerPassword, token} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("config file contains a secret value:\n%s", raw)
		}
	}

	loaded, err := LoadAccounts(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := loaded.authenticate("alice", []byte(viewerPassword)); !ok {
		t.Error("loaded accounts reject alice's password")
	}
	if _, ok := loaded.authenticate("alice", []byte("not-the-password")); ok {
		t.Error("loaded accounts accept a wrong password")
	}
	tok, ok := loaded.token(token)
	if !ok {
		t.Fatal("loaded accounts reject the token")
	}
	if tok.Role != RoleDeployer || tok.Name != "deploy-bot" {
		t.Errorf("token = %+v, want deploy-bot with role deployer", tok)
	}
	if _, ok := loaded.token(token + "x"); ok {
		t.Error("loaded accounts accept a changed token")
	}
}

func TestLoadAccountsMissingFile(t *testing.T) {
	a, err := LoadAccounts(filepath.Join(t.TempDir(), "none.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Users) != 0 || len(a.Tokens) != 0 {
		t.Errorf("missing file gave %+v, want no users or tokens", a)
	}
}

func TestLoadAccountsRejectsBadFiles(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"unknown field", "users: []\nadmins: []\n", "admins"},
		{"bad role", "users:\n  - name: a\n    role: admin\n    password_hash: x\n", `invalid role "admin"`},
		{"bad hash", "users:\n  - name: a\n    role: viewer\n    password_hash: plain\n", "invalid password_hash"},
		{"bad name", "users:\n  - name: 'a b'\n    role: viewer\n    password_hash: x\n", "invalid name"},
		{"bad token hash", "tokens:\n  - name: t\n    role: viewer\n    sha256: abc\n", "invalid sha256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yml")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadAccounts(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadAccounts returned %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestAddUserValidates(t *testing.T) {
	tests := []struct {
		name, user string
		role       Role
		password   string
		want       string
	}{
		{"short password", "bob", RoleViewer, "short", "want 8 to 72 bytes"},
		{"long password", "bob", RoleViewer, strings.Repeat("p", 73), "want 8 to 72 bytes"},
		{"bad role", "bob", Role("root"), "long-enough", "invalid role"},
		{"bad name", "-bob", RoleViewer, "long-enough", "invalid user name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (&Accounts{}).AddUser(tt.user, tt.role, []byte(tt.password))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("AddUser returned %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestAddUserReplacesPassword(t *testing.T) {
	a := &Accounts{}
	if _, err := a.AddUser("bob", RoleViewer, []byte("first-password")); err != nil {
		t.Fatal(err)
	}
	existed, err := a.AddUser("bob", RoleDeployer, []byte("second-password"))
	if err != nil {
		t.Fatal(err)
	}
	if !existed {
		t.Error("AddUser of an existing user reported a new user")
	}
	if len(a.Users) != 1 {
		t.Fatalf("%d users, want 1", len(a.Users))
	}
	if _, ok := a.authenticate("bob", []byte("first-password")); ok {
		t.Error("old password still accepted")
	}
	if u, ok := a.authenticate("bob", []byte("second-password")); !ok || u.Role != RoleDeployer {
		t.Errorf("new password: ok = %v, role = %q; want true, deployer", ok, u.Role)
	}
}

func TestBootstrapAdmin(t *testing.T) {
	file := filepath.Join(t.TempDir(), "initial-admin-password")
	a := &Accounts{}
	created, err := a.BootstrapAdmin(file)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatal("BootstrapAdmin created no admin in empty accounts")
	}
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
	if len(password) < 20 {
		t.Errorf("generated password has %d characters, want at least 20", len(password))
	}
	u, ok := a.authenticate("admin", []byte(password))
	if !ok {
		t.Fatal("admin cannot log in with the password from the file")
	}
	if u.Role != RoleDeployer {
		t.Errorf("admin role = %q, want deployer", u.Role)
	}
	if strings.Contains(u.PasswordHash, password) {
		t.Error("stored hash contains the password")
	}

	again, err := a.BootstrapAdmin(file)
	if err != nil {
		t.Fatal(err)
	}
	if again {
		t.Error("BootstrapAdmin created another admin although a user exists")
	}
}

func TestSessionKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "session-key")
	key, err := LoadOrCreateSessionKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != sessionKeySize {
		t.Errorf("key has %d bytes, want %d", len(key), sessionKeySize)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode = %v, want 0600", mode)
	}
	again, err := LoadOrCreateSessionKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(key) {
		t.Error("second load returned another key; sessions would not survive a restart")
	}
	if err := os.WriteFile(path, []byte("zz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateSessionKey(path); err == nil {
		t.Error("a corrupt key file was accepted")
	}
}
