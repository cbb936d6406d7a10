package webui

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quai-ci/quai/hook"
	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/runner"
	"github.com/quai-ci/quai/store"
)

// fakeManual records manual run requests and queues them in the store.
type fakeManual struct {
	st   *store.Store
	refs []string
}

func (f *fakeManual) RunManual(ctx context.Context, p *pipeline.Pipeline, ref, by string) (store.Run, error) {
	f.refs = append(f.refs, ref)
	run := store.Run{Pipeline: p.Name, Status: store.StatusQueued, Trigger: "manual", Ref: ref}
	err := f.st.CreateRun(&run)
	return run, err
}

// fakeCancels records cancel requests.
type fakeCancels struct {
	ids []uint64
	err error
}

func (f *fakeCancels) Cancel(runID uint64, reason string) error {
	if f.err != nil {
		return f.err
	}
	f.ids = append(f.ids, runID)
	return nil
}

// pagesEnv is a server with every dependency of the pages, over a real
// store.
type pagesEnv struct {
	s       *Server
	st      *store.Store
	deploys *fakeDeploys
	manual  *fakeManual
	cancels *fakeCancels
	next    time.Time
}

const hostileMessage = "<script>alert(1)</script>"

func newPagesEnv(t *testing.T) *pagesEnv {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "quai.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ref, err := pipeline.ParseSecretRef("kv:apps/hello#token")
	if err != nil {
		t.Fatal(err)
	}
	hello := &pipeline.Pipeline{
		Name: "hello", Repo: "acme/hello", File: "/etc/quai/pipelines.d/hello.yaml",
		On: pipeline.Triggers{
			Push:     &pipeline.PushTrigger{Branches: []string{"main"}},
			Schedule: []pipeline.Schedule{{Cron: "30 2 * * *", Branch: "main"}},
			Manual:   true,
		},
		Steps: []pipeline.Step{{Name: "test", Image: "busybox", Commands: []string{"make test"},
			Secrets: map[string]pipeline.SecretRef{"TOKEN": ref}}},
		Deploy: &pipeline.Deploy{Container: "hello"},
	}
	env := &pagesEnv{st: st, deploys: &fakeDeploys{st: st}, manual: &fakeManual{st: st}, cancels: &fakeCancels{},
		next: time.Date(2030, 1, 2, 2, 30, 0, 0, time.UTC)}
	s, err := New(Config{
		Runs:        st,
		Pipelines:   func() []*pipeline.Pipeline { return []*pipeline.Pipeline{hello} },
		Deployments: st,
		Deploys:     env.deploys,
		Manual:      env.manual,
		Cancels:     env.cancels,
		Deliveries:  st,
		LogNotify:   st,
		NextRuns: func(name string) []time.Time {
			if name == "hello" {
				return []time.Time{env.next}
			}
			return nil
		},
		Rejected: func() []hook.Rejection {
			return []hook.Rejection{{Time: env.next, RemoteAddr: "192.0.2.7:4711", Event: "push",
				DeliveryID: "<i>id</i>", Reason: "invalid X-Hub-Signature-256 <b>"}}
		},
		Containers: fixedState("healthy"),
		Webhook:    http.NotFoundHandler(),
		Auth:       AuthConfig{Disabled: true},
		Log:        slog.New(slog.DiscardHandler),
		Version:    "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	s.registerPages() // a second call must do nothing
	env.s = s
	return env
}

// createRun stores r and returns it with its ID.
func (env *pagesEnv) createRun(t *testing.T, r store.Run) store.Run {
	t.Helper()
	if err := env.st.CreateRun(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPagesRender(t *testing.T) {
	env := newPagesEnv(t)
	commit := strings.Repeat("ab", 20)
	now := time.Now()
	live := env.createRun(t, store.Run{Pipeline: "hello", Status: store.StatusRunning, Trigger: "manual", StartedAt: now})
	done := env.createRun(t, store.Run{
		Pipeline: "hello", Status: store.StatusFailure, Trigger: "push", Repo: "acme/hello",
		Ref: "refs/heads/<i>evil</i>", Commit: commit, Message: hostileMessage, Author: "<b>Mallory</b>",
		StartedAt: now.Add(-time.Minute), FinishedAt: now,
		Steps: []store.StepResult{{Name: "test", Status: store.StatusFailure, ExitCode: 2,
			StartedAt: now.Add(-50 * time.Second), FinishedAt: now.Add(-10 * time.Second)}},
	})
	if err := env.st.AppendLog(done.ID, []byte("\x1b[31m<img src=x onerror=alert(1)>\x1b[0m\n[quai 10:00:00] step test failed\n")); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := env.st.SaveDeployment(&store.Deployment{Pipeline: "hello", Image: "acme/hello:abc", Commit: commit, RunID: done.ID, Trigger: "push", ContainerID: "c0ffee"}); err != nil {
			t.Fatal(err)
		}
	}
	err := env.st.SaveDelivery(store.Delivery{ID: "d-1", Event: "push", Repo: "acme/hello", Ref: "refs/heads/<u>x</u>",
		Result: "started 1 run(s)", RunIDs: []uint64{done.ID}})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		path     string
		contains []string
	}{
		{"/", []string{`href="/pipelines/hello"`, "#" + strconv.FormatUint(live.ID, 10), "acme/hello:abc",
			"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;b&gt;Mallory&lt;/b&gt;", "status-running", "container healthy"}},
		{"/pipelines/hello", []string{"Run now", "Redeploy", "Roll back", `name="deployment" value="2"`,
			"image no longer kept", "in service now", "kv:apps/hello#token", "2030-01-02 02:30 UTC",
			"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;i&gt;evil&lt;/i&gt;", `name="csrf_token"`}},
		{fmt.Sprintf("/runs/%d", done.ID), []string{"https://github.com/acme/hello/commit/" + commit,
			"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;b&gt;Mallory&lt;/b&gt;", "&lt;i&gt;evil&lt;/i&gt;",
			`<span class="f1">&lt;img src=x onerror=alert(1)&gt;</span>`, `<span class="ts">10:00:00</span>`,
			`data-step="test"`, "40s", `data-live="false"`}},
		{fmt.Sprintf("/runs/%d", live.ID), []string{`data-live="true"`, "/runs/" + strconv.FormatUint(live.ID, 10) + "/cancel", "Cancel"}},
		{"/deliveries", []string{"d-1", "started 1 run(s)", "&lt;u&gt;x&lt;/u&gt;", "192.0.2.7:4711",
			"&lt;i&gt;id&lt;/i&gt;", "invalid X-Hub-Signature-256 &lt;b&gt;"}},
		{"/static/quai.js", []string{"EventSource"}},
		{"/static/quai.css", []string{"prefers-color-scheme"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := do(t, env.s, http.MethodGet, tt.path, "", "")
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, want 200: %s", w.Code, w.Body.String())
			}
			body := w.Body.String()
			for _, want := range tt.contains {
				if !strings.Contains(body, want) {
					t.Errorf("body lacks %q", want)
				}
			}
			for _, bad := range []string{"<script>alert", "<b>Mallory", "<i>evil", "<img src", "<u>x", "<i>id", "256 <b>"} {
				if strings.Contains(body, bad) {
					t.Errorf("body contains unescaped %q", bad)
				}
			}
			if strings.Contains(body, "<script") && !strings.Contains(body, `<script src="/static/quai.js" defer></script>`) {
				t.Errorf("body contains a script element other than quai.js")
			}
		})
	}
}

func TestPagesNotFound(t *testing.T) {
	env := newPagesEnv(t)
	for path, want := range map[string]int{
		"/pipelines/nope":           http.StatusNotFound,
		"/runs/99":                  http.StatusNotFound,
		"/runs/abc":                 http.StatusBadRequest,
		"/pipelines/hello?before=x": http.StatusBadRequest,
		"/runs/99/events":           http.StatusNotFound,
		"/static/missing.js":        http.StatusNotFound,
		"/runs/1/log?before=1":      http.StatusNotFound,
	} {
		if w := do(t, env.s, http.MethodGet, path, "", ""); w.Code != want {
			t.Errorf("GET %s answered %d, want %d", path, w.Code, want)
		}
	}
}

func TestPipelinePagination(t *testing.T) {
	env := newPagesEnv(t)
	for range pageSize + 5 {
		env.createRun(t, store.Run{Pipeline: "hello", Status: store.StatusSuccess})
	}
	first := do(t, env.s, http.MethodGet, "/pipelines/hello", "", "").Body.String()
	if !strings.Contains(first, `href="/runs/55"`) || strings.Contains(first, `href="/runs/5"`) {
		t.Errorf("first page should list runs 55 down to 6")
	}
	if !strings.Contains(first, "/pipelines/hello?before=6") {
		t.Errorf("first page lacks the link to older runs")
	}
	older := do(t, env.s, http.MethodGet, "/pipelines/hello?before=6", "", "").Body.String()
	for id := 1; id <= 5; id++ {
		if !strings.Contains(older, fmt.Sprintf(`href="/runs/%d"`, id)) {
			t.Errorf("second page lacks run %d", id)
		}
	}
	if strings.Contains(older, `href="/runs/6"`) || strings.Contains(older, "?before=") {
		t.Errorf("second page lists run 6 or links further back")
	}
}

func postForm(t *testing.T, s *Server, path string, form url.Values, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}

func TestPageButtons(t *testing.T) {
	env := newPagesEnv(t)
	for range 2 {
		if err := env.st.SaveDeployment(&store.Deployment{Pipeline: "hello", Image: "acme/hello:x"}); err != nil {
			t.Fatal(err)
		}
	}
	live := env.createRun(t, store.Run{Pipeline: "hello", Status: store.StatusRunning})

	tests := []struct {
		name, path string
		form       url.Values
	}{
		{"run now", "/pipelines/hello/run", url.Values{"ref": {" release "}}},
		{"redeploy", "/pipelines/hello/redeploy", nil},
		{"rollback", "/pipelines/hello/rollback", url.Values{"deployment": {"1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := postForm(t, env.s, tt.path, tt.form, nil)
			if w.Code != http.StatusSeeOther {
				t.Fatalf("status %d, want 303: %s", w.Code, w.Body.String())
			}
			loc := w.Header().Get("Location")
			id, err := strconv.ParseUint(strings.TrimPrefix(loc, "/runs/"), 10, 64)
			if err != nil {
				t.Fatalf("Location %q is not a run page", loc)
			}
			if _, err := env.st.Run(id); err != nil {
				t.Errorf("redirected to run %d, which is not stored: %v", id, err)
			}
		})
	}
	if strings.Join(env.manual.refs, ",") != "release" {
		t.Errorf("manual refs %q, want the trimmed ref release", env.manual.refs)
	}
	if strings.Join(env.deploys.requests, ",") != "redeploy,rollback" {
		t.Errorf("deploy requests %v, want redeploy then rollback", env.deploys.requests)
	}

	w := postForm(t, env.s, fmt.Sprintf("/runs/%d/cancel", live.ID), nil, nil)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != fmt.Sprintf("/runs/%d", live.ID) {
		t.Errorf("cancel answered %d to %q, want 303 to the run", w.Code, w.Header().Get("Location"))
	}
	if len(env.cancels.ids) != 1 || env.cancels.ids[0] != live.ID {
		t.Errorf("canceled runs %v, want [%d]", env.cancels.ids, live.ID)
	}

	env.cancels.err = runner.ErrDeploying
	if w := postForm(t, env.s, fmt.Sprintf("/runs/%d/cancel", live.ID), nil, nil); w.Code != http.StatusConflict {
		t.Errorf("cancel of a deploying run answered %d, want 409", w.Code)
	}
	if w := postForm(t, env.s, "/pipelines/hello/rollback", url.Values{"deployment": {"x"}}, nil); w.Code != http.StatusBadRequest {
		t.Errorf("rollback to deployment x answered %d, want 400", w.Code)
	}
	cross := map[string]string{"Sec-Fetch-Site": "cross-site"}
	if w := postForm(t, env.s, "/pipelines/hello/redeploy", nil, cross); w.Code != http.StatusForbidden {
		t.Errorf("cross-site redeploy answered %d, want 403", w.Code)
	}
	if len(env.deploys.requests) != 2 {
		t.Errorf("a rejected post reached the runner: %v", env.deploys.requests)
	}
}

func TestHugeLogPage(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 50 MB log")
	}
	env := newPagesEnv(t)
	run := env.createRun(t, store.Run{Pipeline: "hello", Status: store.StatusSuccess})
	const lineLen = 100
	const lines = 500_000 // 50 MB
	batch := make([]byte, 0, 10_000*lineLen)
	for i := range lines {
		batch = fmt.Appendf(batch, "line %07d %s\n", i, strings.Repeat("x", lineLen-14))
		if len(batch) == cap(batch) {
			if err := env.st.AppendLog(run.ID, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}

	began := time.Now()
	w := do(t, env.s, http.MethodGet, fmt.Sprintf("/runs/%d", run.ID), "", "")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	t.Logf("run page of a %d-byte log: %d bytes in %v", lines*lineLen, w.Body.Len(), time.Since(began))
	if n := w.Body.Len(); n > 1<<20 {
		t.Errorf("run page of a 50 MB log has %d bytes, want under 1 MiB", n)
	}
	page := w.Body.String()
	if !strings.Contains(page, fmt.Sprintf("line %07d", lines-1)) {
		t.Errorf("run page lacks the log's last line")
	}
	start := attr(t, page, "data-start")
	if start <= 0 || start%lineLen != 0 {
		t.Fatalf("page log starts at %d, want a line boundary after 0", start)
	}
	firstShown := int(start / lineLen)
	if !strings.Contains(page, fmt.Sprintf("\nline %07d", firstShown+1)) || strings.Contains(page, fmt.Sprintf("line %07d", firstShown-1)) {
		t.Errorf("page should start at line %d", firstShown)
	}

	w = do(t, env.s, http.MethodGet, fmt.Sprintf("/runs/%d/log?fragment=1&before=%d", run.ID, start), "", "")
	if w.Code != http.StatusOK {
		t.Fatalf("load earlier answered %d: %s", w.Code, w.Body.String())
	}
	earlier, err := strconv.ParseInt(w.Header().Get("X-Log-Start"), 10, 64)
	if err != nil || earlier >= start || earlier%lineLen != 0 {
		t.Fatalf("X-Log-Start %q, want a line boundary before %d", w.Header().Get("X-Log-Start"), start)
	}
	fragment := w.Body.String()
	wantEnd := fmt.Sprintf("line %07d %s\n", firstShown-1, strings.Repeat("x", lineLen-14))
	if !strings.HasSuffix(fragment, wantEnd) {
		t.Errorf("earlier part does not end right before the page's first line %d", firstShown)
	}
	if strings.Contains(fragment, fmt.Sprintf("line %07d", firstShown)) {
		t.Errorf("earlier part repeats line %d", firstShown)
	}
	if n := w.Body.Len(); n > logTailBytes+lineLen {
		t.Errorf("earlier part has %d bytes, want at most %d", n, logTailBytes)
	}

	w = do(t, env.s, http.MethodGet, fmt.Sprintf("/runs/%d/log?before=%d", run.ID, start), "", "")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "earlier</a>") {
		t.Errorf("log part page answered %d without a link further back", w.Code)
	}
}

// attr returns the numeric value of the first attribute name="..." in page.
func attr(t *testing.T, page, name string) int64 {
	t.Helper()
	_, rest, ok := strings.Cut(page, name+`="`)
	if !ok {
		t.Fatalf("page lacks %s", name)
	}
	value, _, _ := strings.Cut(rest, `"`)
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q is not a number", name, value)
	}
	return n
}

// fixedState reports the same state for every container.
type fixedState string

func (f fixedState) ContainerState(ctx context.Context, id string) (string, error) {
	return string(f), nil
}
