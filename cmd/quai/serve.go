package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/quai-ci/quai/engine"
	"github.com/quai-ci/quai/git"
	"github.com/quai-ci/quai/haproxy"
	"github.com/quai-ci/quai/hook"
	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/runner"
	"github.com/quai-ci/quai/schedule"
	"github.com/quai-ci/quai/store"
	"github.com/quai-ci/quai/vault"
	"github.com/quai-ci/quai/webui"
)

// secretFileName is the file, inside the data folder, that keeps a
// generated webhook secret.
const secretFileName = "webhook-secret"

// Files that "quai serve" keeps in the data folder, each with mode 0600.
const (
	sessionKeyFileName    = "session-key"
	adminPasswordFileName = "initial-admin-password"
)

// serveConfig is the configuration of "quai serve", from flags and
// environment.
type serveConfig struct {
	listen         string
	data           string
	pipelines      string
	secretFile     string
	maxRuns        int
	logLevel       slog.Level
	githubToken    string
	webhookSecret  string
	config         string
	trustedProxies []netip.Prefix
	sessionTTL     time.Duration
	apiToken       string
}

func parseServe(args []string, stderr io.Writer, getenv func(string) string) (serveConfig, error) {
	c := serveConfig{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listen, "listen", envOr(getenv, "QUAI_LISTEN", "127.0.0.1:8080"), "address to serve HTTP on (env QUAI_LISTEN)")
	fs.StringVar(&c.data, "data", envOr(getenv, "QUAI_DATA", "./data"), "folder for the database, workspaces and generated secrets (env QUAI_DATA)")
	fs.StringVar(&c.pipelines, "pipelines", envOr(getenv, "QUAI_PIPELINES", "./pipelines.d"), "folder of pipeline files (env QUAI_PIPELINES)")
	fs.StringVar(&c.secretFile, "webhook-secret-file", getenv("QUAI_WEBHOOK_SECRET_FILE"), "file holding the GitHub webhook secret (env QUAI_WEBHOOK_SECRET_FILE; QUAI_WEBHOOK_SECRET gives the value itself; default: generated into DATA/webhook-secret)")
	maxRuns := envOr(getenv, "QUAI_MAX_RUNS", "0")
	fs.StringVar(&maxRuns, "max-runs", maxRuns, "runs executing at once across pipelines, 0 for the number of CPUs (env QUAI_MAX_RUNS)")
	level := envOr(getenv, "QUAI_LOG_LEVEL", "info")
	fs.StringVar(&level, "log-level", level, "debug, info, warn or error (env QUAI_LOG_LEVEL)")
	fs.StringVar(&c.config, "config", getenv("QUAI_CONFIG"), "YAML file of users and API tokens (env QUAI_CONFIG; default DATA/config.yml)")
	proxies := envOr(getenv, "QUAI_TRUSTED_PROXIES", "127.0.0.1/32,::1/128")
	fs.StringVar(&proxies, "trusted-proxies", proxies, "comma-separated addresses or CIDR prefixes whose X-Forwarded-Proto and X-Forwarded-For are believed (env QUAI_TRUSTED_PROXIES)")
	ttl := envOr(getenv, "QUAI_SESSION_TTL", webui.DefaultSessionTTL.String())
	fs.StringVar(&ttl, "session-ttl", ttl, "how long a login lasts, such as 12h or 30m (env QUAI_SESSION_TTL)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	n, err := strconv.Atoi(maxRuns)
	if err != nil || n < 0 {
		return c, fmt.Errorf("invalid --max-runs %q: want a number of runs, 0 for the number of CPUs", maxRuns)
	}
	c.maxRuns = n
	if err := c.logLevel.UnmarshalText([]byte(level)); err != nil {
		return c, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", level)
	}
	if c.trustedProxies, err = webui.ParsePrefixes(proxies); err != nil {
		return c, fmt.Errorf("invalid --trusted-proxies: %w", err)
	}
	if c.sessionTTL, err = time.ParseDuration(ttl); err != nil || c.sessionTTL < time.Minute {
		return c, fmt.Errorf("invalid --session-ttl %q: want a duration of at least 1m, such as 12h", ttl)
	}
	if c.config == "" {
		c.config = filepath.Join(c.data, "config.yml")
	}
	c.webhookSecret = getenv("QUAI_WEBHOOK_SECRET")
	if c.githubToken, err = secretFromEnv(getenv, "QUAI_GITHUB_TOKEN"); err != nil {
		return c, err
	}
	c.apiToken, err = secretFromEnv(getenv, "QUAI_API_TOKEN")
	return c, err
}

// serve runs the daemon until ctx is canceled.
func serve(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	c, err := parseServe(args, stderr, getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.logLevel}))

	pipelines, err := loadPipelines(c.pipelines, log)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.data, 0o700); err != nil {
		return fmt.Errorf("creating data folder %s: %w", c.data, err)
	}
	secret, err := webhookSecret(c, log)
	if err != nil {
		return err
	}
	auth, err := authConfig(c, log)
	if err != nil {
		return err
	}
	st, err := store.Open(filepath.Join(c.data, "quai.db"))
	if err != nil {
		return err
	}
	defer st.Close()

	eng, err := engine.Dial(getenv("DOCKER_HOST"))
	if err != nil {
		return err
	}
	defer eng.Close()
	// Docker being down is no reason to stop receiving webhooks and
	// showing history: runs fail with the connection error until it is up.
	if err := eng.Ping(ctx); err != nil {
		log.Error("Docker is not reachable; runs fail until it is", "error", err)
	}
	vc, err := vaultClient(getenv, log)
	if err != nil {
		return err
	}

	// A nil *vault.Client inside the interface would not compare equal
	// to nil, so the runner gets a plain nil when Vault is off.
	var rv runner.Vault
	if vc != nil {
		rv = vc
	}
	rn := runner.New(runner.Config{
		Store:       st,
		Engine:      eng,
		Checkout:    git.Checkout,
		Vault:       rv,
		HAProxy:     func(socket string) runner.HAProxy { return haproxy.New(socket, 0) },
		Workspaces:  filepath.Join(c.data, "workspaces"),
		GitHubToken: c.githubToken,
		MaxRuns:     c.maxRuns,
		Log:         log,
	})
	_ = checkHAProxy(ctx, pipelines, log)
	if err := rn.Recover(pipelines); err != nil {
		return err
	}
	rn.Reconcile(ctx, pipelines)
	set := newPipelineSet(c.pipelines, pipelines, log)
	sched := schedule.New(schedule.Config{Starter: rn, Log: log})
	sched.Set(pipelines)
	set.onChange = sched.Set
	wh, err := hook.NewHandler(secret, st, set.Get, rn, log)
	if err != nil {
		return err
	}
	ui, err := webui.New(webui.Config{
		Runs:        st,
		Pipelines:   set.Get,
		Deployments: st,
		Deploys:     rn,
		Manual:      rn,
		Cancels:     rn,
		Deliveries:  st,
		Containers:  eng,
		LogNotify:   st,
		NextRuns:    sched.Next,
		Rejected:    wh.Rejected,
		Closing:     ctx.Done(),
		Webhook:     wh,
		Auth:        auth,
		Log:         log,
		Version:     versionString(),
	})
	if err != nil {
		return err
	}
	workers := []func(context.Context) error{rn.Run, set.Watch, sched.Run}
	if vc != nil {
		workers = append(workers, func(ctx context.Context) error {
			vc.KeepAlive(ctx)
			return nil
		})
	}
	return listenAndServe(ctx, c.listen, ui, log, workers...)
}

