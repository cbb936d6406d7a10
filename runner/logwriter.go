package runner

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"
)

// maxPending bounds how much of an unfinished line is held before it is
// stored anyway, so a program that never prints a newline cannot grow
// quai's memory.
const maxPending = 64 << 10

// Each store append is a bbolt transaction with a disk sync (about 3 ms
// here), so output is batched: stored when this much is waiting, or after
// flushDelay at the latest.
const (
	batchBytes = 32 << 10
	flushDelay = 200 * time.Millisecond
)

// mask replaces a secret value in the log.
const mask = "********"

// minMasked is the shortest value masked: masking shorter ones would blank
// ordinary output.
const minMasked = 4

// logWriter stores a run's output in the store line by line, masking every
// secret value it was told about. It is safe for concurrent use.
type logWriter struct {
	store   Store
	runID   uint64
	log     *slog.Logger
	mu      sync.Mutex
	pending []byte // an unfinished line
	batch   []byte // masked lines not yet stored
	timer   *time.Timer
	secrets []string
	failed  bool
}

func newLogWriter(s Store, runID uint64, log *slog.Logger) *logWriter {
	return &logWriter{store: s, runID: runID, log: log}
}

// AddSecret masks value in everything written from now on.
func (w *logWriter) AddSecret(value string) {
	if len(value) < minMasked {
		return
	}
	w.mu.Lock()
	w.secrets = append(w.secrets, value)
	w.mu.Unlock()
}

// Write stores every complete line of p and keeps the rest for the next
// call. It never fails, so a broken store does not abort a build; the first
// store error is logged.
func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, p...)
	i := bytes.LastIndexByte(w.pending, '\n')
	switch {
	case i >= 0:
		w.add(w.pending[:i+1])
		w.pending = append(w.pending[:0], w.pending[i+1:]...)
	case len(w.pending) >= maxPending:
		w.add(w.pending)
		w.pending = w.pending[:0]
	}
	return len(p), nil
}

// Printf writes one line of quai's own, marked so it stands apart from
// build output.
func (w *logWriter) Printf(format string, args ...any) {
	line := fmt.Sprintf("[quai %s] %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
	_, _ = w.Write([]byte(line))
}

// Close stores what is left of an unfinished line. Calling it twice is
// harmless.
func (w *logWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) > 0 {
		w.add(append(w.pending, '\n'))
		w.pending = w.pending[:0]
	}
	w.flush()
	return nil
}

// add masks b and queues it for the store. Callers hold w.mu.
func (w *logWriter) add(b []byte) {
	s := string(b)
	for _, secret := range w.secrets {
		s = strings.ReplaceAll(s, secret, mask)
	}
	w.batch = append(w.batch, s...)
	switch {
	case len(w.batch) >= batchBytes:
		w.flush()
	case w.timer == nil:
		w.timer = time.AfterFunc(flushDelay, func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.flush()
		})
	}
}

// flush stores the batch. Callers hold w.mu.
func (w *logWriter) flush() {
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	if len(w.batch) == 0 {
		return
	}
	if err := w.store.AppendLog(w.runID, w.batch); err != nil && !w.failed {
		w.failed = true
		w.log.Error("storing run log failed; later output is lost", "error", err)
	}
	w.batch = w.batch[:0]
}

// redactURL drops credentials from a clone URL before it is printed.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}
