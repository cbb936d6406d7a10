package store

import (
	"testing"
	"time"
)

// received reports whether ch holds a signal, waiting at most wait.
func received(ch <-chan struct{}, wait time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(wait):
		return false
	}
}

func TestLogNotify(t *testing.T) {
	s, _ := openTestStore(t)
	run := Run{Pipeline: "web", Status: StatusRunning}
	if err := s.CreateRun(&run); err != nil {
		t.Fatal(err)
	}
	other := Run{Pipeline: "web", Status: StatusRunning}
	if err := s.CreateRun(&other); err != nil {
		t.Fatal(err)
	}
	ch, stop := s.LogNotify(run.ID)
	defer stop()

	if received(ch, 10*time.Millisecond) {
		t.Fatal("signal before any change")
	}
	if err := s.AppendLog(run.ID, []byte("line\n")); err != nil {
		t.Fatal(err)
	}
	if !received(ch, time.Second) {
		t.Error("no signal after AppendLog")
	}

	if err := s.AppendLog(run.ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLog(other.ID, []byte("other\n")); err != nil {
		t.Fatal(err)
	}
	if received(ch, 10*time.Millisecond) {
		t.Error("signal after an empty append or another run's append")
	}

	if _, err := s.UpdateRun(run.ID, func(r *Run) error { r.Status = StatusSuccess; return nil }); err != nil {
		t.Fatal(err)
	}
	if !received(ch, time.Second) {
		t.Error("no signal after UpdateRun")
	}

	// Several changes while the follower is busy merge into one signal.
	for range 3 {
		if err := s.AppendLog(run.ID, []byte("more\n")); err != nil {
			t.Fatal(err)
		}
	}
	if !received(ch, time.Second) {
		t.Error("no signal after three appends")
	}
	if received(ch, 10*time.Millisecond) {
		t.Error("three appends gave more than one pending signal")
	}

	stop()
	stop()
	if err := s.AppendLog(run.ID, []byte("after stop\n")); err != nil {
		t.Fatal(err)
	}
	if received(ch, 10*time.Millisecond) {
		t.Error("signal after unsubscribing")
	}
	if n := len(s.notifier.waiters); n != 0 {
		t.Errorf("%d runs still have followers after unsubscribing", n)
	}
}

func TestLogNotifyFailedAppend(t *testing.T) {
	s, _ := openTestStore(t)
	ch, stop := s.LogNotify(42)
	defer stop()
	if err := s.AppendLog(42, []byte("x")); err == nil {
		t.Fatal("AppendLog to an unknown run succeeded")
	}
	if received(ch, 10*time.Millisecond) {
		t.Error("signal after a failed append")
	}
}