// listenAndServe runs the HTTP server and the workers (the runner, the
// pipeline watcher) until ctx ends, then shuts them down.
func listenAndServe(ctx context.Context, addr string, h http.Handler, log *slog.Logger, workers ...func(context.Context) error) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w (pick another address with --listen or QUAI_LISTEN)", addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	log.Info("quai started", "listen", ln.Addr().String(), "version", versionString())

	g, ctx := errgroup.WithContext(ctx)
	for _, work := range workers {
		g.Go(func() error { return work(ctx) })
	}
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving HTTP on %s: %w", addr, err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	})
	err = g.Wait()
	log.Info("quai stopped")
	return err
}

// loadPipelines loads the pipeline folder; any error stops the start, so a
// typo never silently disables a deploy.
func loadPipelines(dir string, log *slog.Logger) ([]*pipeline.Pipeline, error) {
	pipelines, problems, err := pipeline.LoadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, p := range problems {
		if p.Warning {
			log.Warn("pipeline warning", "problem", p.String())
		} else {
			log.Error("pipeline error", "problem", p.String())
		}
	}
	if pipeline.HasErrors(problems) {
		return nil, fmt.Errorf("loading pipelines from %s failed; fix the errors above (quai validate %s lists them)", dir, dir)
	}
	log.Info("pipelines loaded", "dir", dir, "pipelines", pipelineNames(pipelines))
	return pipelines, nil
}

