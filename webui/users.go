package webui

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"
)

// Role is the access level of a user or API token.
type Role string

// Roles, from least to most access.
const (
	// RoleViewer may read every page and GET endpoint.
	RoleViewer Role = "viewer"
	// RoleDeployer may also start, redeploy, roll back and cancel runs.
	RoleDeployer Role = "deployer"
)

// ParseRole validates a role name from a flag or the config file.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleViewer, RoleDeployer:
		return r, nil
	}
	return "", fmt.Errorf("invalid role %q: want viewer or deployer", s)
}

// allows reports whether r grants at least need.
func (r Role) allows(need Role) bool {
	switch need {
	case RoleViewer:
		return r == RoleViewer || r == RoleDeployer
	case RoleDeployer:
		return r == RoleDeployer
	}
	return false
}

// User is a local account in the config file.
type User struct {
	// Name is the login name.
	Name string `yaml:"name"`
	// PasswordHash is the bcrypt hash of the password.
	PasswordHash string `yaml:"password_hash"`
	// Role is viewer or deployer.
	Role Role `yaml:"role"`
}

// Token is an API token in the config file. Only its SHA-256 is stored:
// tokens are 256 random bits, so a fast hash is enough and bcrypt's cost
// would only slow every API request.
type Token struct {
	// Name identifies the token in logs and the config file.
	Name string `yaml:"name"`
	// SHA256 is the hex SHA-256 of the token.
	SHA256 string `yaml:"sha256"`
	// Role is viewer or deployer.
	Role Role `yaml:"role"`
	// Created is when "quai token create" made the token.
	Created time.Time `yaml:"created,omitempty"`
}

// Accounts is the content of quai's config file: local users and API
// tokens. Methods are not safe for concurrent use with AddUser or
// AddToken; the server only reads an Accounts after start.
type Accounts struct {
	Users  []User  `yaml:"users"`
	Tokens []Token `yaml:"tokens"`
}

// minPasswordLength is the shortest password AddUser accepts.
const minPasswordLength = 8

// maxPasswordLength is bcrypt's input limit: longer passwords would be
// silently cut by other bcrypt implementations and are rejected by x/crypto.
const maxPasswordLength = 72

// tokenPrefix marks quai tokens so that secret scanners can find leaked ones.
const tokenPrefix = "quai_"

var userNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// LoadAccounts reads the config file at path. A missing file is an empty
// Accounts, so the first start and the first "quai user add" create it.
func LoadAccounts(path string) (*Accounts, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Accounts{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading config file %s: %w", path, err)
	}
	a := &Accounts{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(a); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parsing config file %s: %w", path, err)
	}
	if err := a.validate(); err != nil {
		return nil, fmt.Errorf("checking config file %s: %w", path, err)
	}
	return a, nil
}

func (a *Accounts) validate() error {
	seen := map[string]bool{}
	for i, u := range a.Users {
		if !userNamePattern.MatchString(u.Name) {
			return fmt.Errorf("users[%d]: invalid name %q: use letters, digits, '.', '_', '@' or '-', at most 64", i, u.Name)
		}
		if seen[u.Name] {
			return fmt.Errorf("users[%d]: user %q is listed twice", i, u.Name)
		}
		seen[u.Name] = true
		if _, err := ParseRole(string(u.Role)); err != nil {
			return fmt.Errorf("user %q: %w", u.Name, err)
		}
		if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
			return fmt.Errorf("user %q: invalid password_hash: %w; set it again with quai user add", u.Name, err)
		}
	}
	for i, t := range a.Tokens {
		if _, err := ParseRole(string(t.Role)); err != nil {
			return fmt.Errorf("tokens[%d] %q: %w", i, t.Name, err)
		}
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("tokens[%d] %q: invalid sha256: want 64 hex digits", i, t.Name)
		}
	}
	return nil
}

// Save writes the accounts to path with mode 0600, replacing the file
// atomically so that a crash never leaves half a config.
func (a *Accounts) Save(path string) error {
	b, err := yaml.Marshal(a)
	if err != nil {
		return fmt.Errorf("encoding config file %s: %w", path, err)
	}
	return writeFileAtomic(path, b, 0o600)
}

