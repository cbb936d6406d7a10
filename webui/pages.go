package webui

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/quai-ci/quai/hook"
	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
)

//go:embed static
var staticFS embed.FS

// Sizes of the lists the pages show.
const (
	// deploymentsOnPage bounds the pipeline page's deployment history,
	// because checking whether an image is kept asks Docker once per row.
	deploymentsOnPage = 20
	deliveriesOnPage  = 100
	// liveRunsChecked is how many of a pipeline's newest runs the
	// dashboard looks through for queued or running ones.
	liveRunsChecked = 10
)

// DeliveryLister lists webhook deliveries. store.Store implements it.
type DeliveryLister interface {
	// ListDeliveries returns at most limit deliveries, newest first.
	ListDeliveries(limit int) ([]store.Delivery, error)
}

// LogNotifier wakes followers of a run's log. store.Store implements it.
type LogNotifier interface {
	// LogNotify returns a channel that receives a value after the run's
	// log or record changes, and a function that unsubscribes.
	LogNotify(runID uint64) (<-chan struct{}, func())
}

// crossOrigin rejects form posts that a page on another site makes the
// browser send. It complements the CSRF token, which needs a session.
var crossOrigin = http.NewCrossOriginProtection()

// githubRepo matches the "owner/name" form that commit links are built
// from; any other repository value gets no link.
var githubRepo = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)

// hexCommit matches a full SHA-1 or SHA-256 commit hash.
var hexCommit = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// registerPages adds the HTML pages, their form actions, the live log
// stream and the static files to the routes. New calls it; a second call
// does nothing, because ServeMux panics on a pattern registered twice.
func (s *Server) registerPages() {
	probe, _ := http.NewRequest(http.MethodGet, "/deliveries", nil)
	if _, pattern := s.mux.Handler(probe); pattern == "GET /deliveries" {
		return
	}
	s.mux.Handle("GET /static/", http.FileServerFS(staticFS))
	s.handle("GET /{$}", s.dashboardPage)
	s.handle("GET /pipelines/{name}", s.pipelinePage)
	s.handle("GET /runs/{id}", s.runPage)
	s.handle("GET /runs/{id}/log", s.runLogPart)
	s.handle("GET /runs/{id}/events", s.runEvents)
	s.handle("GET /deliveries", s.deliveriesPage)
	s.handle("POST /pipelines/{name}/run", s.formStartRun)
	s.handle("POST /pipelines/{name}/redeploy", s.formRedeploy)
	s.handle("POST /pipelines/{name}/rollback", s.formRollback)
	s.handle("POST /runs/{id}/cancel", s.formCancel)
}

// page contains the fields every page template receives besides its own
// data.
type page struct {
	Title   string
	Version string
	// CSRF is the session's token for the forms' csrf_token field.
	CSRF string
}

func (s *Server) page(r *http.Request, title string) page {
	return page{Title: title, Version: s.cfg.Version, CSRF: s.csrf(r)}
}

// runView is a run with the values its templates show.
type runView struct {
	store.Run
	Branch    string
	Age       string
	Took      string
	CommitURL string
	Live      bool
}

func newRunView(r store.Run) runView {
	return runView{
		Run:       r,
		Branch:    refName(r.Ref),
		Age:       ago(r.CreatedAt),
		Took:      formatDuration(r.Duration(time.Now())),
		CommitURL: commitURL(r.Repo, r.Commit),
		Live:      !r.Status.Final(),
	}
}

// refName shortens "refs/heads/main" to "main" and "refs/tags/v1" to
// "v1"; other refs stay whole.
func refName(ref string) string {
	for _, prefix := range []string{"refs/heads/", "refs/tags/"} {
		if name, ok := strings.CutPrefix(ref, prefix); ok {
			return name
		}
	}
	return ref
}

// commitURL links a commit on GitHub, or returns "" when repo or commit do
// not have GitHub's form.
func commitURL(repo, commit string) string {
	if !githubRepo.MatchString(repo) || !hexCommit.MatchString(commit) {
		return ""
	}
	return "https://github.com/" + repo + "/commit/" + commit
}

// dashboardRow is one pipeline on the dashboard.
type dashboardRow struct {
	Name, Repo string
	Last       *runView
	Current    *store.Deployment
	Since      string
	// Health is the state of the deployed container as Docker reports it:
	// "running", "healthy", "exited (code 1)", "missing", or empty when
	// quai cannot ask Docker.
	Health string
	// Live are the queued and running runs among the newest ones.
	Live []runView
}

