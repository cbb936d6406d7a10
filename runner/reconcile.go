package runner

import (
	"context"
	"errors"

	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
)

// Reconcile brings back apps that a crash of quai left without their
// container. A deploy on a fixed address stops the old container before the
// new one starts; when quai dies in between, the last deployed container
// stays stopped and the half-deployed one may be left behind. For each such
// app, Reconcile removes the containers of the interrupted deploy and
// starts the last deployed container again. Apps behind HAProxy are left
// alone: their old container keeps serving until a switch completes.
func (r *Runner) Reconcile(ctx context.Context, pipelines []*pipeline.Pipeline) {
	for _, p := range pipelines {
		if p.Deploy == nil || p.Deploy.HAProxy != nil {
			continue
		}
		r.reconcileApp(ctx, p)
	}
}

func (r *Runner) reconcileApp(ctx context.Context, p *pipeline.Pipeline) {
	log := r.log.With("pipeline", p.Name, "container", p.Deploy.Container)
	current, err := r.cfg.Store.CurrentDeployment(p.Name)
	if errors.Is(err, store.ErrDeploymentNotFound) {
		return
	}
	if err != nil {
		log.Error("reading the current deployment failed", "error", err)
		return
	}
	all, err := r.appContainers(ctx, p.Deploy.Container)
	if err != nil {
		log.Error("listing the app's containers failed", "error", err)
		return
	}
	var deployed bool
	for _, c := range all {
		if c.ID != current.ContainerID {
			continue
		}
		deployed = true
		if c.Running {
			return
		}
	}
	if !deployed {
		log.Warn("the last deployed container is gone; push or redeploy to start the app", "deployment", current.ID)
		return
	}

	for _, c := range all {
		if c.ID == current.ContainerID {
			continue
		}
		log.Warn("removing a container of an interrupted deploy", "removed", c.Name)
		if err := r.cfg.Engine.Remove(ctx, c.ID); err != nil {
			log.Error("removing a container of an interrupted deploy failed", "removed", c.Name, "error", err)
		}
	}
	if err := r.cfg.Engine.Start(ctx, current.ContainerID); err != nil {
		log.Error("starting the last deployed container again failed", "error", err)
		return
	}
	log.Warn("started the last deployed container again after an interrupted deploy", "deployment", current.ID)
}
