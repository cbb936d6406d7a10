package runner

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quai-ci/quai/engine"
	"github.com/quai-ci/quai/git"
	"github.com/quai-ci/quai/haproxy"
	"github.com/quai-ci/quai/internal/testenv"
	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
	"github.com/quai-ci/quai/vault"
)

// These tests roll real containers out behind a real HAProxy, started per
// test with 200 ms check intervals, while a load generator counts every
// failed request on the client side.

type rolloutOptions struct {
	// checkPath is the path of HAProxy's own health check.
	checkPath string
	watch     time.Duration
	vault     *testenv.VaultServer
}

type rolloutEnv struct {
	t       testing.TB
	store   *store.Store
	engine  *engine.Engine
	haproxy *testenv.HAProxy
	client  *haproxy.Client
	runner  *Runner
	plan    *pipeline.Pipeline
	repo    string
	base    string
	// jenkinsPort serves "version 0" from outside Docker, like the
	// container another tool left behind.
	jenkinsPort int
}

func newRolloutEnv(t testing.TB, opts rolloutOptions) *rolloutEnv {
	t.Helper()
	base := testenv.BusyboxImage(t)
	ctx := context.Background()
	eng, err := engine.New(ctx)
	if err != nil {
		testenv.Skip(t, "docker", err.Error())
	}
	t.Cleanup(func() { eng.Close() })
	if _, err := exec.LookPath("git"); err != nil {
		testenv.Skip(t, "git", "not on PATH")
	}

	jenkins := testenv.HTTPServer(t, "version 0\n", http.StatusOK)
	hap := testenv.StartHAProxy(t, testenv.HAProxyBackend{
		Name:       "app",
		HealthPath: opts.checkPath,
		Servers: []testenv.HAProxyServer{
			{Name: "slot_a", Port: jenkins},
			{Name: "slot_b", Port: freeTCPPort(t), Disabled: true},
		},
	})

	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	e := &rolloutEnv{
		t:           t,
		store:       openStore(t),
		engine:      eng,
		haproxy:     hap,
		client:      haproxy.New(hap.Socket, 0),
		repo:        t.TempDir(),
		base:        base,
		jenkinsPort: jenkins,
	}
	e.plan = &pipeline.Pipeline{
		Name:     "ro",
		Repo:     "acme/ro",
		CloneURL: e.repo,
		Build: &pipeline.Build{
			Context: ".", Dockerfile: "Dockerfile", Image: "quai-test/rollout-" + suffix,
			Args: map[string]string{"BASE": base},
		},
		Deploy: &pipeline.Deploy{
			Container:   "quai-test-ro-" + suffix,
			Port:        8080,
			Network:     "bridge",
			Health:      pipeline.Health{Path: "/", Timeout: 5 * time.Second},
			Restart:     "no",
			StopTimeout: time.Second,
			KeepImages:  3,
			HAProxy: &pipeline.HAProxy{
				Socket:       hap.Socket,
				Backend:      "app",
				Servers:      []string{"slot_a", "slot_b"},
				StateFile:    hap.StateFile,
				CheckTimeout: 10 * time.Second,
				DrainTimeout: 5 * time.Second,
				Watch:        opts.watch,
			},
		},
	}
	t.Cleanup(e.removeContainers)

	cfg := Config{
		Store:      e.store,
		Engine:     eng,
		Checkout:   git.Checkout,
		HAProxy:    func(socket string) HAProxy { return haproxy.New(socket, 0) },
		Workspaces: t.TempDir(),
		MaxRuns:    1,
	}
	if opts.vault != nil {
		opts.vault.CreateAppRole(t, "ro-app")
		vc, err := vault.New(vault.Config{Address: opts.vault.Addr, Token: vault.Secret(opts.vault.RootToken)})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Vault = vc
		e.plan.Deploy.Vault = &pipeline.VaultLogin{AppRole: "ro-app"}
	}
	e.runner = New(cfg)
	startRunner(t, e.runner)

	copyTree(t, filepath.Join("testdata", "rollout-app"), e.repo)
	buildAppServer(t, filepath.Join(e.repo, "appserver"))
	gitIn(t, e.repo, "init", "-q", "-b", "main")
	return e
}

