package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/runner"
	"github.com/quai-ci/quai/store"
)

// deploymentsShown is how many deployments the API lists per pipeline.
const deploymentsShown = 50

// Deploys starts redeploy and rollback runs.
type Deploys interface {
	Redeploy(ctx context.Context, p *pipeline.Pipeline, by string) (store.Run, error)
	Rollback(ctx context.Context, p *pipeline.Pipeline, deploymentID uint64, by string) (store.Run, error)
	Kept(ctx context.Context, p *pipeline.Pipeline, dep store.Deployment) (bool, error)
}

// Deployments is the part of the store that lists deployments.
type Deployments interface {
	Deployments(pipeline string, limit int) ([]store.Deployment, error)
}

// pipelineSummary is one entry of GET /api/pipelines.
type pipelineSummary struct {
	Name     string            `json:"name"`
	Repo     string            `json:"repo"`
	File     string            `json:"file"`
	Deploys  bool              `json:"deploys"`
	Current  *store.Deployment `json:"current_deployment"`
	LastRun  *store.Run        `json:"last_run"`
	Backend  string            `json:"haproxy_backend,omitempty"`
	Triggers []string          `json:"triggers"`
}

// deploymentEntry is one entry of GET /api/pipelines/{name}/deployments.
type deploymentEntry struct {
	store.Deployment
	// Kept says whether the deployment's image is still kept, so a
	// rollback to it can be asked for.
	Kept bool `json:"kept"`
}

func (s *Server) apiPipelines(w http.ResponseWriter, r *http.Request) error {
	list := []pipelineSummary{}
	for _, p := range s.cfg.Pipelines() {
		sum := pipelineSummary{Name: p.Name, Repo: p.Repo, File: p.File, Deploys: p.Deploy != nil, Triggers: []string{}}
		if p.On.Push != nil {
			sum.Triggers = append(sum.Triggers, "push")
		}
		if p.Deploy != nil && p.Deploy.HAProxy != nil {
			sum.Backend = p.Deploy.HAProxy.Backend
		}
		deps, err := s.cfg.Deployments.Deployments(p.Name, 1)
		if err != nil {
			return fmt.Errorf("loading deployments of %q: %w", p.Name, err)
		}
		if len(deps) > 0 {
			sum.Current = &deps[0]
		}
		runs, err := s.cfg.Runs.ListRuns(p.Name, 1, 0)
		if err != nil {
			return fmt.Errorf("loading runs of %q: %w", p.Name, err)
		}
		if len(runs) > 0 {
			sum.LastRun = &runs[0]
		}
		list = append(list, sum)
	}
	return writeJSON(w, list)
}

func (s *Server) apiDeployments(w http.ResponseWriter, r *http.Request) error {
	p, err := s.pipeline(r)
	if err != nil {
		return err
	}
	deps, err := s.cfg.Deployments.Deployments(p.Name, deploymentsShown)
	if err != nil {
		return fmt.Errorf("loading deployments of %q: %w", p.Name, err)
	}
	list := make([]deploymentEntry, 0, len(deps))
	for _, d := range deps {
		kept, err := s.cfg.Deploys.Kept(r.Context(), p, d)
		if err != nil {
			return fmt.Errorf("checking the image of deployment %d: %w", d.ID, err)
		}
		list = append(list, deploymentEntry{Deployment: d, Kept: kept})
	}
	return writeJSON(w, list)
}

func (s *Server) apiRedeploy(w http.ResponseWriter, r *http.Request) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	p, err := s.pipeline(r)
	if err != nil {
		return err
	}
	run, err := s.cfg.Deploys.Redeploy(r.Context(), p, requester(r))
	if err != nil {
		return deployError(err)
	}
	s.cfg.Log.Info("redeploy queued", "pipeline", p.Name, "run_id", run.ID, "remote", r.RemoteAddr)
	w.WriteHeader(http.StatusAccepted)
	return writeJSON(w, run)
}

func (s *Server) apiRollback(w http.ResponseWriter, r *http.Request) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	p, err := s.pipeline(r)
	if err != nil {
		return err
	}
	var body struct {
		Deployment string `json:"deployment"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body); err != nil {
		return &httpError{status: http.StatusBadRequest, public: fmt.Sprintf(`invalid JSON body: %v; send {"deployment": "<id>"}`, err)}
	}
	id, err := strconv.ParseUint(body.Deployment, 10, 64)
	if err != nil || id == 0 {
		return &httpError{status: http.StatusBadRequest, public: fmt.Sprintf(`invalid deployment %q: send {"deployment": "<id>"} with an id from GET /api/pipelines/%s/deployments`, body.Deployment, p.Name)}
	}
	run, err := s.cfg.Deploys.Rollback(r.Context(), p, id, requester(r))
	if err != nil {
		return deployError(err)
	}
	s.cfg.Log.Info("rollback queued", "pipeline", p.Name, "run_id", run.ID, "deployment", id, "remote", r.RemoteAddr)
	w.WriteHeader(http.StatusAccepted)
	return writeJSON(w, run)
}

// pipeline finds the loaded pipeline named by the {name} path value.
func (s *Server) pipeline(r *http.Request) (*pipeline.Pipeline, error) {
	name := r.PathValue("name")
	for _, p := range s.cfg.Pipelines() {
		if p.Name == name {
			return p, nil
		}
	}
	return nil, &httpError{status: http.StatusNotFound, public: fmt.Sprintf("pipeline %q not found; GET /api/pipelines lists the loaded ones", name)}
}

// deployError maps the runner's refusals to answers the caller can act on.
func deployError(err error) error {
	switch {
	case errors.Is(err, store.ErrDeploymentNotFound), errors.Is(err, runner.ErrOtherPipeline):
		return &httpError{status: http.StatusNotFound, public: err.Error()}
	case errors.Is(err, runner.ErrNotDeployed), errors.Is(err, runner.ErrImageGone), errors.Is(err, runner.ErrNoDeploy):
		return &httpError{status: http.StatusConflict, public: err.Error()}
	default:
		return err
	}
}

// requireJSON rejects state-changing API calls that are not JSON. A
// browser sends a JSON body to another origin only after a CORS preflight,
// which quai never grants, so a page elsewhere cannot trigger a deploy.
func requireJSON(r *http.Request) error {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType != "application/json" {
		return &httpError{status: http.StatusUnsupportedMediaType, public: "send Content-Type: application/json"}
	}
	return nil
}

// requester names who asked for a run, for the run's record.
func requester(r *http.Request) string {
	return callerName(r)
}

// deliveriesShown is how many webhook deliveries GET /api/deliveries lists.
const deliveriesShown = 100

// apiDeliveries lists the newest webhook deliveries quai accepted and what
// each started. Rejected requests are not stored, so they are not here.
func (s *Server) apiDeliveries(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Deliveries == nil {
		return &httpError{status: http.StatusServiceUnavailable, public: "deliveries are not available"}
	}
	list, err := s.cfg.Deliveries.ListDeliveries(deliveriesShown)
	if err != nil {
		return fmt.Errorf("listing deliveries: %w", err)
	}
	if list == nil {
		list = []store.Delivery{}
	}
	return writeJSON(w, list)
}
