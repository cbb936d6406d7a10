package runner

import (
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quai-ci/quai/internal/testenv"
	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
)

// gate is a checkout function that records which runs are inside it at
// once and holds each until the test releases it.
type gate struct {
	mu      sync.Mutex
	inside  map[string]int // by pipeline
	total   int
	maxSeen int
	order   []string // commits in the order they entered
	release chan struct{}
	entered chan string
}

func newGate() *gate {
	return &gate{inside: map[string]int{}, release: make(chan struct{}), entered: make(chan string, 100)}
}

func (g *gate) checkout(pl string) CheckoutFunc {
	return func(ctx context.Context, url, commit, dir, token string, out io.Writer) error {
		g.mu.Lock()
		g.inside[pl]++
		g.total++
		if g.inside[pl] > 1 {
			g.mu.Unlock()
			panic("two runs of pipeline " + pl + " executed at once")
		}
		g.maxSeen = max(g.maxSeen, g.total)
		g.order = append(g.order, commit)
		g.mu.Unlock()
		g.entered <- commit
		select {
		case <-g.release:
		case <-ctx.Done():
		}
		g.mu.Lock()
		g.inside[pl]--
		g.total--
		g.mu.Unlock()
		return nil
	}
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "quai.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func commitOf(n int) string {
	return strings.Repeat("0", 39) + string(rune('a'+n))
}

