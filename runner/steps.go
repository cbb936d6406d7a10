package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/quai-ci/quai/engine"
	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
)

// StepEngine runs the containers of pipeline steps.
type StepEngine interface {
	// RunStep runs opts.Commands in a new container, streams its output to
	// out, removes the container and returns the exit code. When ctx ends
	// it stops the container within seconds and returns ctx's error.
	RunStep(ctx context.Context, opts engine.StepOptions, out io.Writer) (int, error)
}

// stepState is the state that the steps of one run share while they
// execute.
type stepState struct {
	j   job
	dir string
	out *logWriter
	log *slog.Logger
	// image is the image this run built, once built.
	image string
	// failed is the first failure of a step or the build. From then on
	// only the steps whose when.status lists "failure" run.
	failed error
}

// runPlan runs the pipeline after the checkout: the steps before the
// build, the build, the later steps, then the deploy when nothing failed.
// The build comes right before the first step whose image is "$build", or
// after the last step when no step uses it. The returned error is the
// first failure.
func (r *Runner) runPlan(ctx context.Context, j job, dir string, out *logWriter, log *slog.Logger) error {
	p := j.plan
	if p.Build == nil && len(p.Steps) == 0 {
		out.Printf("pipeline has no steps and no build; nothing more to do")
		return nil
	}
	s := &stepState{j: j, dir: dir, out: out, log: log}
	split := p.BuildIndex()
	if split < 0 {
		split = len(p.Steps)
	}

	for i := range p.Steps[:split] {
		r.runStep(ctx, s, i)
	}
	if p.Build != nil {
		r.runBuild(ctx, s)
	}
	for i := split; i < len(p.Steps); i++ {
		r.runStep(ctx, s, i)
	}

	if s.failed != nil {
		return s.failed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stopping before the deploy: %w", context.Cause(ctx))
	}
	if p.Deploy == nil || s.image == "" {
		return nil
	}
	if reason := noDeployReason(j); reason != "" {
		out.Printf("not deploying: %s", reason)
		return nil
	}
	return r.deployImage(ctx, j, s.image, out, log)
}

// noDeployReason returns why a pull request run does not deploy, or "".
func noDeployReason(j job) string {
	if j.run.Trigger != TriggerPullRequest {
		return ""
	}
	if j.fork {
		return "a pull request from a fork never deploys"
	}
	if pr := j.plan.On.PullRequest; pr == nil || !pr.Deploy {
		return "pull request runs deploy only with on.pull_request.deploy: true"
	}
	return ""
}

// runBuild builds the image unless a step before it failed.
func (r *Runner) runBuild(ctx context.Context, s *stepState) {
	if s.failed != nil {
		s.out.Printf("skipping the build: %v", s.failed)
		return
	}
	if ctx.Err() != nil {
		return
	}
	image, err := r.build(ctx, s.j, s.dir, s.out)
	if err != nil {
		s.failed = stopCause(ctx, err)
		return
	}
	s.image = image
	s.log.Info("image built", "image", image)
}

// runStep runs step i if its condition holds and records its result.
func (r *Runner) runStep(ctx context.Context, s *stepState, i int) {
	step := s.j.plan.Steps[i]
	if ctx.Err() != nil {
		r.setStep(s.j.run.ID, i, skippedStep("the run stopped first: "+context.Cause(ctx).Error()))
		return
	}
	if why := skipReason(step, stepContext(s.j.run, s.failed != nil)); why != "" {
		s.out.Printf("step %q skipped: %s", step.Name, why)
		r.setStep(s.j.run.ID, i, skippedStep(why))
		return
	}
	image := step.Image
	if image == pipeline.BuildImage {
		if s.image == "" {
			why := "the image it uses was not built"
			s.out.Printf("step %q skipped: %s", step.Name, why)
			r.setStep(s.j.run.ID, i, skippedStep(why))
			return
		}
		image = s.image
	}

	started := time.Now()
	r.setStep(s.j.run.ID, i, store.StepResult{Status: store.StatusRunning, StartedAt: started})
	s.out.Printf("step %q: running %d command(s) in %s", step.Name, len(step.Commands), image)
	result, err := r.execStep(ctx, s, step, image)
	result.StartedAt, result.FinishedAt = started, time.Now()
	r.setStep(s.j.run.ID, i, result)

	took := result.FinishedAt.Sub(started).Round(time.Millisecond)
	if err != nil {
		s.out.Printf("%v (after %s)", err, took)
		s.log.Warn("step finished", "step", step.Name, "status", result.Status, "error", err)
		if s.failed == nil {
			s.failed = err
		}
		return
	}
	s.out.Printf("step %q succeeded in %s", step.Name, took)
}