// buildAppServer compiles testdata/appserver, a static HTTP server that
// keeps connections alive, to path.
func buildAppServer(t testing.TB, path string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		testenv.Skip(t, "go", "the go command is needed to build the test app: "+err.Error())
	}
	cmd := exec.Command(goBin, "build", "-o", path, "./testdata/appserver")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the test app: %v\n%s", err, out)
	}
}

// release commits a version of the app; files are extra files to write,
// relative to the repository.
func (e *rolloutEnv) release(version string, files map[string]string) string {
	e.t.Helper()
	writeText(e.t, filepath.Join(e.repo, "www", "index.html"), version+"\n")
	for name, content := range files {
		writeText(e.t, filepath.Join(e.repo, name), content)
	}
	gitIn(e.t, e.repo, "add", "-A")
	gitIn(e.t, e.repo, "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "--allow-empty", "-m", version)
	return strings.TrimSpace(gitIn(e.t, e.repo, "rev-parse", "HEAD"))
}

// deploy runs the pipeline for commit and returns the finished run.
func (e *rolloutEnv) deploy(commit string) store.Run {
	e.t.Helper()
	run, err := e.runner.Enqueue(Request{Pipeline: e.plan, Trigger: "push", Repo: "acme/ro", Ref: "refs/heads/main", Commit: commit})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.wait(run.ID)
}

func (e *rolloutEnv) wait(id uint64) store.Run {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		run, err := e.store.Run(id)
		if err != nil {
			e.t.Fatal(err)
		}
		if run.Status.Final() {
			return run
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %d still %s after 2 minutes:\n%s", id, run.Status, e.log(id))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *rolloutEnv) log(id uint64) string {
	var b strings.Builder
	if _, err := e.store.CopyLog(id, 0, &b); err != nil {
		return err.Error()
	}
	return b.String()
}

func (e *rolloutEnv) requireStatus(run store.Run, want store.Status) {
	e.t.Helper()
	if run.Status != want {
		e.t.Fatalf("run %d ended %s (%s), want %s; log:\n%s", run.ID, run.Status, run.Error, want, e.log(run.ID))
	}
}

func (e *rolloutEnv) frontend(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", e.haproxy.FrontendPort, path)
}

// serving returns what the frontend answers on path.
func (e *rolloutEnv) serving(path string) string {
	e.t.Helper()
	resp, err := http.Get(e.frontend(path))
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

// slots returns the admin state, address and port of both slots.
func (e *rolloutEnv) slots() string {
	e.t.Helper()
	states, err := e.client.ServersState(context.Background(), "app")
	if err != nil {
		e.t.Fatal(err)
	}
	var parts []string
	for _, s := range states {
		parts = append(parts, fmt.Sprintf("%s=%s@%s:%d", s.Server, s.Admin, s.Addr, s.Port))
	}
	return strings.Join(parts, " ")
}

func (e *rolloutEnv) containers() []engine.Container {
	e.t.Helper()
	list, err := e.engine.List(context.Background(), map[string]string{LabelApp: e.plan.Deploy.Container})
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

func (e *rolloutEnv) removeContainers() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := e.engine.List(ctx, map[string]string{LabelApp: e.plan.Deploy.Container})
	if err != nil {
		e.t.Errorf("listing test containers: %v", err)
	}
	for _, c := range list {
		if err := e.engine.Remove(ctx, c.ID); err != nil {
			e.t.Errorf("removing %s: %v", c.Name, err)
		}
	}
	deps, _ := e.store.Deployments(e.plan.Name, 100)
	for _, d := range deps {
		_ = e.engine.RemoveImage(ctx, d.Image)
	}
}

// load sends requests through HAProxy from several keep-alive clients and
// counts every failure: a transport error or an unexpected status.
type load struct {
	ok       atomic.Int64
	failed   atomic.Int64
	statuses sync.Map // status code -> *atomic.Int64
	mu       sync.Mutex
	errors   []string
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startLoad(url string, paths []string, workers int) *load {
	l := &load{stop: make(chan struct{})}
	deadline := time.Now().Add(5 * time.Minute)
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			for i := 0; time.Now().Before(deadline); i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				l.do(client, url+paths[(w+i)%len(paths)])
			}
		}()
	}
	return l
}

// do posts to url. A POST is not replayable, so Go's client reports a
// request that fails on a reused connection instead of silently sending it
// again.
func (l *load) do(client *http.Client, url string) {
	resp, err := client.Post(url, "text/plain", strings.NewReader("ping"))
	if err != nil {
		l.fail("POST " + url + ": " + err.Error())
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		l.ok.Add(1)
		return
	}
	n, _ := l.statuses.LoadOrStore(resp.StatusCode, &atomic.Int64{})
	n.(*atomic.Int64).Add(1)
	l.fail(fmt.Sprintf("POST %s: status %d", url, resp.StatusCode))
}

func (l *load) fail(msg string) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errors) < 20 {
		l.errors = append(l.errors, msg)
	}
	l.mu.Unlock()
}

