package vault

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultAddress is the Vault address used when neither VAULT_ADDR nor
// VAULT_ENDPOINT is set. It is the address of `vault server -dev`.
const DefaultAddress = "http://127.0.0.1:8200"

// DefaultTimeout is the per-request timeout used when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Config describes how quai reaches and logs in to Vault. Set either Token, or
// RoleID and SecretID together; New rejects any other combination.
type Config struct {
	// Address is the Vault base URL, such as https://vault.internal:8200.
	Address string
	// Token is a Vault token quai uses as is. Client.KeepAlive renews it
	// while it is renewable, but quai cannot replace it at its max TTL.
	Token Secret
	// RoleID and SecretID are quai's own AppRole login, used when Token is empty.
	RoleID   string
	SecretID Secret
	// Timeout bounds each HTTP request to Vault. Zero means DefaultTimeout.
	Timeout time.Duration
	// Logger receives Debug records about logins. Nil discards them.
	Logger *slog.Logger
}

// Environment variables read by ConfigFromEnv.
const (
	envAddress           = "VAULT_ADDR"
	envEndpoint          = "VAULT_ENDPOINT"
	envToken             = "VAULT_TOKEN"
	envTokenFile         = "VAULT_TOKEN_FILE"
	envAppRoleID         = "QUAI_APPROLE_ID"
	envAppRoleSecret     = "QUAI_APPROLE_SECRET_ID"
	envAppRoleSecretFile = "QUAI_APPROLE_SECRET_ID_FILE"
)

// ConfigFromEnv reads the Vault configuration from environment variables
// through getenv (os.Getenv outside tests):
//
//   - VAULT_ADDR, else VAULT_ENDPOINT, else DefaultAddress;
//   - VAULT_TOKEN, or VAULT_TOKEN_FILE naming a file that contains the token;
//   - QUAI_APPROLE_ID and QUAI_APPROLE_SECRET_ID, or QUAI_APPROLE_SECRET_ID_FILE
//     naming a file that contains the secret id.
//
// Surrounding whitespace is trimmed from values and file contents.
// ConfigFromEnv rejects an address that is not an http(s) URL, a variable set
// together with its _FILE variant, and a file that cannot be read or is empty.
// It also rejects a token set together with an AppRole login, and an AppRole
// login with only one of its two parts. When no credentials are set at all,
// it returns a Config without credentials and no error, and New rejects that
// Config.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{Address: DefaultAddress}
	if v := env(getenv, envAddress); v != "" {
		cfg.Address = v
	} else if v := env(getenv, envEndpoint); v != "" {
		cfg.Address = v
	}

	token, err := envOrFile(getenv, envToken, envTokenFile)
	if err != nil {
		return Config{}, err
	}
	cfg.Token = Secret(token)

	cfg.RoleID = env(getenv, envAppRoleID)
	secretID, err := envOrFile(getenv, envAppRoleSecret, envAppRoleSecretFile)
	if err != nil {
		return Config{}, err
	}
	cfg.SecretID = Secret(secretID)

	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// errNoCredentials is returned by Config.validate through New.
var errNoCredentials = errors.New("no Vault credentials configured: " +
	"set VAULT_TOKEN (or VAULT_TOKEN_FILE), or QUAI_APPROLE_ID and " +
	"QUAI_APPROLE_SECRET_ID (or QUAI_APPROLE_SECRET_ID_FILE)")

// validate checks everything except that some credentials are set, which only
// New requires.
func (c Config) validate() error {
	u, err := url.Parse(c.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid Vault address %q: set VAULT_ADDR to a URL "+
			"such as https://vault.internal:8200", c.Address)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("invalid Vault request timeout %s: must not be negative", c.Timeout)
	}

	hasAppRole := c.RoleID != "" || c.SecretID != ""
	switch {
	case c.Token != "" && hasAppRole:
		return errors.New("both a Vault token (VAULT_TOKEN) and an AppRole login " +
			"(QUAI_APPROLE_ID) are set: set only one of them")
	case c.RoleID != "" && c.SecretID == "":
		return errors.New("QUAI_APPROLE_ID is set but QUAI_APPROLE_SECRET_ID is " +
			"missing: set it or QUAI_APPROLE_SECRET_ID_FILE")
	case c.RoleID == "" && c.SecretID != "":
		return errors.New("QUAI_APPROLE_SECRET_ID is set but QUAI_APPROLE_ID is " +
			"missing: set the role id of quai's AppRole")
	}
	return nil
}

func env(getenv func(string) string, name string) string {
	return strings.TrimSpace(getenv(name))
}

// envOrFile returns the value of variable name, or the contents of the file
// named by fileVar. Errors name the variables but never contain the value.
func envOrFile(getenv func(string) string, name, fileVar string) (string, error) {
	value := env(getenv, name)
	path := env(getenv, fileVar)
	if path == "" {
		return value, nil
	}
	if value != "" {
		return "", fmt.Errorf("both %s and %s are set: set only one of them", name, fileVar)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s (%s=%s): %w", name, fileVar, path, err)
	}
	value = strings.TrimSpace(string(data))
	if value == "" {
		return "", fmt.Errorf("reading %s: file %s (%s) is empty", name, path, fileVar)
	}
	return value, nil
}
