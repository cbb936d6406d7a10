package runner

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
)

// sha returns a distinct, valid commit SHA for n whose first 12
// characters differ from those of other n.
func sha(n int) string {
	sum := sha1.Sum([]byte{byte(n)})
	return hex.EncodeToString(sum[:])
}

// stoppable makes a checkout that a canceled context ended fail with the
// context's error, as a real clone does.
func stoppable(c CheckoutFunc) CheckoutFunc {
	return func(ctx context.Context, url, commit, dir, token string, out io.Writer) error {
		if err := c(ctx, url, commit, dir, token, out); err != nil {
			return err
		}
		return ctx.Err()
	}
}

// perCommit keys the gate by commit, so runs of one pipeline may be inside
// it at once.
func perCommit(g *gate) CheckoutFunc {
	return func(ctx context.Context, url, commit, dir, token string, out io.Writer) error {
		return stoppable(g.checkout(commit))(ctx, url, commit, dir, token, out)
	}
}

func enqueue(t *testing.T, r *Runner, req Request) store.Run {
	t.Helper()
	run, err := r.Enqueue(req)
	if err != nil {
		t.Fatalf("queueing %s of %s: %v", req.Trigger, req.Ref, err)
	}
	return run
}

func waitEntered(t *testing.T, g *gate, want string) {
	t.Helper()
	select {
	case got := <-g.entered:
		if got != want {
			t.Fatalf("checkout of %s started, want %s", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("checkout of %s did not start within 10s", want)
	}
}

// waitEnteredAll waits until the checkouts of every commit in want have
// started, in any order.
func waitEnteredAll(t *testing.T, g *gate, want ...string) {
	t.Helper()
	missing := map[string]bool{}
	for _, c := range want {
		missing[c] = true
	}
	for len(missing) > 0 {
		select {
		case got := <-g.entered:
			if !missing[got] {
				t.Fatalf("checkout of %s started, want one of %v", got, missing)
			}
			delete(missing, got)
		case <-time.After(10 * time.Second):
			t.Fatalf("checkouts of %v did not start within 10s", missing)
		}
	}
}

// releaseGate lets one run inside the gate go on.
func releaseGate(t *testing.T, g *gate) {
	t.Helper()
	select {
	case g.release <- struct{}{}:
	case <-time.After(10 * time.Second):
		t.Fatalf("no run waited in the checkout for 10s")
	}
}

// assertNoEntry fails when a checkout starts within a short window.
func assertNoEntry(t *testing.T, g *gate, why string) {
	t.Helper()
	select {
	case got := <-g.entered:
		t.Fatalf("checkout of %s started: %s", got, why)
	case <-time.After(200 * time.Millisecond):
	}
}

func newQueueRunner(t *testing.T, s *store.Store, checkout CheckoutFunc) *Runner {
	t.Helper()
	r := New(Config{Store: s, Checkout: checkout, Workspaces: t.TempDir(), MaxRuns: 4})
	startRunner(t, r)
	return r
}

func TestSupersedeQueuedPushes(t *testing.T) {
	s := openStore(t)
	g := newGate()
	p := &pipeline.Pipeline{Name: "a", Repo: "acme/a", CloneURL: "/nowhere"}
	r := newQueueRunner(t, s, stoppable(g.checkout("a")))
	push := func(ref string, n int) store.Run {
		return enqueue(t, r, Request{Pipeline: p, Trigger: TriggerPush, Ref: ref, Commit: sha(n)})
	}

	first := push("refs/heads/main", 0)
	waitEntered(t, g, sha(0))
	middle := push("refs/heads/main", 1)
	other := push("refs/heads/feature", 2)
	newest := push("refs/heads/main", 3)

	got := waitStatus(t, s, middle.ID, store.StatusCanceled)
	if want := "superseded by " + sha(3)[:12]; got.Error != want {
		t.Errorf("superseded run has error %q, want %q", got.Error, want)
	}
	if got.FinishedAt.IsZero() {
		t.Errorf("superseded run has no finish time")
	}
	if run, _ := s.Run(other.ID); run.Status != store.StatusQueued {
		t.Errorf("push to another branch is %s, want queued", run.Status)
	}

	// cancel_superseded is off, so the first run goes on.
	for _, n := range []int{0, 2, 3} {
		if n != 0 {
			waitEntered(t, g, sha(n))
		}
		releaseGate(t, g)
	}
	for _, run := range []store.Run{first, other, newest} {
		waitStatus(t, s, run.ID, store.StatusSuccess)
	}
}

func TestSupersedeOnlySameTriggerAndRef(t *testing.T) {
	const main = "refs/heads/main"
	tests := []struct {
		name           string
		older, newer   string // triggers
		olderRef       string
		wantSuperseded bool
	}{
		{"push by push", TriggerPush, TriggerPush, main, true},
		{"push of other ref", TriggerPush, TriggerPush, "refs/heads/dev", false},
		{"manual by push", "manual", TriggerPush, main, false},
		{"schedule by push", "schedule", TriggerPush, main, false},
		{"redeploy by push", "redeploy", TriggerPush, main, false},
		{"rollback by push", "rollback", TriggerPush, main, false},
		{"push by manual", TriggerPush, "manual", main, false},
		{"pull request by pull request", TriggerPullRequest, TriggerPullRequest, main, true},
		{"pull request by push", TriggerPullRequest, TriggerPush, main, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t)
			g := newGate()
			p := &pipeline.Pipeline{Name: "a", Repo: "acme/a", CloneURL: "/nowhere"}
			r := newQueueRunner(t, s, stoppable(g.checkout("a")))
			// The blocker holds the pipeline's only slot, so both runs
			// below stay queued.
			enqueue(t, r, Request{Pipeline: p, Trigger: TriggerPush, Ref: "refs/heads/blocker", Commit: sha(0)})
			waitEntered(t, g, sha(0))

			older := enqueue(t, r, Request{Pipeline: p, Trigger: tt.older, Ref: tt.olderRef, Commit: sha(1)})
			enqueue(t, r, Request{Pipeline: p, Trigger: tt.newer, Ref: main, Commit: sha(2)})

			got, err := s.Run(older.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := store.StatusQueued
			if tt.wantSuperseded {
				want = store.StatusCanceled
			}
			if got.Status != want {
				t.Errorf("older run is %s (%q), want %s", got.Status, got.Error, want)
			}
		})
	}
}

func TestSupersedeRunningRun(t *testing.T) {
	for _, cancelSuperseded := range []bool{true, false} {
		t.Run(map[bool]string{true: "cancel_superseded on", false: "off"}[cancelSuperseded], func(t *testing.T) {
			s := openStore(t)
			g := newGate()
			p := &pipeline.Pipeline{Name: "a", Repo: "acme/a", CloneURL: "/nowhere",
				Concurrency: pipeline.Concurrency{CancelSuperseded: cancelSuperseded, Limit: 1}}
			r := newQueueRunner(t, s, stoppable(g.checkout("a")))

			first := enqueue(t, r, Request{Pipeline: p, Trigger: TriggerPush, Ref: "refs/heads/main", Commit: sha(0)})
			waitEntered(t, g, sha(0))
			second := enqueue(t, r, Request{Pipeline: p, Trigger: TriggerPush, Ref: "refs/heads/main", Commit: sha(1)})

			if cancelSuperseded {
				got := waitStatus(t, s, first.ID, store.StatusCanceled)
				if want := "superseded by " + sha(1)[:12]; got.Error != want {
					t.Errorf("canceled run has error %q, want %q", got.Error, want)
				}
			} else {
				assertNoEntry(t, g, "the newer run started while the older one executes")
				if run, _ := s.Run(first.ID); run.Status != store.StatusRunning {
					t.Fatalf("older run is %s (%q), want running", run.Status, run.Error)
				}
				releaseGate(t, g)
				waitStatus(t, s, first.ID, store.StatusSuccess)
			}
			waitEntered(t, g, sha(1))
			releaseGate(t, g)
			waitStatus(t, s, second.ID, store.StatusSuccess)
		})
	}
}

func TestSupersedeSparesDeployingRun(t *testing.T) {
	s := openStore(t)
	g := newGate()
	p := &pipeline.Pipeline{Name: "a", Repo: "acme/a", CloneURL: "/nowhere",
		Concurrency: pipeline.Concurrency{CancelSuperseded: true, Limit: 1}}
	r := newQueueRunner(t, s, stoppable(g.checkout("a")))

	first := enqueue(t, r, Request{Pipeline: p, Trigger: TriggerPush, Ref: "refs/heads/main", Commit: sha(0)})
	waitEntered(t, g, sha(0))
	if r.Deploying(first.ID) {
		t.Errorf("run %d reports deploying before it entered the deploy", first.ID)
	}
	release, err := r.enterDeploy(t.Context(), first.ID, "a")
	if err != nil {
		t.Fatalf("entering the deploy: %v", err)
	}
	if !r.Deploying(first.ID) {
		t.Errorf("run %d does not report deploying after it entered the deploy", first.ID)
	}
	second := enqueue(t, r, Request{Pipeline: p, Trigger: TriggerPush, Ref: "refs/heads/main", Commit: sha(1)})
	if err := r.Cancel(first.ID, "canceled by alice"); !errors.Is(err, ErrDeploying) {
		t.Errorf("Cancel of a deploying run returned %v, want ErrDeploying", err)
	}
	if run, _ := s.Run(first.ID); run.Status != store.StatusRunning {
		t.Fatalf("deploying run is %s (%q), want running", run.Status, run.Error)
	}

	releaseGate(t, g)
	release()
	waitStatus(t, s, first.ID, store.StatusSuccess)
	// The runner lets go of a run just after recording its final status.
	for deadline := time.Now().Add(10 * time.Second); r.Deploying(first.ID); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("finished run %d still reports deploying after 10s", first.ID)
		}
	}
	waitEntered(t, g, sha(1))
	releaseGate(t, g)
	waitStatus(t, s, second.ID, store.StatusSuccess)
}

