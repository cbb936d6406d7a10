// Package schedule starts pipeline runs at the times of their cron
// schedules.
//
// A spec is read by robfig/cron v3's standard parser in the schedule's time
// zone, UTC by default. Daylight-saving changes follow robfig/cron v3.0.1,
// which steps through wall-clock time:
//   - a time inside the hour skipped in spring does not activate that day:
//     "30 2 * * *" in Europe/Paris has no activation on 2026-03-29;
//   - a time inside the hour repeated in autumn activates twice, once per
//     UTC offset: "30 2 * * *" in Europe/Paris activates at 00:30 and 01:30
//     UTC on 2026-10-25. The second activation starts no run while the
//     first run is still queued or running;
//   - every other time activates once, such as "30 1 * * *" in Europe/Paris
//     on 2026-10-25;
//   - "@every" schedules count elapsed time and ignore the time zone.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
)

// defaultTimeout bounds one activation's call to the Starter, which reads
// the branch head with git ls-remote: a few seconds normally, so a hung
// network connection is cut well before the next activation of an hourly
// schedule.
const defaultTimeout = 2 * time.Minute

// Starter queues the run of one activation of a schedule. It returns the
// queued run with true, or the live run that holds the schedule with false
// when the previous scheduled run is still queued or running.
// runner.Runner.RunScheduled implements it.
type Starter interface {
	RunScheduled(ctx context.Context, p *pipeline.Pipeline, s pipeline.Schedule) (store.Run, bool, error)
}

// Config holds a Scheduler's dependencies.
type Config struct {
	Starter Starter
	Log     *slog.Logger
	// Now returns the current time for Next. Default time.Now.
	Now func() time.Time
	// Timeout bounds one activation's call to Starter. Default 2 minutes.
	Timeout time.Duration
}

// Scheduler calls Starter.RunScheduled at the activation times of the
// schedules of the pipelines given to Set. Activations of one pipeline never
// call the Starter at once, and an activation that comes while the previous
// activation of the same schedule is still in the Starter is skipped. A
// panic or an error in one activation is logged and never stops later ones.
// Set and Next are safe for concurrent use with Run and each other.
type Scheduler struct {
	cfg  Config
	log  *slog.Logger
	cron *cron.Cron

	mu       sync.Mutex
	ctx      context.Context // Run's context, nil before Run
	ids      []cron.EntryID
	entries  map[string][]entry     // by pipeline name
	pipeline map[string]*sync.Mutex // serializes a pipeline's activations
}

// entry is one schedule of a pipeline.
type entry struct {
	spec pipeline.Schedule
	// sched is nil when spec is invalid.
	sched cron.Schedule
	loc   *time.Location
	// busy is set while an activation is in the Starter.
	busy atomic.Bool
}

// New returns a Scheduler with no schedules; nothing activates until Run is
// called.
func New(cfg Config) *Scheduler {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	logger := cronLogger{log: cfg.Log}
	return &Scheduler{
		cfg: cfg,
		log: cfg.Log,
		// activate recovers its own panics; cron.Recover is the backstop
		// for anything outside it, since the default chain would print to
		// stderr instead of the log.
		cron:     cron.New(cron.WithLogger(logger), cron.WithChain(cron.Recover(logger))),
		entries:  map[string][]entry{},
		pipeline: map[string]*sync.Mutex{},
	}
}

// Run activates schedules until ctx is canceled, then waits for the
// activations in progress, whose calls to the Starter see ctx canceled, and
// returns nil. It returns an error at once when called a second time.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.ctx != nil {
		s.mu.Unlock()
		return errors.New("running scheduler: Run was already called")
	}
	s.ctx = ctx
	s.mu.Unlock()

	s.cron.Start()
	s.log.Info("scheduler started")
	<-ctx.Done()
	<-s.cron.Stop().Done()
	s.log.Info("scheduler stopped")
	return nil
}

