package schedule

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
)

// activationWait bounds the wait for an "@every 1s" schedule to activate a
// few times.
const activationWait = 15 * time.Second

// call is one call of fakeStarter.
type call struct {
	pipeline string
	spec     pipeline.Schedule
}

// fakeStarter records its calls. behave, when set, decides each call's
// outcome from its 1-based number and may panic or block.
type fakeStarter struct {
	mu      sync.Mutex
	calls   []call
	inside  int
	overlap bool
	behave  func(ctx context.Context, n int) (bool, error)
}

func (f *fakeStarter) RunScheduled(ctx context.Context, p *pipeline.Pipeline, s pipeline.Schedule) (store.Run, bool, error) {
	f.mu.Lock()
	f.calls = append(f.calls, call{pipeline: p.Name, spec: s})
	n := len(f.calls)
	f.inside++
	if f.inside > 1 {
		f.overlap = true
	}
	behave := f.behave
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inside--
		f.mu.Unlock()
	}()

	started := true
	var err error
	if behave != nil {
		started, err = behave(ctx, n)
	}
	return store.Run{ID: uint64(n), Pipeline: p.Name}, started, err
}

// count returns how many calls named pipeline.
func (f *fakeStarter) count(pipeline string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.pipeline == pipeline {
			n++
		}
	}
	return n
}

// waitCalls polls until pipeline had at least n calls.
func (f *fakeStarter) waitCalls(t *testing.T, pipeline string, n int) {
	t.Helper()
	deadline := time.Now().Add(activationWait)
	for f.count(pipeline) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls for pipeline %q after %s, want %d", f.count(pipeline), pipeline,
				activationWait, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startScheduler runs a Scheduler until the test ends and returns it with
// its log.
func startScheduler(t *testing.T, starter Starter) (*Scheduler, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	s := New(Config{Starter: starter, Log: slog.New(slog.NewTextHandler(logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(activationWait):
			t.Error("Run did not return after its context was canceled")
		}
	})
	return s, logs
}

func scheduled(name string, specs ...string) *pipeline.Pipeline {
	p := &pipeline.Pipeline{Name: name, Repo: "acme/" + name}
	for _, spec := range specs {
		p.On.Schedule = append(p.On.Schedule, pipeline.Schedule{Cron: spec, Branch: "main"})
	}
	return p
}

func TestSchedulerStartsRuns(t *testing.T) {
	t.Parallel()
	starter := &fakeStarter{}
	s, _ := startScheduler(t, starter)
	s.Set([]*pipeline.Pipeline{scheduled("tick", "@every 1s"), scheduled("idle")})

	starter.waitCalls(t, "tick", 2)
	starter.mu.Lock()
	first := starter.calls[0]
	starter.mu.Unlock()
	if first.spec.Cron != "@every 1s" || first.spec.Branch != "main" {
		t.Errorf("Starter got schedule %+v, want the pipeline's", first.spec)
	}
	if n := starter.count("idle"); n != 0 {
		t.Errorf("pipeline without schedules started %d times", n)
	}
}

func TestSchedulerSurvivesPanicAndError(t *testing.T) {
	t.Parallel()
	starter := &fakeStarter{behave: func(ctx context.Context, n int) (bool, error) {
		switch n {
		case 1:
			panic("starter exploded")
		case 2:
			return false, errors.New("repository unreachable")
		}
		return true, nil
	}}
	s, logs := startScheduler(t, starter)
	s.Set([]*pipeline.Pipeline{scheduled("tick", "@every 1s")})

	starter.waitCalls(t, "tick", 3)
	for _, want := range []string{"starter exploded", "repository unreachable", "scheduled run queued"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestSchedulerSetReplaces(t *testing.T) {
	t.Parallel()
	starter := &fakeStarter{}
	s, _ := startScheduler(t, starter)
	s.Set([]*pipeline.Pipeline{scheduled("old", "@every 1s")})
	starter.waitCalls(t, "old", 1)

	s.Set([]*pipeline.Pipeline{scheduled("new", "@every 1s")})
	starter.waitCalls(t, "new", 1)
	before := starter.count("old")
	// Two more activations of "new" span more than one period of "old".
	starter.waitCalls(t, "new", 3)
	if after := starter.count("old"); after != before {
		t.Errorf("removed schedule activated %d more times after Set", after-before)
	}
	if next := s.Next("old"); next != nil {
		t.Errorf("Next(old) = %v after Set removed it, want nil", next)
	}
	if next := s.Next("new"); len(next) != 1 {
		t.Errorf("Next(new) = %v, want one time", next)
	}
}

func TestSchedulerSerializesPipeline(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	entered := make(chan int, 100)
	starter := &fakeStarter{behave: func(ctx context.Context, n int) (bool, error) {
		entered <- n
		if n == 1 {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return true, nil
	}}
	s, _ := startScheduler(t, starter)
	s.Set([]*pipeline.Pipeline{scheduled("pair", "@every 1s", "@every 1s")})

	select {
	case <-entered:
	case <-time.After(activationWait):
		t.Fatal("no activation")
	}
	// Both schedules activate at least twice in this window; none of them
	// may reach the Starter while the first call holds it.
	select {
	case n := <-entered:
		t.Fatalf("call %d entered the Starter while call 1 was still in it", n)
	case <-time.After(2500 * time.Millisecond):
	}
	close(release)
	starter.waitCalls(t, "pair", 3)

	starter.mu.Lock()
	defer starter.mu.Unlock()
	if starter.overlap {
		t.Error("two activations of one pipeline were in the Starter at once")
	}
}

func TestSchedulerNext(t *testing.T) {
	logs := &syncBuffer{}
	now := utc("2026-03-28T12:00:00Z")
	s := New(Config{
		Starter: &fakeStarter{},
		Log:     slog.New(slog.NewTextHandler(logs, nil)),
		Now:     func() time.Time { return now },
	})
	p := &pipeline.Pipeline{Name: "nightly", On: pipeline.Triggers{Schedule: []pipeline.Schedule{
		{Cron: "30 2 * * *", Timezone: "Europe/Paris"},
		{Cron: "not a spec"},
		{Cron: "@every 6h"},
		{Cron: "0 0 30 2 *"},
	}}}
	s.Set([]*pipeline.Pipeline{p, scheduled("none")})

	got := s.Next("nightly")
	want := []time.Time{
		utc("2026-03-30T00:30:00Z"),
		{},
		utc("2026-03-28T18:00:00Z"),
		{},
	}
	if len(got) != len(want) {
		t.Fatalf("Next = %v, want %d times", got, len(want))
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("Next[%d] = %s, want %s", i, got[i].UTC(), want[i])
		}
	}
	if zone := got[0].Location().String(); zone != "Europe/Paris" {
		t.Errorf("Next[0] is in %s, want the schedule's zone Europe/Paris", zone)
	}
	if !strings.Contains(logs.String(), "not a spec") {
		t.Errorf("log does not name the invalid schedule:\n%s", logs)
	}
	for _, name := range []string{"none", "unknown"} {
		if next := s.Next(name); next != nil {
			t.Errorf("Next(%s) = %v, want nil", name, next)
		}
	}
}

func TestSchedulerRunTwice(t *testing.T) {
	s := New(Config{Starter: &fakeStarter{}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	deadline := time.Now().Add(activationWait)
	for s.context() == nil {
		if time.Now().After(deadline) {
			t.Fatal("Run did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Run(ctx); err == nil {
		t.Error("second Run returned nil, want an error")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("first Run: %v", err)
	}
}
