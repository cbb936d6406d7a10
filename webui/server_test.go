package webui

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/runner"
	"github.com/quai-ci/quai/store"
)

// fakeDeploys records redeploy and rollback requests.
type fakeDeploys struct {
	st       *store.Store
	requests []string
	err      error
}

func (f *fakeDeploys) Redeploy(ctx context.Context, p *pipeline.Pipeline, by string) (store.Run, error) {
	return f.start(p, "redeploy", 0)
}

func (f *fakeDeploys) Rollback(ctx context.Context, p *pipeline.Pipeline, id uint64, by string) (store.Run, error) {
	return f.start(p, "rollback", id)
}

func (f *fakeDeploys) Kept(ctx context.Context, p *pipeline.Pipeline, d store.Deployment) (bool, error) {
	return d.ID%2 == 0, nil
}

func (f *fakeDeploys) start(p *pipeline.Pipeline, trigger string, id uint64) (store.Run, error) {
	if f.err != nil {
		return store.Run{}, f.err
	}
	f.requests = append(f.requests, trigger)
	run := store.Run{Pipeline: p.Name, Status: store.StatusQueued, Trigger: trigger, Deployment: id}
	err := f.st.CreateRun(&run)
	return run, err
}

func newTestServer(t *testing.T) (*Server, *store.Store, *fakeDeploys) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "quai.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	deploys := &fakeDeploys{st: st}
	hello := &pipeline.Pipeline{Name: "hello", Repo: "acme/hello", Deploy: &pipeline.Deploy{Container: "hello"}}
	s, err := New(Config{
		Runs:        st,
		Pipelines:   func() []*pipeline.Pipeline { return []*pipeline.Pipeline{hello} },
		Deployments: st,
		Deploys:     deploys,
		Webhook:     http.NotFoundHandler(),
		Deliveries:  st,
		Auth:        AuthConfig{Disabled: true},
		Log:         slog.New(slog.DiscardHandler),
		Version:     "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, st, deploys
}

func do(t *testing.T, s *Server, method, path, contentType, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}

func TestRunEndpoints(t *testing.T) {
	s, st, _ := newTestServer(t)
	for _, msg := range []string{"first", "<script>alert(1)</script>"} {
		run := store.Run{Pipeline: "hello", Status: store.StatusSuccess, Commit: strings.Repeat("a", 40), Message: msg}
		if err := st.CreateRun(&run); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AppendLog(2, []byte("<b>bold</b> line\n")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		path        string
		status      int
		contentType string
		contains    []string
		absent      []string
	}{
		{"/api/runs", 200, "application/json", []string{`"id": 2`, `"status": "success"`, `"created_at"`}, nil},
		{"/api/runs/1", 200, "application/json", []string{`"message": "first"`}, nil},
		{"/api/runs/2/log", 200, "text/plain", []string{"<b>bold</b> line"}, nil},
		{"/api/runs/abc", 400, "text/plain", []string{`invalid run id "abc"`}, nil},
		{"/api/runs/0", 400, "text/plain", []string{"invalid run id"}, nil},
		{"/api/runs/99", 404, "text/plain", []string{"run 99 not found"}, nil},
		{"/api/runs?limit=-1", 400, "text/plain", []string{"invalid number"}, nil},
		{"/api/runs?limit=0", 400, "text/plain", []string{"invalid limit 0"}, nil},
		{"/runs/2", 200, "text/html", []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;b&gt;bold&lt;/b&gt; line"}, []string{"<script>alert", "<b>bold"}},
		{"/", 200, "text/html", []string{"#2", "&lt;script&gt;"}, []string{"<script>alert"}},
		{"/healthz", 200, "text/plain", []string{"ok test"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := do(t, s, http.MethodGet, tt.path, "", "")
			if w.Code != tt.status {
				t.Errorf("status %d, want %d: %s", w.Code, tt.status, w.Body.String())
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, tt.contentType) {
				t.Errorf("Content-Type %q, want %s", ct, tt.contentType)
			}
			for _, want := range tt.contains {
				if !strings.Contains(w.Body.String(), want) {
					t.Errorf("body lacks %q:\n%s", want, w.Body.String())
				}
			}
			for _, bad := range tt.absent {
				if strings.Contains(w.Body.String(), bad) {
					t.Errorf("body contains unescaped %q", bad)
				}
			}
		})
	}
}

func TestRunListNewestFirst(t *testing.T) {
	s, st, _ := newTestServer(t)
	for range 3 {
		if err := st.CreateRun(&store.Run{Pipeline: "hello", Status: store.StatusQueued}); err != nil {
			t.Fatal(err)
		}
	}
	var runs []store.Run
	if err := json.Unmarshal(do(t, s, http.MethodGet, "/api/runs?limit=2", "", "").Body.Bytes(), &runs); err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].ID != 3 || runs[1].ID != 2 {
		t.Errorf("runs = %+v, want ids 3 and 2", runs)
	}
}

func TestDeployEndpoints(t *testing.T) {
	s, st, deploys := newTestServer(t)
	for range 2 {
		if err := st.SaveDeployment(&store.Deployment{Pipeline: "hello", Image: "acme/hello:x"}); err != nil {
			t.Fatal(err)
		}
	}

	var deps []deploymentEntry
	if err := json.Unmarshal(do(t, s, http.MethodGet, "/api/pipelines/hello/deployments", "", "").Body.Bytes(), &deps); err != nil {
		t.Fatal(err)
	}
	if len(deps) != 2 || deps[0].ID != 2 || !deps[0].Kept || deps[1].Kept {
		t.Errorf("deployments = %+v, want 2 (kept) then 1 (not kept)", deps)
	}

	tests := []struct {
		name, path, contentType, body string
		status                        int
	}{
		{"redeploy", "/api/pipelines/hello/redeploy", "application/json", `{}`, http.StatusAccepted},
		{"rollback", "/api/pipelines/hello/rollback", "application/json", `{"deployment": "1"}`, http.StatusAccepted},
		{"form post refused", "/api/pipelines/hello/redeploy", "application/x-www-form-urlencoded", "", http.StatusUnsupportedMediaType},
		{"unknown pipeline", "/api/pipelines/nope/redeploy", "application/json", `{}`, http.StatusNotFound},
		{"bad deployment id", "/api/pipelines/hello/rollback", "application/json", `{"deployment": "one"}`, http.StatusBadRequest},
		{"bad JSON", "/api/pipelines/hello/rollback", "application/json", `{`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(t, s, http.MethodPost, tt.path, tt.contentType, tt.body)
			if w.Code != tt.status {
				t.Errorf("status %d, want %d: %s", w.Code, tt.status, w.Body.String())
			}
		})
	}
	if strings.Join(deploys.requests, ",") != "redeploy,rollback" {
		t.Errorf("requests reaching the runner: %v, want redeploy then rollback", deploys.requests)
	}

	deploys.err = errors.Join(runner.ErrImageGone)
	if w := do(t, s, http.MethodPost, "/api/pipelines/hello/redeploy", "application/json", `{}`); w.Code != http.StatusConflict {
		t.Errorf("redeploy of a gone image answered %d, want 409", w.Code)
	}
}

func TestPipelinesEndpoint(t *testing.T) {
	s, st, _ := newTestServer(t)
	if err := st.SaveDeployment(&store.Deployment{Pipeline: "hello", Image: "acme/hello:abc"}); err != nil {
		t.Fatal(err)
	}
	w := do(t, s, http.MethodGet, "/api/pipelines", "", "")
	body, _ := io.ReadAll(w.Body)
	var list []pipelineSummary
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "hello" || list[0].Current == nil || list[0].Current.Image != "acme/hello:abc" {
		t.Errorf("pipelines = %s, want hello with its current deployment", body)
	}
}

func TestDeliveriesEndpoint(t *testing.T) {
	s, st, _ := newTestServer(t)
	if err := st.SaveDelivery(store.Delivery{ID: "d-1", Event: "push", Repo: "acme/hello", Result: "started 1 run(s)"}); err != nil {
		t.Fatal(err)
	}
	w := do(t, s, http.MethodGet, "/api/deliveries", "", "")
	var list []store.Delivery
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil {
		t.Fatalf("decoding %s: %v", w.Body.String(), err)
	}
	if len(list) != 1 || list[0].ID != "d-1" || list[0].Result != "started 1 run(s)" {
		t.Errorf("deliveries = %+v, want d-1 with its result", list)
	}
}
