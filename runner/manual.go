package runner

import (
	"context"
	"errors"
	"fmt"

	"github.com/quai-ci/quai/git"
	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
)

// Triggers of the runs queued by RunManual and RunScheduled, spelled as
// the events that step conditions name.
const (
	TriggerManual   = string(pipeline.EventManual)
	TriggerSchedule = string(pipeline.EventSchedule)
)

// Errors of RunManual and RunScheduled, for callers that map them to HTTP
// statuses.
var (
	// ErrManualDisabled is returned when the pipeline sets "manual: false".
	ErrManualDisabled = errors.New("manual runs are disabled for this pipeline")
	// ErrRefNotResolved is returned, beside the cause, when a ref cannot be
	// resolved to a commit: the ref is invalid, the repository has no such
	// branch or tag, or the repository cannot be read. git.ErrRefNotFound
	// and git.ErrInvalidRef tell the first two apart.
	ErrRefNotResolved = errors.New("ref not resolved")
)

// RunManual queues a run of p for ref, which is a branch or tag name, a
// full ref or a full commit hash as git.ResolveRef accepts them. An empty
// ref names the head of the repository's default branch. The ref is
// resolved once, at the request, and the run builds that commit even if the
// branch moves before the run starts. by names the requester and becomes the
// run's author.
//
// RunManual returns ErrManualDisabled when p sets "manual: false", and an
// error wrapping ErrRefNotResolved when ref does not resolve. It is safe
// for concurrent use.
func (r *Runner) RunManual(ctx context.Context, p *pipeline.Pipeline, ref, by string) (store.Run, error) {
	if !p.On.Manual {
		return store.Run{}, fmt.Errorf("manual run of %q: %w; remove manual: false from its on key to allow them",
			p.Name, ErrManualDisabled)
	}
	resolved, err := r.resolve(ctx, p, ref)
	if err != nil {
		return store.Run{}, fmt.Errorf("manual run of %q: %w", p.Name, err)
	}

	target := resolved.Ref
	if target == "" {
		target = "commit " + resolved.Commit
	}
	return r.Enqueue(Request{
		Pipeline: p,
		Trigger:  TriggerManual,
		Repo:     p.Repo,
		Ref:      resolved.Ref,
		Commit:   resolved.Commit,
		Message:  "manual run of " + target,
		Author:   by,
	})
}

// RunScheduled queues a run of p for the head of the schedule's branch, or
// of the repository's default branch when the schedule names none. The
// branch is looked up as refs/heads/<branch>, so a tag of the same name is
// never built.
//
// When a run of p with trigger "schedule" is still queued or running,
// RunScheduled queues nothing and returns that run with false, so a
// schedule faster than its runs does not pile them up. The check reads the
// store, so it also finds runs queued before a restart. The check and the
// enqueue are not atomic: calls for the same pipeline must not overlap, and
// schedule.Scheduler serializes them.
//
// RunScheduled returns the new run with true, or an error wrapping
// ErrRefNotResolved when the branch does not resolve.
func (r *Runner) RunScheduled(ctx context.Context, p *pipeline.Pipeline, s pipeline.Schedule) (store.Run, bool, error) {
	// NOTE: RunsWithStatus decodes every stored run. The store documents
	// this as well under a second for tens of thousands of runs, and a
	// schedule that fires every few seconds pays it at each activation.
	live, err := r.cfg.Store.RunsWithStatus(store.StatusQueued, store.StatusRunning)
	if err != nil {
		return store.Run{}, false, fmt.Errorf("scheduled run of %q: %w", p.Name, err)
	}
	for _, run := range live {
		if run.Pipeline == p.Name && run.Trigger == TriggerSchedule {
			return run, false, nil
		}
	}

	ref := ""
	if s.Branch != "" {
		ref = "refs/heads/" + s.Branch
	}
	resolved, err := r.resolve(ctx, p, ref)
	if err != nil {
		return store.Run{}, false, fmt.Errorf("scheduled run of %q: %w", p.Name, err)
	}
	zone := s.Timezone
	if zone == "" {
		zone = "UTC"
	}
	run, err := r.Enqueue(Request{
		Pipeline: p,
		Trigger:  TriggerSchedule,
		Repo:     p.Repo,
		Ref:      resolved.Ref,
		Commit:   resolved.Commit,
		Message:  fmt.Sprintf("scheduled run of %s (%q, %s)", resolved.Ref, s.Cron, zone),
	})
	if err != nil {
		return store.Run{}, false, err
	}
	return run, true, nil
}

// resolve finds the commit ref names in p's repository; "" names the head
// of the default branch. Every failure wraps ErrRefNotResolved.
func (r *Runner) resolve(ctx context.Context, p *pipeline.Pipeline, ref string) (git.Resolved, error) {
	url := cloneURL(p, "")
	if ref == "" {
		branch, err := git.DefaultBranch(ctx, url, r.cfg.GitHubToken)
		if err != nil {
			return git.Resolved{}, &refError{err: err}
		}
		ref = "refs/heads/" + branch
	}
	resolved, err := git.ResolveRef(ctx, url, ref, r.cfg.GitHubToken)
	if err != nil {
		return git.Resolved{}, &refError{err: err}
	}
	return resolved, nil
}

// refError marks a resolution failure as ErrRefNotResolved while keeping
// the cause's message, which already names the ref and the repository.
type refError struct{ err error }

func (e *refError) Error() string   { return e.err.Error() }
func (e *refError) Unwrap() []error { return []error{ErrRefNotResolved, e.err} }
