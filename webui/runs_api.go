package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/runner"
	"github.com/quai-ci/quai/store"
)

// maxRunRequest bounds the body of POST /api/pipelines/{name}/runs.
const maxRunRequest = 64 << 10

// Manual starts runs for a chosen ref. runner.Runner implements it.
type Manual interface {
	// RunManual queues a run of p for ref ("" for the default branch's
	// head); by names who asked.
	RunManual(ctx context.Context, p *pipeline.Pipeline, ref, by string) (store.Run, error)
}

// runRequest is the body of POST /api/pipelines/{name}/runs.
type runRequest struct {
	// Ref is a branch, a tag, a full ref or a full commit hash. Empty: the
	// head of the repository's default branch.
	Ref string `json:"ref"`
}

// apiStartRun serves POST /api/pipelines/{name}/runs: it resolves the
// body's ref now and returns 202 with the queued run. An empty body is the
// same as {}.
func (s *Server) apiStartRun(w http.ResponseWriter, r *http.Request) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	p, err := s.pipeline(r)
	if err != nil {
		return err
	}
	if s.cfg.Manual == nil {
		return &httpError{status: http.StatusServiceUnavailable, public: "manual runs are not available in this server"}
	}
	body, err := decodeRunRequest(r.Body)
	if err != nil {
		return err
	}

	run, err := s.cfg.Manual.RunManual(r.Context(), p, body.Ref, requester(r))
	if err != nil {
		return manualError(err)
	}
	s.cfg.Log.Info("manual run queued", "pipeline", p.Name, "run_id", run.ID, "ref", run.Ref,
		"commit", run.Commit, "remote", r.RemoteAddr)
	w.WriteHeader(http.StatusAccepted)
	return writeJSON(w, run)
}

// decodeRunRequest reads exactly one JSON object with known fields, or
// nothing.
func decodeRunRequest(body io.Reader) (runRequest, error) {
	var req runRequest
	dec := json.NewDecoder(io.LimitReader(body, maxRunRequest))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if errors.Is(err, io.EOF) {
		return runRequest{}, nil
	}
	if err == nil && dec.More() {
		err = errors.New("data after the JSON object")
	}
	if err != nil {
		return runRequest{}, &httpError{status: http.StatusBadRequest,
			public: fmt.Sprintf(`invalid JSON body: %v; send {"ref": "<branch, tag or commit>"}`, err)}
	}
	return req, nil
}

// manualError maps the runner's rejections to statuses the caller can act
// on.
func manualError(err error) error {
	switch {
	case errors.Is(err, runner.ErrManualDisabled):
		return &httpError{status: http.StatusConflict, public: err.Error(), cause: err}
	case errors.Is(err, runner.ErrRefNotResolved):
		return &httpError{status: http.StatusUnprocessableEntity, public: err.Error(), cause: err}
	default:
		return err
	}
}