func TestQueueDeployLock(t *testing.T) {
	s := openStore(t)
	g := newGate()
	p := &pipeline.Pipeline{Name: "a", Repo: "acme/a", CloneURL: "/nowhere",
		Concurrency: pipeline.Concurrency{CancelSuperseded: true, Limit: 2}}
	r := newQueueRunner(t, s, perCommit(g))
	a := enqueue(t, r, Request{Pipeline: p, Trigger: TriggerPush, Ref: "refs/heads/one", Commit: sha(0)})
	b := enqueue(t, r, Request{Pipeline: p, Trigger: TriggerPush, Ref: "refs/heads/two", Commit: sha(1)})
	waitEnteredAll(t, g, sha(0), sha(1))

	release, err := r.enterDeploy(t.Context(), a.ID, "a")
	if err != nil {
		t.Fatalf("entering the deploy of run %d: %v", a.ID, err)
	}
	short, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := r.enterDeploy(short, b.ID, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second deploy of the pipeline entered while the first runs (error %v)", err)
	}

	// A run canceled while it waits for the lock never deploys.
	waiting := make(chan error, 1)
	go func() {
		_, err := r.enterDeploy(r.executionContext(t, b.ID), b.ID, "a")
		waiting <- err
	}()
	if err := r.Cancel(b.ID, "canceled by alice"); err != nil {
		t.Fatalf("canceling a run that waits to deploy: %v", err)
	}
	if err := <-waiting; !errors.As(err, new(*canceledError)) {
		t.Errorf("canceled run entered the deploy or failed with %v", err)
	}

	release()
	other, err := r.enterDeploy(t.Context(), 0, "other")
	if err != nil {
		t.Fatalf("entering the deploy of another pipeline: %v", err)
	}
	other()
	again, err := r.enterDeploy(t.Context(), 0, "a")
	if err != nil {
		t.Fatalf("entering the deploy after release: %v", err)
	}
	again()
	releaseGate(t, g)
	waitStatus(t, s, a.ID, store.StatusSuccess)
	if got := waitStatus(t, s, b.ID, store.StatusCanceled); got.Error != "canceled by alice" {
		t.Errorf("canceled run has error %q, want %q", got.Error, "canceled by alice")
	}
}