// webhookSecret returns the configured secret, or the one generated into
// the data folder on the first start. The value itself is never logged.
func webhookSecret(c serveConfig, log *slog.Logger) ([]byte, error) {
	if c.webhookSecret != "" {
		return []byte(c.webhookSecret), nil
	}
	if c.secretFile != "" {
		return readSecretFile(c.secretFile, "webhook secret")
	}
	path := filepath.Join(c.data, secretFileName)
	b, err := readSecretFile(path, "webhook secret")
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return nil, fmt.Errorf("generating webhook secret: %w", err)
	}
	secret := hex.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("writing generated webhook secret to %s: %w", path, err)
	}
	abs, _ := filepath.Abs(path)
	log.Warn("generated a webhook secret; paste the file's content into the GitHub webhook's Secret field", "file", abs)
	return []byte(secret), nil
}

// authConfig loads the users and tokens and the session key, creating
// user admin with a random password on the first start. The password goes
// only to a file; the log names the file.
func authConfig(c serveConfig, log *slog.Logger) (webui.AuthConfig, error) {
	accounts, err := webui.LoadAccounts(c.config)
	if err != nil {
		return webui.AuthConfig{}, err
	}
	passwordFile := filepath.Join(c.data, adminPasswordFileName)
	created, err := accounts.BootstrapAdmin(passwordFile)
	if err != nil {
		return webui.AuthConfig{}, err
	}
	if created {
		if err := accounts.Save(c.config); err != nil {
			return webui.AuthConfig{}, fmt.Errorf("saving initial admin user: %w", err)
		}
		abs, _ := filepath.Abs(passwordFile)
		log.Warn("created user admin with a random password; log in with the password in the file, then delete it",
			"file", abs, "config", c.config)
	}
	key, err := webui.LoadOrCreateSessionKey(filepath.Join(c.data, sessionKeyFileName))
	if err != nil {
		return webui.AuthConfig{}, err
	}
	log.Info("authentication configured", "config", c.config, "users", len(accounts.Users),
		"tokens", len(accounts.Tokens), "env_token", c.apiToken != "")
	return webui.AuthConfig{
		Accounts:       accounts,
		SessionKey:     key,
		SessionTTL:     c.sessionTTL,
		TrustedProxies: c.trustedProxies,
		EnvToken:       c.apiToken,
	}, nil
}

// readSecretFile reads a secret from a file, without its trailing newline.
func readSecretFile(path, what string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s from %s: %w", what, path, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return nil, fmt.Errorf("reading %s from %s: the file is empty", what, path)
	}
	return []byte(s), nil
}

// secretFromEnv reads NAME, or the file named by NAME_FILE.
func secretFromEnv(getenv func(string) string, name string) (string, error) {
	if v := getenv(name); v != "" {
		return v, nil
	}
	if f := getenv(name + "_FILE"); f != "" {
		b, err := readSecretFile(f, name)
		return string(b), err
	}
	return "", nil
}

// vaultClient returns nil when no Vault login is configured: deploys that
// ask for AppRole credentials then fail with a message saying so.
func vaultClient(getenv func(string) string, log *slog.Logger) (*vault.Client, error) {
	cfg, err := vault.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	if cfg.Token == "" && cfg.RoleID == "" {
		log.Info("Vault not configured; set VAULT_TOKEN or QUAI_APPROLE_ID to inject AppRole credentials", "address", cfg.Address)
		return nil, nil
	}
	vc, err := vault.New(cfg)
	if err != nil {
		return nil, err
	}
	log.Info("Vault configured", "address", vc.Address())
	return vc, nil
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}
