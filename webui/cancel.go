package webui

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/quai-ci/quai/runner"
	"github.com/quai-ci/quai/store"
)

// Canceler cancels queued or running runs. runner.Runner implements it.
type Canceler interface {
	// Cancel stops run runID with reason; see runner.Runner.Cancel for its
	// errors.
	Cancel(runID uint64, reason string) error
}

// apiCancelRun serves POST /api/runs/{id}/cancel and returns 202 with the
// run as it is after the request; a running run stops shortly after.
func (s *Server) apiCancelRun(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Cancels == nil {
		return &httpError{status: http.StatusServiceUnavailable, public: "canceling runs is not available in this server"}
	}
	run, err := s.run(r)
	if err != nil {
		return err
	}
	id, by := run.ID, callerName(r)
	if err := s.cfg.Cancels.Cancel(id, "canceled by "+by); err != nil {
		return cancelError(id, err)
	}
	s.cfg.Log.Info("run canceled", "run_id", id, "pipeline", run.Pipeline, "user", by)
	if run, err = s.cfg.Runs.Run(id); err != nil {
		return fmt.Errorf("loading run %d after canceling it: %w", id, err)
	}
	w.WriteHeader(http.StatusAccepted)
	return writeJSON(w, run)
}

// cancelError maps the runner's rejections to statuses the caller can act
// on.
func cancelError(id uint64, err error) error {
	switch {
	case errors.Is(err, runner.ErrDeploying):
		return &httpError{status: http.StatusConflict, cause: err,
			public: fmt.Sprintf("run %d is deploying and cannot be canceled; the deploy finishes first", id)}
	case errors.Is(err, runner.ErrRunFinished):
		return &httpError{status: http.StatusConflict, cause: err,
			public: fmt.Sprintf("run %d has already finished", id)}
	case errors.Is(err, runner.ErrRunNotHeld):
		return &httpError{status: http.StatusConflict, cause: err,
			public: fmt.Sprintf("run %d is not held by this server's runner and cannot be canceled here", id)}
	case errors.Is(err, store.ErrRunNotFound):
		return &httpError{status: http.StatusNotFound, cause: err, public: fmt.Sprintf("run %d not found", id)}
	default:
		return fmt.Errorf("canceling run %d: %w", id, err)
	}
}