// executionContext returns the context the runner gave run id.
func (r *Runner) executionContext(t *testing.T, id uint64) context.Context {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.executing[id]
	if e == nil {
		t.Fatalf("run %d is not executing", id)
	}
	return e.ctx
}

func TestLimitPerPipeline(t *testing.T) {
	tests := []struct {
		name  string
		limit int
		refs  []string
		want  int // runs inside at once
	}{
		{"limit 1", 1, []string{"refs/heads/a", "refs/heads/b", "refs/heads/c"}, 1},
		{"limit 2", 2, []string{"refs/heads/a", "refs/heads/b", "refs/heads/c"}, 2},
		{"default limit", 0, []string{"refs/heads/a", "refs/heads/b"}, 1},
		// One ref is one lane: its runs never overlap.
		{"limit 2 one ref", 2, []string{"refs/heads/a", "refs/heads/a"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t)
			g := newGate()
			p := &pipeline.Pipeline{Name: "a", Repo: "acme/a", CloneURL: "/nowhere",
				Concurrency: pipeline.Concurrency{Limit: tt.limit}}
			r := newQueueRunner(t, s, perCommit(g))
			var ids []uint64
			for i, ref := range tt.refs {
				// Manual runs, so that runs of one ref do not supersede.
				ids = append(ids, enqueue(t, r, Request{Pipeline: p, Trigger: "manual", Ref: ref, Commit: sha(i)}).ID)
			}
			var first []string
			for i := range tt.want {
				first = append(first, sha(i))
			}
			waitEnteredAll(t, g, first...)
			assertNoEntry(t, g, "a run started beyond the limit")
			for i := range tt.refs {
				if i >= tt.want {
					waitEntered(t, g, sha(i))
				}
				releaseGate(t, g)
			}
			for _, id := range ids {
				waitStatus(t, s, id, store.StatusSuccess)
			}
			g.mu.Lock()
			seen := g.maxSeen
			g.mu.Unlock()
			if seen != tt.want {
				t.Errorf("%d runs executed at once, want %d", seen, tt.want)
			}
		})
	}
}