func (s *Server) dashboardPage(w http.ResponseWriter, r *http.Request) error {
	var rows []dashboardRow
	for _, p := range s.cfg.Pipelines() {
		row := dashboardRow{Name: p.Name, Repo: p.Repo}
		runs, err := s.cfg.Runs.ListRuns(p.Name, liveRunsChecked, 0)
		if err != nil {
			return fmt.Errorf("listing runs of %q: %w", p.Name, err)
		}
		if len(runs) > 0 {
			last := newRunView(runs[0])
			row.Last = &last
		}
		for _, run := range runs {
			if !run.Status.Final() {
				row.Live = append(row.Live, newRunView(run))
			}
		}
		deps, err := s.cfg.Deployments.Deployments(p.Name, 1)
		if err != nil {
			return fmt.Errorf("loading deployments of %q: %w", p.Name, err)
		}
		if len(deps) > 0 {
			row.Current = &deps[0]
			row.Since = ago(deps[0].CreatedAt)
			row.Health = s.containerHealth(r.Context(), deps[0].ContainerID)
		}
		rows = append(rows, row)
	}
	return s.render(w, "dashboard.html", struct {
		page
		Pipelines []dashboardRow
	}{s.page(r, "Dashboard"), rows})
}

// deploymentRow is one deployment on the pipeline page.
type deploymentRow struct {
	store.Deployment
	Age       string
	CommitURL string
	// Current marks the deployment in service now.
	Current bool
	// Kept reports whether a rollback to it is possible. NotKept is the
	// reason when it is not.
	Kept    bool
	NotKept string
}

// scheduleRow is one schedule of a pipeline with its next activation.
type scheduleRow struct {
	pipeline.Schedule
	Next string
}

func (s *Server) pipelinePage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.pipeline(r)
	if err != nil {
		return err
	}
	before, err := intParam(r.URL.Query().Get("before"), 0)
	if err != nil {
		return err
	}
	runs, err := s.cfg.Runs.ListRuns(p.Name, pageSize, uint64(before))
	if err != nil {
		return fmt.Errorf("listing runs of %q: %w", p.Name, err)
	}
	views := make([]runView, len(runs))
	for i, run := range runs {
		views[i] = newRunView(run)
	}
	var older uint64
	if len(runs) == pageSize {
		older = runs[len(runs)-1].ID
	}
	deps, err := s.deploymentRows(r.Context(), p)
	if err != nil {
		return err
	}
	definition, err := pipelineYAML(p)
	if err != nil {
		return err
	}
	return s.render(w, "pipeline.html", struct {
		page
		Pipeline    *pipeline.Pipeline
		Runs        []runView
		Older       uint64
		Paged       bool
		Deployments []deploymentRow
		Schedules   []scheduleRow
		Definition  string
	}{s.page(r, p.Name), p, views, older, before > 0, deps, s.scheduleRows(p), definition})
}

// pipelineYAML encodes p as the pipeline page shows it. SecretRef encodes
// itself as its reference, so no secret value can appear.
func pipelineYAML(p *pipeline.Pipeline) (string, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(p); err != nil {
		return "", fmt.Errorf("encoding pipeline %q as YAML: %w", p.Name, err)
	}
	if err := enc.Close(); err != nil {
		return "", fmt.Errorf("encoding pipeline %q as YAML: %w", p.Name, err)
	}
	return buf.String(), nil
}

func (s *Server) deploymentRows(ctx context.Context, p *pipeline.Pipeline) ([]deploymentRow, error) {
	deps, err := s.cfg.Deployments.Deployments(p.Name, deploymentsOnPage)
	if err != nil {
		return nil, fmt.Errorf("loading deployments of %q: %w", p.Name, err)
	}
	rows := make([]deploymentRow, len(deps))
	for i, d := range deps {
		row := deploymentRow{Deployment: d, Age: ago(d.CreatedAt), CommitURL: commitURL(p.Repo, d.Commit), Current: i == 0}
		switch {
		case row.Current:
			row.NotKept = "in service now; use Redeploy"
		case s.cfg.Deploys == nil:
			row.NotKept = "rollback is not available in this server"
		default:
			kept, err := s.cfg.Deploys.Kept(ctx, p, d)
			if err != nil {
				return nil, fmt.Errorf("checking the image of deployment %d: %w", d.ID, err)
			}
			row.Kept = kept
			if !kept {
				row.NotKept = "image no longer kept: only the newest images of a pipeline stay on the host"
			}
		}
		rows[i] = row
	}
	return rows, nil
}

