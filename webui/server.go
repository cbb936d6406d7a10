// Package webui serves quai's HTTP interface: the pages, the JSON API and
// the webhook endpoint.
package webui

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
)

//go:embed templates/*.html
var templateFS embed.FS

// pageSize is how many runs a list shows by default.
const pageSize = 50

// maxPageLog is how much of a log's end the run page shows; the full log
// is one link away, so a 100 MB log never makes a page heavy.
const maxPageLog = 1 << 20

// Runs is the part of the store the interface reads.
type Runs interface {
	ListRuns(pipeline string, limit int, beforeID uint64) ([]store.Run, error)
	Run(id uint64) (store.Run, error)
	LogSize(runID uint64) (int64, error)
	CopyLog(runID uint64, offset int64, w io.Writer) (int64, error)
}

// Config holds the server's dependencies.
type Config struct {
	Runs Runs
	// Pipelines returns the pipelines loaded now.
	Pipelines   func() []*pipeline.Pipeline
	Deployments Deployments
	Deploys     Deploys
	// Manual serves POST /api/pipelines/{name}/runs; nil answers 503.
	Manual Manual
	// Webhook serves POST /hooks/github.
	Webhook http.Handler
	Log     *slog.Logger
	// Version is shown in the page footer and /healthz.
	Version string
}

// Server routes quai's HTTP requests. It is safe for concurrent use.
type Server struct {
	cfg   Config
	pages *template.Template
	mux   *http.ServeMux
}

// New parses the embedded templates and builds the routes.
func New(cfg Config) (*Server, error) {
	pages, err := template.New("").Funcs(template.FuncMap{
		"ago":      ago,
		"duration": func(r store.Run) string { return formatDuration(r.Duration(time.Now())) },
		"short":    short,
	}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parsing page templates: %w", err)
	}
	s := &Server{cfg: cfg, pages: pages, mux: http.NewServeMux()}
	s.mux.Handle("POST /hooks/github", cfg.Webhook)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.handle("GET /{$}", s.runList)
	s.handle("GET /runs/{id}", s.runPage)
	s.handle("GET /api/runs", s.apiRuns)
	s.handle("GET /api/runs/{id}", s.apiRun)
	s.handle("GET /api/runs/{id}/log", s.apiRunLog)
	s.handle("GET /api/pipelines", s.apiPipelines)
	s.handle("GET /api/pipelines/{name}/deployments", s.apiDeployments)
	s.handle("POST /api/pipelines/{name}/redeploy", s.apiRedeploy)
	s.handle("POST /api/pipelines/{name}/rollback", s.apiRollback)
	s.handle("POST /api/pipelines/{name}/runs", s.apiStartRun)
	return s, nil
}

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

// httpError is an error with a status and a message that is safe to show.
type httpError struct {
	status int
	public string
	cause  error
}

func (e *httpError) Error() string {
	if e.cause != nil {
		return e.public + ": " + e.cause.Error()
	}
	return e.public
}

func (e *httpError) Unwrap() error { return e.cause }

// handle adapts a handler that returns an error: a *httpError gives its
// status and public message; anything else is a 500 whose cause is logged,
// not shown.
func (s *Server) handle(pattern string, h func(http.ResponseWriter, *http.Request) error) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var he *httpError
		if !errors.As(err, &he) {
			he = &httpError{status: http.StatusInternalServerError, public: "internal error; see quai's log", cause: err}
		}
		if he.status >= 500 {
			s.cfg.Log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		}
		http.Error(w, he.public, he.status)
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "ok %s\n", s.cfg.Version)
}

func (s *Server) runList(w http.ResponseWriter, r *http.Request) error {
	runs, err := s.cfg.Runs.ListRuns("", pageSize, 0)
	if err != nil {
		return fmt.Errorf("listing runs: %w", err)
	}
	return s.render(w, "runs.html", map[string]any{"Runs": runs, "Version": s.cfg.Version})
}

func (s *Server) runPage(w http.ResponseWriter, r *http.Request) error {
	run, err := s.run(r)
	if err != nil {
		return err
	}
	size, err := s.cfg.Runs.LogSize(run.ID)
	if err != nil {
		return fmt.Errorf("reading log size of run %d: %w", run.ID, err)
	}
	offset := max(0, size-maxPageLog)
	var buf bytesBuffer
	if _, err := s.cfg.Runs.CopyLog(run.ID, offset, &buf); err != nil {
		return fmt.Errorf("reading log of run %d: %w", run.ID, err)
	}
	return s.render(w, "run.html", map[string]any{
		"Run":       run,
		"Log":       buf.String(),
		"Truncated": offset > 0,
		"Size":      size,
		"Version":   s.cfg.Version,
	})
}

func (s *Server) apiRuns(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), pageSize)
	if err != nil {
		return err
	}
	if limit < 1 {
		return &httpError{status: http.StatusBadRequest, public: "invalid limit 0: ask for at least 1 run"}
	}
	before, err := intParam(q.Get("before"), 0)
	if err != nil {
		return err
	}
	runs, err := s.cfg.Runs.ListRuns(q.Get("pipeline"), min(limit, 500), uint64(before))
	if err != nil {
		return fmt.Errorf("listing runs: %w", err)
	}
	if runs == nil {
		runs = []store.Run{}
	}
	return writeJSON(w, runs)
}

func (s *Server) apiRun(w http.ResponseWriter, r *http.Request) error {
	run, err := s.run(r)
	if err != nil {
		return err
	}
	return writeJSON(w, run)
}

func (s *Server) apiRunLog(w http.ResponseWriter, r *http.Request) error {
	run, err := s.run(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if _, err := s.cfg.Runs.CopyLog(run.ID, 0, w); err != nil {
		// The status line is gone once bytes were written; the log line is
		// all that is left to report with.
		s.cfg.Log.Error("sending run log failed", "run_id", run.ID, "error", err)
	}
	return nil
}

// run loads the run named by the {id} path value.
func (s *Server) run(r *http.Request) (store.Run, error) {
	raw := r.PathValue("id")
	id, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || id == 0 {
		return store.Run{}, &httpError{status: http.StatusBadRequest, public: fmt.Sprintf("invalid run id %q: want a positive number", raw)}
	}
	run, err := s.cfg.Runs.Run(id)
	if errors.Is(err, store.ErrRunNotFound) {
		return store.Run{}, &httpError{status: http.StatusNotFound, public: fmt.Sprintf("run %d not found", id)}
	}
	if err != nil {
		return store.Run{}, fmt.Errorf("loading run %d: %w", id, err)
	}
	return run, nil
}

func (s *Server) render(w http.ResponseWriter, name string, data any) error {
	var buf bytesBuffer
	if err := s.pages.ExecuteTemplate(&buf, name, data); err != nil {
		return fmt.Errorf("rendering %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, err := w.Write(buf.Bytes())
	return err
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func intParam(raw string, def int) (int, error) {
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 0 {
		return 0, &httpError{status: http.StatusBadRequest, public: fmt.Sprintf("invalid number %q: want a non-negative integer", raw)}
	}
	return n, nil
}