// AddUser sets the password and role of user name, adding the user if it
// is new. It returns whether a user of that name existed.
func (a *Accounts) AddUser(name string, role Role, password []byte) (bool, error) {
	if !userNamePattern.MatchString(name) {
		return false, fmt.Errorf("invalid user name %q: use letters, digits, '.', '_', '@' or '-', at most 64", name)
	}
	if _, err := ParseRole(string(role)); err != nil {
		return false, err
	}
	if len(password) < minPasswordLength || len(password) > maxPasswordLength {
		return false, fmt.Errorf("invalid password for %q: want %d to %d bytes, got %d",
			name, minPasswordLength, maxPasswordLength, len(password))
	}
	hash, err := bcrypt.GenerateFromPassword(password, bcrypt.DefaultCost)
	if err != nil {
		return false, fmt.Errorf("hashing password of %q: %w", name, err)
	}
	u := User{Name: name, PasswordHash: string(hash), Role: role}
	for i := range a.Users {
		if a.Users[i].Name == name {
			a.Users[i] = u
			return true, nil
		}
	}
	a.Users = append(a.Users, u)
	return false, nil
}

// AddToken creates a random token with role and name, stores its hash and
// returns the token, which exists nowhere else afterwards.
func (a *Accounts) AddToken(name string, role Role, now time.Time) (string, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return "", err
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("generating token: %w", err)
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(buf)
	a.Tokens = append(a.Tokens, Token{Name: name, SHA256: tokenHash(token), Role: role, Created: now.UTC()})
	return token, nil
}

// BootstrapAdmin adds user "admin" with role deployer and a random
// password when there is no user, and writes the password to
// passwordFile with mode 0600. It returns false when users exist already.
// The caller saves the accounts afterwards.
func (a *Accounts) BootstrapAdmin(passwordFile string) (bool, error) {
	if len(a.Users) > 0 {
		return false, nil
	}
	buf := make([]byte, 18)
	if _, err := rand.Read(buf); err != nil {
		return false, fmt.Errorf("generating initial admin password: %w", err)
	}
	password := base64.RawURLEncoding.EncodeToString(buf)
	if _, err := a.AddUser("admin", RoleDeployer, []byte(password)); err != nil {
		return false, err
	}
	if err := writeFileAtomic(passwordFile, []byte(password+"\n"), 0o600); err != nil {
		return false, fmt.Errorf("writing initial admin password: %w", err)
	}
	return true, nil
}

// dummyHash is compared against when a user name is unknown, so that the
// response takes as long as for a known user and does not reveal names.
// It is made on first use because bcrypt at the default cost takes tens of
// milliseconds, which every CLI command would pay at start.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("quai-no-such-user"), bcrypt.DefaultCost)
	return h
})

// authenticate returns the user when name and password match.
func (a *Accounts) authenticate(name string, password []byte) (User, bool) {
	var found *User
	for i := range a.Users {
		if subtle.ConstantTimeCompare([]byte(a.Users[i].Name), []byte(name)) == 1 {
			found = &a.Users[i]
		}
	}
	if found == nil {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), password)
		return User{}, false
	}
	if bcrypt.CompareHashAndPassword([]byte(found.PasswordHash), password) != nil {
		return User{}, false
	}
	return *found, true
}

// user returns the user called name.
func (a *Accounts) user(name string) (User, bool) {
	for _, u := range a.Users {
		if u.Name == name {
			return u, true
		}
	}
	return User{}, false
}

// token returns the stored token whose hash matches token's. Every stored
// hash is compared, in constant time, so timing does not reveal a prefix.
func (a *Accounts) token(token string) (Token, bool) {
	sum := []byte(tokenHash(token))
	var found Token
	ok := false
	for _, t := range a.Tokens {
		if subtle.ConstantTimeCompare(sum, []byte(t.SHA256)) == 1 {
			found, ok = t, true
		}
	}
	return found, ok
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating folder %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("creating temporary file in %s: %w", dir, err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("setting mode of %s: %w", f.Name(), err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return nil
}
