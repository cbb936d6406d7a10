package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quai-ci/quai/engine"
	"github.com/quai-ci/quai/git"
	"github.com/quai-ci/quai/internal/testenv"
	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
)

// stepsEnv runs pipelines with steps against the real Docker daemon, from
// a git repository made per test out of testdata/steps-app.
type stepsEnv struct {
	t      *testing.T
	store  *store.Store
	engine *engine.Engine
	runner *Runner
	repo   string
	commit string
	// name is the pipeline's name, unique per test; step container names
	// start with it.
	name string
	base string
}

func newStepsEnv(t *testing.T) *stepsEnv {
	t.Helper()
	base := testenv.BusyboxImage(t)
	eng, err := engine.New(context.Background())
	if err != nil {
		testenv.Skip(t, "docker", err.Error())
	}
	t.Cleanup(func() { eng.Close() })
	if _, err := exec.LookPath("git"); err != nil {
		testenv.Skip(t, "git", "not on PATH")
	}

	e := &stepsEnv{
		t:      t,
		store:  openStore(t),
		engine: eng,
		repo:   t.TempDir(),
		name:   fmt.Sprintf("quai-test-steps-%d", time.Now().UnixNano()%1_000_000_000),
		base:   base,
	}
	copyTree(t, filepath.Join("testdata", "steps-app"), e.repo)
	gitIn(t, e.repo, "init", "-q", "-b", "main")
	gitIn(t, e.repo, "add", "-A")
	gitIn(t, e.repo, "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "-m", "first")
	e.commit = strings.TrimSpace(gitIn(t, e.repo, "rev-parse", "HEAD"))

	e.runner = New(Config{
		Store:      e.store,
		Engine:     eng,
		Checkout:   git.Checkout,
		Workspaces: t.TempDir(),
		MaxRuns:    1,
	})
	t.Cleanup(e.removeContainers)
	return e
}

// removeContainers fails the test when a step container outlived its run,
// and removes it.
func (e *stepsEnv) removeContainers() {
	for _, c := range e.containers() {
		e.t.Errorf("step container %s is left after the test", c.Name)
		if err := e.engine.Remove(context.Background(), c.ID); err != nil {
			e.t.Errorf("removing %s: %v", c.Name, err)
		}
	}
}

// containers returns the containers of the test's pipeline.
func (e *stepsEnv) containers() []engine.Container {
	e.t.Helper()
	list, err := e.engine.List(context.Background(), map[string]string{LabelPipeline: e.name})
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

func (e *stepsEnv) pipeline(steps ...pipeline.Step) *pipeline.Pipeline {
	return &pipeline.Pipeline{Name: e.name, Repo: "acme/steps", CloneURL: e.repo, Steps: steps}
}

// withBuild adds a build of testdata/steps-app's Dockerfile to p and
// removes the image's tags when the test ends.
func (e *stepsEnv) withBuild(p *pipeline.Pipeline) *pipeline.Pipeline {
	image := "quai-test/" + e.name
	p.Build = &pipeline.Build{Context: ".", Dockerfile: "Dockerfile", Image: image, Args: map[string]string{"BASE": e.base}}
	e.t.Cleanup(func() {
		for _, tag := range []string{imageTag(e.commit), "main"} {
			if err := e.engine.RemoveImage(context.Background(), image+":"+tag); err != nil {
				e.t.Errorf("removing test image: %v", err)
			}
		}
	})
	return p
}

// enqueue queues a run of p for a push of the test commit to main.
func (e *stepsEnv) enqueue(p *pipeline.Pipeline) store.Run {
	e.t.Helper()
	run, err := e.runner.Enqueue(Request{Pipeline: p, Trigger: TriggerPush, Repo: "acme/steps", Ref: "refs/heads/main", Commit: e.commit})
	if err != nil {
		e.t.Fatal(err)
	}
	return run
}

func (e *stepsEnv) log(id uint64) string {
	var b strings.Builder
	if _, err := e.store.CopyLog(id, 0, &b); err != nil {
		return err.Error()
	}
	return b.String()
}

// requireSteps checks the status and exit code of every step of run.
func (e *stepsEnv) requireSteps(run store.Run, want []store.StepResult) {
	e.t.Helper()
	if len(run.Steps) != len(want) {
		e.t.Fatalf("run has %d step results, want %d: %+v", len(run.Steps), len(want), run.Steps)
	}
	for i, w := range want {
		got := run.Steps[i]
		if got.Name != w.Name || got.Status != w.Status || got.ExitCode != w.ExitCode {
			e.t.Errorf("step %d = %s %s (exit %d, %q), want %s %s (exit %d)",
				i, got.Name, got.Status, got.ExitCode, got.Error, w.Name, w.Status, w.ExitCode)
		}
	}
}

// waitFor polls cond every 20ms until it holds, or fails the test after
// timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func step(name string, commands ...string) pipeline.Step {
	return pipeline.Step{Name: name, Image: "quai-test/busybox:latest", Commands: commands}
}

func onFailure(s pipeline.Step) pipeline.Step {
	s.When.Status = []string{pipeline.StatusFailure}
	return s
}

func TestStepsFailureSkipsLaterSteps(t *testing.T) {
	e := newStepsEnv(t)
	startRunner(t, e.runner)
	p := e.withBuild(e.pipeline(
		step("lint", "echo lint ok"),
		step("unit", "echo unit ok"),
		step("test", "echo testing", "exit 3", "echo not reached"),
		step("after", "echo after the failure"),
		onFailure(step("notify", "echo notified")),
	))
	p.Deploy = &pipeline.Deploy{
		Container: e.name + "-app", Port: 8080, Publish: fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)),
		Network: "bridge", Restart: "no", Health: pipeline.Health{Path: "/", Timeout: 2 * time.Second},
	}

	run := waitStatus(t, e.store, e.enqueue(p).ID, store.StatusFailure)
	log := e.log(run.ID)

	if want := `step "test" exited with code 3`; run.Error != want {
		t.Errorf("run error = %q, want %q", run.Error, want)
	}
	e.requireSteps(run, []store.StepResult{
		{Name: "lint", Status: store.StatusSuccess},
		{Name: "unit", Status: store.StatusSuccess},
		{Name: "test", Status: store.StatusFailure, ExitCode: 3},
		{Name: "after", Status: store.StatusSkipped},
		{Name: "notify", Status: store.StatusSuccess},
	})
	for _, want := range []string{"[lint] lint ok\n", "[test] + exit 3\n", "[notify] notified\n", "skipping the build"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	for _, unwanted := range []string{"not reached", "after the failure", "building " + p.Build.Image, "starting " + p.Deploy.Container} {
		if strings.Contains(log, unwanted) {
			t.Errorf("log contains %q:\n%s", unwanted, log)
		}
	}
	if run.Image != "" {
		t.Errorf("run recorded image %s, want none built", run.Image)
	}
}

