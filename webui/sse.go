package webui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/quai-ci/quai/store"
)

// heartbeatInterval is how often an idle event stream sends a comment, so
// proxies that close idle connections (HAProxy's "timeout server", often
// 30 s or more) keep it open.
const heartbeatInterval = 15 * time.Second

// pollInterval is how often an event stream reads the store when the
// server has no LogNotifier.
const pollInterval = time.Second

// statusEvent is the data of a "status" event.
type statusEvent struct {
	Status string      `json:"status"`
	Error  string      `json:"error,omitempty"`
	Took   string      `json:"took,omitempty"`
	Steps  []stepEvent `json:"steps,omitempty"`
}

// stepEvent is one step in a statusEvent.
type stepEvent struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Took   string `json:"took,omitempty"`
}

// runEvents serves GET /runs/{id}/events, a Server-Sent Events stream of a
// run. A "log" event carries log lines rendered as HTML, and its id is the
// log's byte offset after them. The stream starts at the Last-Event-ID
// header, which a browser sends when it reconnects, else at ?offset=, else
// at 0. A "status" event, JSON of statusEvent, comes first and after every
// change of the run's status or steps. An "end" event with the final
// status closes the stream once the run has finished and its whole log
// was sent. The stream also ends when the client goes away or
// Config.Closing is closed.
func (s *Server) runEvents(w http.ResponseWriter, r *http.Request) error {
	run, err := s.run(r)
	if err != nil {
		return err
	}
	offset, err := s.streamOffset(r, run.ID)
	if err != nil {
		return err
	}

	// The server's WriteTimeout bounds whole responses, which would cut
	// every stream. A stream ends by itself instead, with its run, its
	// client or Closing. (net/http clears the read deadline by itself once
	// a request without a body is read.)
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("clearing the write deadline of run %d's event stream: %w", run.ID, err)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	// nginx and some other proxies buffer responses unless this header
	// disables it.
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	f := &follower{s: s, w: w, rc: rc, runID: run.ID, offset: offset}
	if err := f.follow(r); err != nil {
		// The status line is sent, so the log line is all that is left to
		// report with.
		s.cfg.Log.Warn("run event stream ended early", "run_id", run.ID, "error", err)
	}
	return nil
}

// streamOffset returns where a stream starts, checked against the log size.
func (s *Server) streamOffset(r *http.Request, runID uint64) (int64, error) {
	raw := r.Header.Get("Last-Event-ID")
	if raw == "" {
		raw = r.URL.Query().Get("offset")
	}
	if raw == "" {
		return 0, nil
	}
	size, err := s.cfg.Runs.LogSize(runID)
	if err != nil {
		return 0, fmt.Errorf("reading log size of run %d: %w", runID, err)
	}
	offset, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || offset < 0 || offset > size {
		return 0, &httpError{status: http.StatusBadRequest,
			public: fmt.Sprintf("invalid log offset %q: want a byte offset between 0 and the log size %d", raw, size)}
	}
	return offset, nil
}

// follower sends one run's events to one client.
type follower struct {
	s      *Server
	w      http.ResponseWriter
	rc     *http.ResponseController
	runID  uint64
	offset int64
	// status is the data of the last status event sent.
	status []byte
}

func (f *follower) follow(r *http.Request) error {
	// Exactly one of wake and poll is set.
	var wake <-chan struct{}
	var poll <-chan time.Time
	if n := f.s.cfg.LogNotify; n != nil {
		ch, stop := n.LogNotify(f.runID)
		defer stop()
		wake = ch
	} else {
		ticker := time.NewTicker(pollInterval)
		defer ticker.Stop()
		poll = ticker.C
	}
	heartbeat := time.NewTicker(heartbeatInterval)
	defer heartbeat.Stop()

	for {
		// The status is read before the log: bytes appended before the run
		// turned final are then in the log read after it.
		run, err := f.s.cfg.Runs.Run(f.runID)
		if err != nil {
			return fmt.Errorf("loading run: %w", err)
		}
		final := run.Status.Final()
		if err := f.sendLog(final); err != nil {
			return err
		}
		if err := f.sendStatus(run); err != nil {
			return err
		}
		if final {
			if err := f.send("end", "", []byte(run.Status.String())); err != nil {
				return err
			}
			return f.rc.Flush()
		}
		if err := f.rc.Flush(); err != nil {
			return fmt.Errorf("flushing: %w", err)
		}

		select {
		case <-r.Context().Done():
			return nil
		case <-f.s.cfg.Closing:
			return nil
		case <-wake:
		case <-poll:
		case <-heartbeat.C:
			if _, err := f.w.Write([]byte(": heartbeat\n\n")); err != nil {
				return fmt.Errorf("writing heartbeat: %w", err)
			}
		}
	}
}

// sendLog sends the log from f.offset on as "log" events of at most
// logTailBytes each. While the run is live it holds back an unfinished
// last line.
func (f *follower) sendLog(final bool) error {
	for {
		w := &cappedWriter{limit: logTailBytes}
		if _, err := f.s.cfg.Runs.CopyLog(f.runID, f.offset, w); err != nil && !errors.Is(err, errLogChunkFull) {
			return fmt.Errorf("reading log at offset %d: %w", f.offset, err)
		}
		data := w.buf
		if !final {
			data = completeLines(data)
		}
		if len(data) == 0 {
			return nil
		}
		f.offset += int64(len(data))
		id := strconv.FormatInt(f.offset, 10)
		if err := f.send("log", id, []byte(renderLog(data))); err != nil {
			return err
		}
		if len(w.buf) < w.limit {
			return nil
		}
	}
}

// sendStatus sends a "status" event when the run's status or steps changed
// since the last one.
func (f *follower) sendStatus(run store.Run) error {
	ev := statusEvent{Status: run.Status.String(), Error: run.Error, Took: formatDuration(run.Duration(time.Now()))}
	for _, st := range run.Steps {
		ev.Steps = append(ev.Steps, stepEvent{Name: st.Name, Status: st.Status.String(), Took: stepDuration(st)})
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encoding status event: %w", err)
	}
	// Durations of live runs change every second, so they do not count as
	// a change on their own.
	ev.Took = ""
	for i := range ev.Steps {
		ev.Steps[i].Took = ""
	}
	key, _ := json.Marshal(ev)
	if bytes.Equal(key, f.status) {
		return nil
	}
	f.status = key
	return f.send("status", "", data)
}

// send writes one event. Each line of data becomes a "data:" field, which
// the browser joins again with newlines.
func (f *follower) send(event, id string, data []byte) error {
	var b bytes.Buffer
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	b.WriteString("event: " + event + "\n")
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(line)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	if _, err := f.w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("writing %s event: %w", event, err)
	}
	return nil
}
