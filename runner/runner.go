// Package runner queues runs and executes them: checkout, build and deploy.
// It decides; the Docker, git and Vault adapters only do what it asks.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	ImageExists(ctx context.Context, ref string) (bool, error)
	RemoveImage(ctx context.Context, ref string) error
}

// Vault mints AppRole credentials for app containers.
type Vault interface {
	Address() string
	IssueAppRole(ctx context.Context, role string) (vault.Credentials, error)
	DestroySecretID(ctx context.Context, role, accessor string) error
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

// Request asks for one run of a pipeline.
type Request struct {
	Pipeline *pipeline.Pipeline
	// Trigger is "push", "manual" or "cron".
	Trigger    string
	DeliveryID string
	Repo       string
	Ref        string
	Commit     string
	// CloneURL is the payload's clone URL; the pipeline's clone_url wins.
	CloneURL string
	Message  string
	Author   string
	// Deployment, for a redeploy or rollback, is the deployment whose image
	// goes back in service; the run then neither checks out nor builds.
	Deployment uint64
	// Image is the image of Deployment.
	Image string
}

// job is a queued run with the pipeline definition it started with.
type job struct {
	run  store.Run
	plan *pipeline.Pipeline
}

// Runner queues runs per pipeline and executes them: one run at a time per
// pipeline, in the order they were queued, and at most MaxRuns at once.
// Enqueue is safe for concurrent use; Run must be called once.
type Runner struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	pending map[string][]job // by pipeline name, oldest first
	busy    map[string]bool  // pipelines with a run executing
	running int
	wake    chan struct{}

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
		cfg:     cfg,
		log:     cfg.Log,
		pending: map[string][]job{},
		busy:    map[string]bool{},
		wake:    make(chan struct{}, 1),
	}
}

// Enqueue records a queued run for req and hands it to the pipeline's lane.
// It returns as soon as the run is stored; the run executes in the
// background once Run is going.
func (r *Runner) Enqueue(req Request) (store.Run, error) {
	if req.Pipeline == nil {
		return store.Run{}, errors.New("queueing run: no pipeline given")
	}
	run := store.Run{
		Pipeline:   req.Pipeline.Name,
		Status:     store.StatusQueued,
		Trigger:    req.Trigger,
		DeliveryID: req.DeliveryID,
		Repo:       req.Repo,
		Ref:        req.Ref,
		Commit:     req.Commit,
		CloneURL:   cloneURL(req.Pipeline, req.CloneURL),
		Message:    req.Message,
		Author:     req.Author,
		Deployment: req.Deployment,
		Image:      req.Image,
	}
	if err := r.cfg.Store.CreateRun(&run); err != nil {
		return store.Run{}, fmt.Errorf("queueing run of pipeline %q: %w", req.Pipeline.Name, err)
	}
	r.push(job{run: run, plan: req.Pipeline})
	r.log.Info("run queued", "run_id", run.ID, "pipeline", run.Pipeline, "commit", run.Commit)
	return run, nil
}

// Recover settles the runs a previous quai process left behind: running
// runs are marked failed, since their containers and workspaces are gone
// with the process, and queued runs are queued again with the pipeline
// definitions loaded now.
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
			r.push(job{run: run, plan: p})
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
// cancels the executing runs and waits for them to clean up.
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		for _, j := range r.startable() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.execute(ctx, j)
				r.done(j.run.Pipeline)
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		}
	}
}

func (r *Runner) push(j job) {
	r.mu.Lock()
	r.pending[j.run.Pipeline] = append(r.pending[j.run.Pipeline], j)
	r.mu.Unlock()
	r.signal()
}

func (r *Runner) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// startable takes the jobs that may start now off the queues and counts
// them as running. Pipelines are visited oldest run first, so a busy
// pipeline does not starve others under the global limit.
func (r *Runner) startable() []job {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []job
	for r.running < r.cfg.MaxRuns {
		var next string
		var oldest uint64
		for name, q := range r.pending {
			if len(q) == 0 || r.busy[name] {
				continue
			}
			if next == "" || q[0].run.ID < oldest {
				next, oldest = name, q[0].run.ID
			}
		}
		if next == "" {
			break
		}
		q := r.pending[next]
		out = append(out, q[0])
		r.pending[next] = q[1:]
		r.busy[next] = true
		r.running++
	}
	return out
}

func (r *Runner) done(pipeline string) {
	r.mu.Lock()
	r.busy[pipeline] = false
	r.running--
	r.mu.Unlock()
	r.signal()
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
	switch {
	case p.CloneURL != "":
		return p.CloneURL
	case payload != "":
		return payload
	default:
		return "https://github.com/" + p.Repo + ".git"
	}
}