// execStep runs one step's container and returns its result and, unless
// it succeeded, an error naming the step.
func (r *Runner) execStep(ctx context.Context, s *stepState, step pipeline.Step, image string) (store.StepResult, error) {
	eng := r.cfg.Engine
	var secrets []string
	switch {
	case len(step.Secrets) == 0:
	case s.j.fork:
		s.out.Printf("step %q gets no secrets: the pull request comes from a fork", step.Name)
	default:
		var err error
		if secrets, err = r.readSecrets(ctx, step.Secrets, s.out); err != nil {
			return failedStep(store.StatusFailure, -1, fmt.Errorf("step %q: reading secrets: %w", step.Name, err))
		}
	}
	env, ignored := stepEnv(s.j.run, step.Env, secrets)
	for _, name := range ignored {
		s.out.Printf("step %q: ignoring %s from its env: run variables cannot be overridden", step.Name, name)
	}

	stepCtx, cancel := ctx, context.CancelFunc(func() {})
	if step.Timeout > 0 {
		stepCtx, cancel = context.WithTimeoutCause(ctx, step.Timeout, &stepTimeoutError{step: step.Name, timeout: step.Timeout})
	}
	defer cancel()

	w := newStepWriter(s.out, step.Name)
	code, err := eng.RunStep(stepCtx, engine.StepOptions{
		Name:     pipeline.ContainerName(s.j.run.Pipeline, "run"+strconv.FormatUint(s.j.run.ID, 10), step.Name),
		Image:    image,
		Commands: step.Commands,
		Env:      env,
		Workdir:  s.dir,
		Labels:   stepLabels(s.j, step.Name),
	}, w)
	w.endLine()
	return stepOutcome(ctx, stepCtx, step.Name, code, err)
}

// stepOutcome turns what RunStep returned into a step result. A step that
// ran to its end is judged by its exit code alone. Otherwise the contexts
// tell a run timeout (failure), a canceled run (canceled) and the step's
// own timeout (failure) apart from a Docker error (failure).
func stepOutcome(runCtx, stepCtx context.Context, name string, code int, err error) (store.StepResult, error) {
	switch {
	case err == nil && code == 0:
		return store.StepResult{Status: store.StatusSuccess}, nil
	case err == nil:
		return failedStep(store.StatusFailure, code, fmt.Errorf("step %q exited with code %d", name, code))
	case runCtx.Err() != nil && errors.As(context.Cause(runCtx), new(*runTimeoutError)):
		return failedStep(store.StatusFailure, -1, fmt.Errorf("step %q stopped: %w", name, context.Cause(runCtx)))
	case runCtx.Err() != nil:
		return failedStep(store.StatusCanceled, -1, fmt.Errorf("step %q canceled: %w", name, context.Cause(runCtx)))
	case stepCtx.Err() != nil:
		return failedStep(store.StatusFailure, -1, context.Cause(stepCtx))
	}
	return failedStep(store.StatusFailure, -1, fmt.Errorf("step %q: %w", name, err))
}

func failedStep(status store.Status, code int, err error) (store.StepResult, error) {
	return store.StepResult{Status: status, ExitCode: code, Error: err.Error()}, err
}

// stepTimeoutError is the cause of a step's context when its own timeout
// ends it.
type stepTimeoutError struct {
	step    string
	timeout time.Duration
}

func (e *stepTimeoutError) Error() string {
	return fmt.Sprintf("step %q timed out after %s", e.step, e.timeout)
}

// stopCause returns err, or the reason ctx ended when err came from that.
func stopCause(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w: %w", context.Cause(ctx), err)
	}
	return err
}

func skippedStep(why string) store.StepResult {
	return store.StepResult{Status: store.StatusSkipped, Error: why, FinishedAt: time.Now()}
}

// initSteps records every step of the plan as queued, so the run shows
// its steps from the start.
func initSteps(run *store.Run, p *pipeline.Pipeline) {
	run.Steps = nil
	for _, st := range p.Steps {
		run.Steps = append(run.Steps, store.StepResult{Name: st.Name, Status: store.StatusQueued})
	}
}

// setStep records the result of step i, keeping its name. A failure to
// record it is logged: the step's result is then only in the run log.
func (r *Runner) setStep(runID uint64, i int, result store.StepResult) {
	_, err := r.cfg.Store.UpdateRun(runID, func(run *store.Run) error {
		if i >= len(run.Steps) {
			return fmt.Errorf("step %d of %d: the run's steps were not recorded at its start", i, len(run.Steps))
		}
		result.Name = run.Steps[i].Name
		run.Steps[i] = result
		return nil
	})
	if err != nil {
		r.log.Error("recording step result failed", "run_id", runID, "step", i, "status", result.Status, "error", err)
	}
}

// settleSteps marks the steps still queued or running when a run ended as
// skipped or canceled, so none stays live.
func settleSteps(run *store.Run, reason string) {
	for i := range run.Steps {
		st := &run.Steps[i]
		switch st.Status {
		case store.StatusQueued:
			st.Status, st.Error = store.StatusSkipped, reason
		case store.StatusRunning:
			st.Status, st.Error, st.ExitCode = store.StatusCanceled, reason, -1
		default:
			continue
		}
		st.FinishedAt = time.Now()
	}
}

// stepLabels are the labels of a step container, which let an operator
// find the containers of a run with docker ps.
func stepLabels(j job, step string) map[string]string {
	return map[string]string{
		LabelPipeline: j.run.Pipeline,
		LabelRepo:     j.run.Repo,
		LabelCommit:   j.run.Commit,
		LabelRun:      strconv.FormatUint(j.run.ID, 10),
		LabelStep:     step,
	}
}