// Stop ends the load and returns the counts.
func (l *load) Stop() (ok, failed int64) {
	close(l.stop)
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load()
}

func (l *load) status(code int) int64 {
	n, ok := l.statuses.Load(code)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

func TestRolloutUnderLoadDropsNothing(t *testing.T) {
	v := testenv.StartVault(t)
	e := newRolloutEnv(t, rolloutOptions{watch: 500 * time.Millisecond, vault: v})
	l := startLoad(e.frontend(""), []string{"/", "/slow"}, 4)

	var previousEnv map[string]string
	for i := 1; i <= 10; i++ {
		version := fmt.Sprintf("version %d", i)
		run := e.deploy(e.release(version, nil))
		e.requireStatus(run, store.StatusSuccess)
		if got := e.serving("/"); got != version {
			t.Fatalf("after rollout %d the frontend serves %q, want %q", i, got, version)
		}
		list := e.containers()
		if len(list) != 1 {
			t.Fatalf("after rollout %d the app has containers %v, want exactly one", i, names(list))
		}
		env := inspectEnv(t, list[0].ID)
		if previousEnv != nil {
			if err := v.Login(previousEnv["APPROLE_ID"], previousEnv["APPROLE_SECRET_ID"]); err == nil {
				t.Errorf("after rollout %d the replaced container's secret id still logs in", i)
			}
		}
		if err := v.Login(env["APPROLE_ID"], env["APPROLE_SECRET_ID"]); err != nil {
			t.Errorf("after rollout %d the serving container's secret id does not log in: %v", i, err)
		}
		previousEnv = env
	}
	ok, failed := l.Stop()
	t.Logf("10 rollouts: %d requests succeeded, %d failed", ok, failed)
	if failed != 0 {
		t.Errorf("%d requests failed during 10 rollouts, want 0; first errors: %q", failed, l.errors)
	}
	if ok < 100 {
		t.Errorf("only %d requests succeeded: the load generator did not load the rollouts", ok)
	}

	// A reload of HAProxy reads the state file that the last rollout
	// wrote, so the same version keeps serving.
	e.haproxy.Reload(t)
	if got := e.serving("/"); got != "version 10" {
		t.Errorf("after a reload of HAProxy the frontend serves %q, want version 10 (slots %s)", got, e.slots())
	}
	deps, err := e.store.Deployments(e.plan.Name, 20)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range deps {
		kept, err := e.engine.ImageExists(context.Background(), d.Image)
		if err != nil {
			t.Fatal(err)
		}
		if want := i < e.plan.Deploy.KeepImages; kept != want {
			t.Errorf("image of deployment %d (%d newest) kept = %v, want %v", d.ID, i+1, kept, want)
		}
	}
}

func TestNaiveAddressSwapDropsRequests(t *testing.T) {
	e := newRolloutEnv(t, rolloutOptions{})
	ctx := context.Background()
	e.release("naive", nil)
	image := e.plan.Build.Image + ":naive"
	if _, err := e.engine.Build(ctx, engine.BuildOptions{
		ContextDir: e.repo, Tags: []string{image}, Args: e.plan.Build.Args,
	}, io.Discard); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.engine.RemoveImage(context.Background(), image) })

	// The harness must see what the two-slot procedure avoids: one server
	// whose address is changed under load, and the old container removed
	// right after. HAProxy keeps reusing its idle connections to the old
	// address, and those requests fail when the old container goes.
	l := startLoad(e.frontend(""), []string{"/", "/slow"}, 4)
	var old string
	for i := range 10 {
		port := freeTCPPort(t)
		name := fmt.Sprintf("%s-naive-%d", e.plan.Deploy.Container, i)
		id, err := e.engine.Run(ctx, engine.RunOptions{
			Name: name, Image: image, Port: 8080, Network: "bridge",
			Publish: fmt.Sprintf("127.0.0.1:%d", port), Restart: "no",
			Labels: map[string]string{LabelApp: e.plan.Deploy.Container},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.runner.waitHealthy(ctx, id, fmt.Sprintf("http://127.0.0.1:%d/", port), 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := e.client.SetAddr(ctx, "app", "slot_a", netip.MustParseAddr("127.0.0.1"), port); err != nil {
			t.Fatal(err)
		}
		if old != "" {
			if err := e.engine.Remove(ctx, old); err != nil {
				t.Fatal(err)
			}
		}
		old = id
	}
	ok, failed := l.Stop()
	t.Logf("10 naive swaps: %d requests succeeded, %d failed", ok, failed)
	if failed == 0 {
		t.Errorf("the naive address swap lost no request in 10 swaps: the harness does not measure the race")
	}
}

func TestRolloutNeverHealthyLeavesHAProxyAlone(t *testing.T) {
	e := newRolloutEnv(t, rolloutOptions{watch: 500 * time.Millisecond})
	e.plan.Deploy.Health.Timeout = 2 * time.Second
	before := e.slots()
	l := startLoad(e.frontend(""), []string{"/"}, 2)

	run := e.deploy(e.release("never healthy", map[string]string{
		"Dockerfile": "ARG BASE\nFROM ${BASE}\nCMD [\"sleep\", \"3600\"]\n",
	}))
	e.requireStatus(run, store.StatusFailure)
	if !strings.Contains(run.Error, "HAProxy was not changed") {
		t.Errorf("run failed with %q, want it to say HAProxy was not changed", run.Error)
	}
	ok, failed := l.Stop()
	if failed != 0 || ok == 0 {
		t.Errorf("during the failed rollout %d requests failed and %d succeeded, want 0 failed: %q", failed, ok, l.errors)
	}
	if after := e.slots(); after != before {
		t.Errorf("HAProxy slots changed from %s to %s", before, after)
	}
	if got := e.serving("/"); got != "version 0" {
		t.Errorf("frontend serves %q, want version 0", got)
	}
	if list := e.containers(); len(list) != 0 {
		t.Errorf("the failed container was left behind: %v", names(list))
	}
}

func TestRolloutFailingHAProxyCheckLeavesOldServing(t *testing.T) {
	// HAProxy checks /hc, which the version 0 server answers and the new
	// release does not; quai's own check of / passes.
	e := newRolloutEnv(t, rolloutOptions{checkPath: "/hc", watch: 500 * time.Millisecond})
	e.plan.Deploy.HAProxy.CheckTimeout = 5 * time.Second
	before := e.slots()
	l := startLoad(e.frontend(""), []string{"/"}, 2)

	run := e.deploy(e.release("fails haproxy check", nil))
	e.requireStatus(run, store.StatusFailure)
	if !strings.Contains(run.Error, "HAProxy's check") {
		t.Errorf("run failed with %q, want it to name HAProxy's check", run.Error)
	}
	ok, failed := l.Stop()
	if failed != 0 || ok == 0 {
		t.Errorf("during the failed rollout %d requests failed and %d succeeded, want 0 failed: %q", failed, ok, l.errors)
	}
	if after := e.slots(); after != before {
		t.Errorf("HAProxy slots changed from %s to %s", before, after)
	}
	if got := e.serving("/"); got != "version 0" {
		t.Errorf("frontend serves %q, want version 0", got)
	}
}

func TestRolloutRollsBackOnServerErrors(t *testing.T) {
	e := newRolloutEnv(t, rolloutOptions{watch: 3 * time.Second})
	e.requireStatus(e.deploy(e.release("version 1", nil)), store.StatusSuccess)
	good := e.slots()

	l := startLoad(e.frontend(""), []string{"/api"}, 4)
	run := e.deploy(e.release("version 2", map[string]string{"www/fail-api": "1"}))
	e.requireStatus(run, store.StatusFailure)
	ok, failed := l.Stop()
	t.Logf("rollback: %d requests succeeded, %d failed, %d with status 500", ok, failed, l.status(http.StatusInternalServerError))
	if !strings.Contains(run.Error, "rolled back") || !strings.Contains(run.Error, "5xx") {
		t.Errorf("run failed with %q, want a rollback for 5xx answers", run.Error)
	}
	if got := e.serving("/api"); got != "version 1" {
		t.Errorf("after the rollback the frontend serves %q, want version 1", got)
	}
	if n500 := l.status(http.StatusInternalServerError); failed != n500 {
		t.Errorf("%d requests failed but only %d with the release's 500s: the rollback itself lost requests: %q", failed, n500, l.errors)
	}
	if after := e.slots(); after != good {
		t.Errorf("slots after the rollback %s, want the state before it %s", after, good)
	}
	if list := e.containers(); len(list) != 1 {
		t.Errorf("containers after the rollback: %v, want only version 1's", names(list))
	}
}

func TestRolloutFollowsHAProxyReload(t *testing.T) {
	e := newRolloutEnv(t, rolloutOptions{watch: 3 * time.Second})
	e.requireStatus(e.deploy(e.release("version 1", nil)), store.StatusSuccess)

	run, err := e.runner.Enqueue(Request{Pipeline: e.plan, Trigger: "push", Commit: e.release("version 2", nil)})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		rec, err := e.store.Rollout(run.ID)
		if err == nil && rec.Steps[len(rec.Steps)-1].Name == "watch" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout never reached the watch step:\n%s", e.log(run.ID))
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.haproxy.Reload(t)

	final := e.wait(run.ID)
	e.requireStatus(final, store.StatusSuccess)
	if !strings.Contains(e.log(run.ID), "HAProxy reloaded") {
		t.Errorf("run log does not mention the reload:\n%s", e.log(run.ID))
	}
	if got := e.serving("/"); got != "version 2" {
		t.Errorf("after the rollout the frontend serves %q, want version 2 (slots %s)", got, e.slots())
	}
}

func TestRolloutRefusesUnclearSlots(t *testing.T) {
	e := newRolloutEnv(t, rolloutOptions{})
	ctx := context.Background()
	if err := e.client.SetState(ctx, "app", "slot_b", haproxy.AdminReady); err != nil {
		t.Fatal(err)
	}
	run := e.deploy(e.release("version 1", nil))
	e.requireStatus(run, store.StatusFailure)
	if !strings.Contains(run.Error, "slot_a is ready and slot_b is ready") {
		t.Errorf("run failed with %q, want it to name both slots' states", run.Error)
	}
}

func TestRolloutMissingSocket(t *testing.T) {
	e := newRolloutEnv(t, rolloutOptions{})
	e.plan.Deploy.HAProxy.Socket = filepath.Join(t.TempDir(), "missing.sock")
	run := e.deploy(e.release("version 1", nil))
	e.requireStatus(run, store.StatusFailure)
	if !strings.Contains(run.Error, "missing.sock") {
		t.Errorf("run failed with %q, want it to name the socket", run.Error)
	}
	if list := e.containers(); len(list) != 0 {
		t.Errorf("a container was started although HAProxy cannot be reached: %v", names(list))
	}
}

func names(list []engine.Container) []string {
	var out []string
	for _, c := range list {
		out = append(out, c.Name)
	}
	return out
}

func inspectEnv(t testing.TB, id string) map[string]string {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", id).Output()
	if err != nil {
		t.Fatalf("inspecting %s: %v", id, err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

func freeTCPPort(t testing.TB) int {
	t.Helper()
	port, err := freeLoopbackPort(0)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func gitIn(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func writeText(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyTree(t testing.TB, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		writeText(t, filepath.Join(to, rel), string(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