func (s *Server) scheduleRows(p *pipeline.Pipeline) []scheduleRow {
	var next []time.Time
	if s.cfg.NextRuns != nil {
		next = s.cfg.NextRuns(p.Name)
	}
	rows := make([]scheduleRow, len(p.On.Schedule))
	for i, sched := range p.On.Schedule {
		rows[i] = scheduleRow{Schedule: sched}
		if i < len(next) && !next[i].IsZero() {
			rows[i].Next = next[i].Format("2006-01-02 15:04 MST")
		}
	}
	return rows
}

// stepRow is one step on the run page.
type stepRow struct {
	store.StepResult
	Took string
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
	chunk, err := s.readLogBefore(run.ID, size)
	if err != nil {
		return err
	}
	view := newRunView(run)
	if view.Live {
		// The live view continues at a line boundary, so the page ends at
		// one too.
		chunk.Data = completeLines(chunk.Data)
		chunk.End = chunk.Start + int64(len(chunk.Data))
	}
	steps := make([]stepRow, len(run.Steps))
	for i, st := range run.Steps {
		steps[i] = stepRow{StepResult: st, Took: stepDuration(st)}
	}
	return s.render(w, "run.html", struct {
		page
		Run   runView
		Steps []stepRow
		Log   logView
	}{s.page(r, fmt.Sprintf("Run %d", run.ID)), view, steps, newLogView(run.ID, chunk, size)})
}

func stepDuration(st store.StepResult) string {
	switch {
	case st.StartedAt.IsZero():
		return ""
	case st.FinishedAt.IsZero():
		return formatDuration(time.Since(st.StartedAt))
	default:
		return formatDuration(st.FinishedAt.Sub(st.StartedAt))
	}
}

// runLogPart serves GET /runs/{id}/log?before=<offset>: the part of the
// log that ends at offset, as a page, or as a bare HTML fragment with
// "&fragment=1" for the page's script, which reads the fragment's start
// offset from the X-Log-Start header.
func (s *Server) runLogPart(w http.ResponseWriter, r *http.Request) error {
	run, err := s.run(r)
	if err != nil {
		return err
	}
	size, err := s.cfg.Runs.LogSize(run.ID)
	if err != nil {
		return fmt.Errorf("reading log size of run %d: %w", run.ID, err)
	}
	raw := r.URL.Query().Get("before")
	before, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || before < 0 || before > size {
		return &httpError{status: http.StatusBadRequest,
			public: fmt.Sprintf("invalid before=%q: want a byte offset between 0 and the log size %d", raw, size)}
	}
	chunk, err := s.readLogBefore(run.ID, before)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("fragment") == "1" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("X-Log-Start", strconv.FormatInt(chunk.Start, 10))
		_, err := w.Write([]byte(renderLog(chunk.Data)))
		return err
	}
	return s.render(w, "logpart.html", struct {
		page
		Run runView
		Log logView
	}{s.page(r, fmt.Sprintf("Log of run %d", run.ID)), newRunView(run), newLogView(run.ID, chunk, size)})
}

// logView is the part of a log a page shows.
type logView struct {
	RunID      uint64
	Start, End int64
	Size       int64
	HTML       template.HTML
}

func newLogView(runID uint64, c logChunk, size int64) logView {
	return logView{RunID: runID, Start: c.Start, End: c.End, Size: size, HTML: renderLog(c.Data)}
}

// deliveryRow is one webhook delivery on the deliveries page.
type deliveryRow struct {
	store.Delivery
	Branch string
	Age    string
}

func (s *Server) deliveriesPage(w http.ResponseWriter, r *http.Request) error {
	var rows []deliveryRow
	if s.cfg.Deliveries != nil {
		list, err := s.cfg.Deliveries.ListDeliveries(deliveriesOnPage)
		if err != nil {
			return fmt.Errorf("listing deliveries: %w", err)
		}
		for _, d := range list {
			rows = append(rows, deliveryRow{Delivery: d, Branch: refName(d.Ref), Age: ago(d.ReceivedAt)})
		}
	}
	var rejected []hook.Rejection
	if s.cfg.Rejected != nil {
		rejected = s.cfg.Rejected()
	}
	return s.render(w, "deliveries.html", struct {
		page
		Deliveries []deliveryRow
		Rejected   []hook.Rejection
	}{s.page(r, "Deliveries"), rows, rejected})
}