func TestStepsUseBuiltImage(t *testing.T) {
	e := newStepsEnv(t)
	startRunner(t, e.runner)
	built := step("smoke", "cat /app/hello.txt")
	built.Image = pipeline.BuildImage
	p := e.withBuild(e.pipeline(step("unit", "cat hello.txt"), built))

	run := waitStatus(t, e.store, e.enqueue(p).ID, store.StatusSuccess)
	log := e.log(run.ID)

	e.requireSteps(run, []store.StepResult{
		{Name: "unit", Status: store.StatusSuccess},
		{Name: "smoke", Status: store.StatusSuccess},
	})
	unit := strings.Index(log, "[unit] hello from the checkout")
	build := strings.Index(log, "building "+p.Build.Image)
	smoke := strings.Index(log, "[smoke] hello from the checkout")
	if unit < 0 || build < 0 || smoke < 0 || !(unit < build && build < smoke) {
		t.Errorf("want unit output, then the build, then smoke output; positions %d, %d, %d in:\n%s", unit, build, smoke, log)
	}
	if want := p.Build.Image + ":" + imageTag(e.commit); run.Image != want {
		t.Errorf("run image = %q, want %q", run.Image, want)
	}
}

func TestStepTimeoutFailsRun(t *testing.T) {
	e := newStepsEnv(t)
	startRunner(t, e.runner)
	slow := step("slow", "sleep 600")
	slow.Timeout = 2 * time.Second
	p := e.pipeline(slow, step("after", "echo after"), onFailure(step("notify", "echo notified")))

	run := waitStatus(t, e.store, e.enqueue(p).ID, store.StatusFailure)

	if want := `step "slow" timed out after 2s`; run.Error != want {
		t.Errorf("run error = %q, want %q", run.Error, want)
	}
	e.requireSteps(run, []store.StepResult{
		{Name: "slow", Status: store.StatusFailure, ExitCode: -1},
		{Name: "after", Status: store.StatusSkipped},
		{Name: "notify", Status: store.StatusSuccess},
	})
	// The stop signal gets 2s before the kill, on top of the 2s timeout.
	if took := run.Steps[0].FinishedAt.Sub(run.Steps[0].StartedAt); took < 2*time.Second || took > 7*time.Second {
		t.Errorf("the timed-out step took %s, want 2s to 7s", took)
	}
	if list := e.containers(); len(list) != 0 {
		t.Errorf("containers left after the timeout: %v", names(list))
	}
}

