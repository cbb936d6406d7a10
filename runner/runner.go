// Package runner queues runs and executes them: checkout, build and deploy.
// It decides; the Docker, git and Vault adapters only do what it asks.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"runtime"
	"sync"
	"time"

	"github.com/quai-ci/quai/engine"
	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
	"github.com/quai-ci/quai/vault"
)

// Store is the part of the store the runner writes to.
type Store interface {
	CreateRun(r *store.Run) error
	UpdateRun(id uint64, fn func(*store.Run) error) (store.Run, error)
	RunsWithStatus(statuses ...store.Status) ([]store.Run, error)
	AppendLog(runID uint64, p []byte) error
	SaveDeployment(d *store.Deployment) error
	Run(id uint64) (store.Run, error)
	Deployment(id uint64) (store.Deployment, error)
	Deployments(pipeline string, limit int) ([]store.Deployment, error)
	CurrentDeployment(pipeline string) (store.Deployment, error)
	SaveRollout(r store.Rollout) error
	Rollout(runID uint64) (store.Rollout, error)
}

// Engine builds images and runs containers.
type Engine interface {
	Build(ctx context.Context, opts engine.BuildOptions, out io.Writer) (string, error)
	Run(ctx context.Context, opts engine.RunOptions) (string, error)
	Start(ctx context.Context, nameOrID string) error
	Stop(ctx context.Context, nameOrID string, timeout time.Duration) error
	Remove(ctx context.Context, nameOrID string) error
	Inspect(ctx context.Context, nameOrID string) (engine.Container, error)
	List(ctx context.Context, labels map[string]string) ([]engine.Container, error)
	Logs(ctx context.Context, nameOrID string, n int) (string, error)
	StepEngine
	ImageExists(ctx context.Context, ref string) (bool, error)
	RemoveImage(ctx context.Context, ref string) error
}

// Vault mints AppRole credentials for app containers.
type Vault interface {
	Address() string
	IssueAppRole(ctx context.Context, role string) (vault.Credentials, error)
	DestroySecretID(ctx context.Context, role, accessor string) error
	ReadSecret(ctx context.Context, mount, path, key string) (vault.Secret, error)
}

// CheckoutFunc fetches exactly commit from url into dir.
type CheckoutFunc func(ctx context.Context, url, commit, dir, token string, out io.Writer) error

// Config holds the runner's dependencies and limits.
type Config struct {
	Store    Store
	Engine   Engine
	Checkout CheckoutFunc
	// Vault is nil when quai has no Vault configured; a pipeline that asks
	// for AppRole credentials then fails with a message saying so.
	Vault Vault
	// HAProxy returns a client for an HAProxy admin socket. Nil: pipelines
	// with a deploy.haproxy block fail.
	HAProxy func(socket string) HAProxy
	// Workspaces is the folder per-run checkouts are made in.
	Workspaces string
	// GitHubToken, when set, authenticates https clones of private
	// repositories.
	GitHubToken string
	// MaxRuns bounds runs executing at once across pipelines. Default: the
	// number of CPUs.
	MaxRuns int
	Log     *slog.Logger
}

// Triggers the queue treats specially: a newer run of one of these
// supersedes older runs of the same trigger, pipeline and ref.
const (
	TriggerPush        = "push"
	TriggerPullRequest = "pull_request"
)

// Errors of Cancel, for callers that map them to HTTP statuses.
var (
	// ErrDeploying is returned when the run has started its deploy, which
	// is never interrupted: the run finishes first.
	ErrDeploying = errors.New("run is deploying and cannot be canceled; it finishes first")
	// ErrRunFinished is returned when the run already has a final status.
	ErrRunFinished = errors.New("run has already finished")
	// ErrRunNotHeld is returned for a run that the store lists as queued or
	// running but that this runner does not hold, such as a queued run of
	// a pipeline before Recover has run.
	ErrRunNotHeld = errors.New("run is not held by this runner")
)