// checkForm rejects a form post that another site made the browser send.
func checkForm(r *http.Request) error {
	if err := crossOrigin.Check(r); err != nil {
		return &httpError{status: http.StatusForbidden, public: "cross-origin form post rejected: use the buttons on quai's own pages", cause: err}
	}
	return nil
}

// redirectToRun sends the browser to the run page after a button press;
// 303 makes it load the page with GET.
func redirectToRun(w http.ResponseWriter, r *http.Request, id uint64) error {
	http.Redirect(w, r, "/runs/"+strconv.FormatUint(id, 10), http.StatusSeeOther)
	return nil
}

func (s *Server) formStartRun(w http.ResponseWriter, r *http.Request) error {
	if err := checkForm(r); err != nil {
		return err
	}
	p, err := s.pipeline(r)
	if err != nil {
		return err
	}
	if s.cfg.Manual == nil {
		return &httpError{status: http.StatusServiceUnavailable, public: "manual runs are not available in this server"}
	}
	ref := strings.TrimSpace(r.PostFormValue("ref"))
	run, err := s.cfg.Manual.RunManual(r.Context(), p, ref, callerName(r))
	if err != nil {
		return manualError(err)
	}
	s.cfg.Log.Info("manual run queued", "pipeline", p.Name, "run_id", run.ID, "ref", run.Ref,
		"commit", run.Commit, "user", callerName(r))
	return redirectToRun(w, r, run.ID)
}

func (s *Server) formRedeploy(w http.ResponseWriter, r *http.Request) error {
	if err := checkForm(r); err != nil {
		return err
	}
	p, err := s.pipeline(r)
	if err != nil {
		return err
	}
	if s.cfg.Deploys == nil {
		return &httpError{status: http.StatusServiceUnavailable, public: "redeploys are not available in this server"}
	}
	run, err := s.cfg.Deploys.Redeploy(r.Context(), p, callerName(r))
	if err != nil {
		return deployError(err)
	}
	s.cfg.Log.Info("redeploy queued", "pipeline", p.Name, "run_id", run.ID, "user", callerName(r))
	return redirectToRun(w, r, run.ID)
}

func (s *Server) formRollback(w http.ResponseWriter, r *http.Request) error {
	if err := checkForm(r); err != nil {
		return err
	}
	p, err := s.pipeline(r)
	if err != nil {
		return err
	}
	if s.cfg.Deploys == nil {
		return &httpError{status: http.StatusServiceUnavailable, public: "rollbacks are not available in this server"}
	}
	raw := r.PostFormValue("deployment")
	id, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || id == 0 {
		return &httpError{status: http.StatusBadRequest,
			public: fmt.Sprintf("invalid deployment %q: choose one on the pipeline page", raw)}
	}
	run, err := s.cfg.Deploys.Rollback(r.Context(), p, id, callerName(r))
	if err != nil {
		return deployError(err)
	}
	s.cfg.Log.Info("rollback queued", "pipeline", p.Name, "run_id", run.ID, "deployment", id, "user", callerName(r))
	return redirectToRun(w, r, run.ID)
}

func (s *Server) formCancel(w http.ResponseWriter, r *http.Request) error {
	if err := checkForm(r); err != nil {
		return err
	}
	if s.cfg.Cancels == nil {
		return &httpError{status: http.StatusServiceUnavailable, public: "canceling runs is not available in this server"}
	}
	run, err := s.run(r)
	if err != nil {
		return err
	}
	by := callerName(r)
	if err := s.cfg.Cancels.Cancel(run.ID, "canceled by "+by); err != nil {
		return cancelError(run.ID, err)
	}
	s.cfg.Log.Info("run canceled", "run_id", run.ID, "pipeline", run.Pipeline, "user", by)
	return redirectToRun(w, r, run.ID)
}

// ContainerStates reports the state of deployed containers for the
// dashboard.
type ContainerStates interface {
	ContainerState(ctx context.Context, id string) (string, error)
}

// containerHealth asks Docker about a deployed container, briefly: a slow
// or stopped daemon must not hold up the dashboard.
func (s *Server) containerHealth(ctx context.Context, id string) string {
	if s.cfg.Containers == nil || id == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	state, err := s.cfg.Containers.ContainerState(ctx, id)
	if err != nil {
		return "unknown"
	}
	return state
}