func TestStepRunTimeoutFailsRun(t *testing.T) {
	e := newStepsEnv(t)
	startRunner(t, e.runner)
	p := e.pipeline(step("slow", "sleep 600"), onFailure(step("notify", "echo notified")))
	p.Timeout = 2 * time.Second

	run := waitStatus(t, e.store, e.enqueue(p).ID, store.StatusFailure)

	if want := `step "slow" stopped: run timed out after 2s`; run.Error != want {
		t.Errorf("run error = %q, want %q", run.Error, want)
	}
	// Nothing runs after the run's own timeout, not even failure steps.
	e.requireSteps(run, []store.StepResult{
		{Name: "slow", Status: store.StatusFailure, ExitCode: -1},
		{Name: "notify", Status: store.StatusSkipped},
	})
}

func TestStepCancelStopsContainer(t *testing.T) {
	e := newStepsEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_ = e.runner.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
	})
	run := e.enqueue(e.pipeline(step("wait", "sleep 600"), step("after", "echo after")))
	waitFor(t, 20*time.Second, "the step container to run", func() bool {
		list := e.containers()
		return len(list) == 1 && list[0].Running
	})

	canceled := time.Now()
	cancel()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("the runner did not stop within 30s of the cancel")
	}
	if took := time.Since(canceled); took > 6*time.Second {
		t.Errorf("the runner stopped %s after the cancel, want within 6s", took)
	}

	got, err := e.store.Run(run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.StatusCanceled {
		t.Errorf("run is %s (%s), want canceled", got.Status, got.Error)
	}
	e.requireSteps(got, []store.StepResult{
		{Name: "wait", Status: store.StatusCanceled, ExitCode: -1},
		{Name: "after", Status: store.StatusSkipped},
	})
	if list := e.containers(); len(list) != 0 {
		t.Errorf("containers left after the cancel: %v", names(list))
	}
}