// startRunner runs r until the test ends.
func startRunner(t testing.TB, r *Runner) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func waitStatus(t testing.TB, s *store.Store, id uint64, want store.Status) store.Run {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		run, err := s.Run(id)
		if err != nil {
			t.Fatal(err)
		}
		if run.Status == want {
			return run
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %d is %s, want %s (error %q)", id, run.Status, want, run.Error)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestQueueOnePipelineInOrder(t *testing.T) {
	s := openStore(t)
	g := newGate()
	p := &pipeline.Pipeline{Name: "a", Repo: "acme/a", CloneURL: "/nowhere"}
	r := New(Config{Store: s, Checkout: g.checkout("a"), Workspaces: t.TempDir(), MaxRuns: 4})
	startRunner(t, r)

	var ids []uint64
	for i := range 3 {
		run, err := r.Enqueue(Request{Pipeline: p, Trigger: "push", Commit: commitOf(i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, run.ID)
	}
	for i := range 3 {
		got := <-g.entered
		if got != commitOf(i) {
			t.Fatalf("run %d started commit %s, want %s", i, got, commitOf(i))
		}
		if i < 2 {
			if run, _ := s.Run(ids[i+1]); run.Status != store.StatusQueued {
				t.Errorf("run %d is %s while run %d executes, want queued", ids[i+1], run.Status, ids[i])
			}
		}
		g.release <- struct{}{}
	}
	for _, id := range ids {
		waitStatus(t, s, id, store.StatusSuccess)
	}
}

func TestQueuePipelinesOverlapUpToLimit(t *testing.T) {
	for _, limit := range []int{1, 2} {
		s := openStore(t)
		g := newGate()
		checkouts := map[string]CheckoutFunc{"a": g.checkout("a"), "b": g.checkout("b"), "c": g.checkout("c")}
		r := New(Config{
			Store: s,
			Checkout: func(ctx context.Context, url, commit, dir, token string, out io.Writer) error {
				return checkouts[url](ctx, url, commit, dir, token, out)
			},
			Workspaces: t.TempDir(),
			MaxRuns:    limit,
		})
		startRunner(t, r)
		for i, name := range []string{"a", "b", "c"} {
			p := &pipeline.Pipeline{Name: name, Repo: "acme/" + name, CloneURL: name}
			if _, err := r.Enqueue(Request{Pipeline: p, Commit: commitOf(i)}); err != nil {
				t.Fatal(err)
			}
		}
		for range limit {
			<-g.entered
		}
		select {
		case c := <-g.entered:
			t.Fatalf("limit %d: a run for %s started beyond the limit", limit, c)
		case <-time.After(200 * time.Millisecond):
		}
		for range 3 {
			g.release <- struct{}{}
		}
		g.mu.Lock()
		seen := g.maxSeen
		g.mu.Unlock()
		if seen != limit {
			t.Errorf("limit %d: %d runs executed at once", limit, seen)
		}
	}
}

func TestRecoverSettlesInterruptedRuns(t *testing.T) {
	s := openStore(t)
	p := &pipeline.Pipeline{Name: "a", Repo: "acme/a", CloneURL: "/nowhere"}
	running := store.Run{Pipeline: "a", Status: store.StatusRunning, Commit: commitOf(0)}
	queued := store.Run{Pipeline: "a", Status: store.StatusQueued, Commit: commitOf(1), CloneURL: "/nowhere"}
	orphan := store.Run{Pipeline: "gone", Status: store.StatusQueued, Commit: commitOf(2)}
	for _, run := range []*store.Run{&running, &queued, &orphan} {
		if err := s.CreateRun(run); err != nil {
			t.Fatal(err)
		}
	}

	g := newGate()
	r := New(Config{Store: s, Checkout: g.checkout("a"), Workspaces: t.TempDir()})
	if err := r.Recover([]*pipeline.Pipeline{p}); err != nil {
		t.Fatal(err)
	}
	startRunner(t, r)
	if got := <-g.entered; got != queued.Commit {
		t.Fatalf("recovered run checked out %s, want %s", got, queued.Commit)
	}
	g.release <- struct{}{}

	if got := waitStatus(t, s, running.ID, store.StatusFailure); !strings.Contains(got.Error, "interrupted") {
		t.Errorf("interrupted run says %q, want it to say interrupted", got.Error)
	}
	if got := waitStatus(t, s, orphan.ID, store.StatusFailure); !strings.Contains(got.Error, `"gone"`) {
		t.Errorf("orphaned run says %q, want it to name the missing pipeline", got.Error)
	}
	waitStatus(t, s, queued.ID, store.StatusSuccess)
}

func TestRecoverNamesRolloutStep(t *testing.T) {
	s := openStore(t)
	p := &pipeline.Pipeline{Name: "a", Repo: "acme/a"}
	run := store.Run{Pipeline: "a", Status: store.StatusRunning, Commit: commitOf(0)}
	if err := s.CreateRun(&run); err != nil {
		t.Fatal(err)
	}
	ro := store.Rollout{RunID: run.ID, Pipeline: "a", Backend: "web", NewContainer: "a-b-r1", OldContainer: "a-a-r0",
		Steps: []store.RolloutStep{{Name: "start"}, {Name: "drain", Detail: "waiting for web/a"}}}
	if err := s.SaveRollout(ro); err != nil {
		t.Fatal(err)
	}
	r := New(Config{Store: s, Workspaces: t.TempDir()})
	if err := r.Recover([]*pipeline.Pipeline{p}); err != nil {
		t.Fatal(err)
	}
	got := waitStatus(t, s, run.ID, store.StatusFailure)
	for _, want := range []string{`rollout step "drain"`, "backend web", "a-b-r1", "a-a-r0"} {
		if !strings.Contains(got.Error, want) {
			t.Errorf("reason %q lacks %q", got.Error, want)
		}
	}
}

func TestRunRejectsInvalidCommit(t *testing.T) {
	s := openStore(t)
	g := newGate()
	r := New(Config{Store: s, Checkout: g.checkout("a"), Workspaces: t.TempDir()})
	startRunner(t, r)
	p := &pipeline.Pipeline{Name: "a", Repo: "acme/a", CloneURL: "/nowhere"}
	run, err := r.Enqueue(Request{Pipeline: p, Commit: "--upload-pack=touch"})
	if err != nil {
		t.Fatal(err)
	}
	got := waitStatus(t, s, run.ID, store.StatusFailure)
	if !strings.Contains(got.Error, "invalid commit") {
		t.Errorf("run failed with %q, want an invalid commit error", got.Error)
	}
	if len(g.order) != 0 {
		t.Errorf("checkout ran for an invalid commit")
	}
}

// requireGitBinary skips, or fails under QUAI_REQUIRE_INTEGRATION, when
// the git command is missing.
func requireGitBinary(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		testenv.Skip(t, "git", err.Error())
	}
}

func TestCloneURLFromPayload(t *testing.T) {
	p := &pipeline.Pipeline{Repo: "acme/web"}
	local := &pipeline.Pipeline{Repo: "acme/web", CloneURL: "/srv/git/web"}
	tests := []struct {
		p       *pipeline.Pipeline
		payload string
		want    string
	}{
		{p, "https://github.com/acme/web.git", "https://github.com/acme/web.git"},
		{p, "https://user:secret@ghe.example/acme/web.git", "https://ghe.example/acme/web.git"},
		{p, "/work/main", "https://github.com/acme/web.git"},
		{p, "file:///etc", "https://github.com/acme/web.git"},
		{p, "", "https://github.com/acme/web.git"},
		{local, "https://github.com/acme/web.git", "/srv/git/web"},
	}
	for _, tt := range tests {
		if got := cloneURL(tt.p, tt.payload); got != tt.want {
			t.Errorf("cloneURL(%q, %q) = %q, want %q", tt.p.CloneURL, tt.payload, got, tt.want)
		}
	}
}
