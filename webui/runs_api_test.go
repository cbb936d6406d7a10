package webui

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quai-ci/quai/internal/testenv"
	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/runner"
	"github.com/quai-ci/quai/store"
)

// newManualServer returns a server whose manual runs go through a real
// runner and store to a local repository with branches main and
// release/1, and the commits of their heads.
func newManualServer(t *testing.T) (s *Server, st *store.Store, mainHead, releaseHead string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		testenv.Skip(t, "git", err.Error())
	}
	repo := filepath.Join(t.TempDir(), "origin")
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
			"GIT_AUTHOR_NAME=quai test", "GIT_AUTHOR_EMAIL=test@example.com",
			"GIT_COMMITTER_NAME=quai test", "GIT_COMMITTER_EMAIL=test@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	git("init", "--quiet", "--initial-branch=main")
	git("commit", "--quiet", "--allow-empty", "--message=first")
	releaseHead = git("rev-parse", "HEAD")
	git("branch", "release/1")
	git("commit", "--quiet", "--allow-empty", "--message=second")
	mainHead = git("rev-parse", "HEAD")

	st, err := store.Open(filepath.Join(t.TempDir(), "quai.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pipelines := []*pipeline.Pipeline{
		{Name: "web", Repo: "acme/web", CloneURL: repo, On: pipeline.Triggers{Manual: true}},
		{Name: "locked", Repo: "acme/web", CloneURL: repo, On: pipeline.Triggers{Manual: false}},
	}
	s, err = New(Config{
		Runs:        st,
		Pipelines:   func() []*pipeline.Pipeline { return pipelines },
		Deployments: st,
		Manual:      runner.New(runner.Config{Store: st, Workspaces: t.TempDir()}),
		Webhook:     http.NotFoundHandler(),
		Auth:        AuthConfig{Disabled: true},
		Log:         slog.New(slog.DiscardHandler),
		Version:     "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, st, mainHead, releaseHead
}

func TestManualRunQueues(t *testing.T) {
	s, st, mainHead, releaseHead := newManualServer(t)
	tests := []struct {
		body       string
		wantRef    string
		wantCommit string
	}{
		{`{"ref": "release/1"}`, "refs/heads/release/1", releaseHead},
		{`{"ref": ""}`, "refs/heads/main", mainHead},
		{`{}`, "refs/heads/main", mainHead},
		{``, "refs/heads/main", mainHead},
		{`{"ref": "` + releaseHead + `"}`, "", releaseHead},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			w := do(t, s, http.MethodPost, "/api/pipelines/web/runs", "application/json", tt.body)
			if w.Code != http.StatusAccepted {
				t.Fatalf("status %d, want 202: %s", w.Code, w.Body)
			}
			var run store.Run
			if err := json.Unmarshal(w.Body.Bytes(), &run); err != nil {
				t.Fatalf("decoding answer: %v\n%s", err, w.Body)
			}
			if run.Ref != tt.wantRef || run.Commit != tt.wantCommit {
				t.Errorf("run of %s at %s, want %s at %s", run.Ref, run.Commit, tt.wantRef, tt.wantCommit)
			}
			stored, err := st.Run(run.ID)
			if err != nil {
				t.Fatal(err)
			}
			if stored.Trigger != "manual" || stored.Status != store.StatusQueued {
				t.Errorf("stored run: trigger %q, status %s; want manual, queued", stored.Trigger, stored.Status)
			}
			if !strings.HasPrefix(stored.Author, "anonymous") {
				t.Errorf("Author = %q, want the anonymous requester and its address (auth is off here)", stored.Author)
			}
		})
	}
}

func TestManualRunRejects(t *testing.T) {
	s, st, _, _ := newManualServer(t)
	tests := []struct {
		name        string
		path        string
		contentType string
		body        string
		status      int
		contains    string
	}{
		{"unknown ref", "/api/pipelines/web/runs", "application/json", `{"ref": "nope"}`, 422, `"nope"`},
		{"invalid ref", "/api/pipelines/web/runs", "application/json", `{"ref": "a..b"}`, 422, "invalid ref"},
		{"manual off", "/api/pipelines/locked/runs", "application/json", `{}`, 409, "manual runs are disabled"},
		{"unknown pipeline", "/api/pipelines/nope/runs", "application/json", `{}`, 404, `pipeline "nope" not found`},
		{"not JSON", "/api/pipelines/web/runs", "text/plain", `{}`, 415, "application/json"},
		{"bad JSON", "/api/pipelines/web/runs", "application/json", `{"ref": `, 400, "invalid JSON body"},
		{"wrong type", "/api/pipelines/web/runs", "application/json", `{"ref": 3}`, 400, "invalid JSON body"},
		{"unknown field", "/api/pipelines/web/runs", "application/json", `{"branch": "main"}`, 400, `"branch"`},
		{"trailing data", "/api/pipelines/web/runs", "application/json", `{} {}`, 400, "after the JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(t, s, http.MethodPost, tt.path, tt.contentType, tt.body)
			if w.Code != tt.status {
				t.Errorf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if !strings.Contains(w.Body.String(), tt.contains) {
				t.Errorf("body %q lacks %q", w.Body, tt.contains)
			}
		})
	}
	runs, err := st.ListRuns("", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 0 {
		t.Errorf("%d runs stored after rejected requests, want none", len(runs))
	}
}

func TestManualRunWithoutRunner(t *testing.T) {
	s, _, _ := newTestServer(t)
	w := do(t, s, http.MethodPost, "/api/pipelines/hello/runs", "application/json", `{}`)
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503: %s", w.Code, w.Body)
	}
}