// Request asks for one run of a pipeline.
type Request struct {
	Pipeline *pipeline.Pipeline
	// Trigger is TriggerPush, TriggerPullRequest, "manual", "schedule",
	// "redeploy" or "rollback".
	Trigger    string
	DeliveryID string
	Repo       string
	// Ref is the full ref: "refs/heads/<branch>", "refs/tags/<tag>" or,
	// for a pull request, "refs/pull/<number>/head".
	Ref    string
	Commit string
	// CloneURL is the payload's clone URL; the pipeline's clone_url wins.
	// For a pull request it is the head repository's, which is the fork's
	// for a pull request from a fork.
	CloneURL string
	Message  string
	Author   string
	// Deployment, for a redeploy or rollback, is the deployment whose image
	// goes back in service; the run then neither checks out nor builds.
	Deployment uint64
	// Image is the image of Deployment.
	Image string
	// PullRequest is the pull request number of a pull request run, else 0.
	PullRequest int
	// Fork is true for a pull request whose head repository differs from
	// its base repository. Such a run must get no secrets and never deploy,
	// because its code could print them.
	Fork bool
	// Before is the commit that changes are counted from: a push's
	// "before" (all zeros when the push created the ref), or a pull
	// request's base commit, whose merge base with Commit starts the pull
	// request's changes. Empty when unknown.
	Before string
	// ChangedFiles is the sorted union of the files added, modified and
	// removed by the commits a push payload lists.
	ChangedFiles []string
	// FilesComplete is true when ChangedFiles is known to hold every file
	// changed between Before and Commit. When false, the run must compute
	// the list with git in its checkout before it applies path filters.
	FilesComplete bool
}

// job is a queued run with the pipeline definition it started with.
type job struct {
	run  store.Run
	plan *pipeline.Pipeline

	// changedFiles and filesComplete come from the request and are not
	// stored, so a run queued again by Recover asks git for its files.
	pullRequest   int
	fork          bool
	before        string
	changedFiles  []string
	filesComplete bool
}

// lane identifies the runs of one pipeline and ref, which execute one at
// a time in the order they were queued.
type lane struct {
	pipeline, ref string
}

func (j *job) lane() lane {
	return lane{pipeline: j.run.Pipeline, ref: j.run.Ref}
}

// supersedes reports whether newer makes older pointless: both are pushes
// (or both pull request updates) of the same pipeline and ref. A manual
// run, a schedule, a redeploy, a rollback or a run without a ref is never
// superseded.
func supersedes(newer, older *job) bool {
	t := newer.run.Trigger
	return (t == TriggerPush || t == TriggerPullRequest) &&
		older.run.Trigger == t &&
		older.lane() == newer.lane() &&
		newer.run.Ref != ""
}

// execution is a job that is executing, with what Cancel needs.
type execution struct {
	job    job
	ctx    context.Context
	cancel context.CancelCauseFunc
	// deploying is set by enterDeploy; from then on nothing cancels the run.
	deploying bool
	// reason is why Cancel stopped the run; empty while not canceled.
	reason string
	// finished is set once execute has returned.
	finished bool
}

// canceledError is the cause of a job's context when Cancel or a newer run
// stopped it.
type canceledError struct{ reason string }

func (e *canceledError) Error() string { return e.reason }

// Runner queues runs and executes them. Runs of one pipeline and ref (a
// lane) execute one at a time in the order they were queued; up to the
// pipeline's concurrency limit of its lanes execute at once, and at most
// MaxRuns runs across pipelines. Runs of one pipeline never deploy at the
// same time. A newer push (or pull request update) supersedes the queued
// pushes of its lane and, when the pipeline allows it, the running one that
// has not started deploying. Enqueue, Cancel and Recover are safe for
// concurrent use; Run must be called once.
type Runner struct {
	cfg Config
	log *slog.Logger

	// mu guards the fields below. Queued runs change status in the store
	// under mu, so a run is in pending exactly while it is stored queued.
	mu        sync.Mutex
	pending   map[string][]job // by pipeline name, oldest first
	executing map[uint64]*execution
	lanes     map[lane]bool  // lanes with a run executing
	active    map[string]int // executing runs by pipeline
	running   int
	wake      chan struct{}

	deploys  deployLocks
	backends backendLocks
}