// Set replaces every schedule with those of pipelines, for example after
// pipelines.d was reloaded. Activations in progress finish with the
// definition they started with. A schedule whose spec or time zone is
// invalid is logged as an error and skipped, and the others still apply.
// Loading validates specs first, so this happens only for pipelines that
// bypassed it. An unchanged schedule keeps its times, since they are
// computed from the clock and the spec only.
func (s *Scheduler) Set(pipelines []*pipeline.Pipeline) {
	entries := map[string][]entry{}
	count := 0
	for _, p := range pipelines {
		if len(p.On.Schedule) == 0 {
			continue
		}
		list := make([]entry, len(p.On.Schedule))
		for i, spec := range p.On.Schedule {
			list[i].spec = spec
			sched, loc, err := parseSchedule(spec)
			if err != nil {
				s.log.Error("schedule skipped", "pipeline", p.Name, "error", err)
				continue
			}
			list[i].sched, list[i].loc = sched, loc
			count++
		}
		entries[p.Name] = list
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.ids {
		s.cron.Remove(id)
	}
	s.ids = s.ids[:0]
	for _, p := range pipelines {
		list := entries[p.Name]
		for i := range list {
			if list[i].sched == nil {
				continue
			}
			e := &list[i]
			id := s.cron.Schedule(e.sched, cron.FuncJob(func() { s.activate(p, e) }))
			s.ids = append(s.ids, id)
		}
	}
	s.entries = entries
	s.log.Info("schedules set", "schedules", count)
}

// Next returns, for each schedule of the named pipeline in the order the
// pipeline lists them, its next activation after the current time, in the
// schedule's time zone. A schedule that is invalid or never activates (such
// as "0 0 30 2 *") has the zero time. Next returns nil for a pipeline
// without schedules or one that Set did not receive.
func (s *Scheduler) Next(pipeline string) []time.Time {
	s.mu.Lock()
	list := s.entries[pipeline]
	s.mu.Unlock()
	if len(list) == 0 {
		return nil
	}
	now := s.cfg.Now()
	times := make([]time.Time, len(list))
	for i := range list {
		if list[i].sched != nil {
			times[i] = list[i].sched.Next(now.In(list[i].loc))
		}
	}
	return times
}

// activate calls the Starter for one activation of e. It runs on a
// goroutine of cron, which waits for it on Stop.
func (s *Scheduler) activate(p *pipeline.Pipeline, e *entry) {
	log := s.log.With("pipeline", p.Name, "schedule", e.spec.Cron)
	defer func() {
		if v := recover(); v != nil {
			log.Error("scheduled activation panicked", "error", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()

	ctx := s.context()
	if ctx == nil || ctx.Err() != nil {
		return
	}
	if !e.busy.CompareAndSwap(false, true) {
		log.Warn("activation skipped: the previous activation of this schedule is still starting its run")
		return
	}
	defer e.busy.Store(false)

	lock := s.pipelineLock(p.Name)
	lock.Lock()
	defer lock.Unlock()

	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	run, started, err := s.cfg.Starter.RunScheduled(ctx, p, e.spec)
	switch {
	case err != nil:
		log.Error("starting scheduled run failed", "error", err)
	case !started:
		log.Info("scheduled run skipped: the previous scheduled run is still live", "run_id", run.ID)
	default:
		log.Info("scheduled run queued", "run_id", run.ID, "commit", run.Commit)
	}
}

func (s *Scheduler) context() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctx
}

// pipelineLock returns the mutex of the named pipeline. Mutexes are never
// removed, so a pipeline renamed by a reload keeps its old, unused one.
func (s *Scheduler) pipelineLock(name string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.pipeline[name]
	if !ok {
		m = &sync.Mutex{}
		s.pipeline[name] = m
	}
	return m
}

// cronLogger sends robfig/cron's messages to slog: its routine ones
// ("wake", "run", "added") at Debug, its errors (recovered panics) at Error.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, keysAndValues ...any) {
	l.log.Debug("cron: "+msg, keysAndValues...)
}

func (l cronLogger) Error(err error, msg string, keysAndValues ...any) {
	l.log.Error("cron: "+msg, append(keysAndValues, "error", err)...)
}