// stepContext returns what a step's when clause is checked against.
//
// TODO: set Branch to the target branch for a pull request run once the
// run records it. Until then when.branches never matches a pull request.
func stepContext(run store.Run, failed bool) pipeline.StepContext {
	c := pipeline.StepContext{Event: eventOf(run), Failed: failed}
	if b, ok := strings.CutPrefix(run.Ref, "refs/heads/"); ok {
		c.Branch = b
	} else if t, ok := strings.CutPrefix(run.Ref, "refs/tags/"); ok {
		c.Tag = t
	}
	return c
}

// eventOf returns the event that When.Events and QUAI_EVENT name for what
// started the run.
func eventOf(run store.Run) pipeline.Event {
	switch run.Trigger {
	case TriggerPush:
		if strings.HasPrefix(run.Ref, "refs/tags/") {
			return pipeline.EventTag
		}
		return pipeline.EventPush
	}
	return pipeline.Event(run.Trigger)
}

// skipReason returns why step does not run in c, or "" when it runs.
func skipReason(step pipeline.Step, c pipeline.StepContext) string {
	switch {
	case step.ShouldRun(c):
		return ""
	case c.Failed && !slices.Contains(step.When.Status, pipeline.StatusFailure):
		return "an earlier step failed"
	case !c.Failed && len(step.When.Status) > 0 && !slices.Contains(step.When.Status, pipeline.StatusSuccess):
		return "it runs only after a failure"
	}
	return fmt.Sprintf("its when condition does not match this run (event %s, ref %s)", c.Event, refName(c))
}

func refName(c pipeline.StepContext) string {
	switch {
	case c.Tag != "":
		return "tag " + c.Tag
	case c.Branch != "":
		return "branch " + c.Branch
	}
	return "neither a branch nor a tag"
}

// stepEnv returns a step's environment: the run variables, then the
// step's env sorted by name, then its secrets. Entries that would set a
// run variable (CI, QUAI or QUAI_*) are dropped and their names returned.
func stepEnv(run store.Run, env map[string]string, secrets []string) (vars, ignored []string) {
	vars = runVariables(run)
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if reservedVariable(k) {
			ignored = append(ignored, k)
			continue
		}
		vars = append(vars, k+"="+env[k])
	}
	for _, kv := range secrets {
		k, _, _ := strings.Cut(kv, "=")
		if reservedVariable(k) {
			ignored = append(ignored, k)
			continue
		}
		vars = append(vars, kv)
	}
	return vars, ignored
}

// runVariables returns the variables set in every step: CI=true,
// QUAI=true and the run's QUAI_* values. QUAI_BRANCH is set for a branch
// and QUAI_TAG for a tag.
func runVariables(run store.Run) []string {
	vars := []string{
		"CI=true",
		"QUAI=true",
		"QUAI_PIPELINE=" + run.Pipeline,
		"QUAI_RUN_ID=" + strconv.FormatUint(run.ID, 10),
		"QUAI_REPO=" + run.Repo,
		"QUAI_REF=" + run.Ref,
	}
	c := stepContext(run, false)
	switch {
	case c.Branch != "":
		vars = append(vars, "QUAI_BRANCH="+c.Branch)
	case c.Tag != "":
		vars = append(vars, "QUAI_TAG="+c.Tag)
	}
	return append(vars, "QUAI_COMMIT="+run.Commit, "QUAI_EVENT="+string(c.Event))
}

func reservedVariable(name string) bool {
	return name == "CI" || name == "QUAI" || strings.HasPrefix(name, "QUAI_")
}

// stepWriter puts "[step] " before every line of a step's output on its
// way to the run log. It inserts the prefix only after a "\n", so a "\r"
// progress line, ANSI escapes and lines of any length keep their bytes.
// It is not safe for concurrent use, which RunStep does not need because it
// writes from one goroutine.
type stepWriter struct {
	out     io.Writer
	prefix  []byte
	midLine bool // the last byte written was not "\n"
	scratch []byte
}

func newStepWriter(out io.Writer, step string) *stepWriter {
	return &stepWriter{out: out, prefix: []byte("[" + step + "] ")}
}

// Write passes p on with the prefix inserted at each line start, in one
// Write call to the run log.
func (w *stepWriter) Write(p []byte) (int, error) {
	b := w.scratch[:0]
	rest := p
	for len(rest) > 0 {
		if !w.midLine {
			b = append(b, w.prefix...)
			w.midLine = true
		}
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			b = append(b, rest...)
			break
		}
		b = append(b, rest[:i+1]...)
		rest = rest[i+1:]
		w.midLine = false
	}
	w.scratch = b
	if _, err := w.out.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

// endLine ends an unfinished last line, so quai's next message starts on
// a line of its own.
func (w *stepWriter) endLine() {
	if w.midLine {
		_, _ = w.out.Write([]byte("\n"))
		w.midLine = false
	}
}