// New returns a runner; nothing executes until Run is called.
func New(cfg Config) *Runner {
	if cfg.MaxRuns <= 0 {
		cfg.MaxRuns = runtime.NumCPU()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Runner{
		cfg:       cfg,
		log:       cfg.Log,
		pending:   map[string][]job{},
		executing: map[uint64]*execution{},
		lanes:     map[lane]bool{},
		active:    map[string]int{},
		wake:      make(chan struct{}, 1),
	}
}

// Enqueue records a queued run for req and puts it in its lane. A push or
// pull request run first ends the runs it supersedes as canceled with the
// reason "superseded by <commit>". Enqueue returns once the run is stored;
// the run executes in the background once Run is going.
func (r *Runner) Enqueue(req Request) (store.Run, error) {
	if req.Pipeline == nil {
		return store.Run{}, errors.New("queueing run: no pipeline given")
	}
	run := store.Run{
		Pipeline:    req.Pipeline.Name,
		Status:      store.StatusQueued,
		Trigger:     req.Trigger,
		DeliveryID:  req.DeliveryID,
		Repo:        req.Repo,
		Ref:         req.Ref,
		Commit:      req.Commit,
		CloneURL:    cloneURL(req.Pipeline, req.CloneURL),
		Message:     req.Message,
		Author:      req.Author,
		Deployment:  req.Deployment,
		Image:       req.Image,
		PullRequest: req.PullRequest,
		Fork:        req.Fork,
		Before:      req.Before,
	}
	j := job{
		plan:          req.Pipeline,
		pullRequest:   req.PullRequest,
		fork:          req.Fork,
		before:        req.Before,
		changedFiles:  req.ChangedFiles,
		filesComplete: req.FilesComplete,
	}

	// Creating the run under mu keeps a run in pending exactly while it is
	// stored queued, which Cancel relies on.
	r.mu.Lock()
	if err := r.cfg.Store.CreateRun(&run); err != nil {
		r.mu.Unlock()
		return store.Run{}, fmt.Errorf("queueing run of pipeline %q: %w", req.Pipeline.Name, err)
	}
	j.run = run
	r.add(j)
	r.mu.Unlock()

	r.signal()
	r.log.Info("run queued", "run_id", run.ID, "pipeline", run.Pipeline, "ref", run.Ref, "commit", run.Commit)
	return run, nil
}

// Cancel stops a run with reason as its recorded error. A queued run ends
// canceled at once. A running run has its context canceled and ends
// canceled within seconds, once its current step has stopped; Cancel does
// not wait for that. A run whose deploy has started is not touched:
// Cancel returns ErrDeploying and the run finishes first. Cancel returns
// ErrRunFinished for a run with a final status, store.ErrRunNotFound for
// an unknown id and ErrRunNotHeld for a live run this runner does not
// hold. Canceling a running run twice keeps the first reason.
func (r *Runner) Cancel(runID uint64, reason string) error {
	if reason == "" {
		reason = "canceled"
	}
	r.mu.Lock()
	if found, err := r.cancelQueued(runID, reason); found {
		r.mu.Unlock()
		return err
	}
	if e := r.executing[runID]; e != nil && !e.finished {
		defer r.mu.Unlock()
		if e.deploying {
			return fmt.Errorf("canceling run %d: %w", runID, ErrDeploying)
		}
		r.stop(e, reason)
		return nil
	}
	r.mu.Unlock()

	run, err := r.cfg.Store.Run(runID)
	switch {
	case err != nil:
		return fmt.Errorf("canceling run %d: %w", runID, err)
	case run.Status.Final():
		return fmt.Errorf("canceling run %d: %w (%s)", runID, ErrRunFinished, run.Status)
	default:
		return fmt.Errorf("canceling run %d (%s): %w; restart quai to settle it", runID, run.Status, ErrRunNotHeld)
	}
}

// Recover settles the runs a previous quai process left behind. Running
// runs are marked failed, because the process that drove them is gone;
// Reconcile restarts an app that a deploy left stopped. Queued runs are
// queued again with the pipeline definitions loaded now, superseding each
// other as if pushed again.
func (r *Runner) Recover(pipelines []*pipeline.Pipeline) error {
	byName := map[string]*pipeline.Pipeline{}
	for _, p := range pipelines {
		byName[p.Name] = p
	}
	runs, err := r.cfg.Store.RunsWithStatus(store.StatusRunning, store.StatusQueued)
	if err != nil {
		return fmt.Errorf("recovering runs: %w", err)
	}
	for _, run := range runs {
		p := byName[run.Pipeline]
		if run.Status == store.StatusQueued && p != nil {
			r.mu.Lock()
			r.add(job{run: run, plan: p, pullRequest: run.PullRequest, fork: run.Fork, before: run.Before})
			r.mu.Unlock()
			r.signal()
			continue
		}
		reason := "interrupted: quai stopped while this run was running"
		if ro, err := r.cfg.Store.Rollout(run.ID); err == nil && len(ro.Steps) > 0 {
			last := ro.Steps[len(ro.Steps)-1]
			reason = fmt.Sprintf("interrupted: quai stopped during rollout step %q (%s); check backend %s and containers %s and %s",
				last.Name, last.Detail, ro.Backend, ro.NewContainer, ro.OldContainer)
		}
		if p == nil {
			reason = fmt.Sprintf("pipeline %q is no longer loaded", run.Pipeline)
		}
		r.finish(run.ID, store.StatusFailure, reason)
		r.log.Warn("run settled after restart", "run_id", run.ID, "pipeline", run.Pipeline, "error", reason)
	}
	return nil
}

// Run starts queued runs as limits allow until ctx is canceled, then
// cancels the executing runs and waits for them to clean up. A deploy
// under way is not canceled and is waited for.
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		for _, e := range r.startable(ctx) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.execute(e.ctx, e.job)
				r.settle(e)
				r.done(e)
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		}
	}
}

