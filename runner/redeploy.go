package runner

import (
	"context"
	"errors"
	"fmt"

	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
)

// Errors of Redeploy and Rollback, for callers that map them to answers.
var (
	// ErrNotDeployed is returned when the pipeline has no deployment yet.
	ErrNotDeployed = errors.New("pipeline has no deployment")
	// ErrNoDeploy is returned when the pipeline has no deploy block.
	ErrNoDeploy = errors.New("pipeline has no deploy block")
	// ErrImageGone is returned when a deployment's image is no longer kept.
	ErrImageGone = errors.New("image no longer kept")
	// ErrOtherPipeline is returned when a deployment belongs to another
	// pipeline.
	ErrOtherPipeline = errors.New("deployment belongs to another pipeline")
)

// Redeploy queues a run that deploys the image deployed now again, with
// fresh Vault credentials and no rebuild. by names who asked.
func (r *Runner) Redeploy(ctx context.Context, p *pipeline.Pipeline, by string) (store.Run, error) {
	if p.Deploy == nil {
		return store.Run{}, fmt.Errorf("redeploying %q: %w", p.Name, ErrNoDeploy)
	}
	current, err := r.cfg.Store.CurrentDeployment(p.Name)
	if errors.Is(err, store.ErrDeploymentNotFound) {
		return store.Run{}, fmt.Errorf("redeploying %q: %w; push a commit first", p.Name, ErrNotDeployed)
	}
	if err != nil {
		return store.Run{}, fmt.Errorf("redeploying %q: %w", p.Name, err)
	}
	return r.enqueueDeployment(ctx, p, current, "redeploy", by)
}

// Rollback queues a run that deploys the image of an earlier deployment,
// as long as that image is still kept.
func (r *Runner) Rollback(ctx context.Context, p *pipeline.Pipeline, deploymentID uint64, by string) (store.Run, error) {
	if p.Deploy == nil {
		return store.Run{}, fmt.Errorf("rolling back %q: %w", p.Name, ErrNoDeploy)
	}
	dep, err := r.cfg.Store.Deployment(deploymentID)
	if err != nil {
		return store.Run{}, fmt.Errorf("rolling back %q: %w", p.Name, err)
	}
	if dep.Pipeline != p.Name {
		return store.Run{}, fmt.Errorf("rolling back %q to deployment %d: %w (%q)", p.Name, deploymentID, ErrOtherPipeline, dep.Pipeline)
	}
	return r.enqueueDeployment(ctx, p, dep, "rollback", by)
}

// Kept reports whether a deployment's image is among the images kept for
// redeploy and rollback: one of the newest keep_images deployments, and
// still on the Docker host.
func (r *Runner) Kept(ctx context.Context, p *pipeline.Pipeline, dep store.Deployment) (bool, error) {
	if p.Deploy == nil {
		return false, nil
	}
	newest, err := r.cfg.Store.Deployments(p.Name, p.Deploy.KeepImages)
	if err != nil {
		return false, err
	}
	for _, d := range newest {
		if d.Image == dep.Image {
			return r.cfg.Engine.ImageExists(ctx, dep.Image)
		}
	}
	return false, nil
}

func (r *Runner) enqueueDeployment(ctx context.Context, p *pipeline.Pipeline, dep store.Deployment, trigger, by string) (store.Run, error) {
	kept, err := r.Kept(ctx, p, dep)
	if err != nil {
		return store.Run{}, fmt.Errorf("checking image %s: %w", dep.Image, err)
	}
	if !kept {
		return store.Run{}, fmt.Errorf("deployment %d of %q: image %s: %w (the newest %d deployments keep theirs)",
			dep.ID, p.Name, dep.Image, ErrImageGone, p.Deploy.KeepImages)
	}
	run, err := r.cfg.Store.Run(dep.RunID)
	ref := ""
	if err == nil {
		ref = run.Ref
	}
	return r.Enqueue(Request{
		Pipeline:   p,
		Trigger:    trigger,
		Repo:       p.Repo,
		Ref:        ref,
		Commit:     dep.Commit,
		Message:    fmt.Sprintf("%s of deployment %d", trigger, dep.ID),
		Author:     by,
		Deployment: dep.ID,
		Image:      dep.Image,
	})
}