func TestStepsSeeRunVariables(t *testing.T) {
	e := newStepsEnv(t)
	startRunner(t, e.runner)
	vars := step("vars", "env | grep -E '^(CI|QUAI|GREETING)' | sort")
	vars.Env = map[string]string{"GREETING": "hi", "QUAI_REF": "overridden"}
	p := e.pipeline(vars)

	queued := e.enqueue(p)
	run := waitStatus(t, e.store, queued.ID, store.StatusSuccess)
	log := e.log(run.ID)

	want := []string{
		"CI=true",
		"GREETING=hi",
		"QUAI=true",
		"QUAI_BRANCH=main",
		"QUAI_COMMIT=" + e.commit,
		"QUAI_EVENT=push",
		"QUAI_PIPELINE=" + e.name,
		"QUAI_REF=refs/heads/main",
		"QUAI_REPO=acme/steps",
		"QUAI_RUN_ID=" + strconv.FormatUint(run.ID, 10),
	}
	var got []string
	for _, line := range strings.Split(log, "\n") {
		if v, ok := strings.CutPrefix(line, "[vars] "); ok && !strings.HasPrefix(v, "+ ") {
			got = append(got, v)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("step saw %q, want %q; log:\n%s", got, want, log)
	}
	if !strings.Contains(log, "ignoring QUAI_REF") {
		t.Errorf("log does not say that QUAI_REF from the step's env was ignored:\n%s", log)
	}
}

func TestStepsShareCheckedOutWorkspace(t *testing.T) {
	e := newStepsEnv(t)
	startRunner(t, e.runner)
	p := e.pipeline(
		step("write", `test "$(pwd)" = /workspace`, "cat hello.txt", "echo made by a step > artifact.txt"),
		step("read", "cat artifact.txt"),
	)

	run := waitStatus(t, e.store, e.enqueue(p).ID, store.StatusSuccess)
	log := e.log(run.ID)

	for _, want := range []string{"[write] hello from the checkout\n", "[read] made by a step\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestStepOutputStoredIntact(t *testing.T) {
	e := newStepsEnv(t)
	startRunner(t, e.runner)
	const size = 300 << 10
	p := e.pipeline(step("bytes",
		`printf 'progress 10%%\rprogress 100%%\n\033[32mgreen\033[0m\n'`,
		"head -c 307200 /dev/zero | tr '\\0' x; echo",
		"printf 'no newline at the end'",
	))

	run := waitStatus(t, e.store, e.enqueue(p).ID, store.StatusSuccess)
	log := e.log(run.ID)

	for _, want := range []string{
		"\n[bytes] progress 10%\rprogress 100%\n[bytes] \x1b[32mgreen\x1b[0m\n",
		"\n[bytes] " + strings.Repeat("x", size) + "\n",
		"\n[bytes] no newline at the end\n[quai ",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %.80q (%d bytes)", want, len(want))
		}
	}
}

func TestStepWriterPrefixesLineStarts(t *testing.T) {
	long := strings.Repeat("y", 200<<10)
	tests := []struct {
		name    string
		writes  []string
		endLine bool
		want    string
	}{
		{"one line", []string{"hello\n"}, false, "[t] hello\n"},
		{"lines split across writes", []string{"hel", "lo\nwor", "ld\n"}, false, "[t] hello\n[t] world\n"},
		{"carriage return", []string{"10%\r20%\r", "100%\n"}, false, "[t] 10%\r20%\r100%\n"},
		{"crlf", []string{"a\r\nb\r\n"}, false, "[t] a\r\n[t] b\r\n"},
		{"ansi", []string{"\x1b[31mred\x1b[0m\n"}, false, "[t] \x1b[31mred\x1b[0m\n"},
		{"blank lines", []string{"\n\n"}, false, "[t] \n[t] \n"},
		{"empty write", []string{"", "x\n"}, false, "[t] x\n"},
		{"unfinished line ended", []string{"partial"}, true, "[t] partial\n"},
		{"finished line not ended twice", []string{"done\n"}, true, "[t] done\n"},
		{"long line in chunks", []string{long[:70000], long[70000:140000], long[140000:] + "\n"}, false, "[t] " + long + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := newStepWriter(&buf, "t")
			for _, s := range tt.writes {
				n, err := w.Write([]byte(s))
				if err != nil || n != len(s) {
					t.Fatalf("Write(%d bytes) = %d, %v", len(s), n, err)
				}
			}
			if tt.endLine {
				w.endLine()
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("output = %.100q, want %.100q", got, tt.want)
			}
		})
	}
}

