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

	"github.com/quai-ci/quai/hook"
	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
)

//go:embed templates/*.html
var templateFS embed.FS

// pageSize is how many runs a list shows by default.
const pageSize = 50

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
	// Cancels serves POST /api/runs/{id}/cancel and the Cancel buttons;
	// nil answers 503.
	Cancels Canceler
	// Deliveries lists webhook deliveries for GET /deliveries. Nil: the
	// page shows none.
	Deliveries DeliveryLister
	// Containers reports the deployed containers' state on the dashboard.
	// Nil: the dashboard shows no container state.
	Containers ContainerStates
	// LogNotify wakes the live log view when a run's log or record
	// changes. Nil: the view checks the store every second instead.
	LogNotify LogNotifier
	// NextRuns returns the next activation of each schedule of a pipeline,
	// in the order the pipeline lists them; schedule.Scheduler.Next fits.
	// Nil: the pipeline page shows no next times.
	NextRuns func(pipeline string) []time.Time
	// Rejected returns the webhook requests rejected lately, newest first;
	// hook.Handler.Rejected fits. Nil: GET /deliveries shows none.
	Rejected func() []hook.Rejection
	// Closing, once closed, ends every live log stream, so that
	// http.Server.Shutdown does not wait for them until its timeout. Pass
	// the daemon context's Done(). Nil: streams end only with their run or
	// client.
	Closing <-chan struct{}
	// Webhook serves POST /hooks/github.
	Webhook http.Handler
	// Auth decides who may use the server.
	Auth AuthConfig
	Log  *slog.Logger
	// Version is shown in the page footer and /healthz.
	Version string
}

// Server routes quai's HTTP requests. It is safe for concurrent use.
type Server struct {
	cfg     Config
	pages   *template.Template
	mux     *http.ServeMux
	auth    *authState
	handler http.Handler
}

// New parses the embedded templates and builds the routes. It returns an
// error when cfg.Auth is neither Disabled nor complete.
func New(cfg Config) (*Server, error) {
	auth, err := newAuthState(cfg.Auth)
	if err != nil {
		return nil, err
	}
	pages, err := template.New("").Funcs(template.FuncMap{
		"ago":      ago,
		"duration": func(r store.Run) string { return formatDuration(r.Duration(time.Now())) },
		"short":    short,
	}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parsing page templates: %w", err)
	}
	s := &Server{cfg: cfg, pages: pages, mux: http.NewServeMux(), auth: auth}
	// Every route sits behind authenticate, which lets the open paths
	// (webhook, health check, login, static files) through; see isOpen.
	s.handler = s.authenticate(s.mux)
	s.mux.Handle("POST /hooks/github", cfg.Webhook)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.handle("GET /login", s.loginPage)
	s.handle("POST /login", s.login)
	s.handle("POST /logout", s.logout)
	s.handle("GET /logout", s.logoutPage)
	s.registerPages()
	s.handle("GET /api/runs", s.apiRuns)
	s.handle("GET /api/runs/{id}", s.apiRun)
	s.handle("GET /api/runs/{id}/log", s.apiRunLog)
	s.handle("GET /api/pipelines", s.apiPipelines)
	s.handle("GET /api/deliveries", s.apiDeliveries)
	s.handle("GET /api/pipelines/{name}/deployments", s.apiDeployments)
	s.handle("POST /api/pipelines/{name}/redeploy", s.apiRedeploy)
	s.handle("POST /api/pipelines/{name}/rollback", s.apiRollback)
	s.handle("POST /api/pipelines/{name}/runs", s.apiStartRun)
	s.handle("POST /api/runs/{id}/cancel", s.apiCancelRun)
	return s, nil
}

// ServeHTTP serves one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// Pages must not be framed by other sites, which would allow
	// clickjacking of the deploy buttons.
	w.Header().Set("X-Frame-Options", "DENY")
	s.handler.ServeHTTP(w, r)
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
