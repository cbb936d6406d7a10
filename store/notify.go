package store

import "sync"

// logNotifier wakes the followers of a run's log. Its zero value is ready
// to use.
type logNotifier struct {
	mu sync.Mutex
	// waiters holds, per run ID, one channel per follower. Each channel has
	// a buffer of one, so a follower that is busy misses no change: the
	// pending signal stays until it reads, and further signals merge into it.
	waiters map[uint64]map[chan struct{}]struct{}
}

// LogNotify returns a channel that receives a value after each AppendLog
// that adds bytes to run runID's log and after each UpdateRun of that run,
// once the change is committed. Signals that arrive while the caller is
// busy merge into one, so a caller that reads the store after each receive
// misses no change. Subscribe before the first read, or a change between
// that read and the subscription is not signalled. The returned function
// unsubscribes; it is safe to call more than once. The channel is never
// closed. LogNotify does not check that the run exists.
func (s *Store) LogNotify(runID uint64) (<-chan struct{}, func()) {
	return s.notifier.subscribe(runID)
}

func (n *logNotifier) subscribe(runID uint64) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	if n.waiters == nil {
		n.waiters = make(map[uint64]map[chan struct{}]struct{})
	}
	if n.waiters[runID] == nil {
		n.waiters[runID] = make(map[chan struct{}]struct{})
	}
	n.waiters[runID][ch] = struct{}{}
	n.mu.Unlock()

	var once sync.Once
	return ch, func() {
		once.Do(func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			delete(n.waiters[runID], ch)
			if len(n.waiters[runID]) == 0 {
				delete(n.waiters, runID)
			}
		})
	}
}

// notify signals every follower of run runID without blocking.
func (n *logNotifier) notify(runID uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.waiters[runID] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
