package webui

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/quai-ci/quai/store"
)

// event is one Server-Sent Event as a browser receives it.
type event struct {
	id, name, data string
}

// openEvents connects to a run's event stream and returns its events on a
// channel that is closed when the stream ends.
func openEvents(t *testing.T, srv *httptest.Server, runID uint64, lastEventID string) <-chan event {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, fmt.Sprintf("%s/runs/%d/events", srv.URL, runID), nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events answered %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan event, 100)
	go func() {
		defer close(events)
		defer resp.Body.Close()
		var ev event
		var data []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					ev.data = strings.Join(data, "\n")
					events <- ev
				}
				ev, data = event{}, nil
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.name = line[7:]
			case strings.HasPrefix(line, "data: "):
				data = append(data, line[6:])
			}
		}
	}()
	return events
}

// next returns the next event, failing the test after a deadline.
func next(t *testing.T, events <-chan event) event {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("stream ended early")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return event{}
}

// nextNamed skips events until one named name arrives.
func nextNamed(t *testing.T, events <-chan event, name string) event {
	t.Helper()
	for {
		if ev := next(t, events); ev.name == name {
			return ev
		}
	}
}

func TestRunEventsFollow(t *testing.T) {
	env := newPagesEnv(t)
	srv := httptest.NewServer(env.s)
	t.Cleanup(srv.Close)
	run := env.createRun(t, store.Run{Pipeline: "hello", Status: store.StatusRunning,
		Steps: []store.StepResult{{Name: "test", Status: store.StatusRunning}}})
	if err := env.st.AppendLog(run.ID, []byte("first line\n")); err != nil {
		t.Fatal(err)
	}

	events := openEvents(t, srv, run.ID, "")
	first := nextNamed(t, events, "log")
	if first.data != "first line\n" || first.id != "11" {
		t.Fatalf("first log event %+v, want the first line with id 11", first)
	}
	status := nextNamed(t, events, "status")
	if !strings.Contains(status.data, `"status":"running"`) || !strings.Contains(status.data, `"name":"test"`) {
		t.Errorf("status event %q, want running with step test", status.data)
	}

	// The run is still running: these lines must arrive before it ends,
	// and the unfinished last line must wait.
	if err := env.st.AppendLog(run.ID, []byte("second <b>line</b>\npartial")); err != nil {
		t.Fatal(err)
	}
	second := nextNamed(t, events, "log")
	if second.data != "second &lt;b&gt;line&lt;/b&gt;\n" || second.id != "30" {
		t.Fatalf("second log event %+v, want the escaped second line with id 30", second)
	}

	_, err := env.st.UpdateRun(run.ID, func(r *store.Run) error {
		r.Status = store.StatusSuccess
		r.Steps[0].Status = store.StatusSuccess
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	last := nextNamed(t, events, "log")
	if last.data != "partial" || last.id != "37" {
		t.Errorf("final log event %+v, want the unfinished line with id 37", last)
	}
	status = next(t, events)
	if status.name != "status" || !strings.Contains(status.data, `"status":"success"`) {
		t.Errorf("event after the log %+v, want status success", status)
	}
	if end := next(t, events); end.name != "end" || end.data != "success" {
		t.Errorf("last event %+v, want end with success", end)
	}
	select {
	case ev, ok := <-events:
		if ok {
			t.Errorf("event %+v after end", ev)
		}
	case <-time.After(5 * time.Second):
		t.Error("stream still open 5s after end")
	}

	// A reconnect resumes after the last event the browser received.
	resumed := openEvents(t, srv, run.ID, first.id)
	var got []string
	for ev := range resumed {
		if ev.name == "log" {
			got = append(got, ev.data)
		}
	}
	if strings.Join(got, "") != "second &lt;b&gt;line&lt;/b&gt;\npartial" {
		t.Errorf("resumed stream sent %q, want only the lines after the first", got)
	}
}

func TestRunEventsBadOffset(t *testing.T) {
	env := newPagesEnv(t)
	run := env.createRun(t, store.Run{Pipeline: "hello", Status: store.StatusRunning})
	for _, offset := range []string{"-1", "x", "5"} {
		w := do(t, env.s, http.MethodGet, fmt.Sprintf("/runs/%d/events?offset=%s", run.ID, offset), "", "")
		if w.Code != http.StatusBadRequest {
			t.Errorf("offset %s answered %d, want 400", offset, w.Code)
		}
	}
}

func TestRunEventsClientGone(t *testing.T) {
	env := newPagesEnv(t)
	srv := httptest.NewServer(env.s)
	t.Cleanup(srv.Close)
	run := env.createRun(t, store.Run{Pipeline: "hello", Status: store.StatusRunning})

	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/runs/%d/events", srv.URL, run.ID), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	// Reading the first status event shows the handler is in its loop.
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && sc.Text() != "event: status" {
	}
	resp.Body.Close()

	// Close waits for every handler to return, so it returns only if the
	// stream handler noticed that the client went away.
	closed := make(chan struct{})
	go func() {
		srv.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("event stream handler still running 5s after the client went away")
	}
}

func TestRunEventsClosing(t *testing.T) {
	env := newPagesEnv(t)
	closing := make(chan struct{})
	env.s.cfg.Closing = closing
	srv := httptest.NewServer(env.s)
	t.Cleanup(srv.Close)
	run := env.createRun(t, store.Run{Pipeline: "hello", Status: store.StatusRunning})

	events := openEvents(t, srv, run.ID, "")
	if ev := next(t, events); ev.name != "status" {
		t.Fatalf("first event %+v, want status", ev)
	}
	close(closing)
	select {
	case ev, ok := <-events:
		if ok {
			t.Errorf("event %+v after Closing was closed, want the stream to end", ev)
		}
	case <-time.After(5 * time.Second):
		t.Error("stream still open 5s after Closing was closed")
	}
}

func TestRunEventsServerTimeouts(t *testing.T) {
	env := newPagesEnv(t)
	srv := httptest.NewUnstartedServer(env.s)
	srv.Config.ReadTimeout = 100 * time.Millisecond
	srv.Config.WriteTimeout = 100 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	run := env.createRun(t, store.Run{Pipeline: "hello", Status: store.StatusRunning})

	events := openEvents(t, srv, run.ID, "")
	if ev := next(t, events); ev.name != "status" {
		t.Fatalf("first event %+v, want status", ev)
	}
	// Appending after the read and write timeouts have passed must still
	// reach the client over the same stream.
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("stream ended at the server's timeouts")
			}
			t.Fatalf("unexpected event %+v", ev)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := env.st.AppendLog(run.ID, []byte("late line\n")); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.name != "log" || ev.data != "late line\n" {
		t.Errorf("event after the server's timeouts %+v, want the late line", ev)
	}
}