// Deploying reports whether run runID executes and has entered its
// deploy, from which point Cancel returns ErrDeploying and newer pushes
// leave it alone. It is safe for concurrent use.
func (r *Runner) Deploying(runID uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.executing[runID]
	return e != nil && e.deploying && !e.finished
}

// enterDeploy waits until no other run of the pipeline deploys, then marks
// run runID as deploying, so that neither Cancel nor a newer push stops it
// any more. Call it with the run's own context, before the deploy switches
// anything, and call release when the deploy has ended. It returns an
// error, and no release, when the run was canceled before it could enter
// the deploy or ctx ends while it waits.
func (r *Runner) enterDeploy(ctx context.Context, runID uint64, pipelineName string) (release func(), err error) {
	unlock, err := r.deploys.lock(ctx, pipelineName)
	if err != nil {
		return nil, fmt.Errorf("waiting for another run of pipeline %q to finish its deploy: %w", pipelineName, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := context.Cause(ctx); err != nil {
		unlock()
		return nil, fmt.Errorf("entering the deploy: %w", err)
	}
	if e := r.executing[runID]; e != nil {
		e.deploying = true
	}
	return unlock, nil
}

// cancelReason returns why a job's context was canceled: the reason given
// to Cancel or by a newer run, else that quai is shutting down.
func cancelReason(ctx context.Context) string {
	var c *canceledError
	if errors.As(context.Cause(ctx), &c) {
		return c.reason
	}
	return "canceled: quai is shutting down"
}

// add puts j in its pipeline's queue and supersedes what j makes
// pointless. The caller holds r.mu and signals afterwards.
func (r *Runner) add(j job) {
	reason := "superseded by " + shortCommit(j.run.Commit)
	q := r.pending[j.run.Pipeline]
	remaining := q[:0]
	for _, old := range q {
		if !supersedes(&j, &old) {
			remaining = append(remaining, old)
			continue
		}
		if err := r.setCanceled(old.run.ID, reason); err != nil {
			// The old run then simply runs.
			r.log.Error("recording superseded run failed", "run_id", old.run.ID, "pipeline", old.run.Pipeline, "error", err)
			remaining = append(remaining, old)
			continue
		}
		r.log.Info("run superseded", "run_id", old.run.ID, "pipeline", old.run.Pipeline, "ref", old.run.Ref, "by_run", j.run.ID, "commit", j.run.Commit)
	}
	r.pending[j.run.Pipeline] = append(remaining, j)

	for _, e := range r.executing {
		if e.finished || e.deploying || !supersedes(&j, &e.job) || !e.job.plan.Concurrency.CancelSuperseded {
			continue
		}
		r.log.Info("canceling superseded run", "run_id", e.job.run.ID, "pipeline", e.job.run.Pipeline, "by_run", j.run.ID, "commit", j.run.Commit)
		r.stop(e, reason)
	}
}

// cancelQueued ends the queued run id as canceled. found is false when
// the run is not in this runner's queues. The caller holds r.mu.
func (r *Runner) cancelQueued(id uint64, reason string) (found bool, err error) {
	for name, q := range r.pending {
		for i := range q {
			if q[i].run.ID != id {
				continue
			}
			if err := r.setCanceled(id, reason); err != nil {
				return true, fmt.Errorf("canceling run %d: %w", id, err)
			}
			r.pending[name] = append(q[:i:i], q[i+1:]...)
			r.log.Info("queued run canceled", "run_id", id, "pipeline", name, "reason", reason)
			return true, nil
		}
	}
	return false, nil
}

// stop cancels an executing run's context with reason, unless it was
// stopped before. The caller holds r.mu.
func (r *Runner) stop(e *execution, reason string) {
	if e.reason != "" {
		return
	}
	e.reason = reason
	e.cancel(&canceledError{reason: reason})
}

func (r *Runner) setCanceled(id uint64, reason string) error {
	_, err := r.cfg.Store.UpdateRun(id, func(run *store.Run) error {
		run.Status = store.StatusCanceled
		run.Error = reason
		run.FinishedAt = time.Now()
		return nil
	})
	return err
}

func (r *Runner) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// startable takes the jobs that may start now off the queues and counts
// them as executing. A job may start when its lane is idle, its pipeline
// is under its limit and fewer than MaxRuns runs execute. The oldest such
// job goes first, so a busy pipeline does not starve others under the
// global limit.
func (r *Runner) startable(ctx context.Context) []*execution {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*execution
	for r.running < r.cfg.MaxRuns {
		name, i := r.nextJob()
		if i < 0 {
			break
		}
		q := r.pending[name]
		j := q[i]
		r.pending[name] = append(q[:i:i], q[i+1:]...)

		jctx, cancel := context.WithCancelCause(ctx)
		e := &execution{job: j, ctx: jctx, cancel: cancel}
		r.executing[j.run.ID] = e
		r.lanes[j.lane()] = true
		r.active[name]++
		r.running++
		out = append(out, e)
	}
	return out
}

// nextJob returns the pipeline and queue index of the oldest job that may
// start, or -1. The first job of an idle lane in a pipeline's queue is
// that lane's oldest, because queues are in the order runs were queued.
func (r *Runner) nextJob() (string, int) {
	next, index := "", -1
	var oldest uint64
	for name, q := range r.pending {
		for i := range q {
			if r.active[name] >= limitOf(q[i].plan) {
				break
			}
			if r.lanes[q[i].lane()] {
				continue
			}
			if index < 0 || q[i].run.ID < oldest {
				next, index, oldest = name, i, q[i].run.ID
			}
			break
		}
	}
	return next, index
}

// limitOf is how many runs of p may execute at once.
func limitOf(p *pipeline.Pipeline) int {
	return max(p.Concurrency.Limit, 1)
}

// settle makes a run that Cancel or a newer run stopped end as canceled
// with that reason, whatever execute recorded for the interruption. A run
// that succeeded before the cancellation took effect keeps its success.
func (r *Runner) settle(e *execution) {
	r.mu.Lock()
	e.finished = true
	reason := e.reason
	r.mu.Unlock()
	if reason == "" {
		return
	}
	_, err := r.cfg.Store.UpdateRun(e.job.run.ID, func(run *store.Run) error {
		if run.Status == store.StatusFailure || run.Status == store.StatusCanceled {
			run.Status = store.StatusCanceled
			run.Error = reason
		}
		return nil
	})
	if err != nil {
		r.log.Error("recording canceled run failed", "run_id", e.job.run.ID, "error", err)
	}
}

func (r *Runner) done(e *execution) {
	e.cancel(nil)
	r.mu.Lock()
	delete(r.executing, e.job.run.ID)
	delete(r.lanes, e.job.lane())
	r.active[e.job.run.Pipeline]--
	if r.active[e.job.run.Pipeline] == 0 {
		delete(r.active, e.job.run.Pipeline)
	}
	r.running--
	r.mu.Unlock()
	r.signal()
}

// deployLocks serialises the deploys of each pipeline, so its runs never
// deploy at the same time whatever its concurrency limit.
type deployLocks struct {
	mu    sync.Mutex
	locks map[string]chan struct{}
}

// lock waits for the pipeline's deploy lock or for ctx to end.
func (d *deployLocks) lock(ctx context.Context, pipelineName string) (unlock func(), err error) {
	d.mu.Lock()
	if d.locks == nil {
		d.locks = map[string]chan struct{}{}
	}
	l, ok := d.locks[pipelineName]
	if !ok {
		l = make(chan struct{}, 1)
		d.locks[pipelineName] = l
	}
	d.mu.Unlock()
	select {
	case l <- struct{}{}:
		return sync.OnceFunc(func() { <-l }), nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// shortCommit abbreviates a commit SHA to 12 characters, like image tags.
func shortCommit(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// finish sets a final status. A failure to record it is logged: the run
// then stays in its last recorded status until the next restart settles it.
func (r *Runner) finish(id uint64, status store.Status, reason string) {
	_, err := r.cfg.Store.UpdateRun(id, func(run *store.Run) error {
		run.Status = status
		run.Error = reason
		run.FinishedAt = time.Now()
		return nil
	})
	if err != nil {
		r.log.Error("recording run status failed", "run_id", id, "status", status, "error", err)
	}
}

// cloneURL picks where a run fetches its source: the pipeline's clone_url,
// else the payload's, else the GitHub URL of the pipeline's repo.
func cloneURL(p *pipeline.Pipeline, payload string) string {
	if p.CloneURL != "" {
		return p.CloneURL
	}
	// The payload is signed, but a sender with the secret should still not
	// point quai at a local path or embed credentials: only a plain https
	// URL is taken from it.
	if u, err := url.Parse(payload); err == nil && u.Scheme == "https" && u.Host != "" {
		u.User = nil
		return u.String()
	}
	return "https://github.com/" + p.Repo + ".git"
}
