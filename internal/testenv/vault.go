package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// vaultStartTimeout bounds the wait for a started dev server to respond
// to /v1/sys/health.
const vaultStartTimeout = 20 * time.Second

// VaultServer is a Vault dev server started for one test or package. Its
// storage is in memory, so every StartVault begins empty.
type VaultServer struct {
	Addr      string // base URL, http://127.0.0.1:PORT
	RootToken string
	PID       int

	logPath string
}

// StartVault starts the Vault dev server binary from VAULT_BIN, else
// $QUAI_CACHE/vault-1.19.0/vault with QUAI_CACHE defaulting to ~/.cache/quai,
// on a free 127.0.0.1 port with a random root token. It waits up to 20s for
// /v1/sys/health to respond, enables AppRole auth at auth/approle, and
// registers a cleanup that kills that process and waits for it to exit.
// Without the binary it calls Skip. Dev mode mounts KV version 2 at secret/.
func StartVault(t testing.TB) *VaultServer {
	t.Helper()
	bin, err := vaultBinary()
	if err != nil {
		Skip(t, "vault", err.Error()+": build it with tools/vault-dev/build.sh or set VAULT_BIN")
	}

	// Another process can take the free port between probing and binding
	// it, so a bind failure gets a fresh port.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		v, err := startVault(t, bin)
		if err == nil {
			v.enableAppRole(t)
			return v
		}
		if attempt == attempts || !errors.Is(err, errAddressInUse) {
			t.Fatalf("starting Vault dev server %s: %v", bin, err)
		}
	}
}

// CreateAppRole creates the AppRole role name with a policy, also called
// name, that allows reading the KV v2 secrets under each of readPrefixes
// (secret/data/<prefix>/*), or under name when none are given.
func (v *VaultServer) CreateAppRole(t testing.TB, name string, readPrefixes ...string) {
	t.Helper()
	if len(readPrefixes) == 0 {
		readPrefixes = []string{name}
	}
	var policy strings.Builder
	for _, prefix := range readPrefixes {
		fmt.Fprintf(&policy, "path %q {\n  capabilities = [\"read\"]\n}\n", "secret/data/"+prefix+"/*")
	}
	v.write(t, "sys/policies/acl/"+name, map[string]any{"policy": policy.String()})
	v.write(t, "auth/approle/role/"+name, map[string]any{"token_policies": name})
}

// WriteKV writes data as a KV version 2 secret at secret/data/<path>.
func (v *VaultServer) WriteKV(t testing.TB, path string, data map[string]string) {
	t.Helper()
	v.write(t, "secret/data/"+path, map[string]any{"data": data})
}

// Login tries an AppRole login with roleID and secretID and returns the
// error Vault gave, or nil when the login succeeded. Tests use it to prove
// that a credential works or has been destroyed.
func (v *VaultServer) Login(roleID, secretID string) error {
	client, err := v.newClient("")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.Logical().WriteWithContext(ctx, "auth/approle/login",
		map[string]any{"role_id": roleID, "secret_id": secretID})
	if err != nil {
		return err
	}
	if resp == nil || resp.Auth == nil || resp.Auth.ClientToken == "" {
		return errors.New("approle login returned no client token")
	}
	return nil
}

// Client returns a Vault API client for the server that uses the root token.
func (v *VaultServer) Client(t testing.TB) *api.Client {
	t.Helper()
	client, err := v.newClient(v.RootToken)
	if err != nil {
		t.Fatalf("creating Vault client for %s: %v", v.Addr, err)
	}
	return client
}

var errAddressInUse = errors.New("address already in use")

func vaultBinary() (string, error) {
	bin := os.Getenv("VAULT_BIN")
	if bin == "" {
		cache := os.Getenv("QUAI_CACHE")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("finding the home directory for the Vault binary: %w", err)
			}
			cache = filepath.Join(home, ".cache", "quai")
		}
		bin = filepath.Join(cache, "vault-1.19.0", "vault")
	}
	info, err := os.Stat(bin)
	if err != nil {
		return "", fmt.Errorf("no Vault binary at %s", bin)
	}
	if info.IsDir() || info.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", bin)
	}
	return bin, nil
}

// startVault starts one dev server and waits until it is healthy. It returns
// an error wrapping errAddressInUse when the port was taken meanwhile.
func startVault(t testing.TB, bin string) (*VaultServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(t.TempDir(), "vault.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating the server log: %w", err)
	}
	defer logFile.Close()

	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "server", "-dev", "-dev-root-token-id="+token,
		"-dev-listen-address="+addr, "-dev-no-store-token")
	cmd.Env = vaultEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("running %s: %w", bin, err)
	}

	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	v := &VaultServer{Addr: "http://" + addr, RootToken: token, PID: cmd.Process.Pid, logPath: logPath}
	t.Cleanup(func() {
		// Kill signals the process started above by its handle, never by name.
		_ = cmd.Process.Kill()
		<-exited
	})

	if err := v.waitHealthy(exited); err != nil {
		return nil, err
	}
	return v, nil
}

// waitHealthy polls /v1/sys/health until the server responds 200 (unsealed and
// active), the process exits or vaultStartTimeout passes.
func (v *VaultServer) waitHealthy(exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(vaultStartTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()

	var last error
	for {
		resp, err := client.Get(v.Addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("health status %s", resp.Status)
		}
		last = err

		select {
		case <-exited:
			tail := v.logTail()
			if strings.Contains(tail, "address already in use") {
				return fmt.Errorf("%w: %s", errAddressInUse, tail)
			}
			return fmt.Errorf("server exited before responding; log %s ends:\n%s", v.logPath, tail)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no healthy response from %s within %s (last: %v); log %s ends:\n%s",
				v.Addr, vaultStartTimeout, last, v.logPath, v.logTail())
		}
	}
}

func (v *VaultServer) enableAppRole(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := v.Client(t).Sys().EnableAuthWithOptionsWithContext(ctx, "approle",
		&api.EnableAuthOptions{Type: "approle"})
	if err != nil {
		t.Fatalf("enabling approle auth on Vault %s: %v; log ends:\n%s", v.Addr, err, v.logTail())
	}
}

func (v *VaultServer) write(t testing.TB, path string, data map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := v.Client(t).Logical().WriteWithContext(ctx, path, data); err != nil {
		t.Fatalf("writing %s on Vault %s: %v; log ends:\n%s", path, v.Addr, err, v.logTail())
	}
}

// newClient returns an API client for the server that uses token, or no
// token when it is empty, whatever VAULT_* variables the test process has.
func (v *VaultServer) newClient(token string) (*api.Client, error) {
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		return nil, cfg.Error
	}
	cfg.Address = v.Addr
	cfg.MaxRetries = 0
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	client.SetToken(token)
	return client, nil
}

// logTail returns the last lines of the server's output for failure messages.
func (v *VaultServer) logTail() string {
	const maxLines = 20
	data, err := os.ReadFile(v.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", v.logPath, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return strings.Join(lines, "\n")
}

// vaultEnv is the test process environment without VAULT_* variables, which
// would otherwise configure the dev server.
func vaultEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") {
			env = append(env, kv)
		}
	}
	return env
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free 127.0.0.1 port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a root token: %w", err)
	}
	return "quai-test-" + hex.EncodeToString(b), nil
}