func TestStepSkipReason(t *testing.T) {
	onMain := pipeline.StepContext{Branch: "main", Event: pipeline.EventPush}
	failedOnMain := pipeline.StepContext{Branch: "main", Event: pipeline.EventPush, Failed: true}
	tests := []struct {
		name string
		when pipeline.When
		c    pipeline.StepContext
		want string // "" when the step runs
	}{
		{"default runs", pipeline.When{}, onMain, ""},
		{"default after a failure", pipeline.When{}, failedOnMain, "an earlier step failed"},
		{"failure step without a failure", pipeline.When{Status: []string{"failure"}}, onMain, "it runs only after a failure"},
		{"failure step after a failure", pipeline.When{Status: []string{"failure"}}, failedOnMain, ""},
		{"event not listed", pipeline.When{Events: []pipeline.Event{pipeline.EventManual}}, onMain,
			"its when condition does not match this run (event push, ref branch main)"},
		{"branch not matched", pipeline.When{Branches: []string{"release/*"}}, pipeline.StepContext{Tag: "v1", Event: pipeline.EventTag},
			"its when condition does not match this run (event tag, ref tag v1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := skipReason(pipeline.Step{Name: "s", When: tt.when}, tt.c); got != tt.want {
				t.Errorf("skipReason = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStepEventOf(t *testing.T) {
	tests := []struct {
		trigger, ref string
		want         pipeline.Event
	}{
		{TriggerPush, "refs/heads/main", pipeline.EventPush},
		{TriggerPush, "refs/tags/v1", pipeline.EventTag},
		{TriggerPullRequest, "refs/pull/7/head", pipeline.EventPullRequest},
		{TriggerSchedule, "refs/heads/main", pipeline.EventSchedule},
		{TriggerManual, "refs/heads/main", pipeline.EventManual},
	}
	for _, tt := range tests {
		if got := eventOf(store.Run{Trigger: tt.trigger, Ref: tt.ref}); got != tt.want {
			t.Errorf("eventOf(%s, %s) = %q, want %q", tt.trigger, tt.ref, got, tt.want)
		}
	}
}

func TestStepEnv(t *testing.T) {
	run := store.Run{ID: 7, Pipeline: "web", Repo: "acme/web", Ref: "refs/tags/v1.0", Commit: "abc", Trigger: TriggerPush}
	env, ignored := stepEnv(run,
		map[string]string{"B": "2", "A": "1", "CI": "false", "QUAI_TAG": "v9"},
		[]string{"TOKEN=s3cret", "QUAI=no"})

	want := []string{
		"CI=true", "QUAI=true", "QUAI_PIPELINE=web", "QUAI_RUN_ID=7", "QUAI_REPO=acme/web",
		"QUAI_REF=refs/tags/v1.0", "QUAI_TAG=v1.0", "QUAI_COMMIT=abc", "QUAI_EVENT=tag",
		"A=1", "B=2", "TOKEN=s3cret",
	}
	if !slices.Equal(env, want) {
		t.Errorf("env = %q, want %q", env, want)
	}
	if wantIgnored := []string{"CI", "QUAI_TAG", "QUAI"}; !slices.Equal(ignored, wantIgnored) {
		t.Errorf("ignored = %q, want %q", ignored, wantIgnored)
	}
}

func TestStepOutcome(t *testing.T) {
	live := context.Background()
	canceled, cancel := context.WithCancel(live)
	cancel()
	runTimedOut, cancelRun := context.WithTimeoutCause(live, 0, &runTimeoutError{timeout: time.Hour})
	defer cancelRun()
	stepTimedOut, cancelStep := context.WithTimeoutCause(live, 0, &stepTimeoutError{step: "s", timeout: time.Minute})
	defer cancelStep()
	dockerErr := errors.New("no such image")

	tests := []struct {
		name      string
		runCtx    context.Context
		stepCtx   context.Context
		code      int
		err       error
		status    store.Status
		exitCode  int
		wantError string
	}{
		{"success", live, live, 0, nil, store.StatusSuccess, 0, ""},
		{"non-zero exit", live, live, 2, nil, store.StatusFailure, 2, `step "s" exited with code 2`},
		{"exit wins over a late timeout", live, stepTimedOut, 0, nil, store.StatusSuccess, 0, ""},
		{"run timeout", runTimedOut, runTimedOut, -1, context.DeadlineExceeded, store.StatusFailure, -1, `step "s" stopped: run timed out after 1h0m0s`},
		{"run canceled", canceled, canceled, -1, context.Canceled, store.StatusCanceled, -1, `step "s" canceled: context canceled`},
		{"step timeout", live, stepTimedOut, -1, context.DeadlineExceeded, store.StatusFailure, -1, `step "s" timed out after 1m0s`},
		{"docker error", live, live, -1, dockerErr, store.StatusFailure, -1, `step "s": no such image`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			result, err := stepOutcome(tt.runCtx, tt.stepCtx, "s", tt.code, tt.err)
			if result.Status != tt.status {
				t.Errorf("status = %s, want %s", result.Status, tt.status)
			}
			if result.ExitCode != tt.exitCode {
				t.Errorf("exit code = %d, want %d", result.ExitCode, tt.exitCode)
			}
			gotError := ""
			if err != nil {
				gotError = err.Error()
			}
			if gotError != tt.wantError || result.Error != tt.wantError {
				t.Errorf("error = %q, recorded %q, want %q", gotError, result.Error, tt.wantError)
			}
		})
	}
}
