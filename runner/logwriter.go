package runner

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"
)

// maxPending bounds how much of an unfinished line is held before it is
// stored anyway, so a program that never prints a newline cannot grow
// quai's memory. The writer still holds back the end of such a chunk when
// it could be the start of a secret value.
const maxPending = 64 << 10

// Each store append is a bbolt transaction with a disk sync (about 3 ms
// here), so output is batched: stored when this much is waiting, or after
// flushDelay at the latest.
const (
	batchBytes = 32 << 10
	flushDelay = 200 * time.Millisecond
)

// logWriter stores a run's output in the store line by line, masking every
// secret value registered with AddSecret, even when a value is split across
// writes. It is safe for concurrent use.
type logWriter struct {
	store Store
	runID uint64
	log   *slog.Logger
	mu    sync.Mutex
	// pending is output not masked yet: an unfinished line, or a tail that
	// may be the start of a secret value.
	pending []byte
	// covered is how many leading bytes of pending belong to a secret value
	// that the last chunk masked only in part.
	covered int
	batch   []byte // masked output not yet stored
	timer   *time.Timer
	masker  masker
	failed  bool
}

func newLogWriter(s Store, runID uint64, log *slog.Logger) *logWriter {
	return &logWriter{store: s, runID: runID, log: log}
}

// AddSecret masks value in everything written from now on, and in output
// written before that the writer still holds. See masker.add for the forms
// of value that are masked and for values too short to mask.
func (w *logWriter) AddSecret(value string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.masker.add(value)
}

// Write queues every complete line of p for the store and keeps the rest
// for the next call. It also keeps back the end of a line that may be the
// start of a multi-line secret value. Write never returns an error, so a
// broken store does not abort a build. The first store error is logged.
func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, p...)
	end := 0
	if i := bytes.LastIndexByte(p, '\n'); i >= 0 {
		end = len(w.pending) - len(p) + i + 1
	} else if len(w.pending) >= maxPending {
		end = len(w.pending)
	}
	if end > 0 {
		w.add(end, false)
	}
	return len(p), nil
}

// Printf writes one line of quai's own, with a "[quai HH:MM:SS]" prefix
// that sets it apart from build output.
func (w *logWriter) Printf(format string, args ...any) {
	line := fmt.Sprintf("[quai %s] %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
	_, _ = w.Write([]byte(line))
}

// Close stores what is left, ending an unfinished line with a newline.
// Calling it twice is harmless.
func (w *logWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) > 0 {
		if w.pending[len(w.pending)-1] != '\n' {
			w.pending = append(w.pending, '\n')
		}
		w.add(len(w.pending), true)
	}
	w.flush()
	return nil
}

// add masks pending[:end] and queues it for the store, keeping back what
// the masker cannot decide yet unless final is set. Callers hold w.mu.
func (w *logWriter) add(end int, final bool) {
	queued := len(w.batch)
	var n int
	w.batch, n, w.covered = w.masker.replace(w.batch, w.pending[:end], w.covered, final)
	w.pending = append(w.pending[:0], w.pending[n:]...)
	if len(w.batch) == queued {
		return
	}

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