func TestCancelQueuedRun(t *testing.T) {
	s := openStore(t)
	g := newGate()
	p := &pipeline.Pipeline{Name: "a", Repo: "acme/a", CloneURL: "/nowhere"}
	r := newQueueRunner(t, s, stoppable(g.checkout("a")))
	blocker := enqueue(t, r, Request{Pipeline: p, Trigger: "manual", Ref: "refs/heads/main", Commit: sha(0)})
	waitEntered(t, g, sha(0))
	canceled := enqueue(t, r, Request{Pipeline: p, Trigger: "manual", Ref: "refs/heads/main", Commit: sha(1)})
	next := enqueue(t, r, Request{Pipeline: p, Trigger: "manual", Ref: "refs/heads/main", Commit: sha(2)})

	if err := r.Cancel(canceled.ID, "canceled by alice"); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	got, err := s.Run(canceled.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.StatusCanceled || got.Error != "canceled by alice" {
		t.Errorf("canceled run is %s with %q, want canceled with %q", got.Status, got.Error, "canceled by alice")
	}

	releaseGate(t, g)
	waitStatus(t, s, blocker.ID, store.StatusSuccess)
	waitEntered(t, g, sha(2))
	releaseGate(t, g)
	waitStatus(t, s, next.ID, store.StatusSuccess)

	if err := r.Cancel(canceled.ID, "again"); !errors.Is(err, ErrRunFinished) {
		t.Errorf("second Cancel returned %v, want ErrRunFinished", err)
	}
	if got, _ := s.Run(canceled.ID); got.Error != "canceled by alice" {
		t.Errorf("second Cancel changed the reason to %q", got.Error)
	}
	if err := r.Cancel(999, "x"); !errors.Is(err, store.ErrRunNotFound) {
		t.Errorf("Cancel of an unknown run returned %v, want store.ErrRunNotFound", err)
	}
}

func TestCancelRunningRun(t *testing.T) {
	s := openStore(t)
	g := newGate()
	p := &pipeline.Pipeline{Name: "a", Repo: "acme/a", CloneURL: "/nowhere"}
	r := newQueueRunner(t, s, stoppable(g.checkout("a")))
	running := enqueue(t, r, Request{Pipeline: p, Trigger: "manual", Ref: "refs/heads/main", Commit: sha(0)})
	waitEntered(t, g, sha(0))
	next := enqueue(t, r, Request{Pipeline: p, Trigger: "manual", Ref: "refs/heads/main", Commit: sha(1)})

	if err := r.Cancel(running.ID, "canceled by alice"); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	if err := r.Cancel(running.ID, "canceled by bob"); err != nil && !errors.Is(err, ErrRunFinished) {
		t.Errorf("second Cancel returned %v, want nil or ErrRunFinished", err)
	}
	got := waitStatus(t, s, running.ID, store.StatusCanceled)
	if got.Error != "canceled by alice" {
		t.Errorf("canceled run has error %q, want %q", got.Error, "canceled by alice")
	}
	waitEntered(t, g, sha(1))
	releaseGate(t, g)
	waitStatus(t, s, next.ID, store.StatusSuccess)
}

func TestRecoverSupersedesQueuedPushes(t *testing.T) {
	s := openStore(t)
	p := &pipeline.Pipeline{Name: "a", Repo: "acme/a", CloneURL: "/nowhere"}
	older := store.Run{Pipeline: "a", Status: store.StatusQueued, Trigger: TriggerPush, Ref: "refs/heads/main", Commit: sha(0), CloneURL: "/nowhere"}
	manual := store.Run{Pipeline: "a", Status: store.StatusQueued, Trigger: "manual", Ref: "refs/heads/main", Commit: sha(1), CloneURL: "/nowhere"}
	newer := store.Run{Pipeline: "a", Status: store.StatusQueued, Trigger: TriggerPush, Ref: "refs/heads/main", Commit: sha(2), CloneURL: "/nowhere"}
	for _, run := range []*store.Run{&older, &manual, &newer} {
		if err := s.CreateRun(run); err != nil {
			t.Fatal(err)
		}
	}

	g := newGate()
	r := New(Config{Store: s, Checkout: stoppable(g.checkout("a")), Workspaces: t.TempDir()})
	if err := r.Recover([]*pipeline.Pipeline{p}); err != nil {
		t.Fatal(err)
	}
	got := waitStatus(t, s, older.ID, store.StatusCanceled)
	if want := "superseded by " + sha(2)[:12]; got.Error != want {
		t.Errorf("older push has error %q, want %q", got.Error, want)
	}
	startRunner(t, r)
	for _, run := range []store.Run{manual, newer} {
		waitEntered(t, g, run.Commit)
		releaseGate(t, g)
		waitStatus(t, s, run.ID, store.StatusSuccess)
	}
}
