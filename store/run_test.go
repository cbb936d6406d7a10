package store

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStatusJSONRoundTrip(t *testing.T) {
	for _, st := range []Status{StatusQueued, StatusRunning, StatusSuccess, StatusFailure, StatusCanceled, StatusSkipped} {
		t.Run(st.String(), func(t *testing.T) {
			data, err := json.Marshal(Run{Status: st})
			if err != nil {
				t.Fatal(err)
			}
			if want := `"status":"` + st.String() + `"`; !strings.Contains(string(data), want) {
				t.Errorf("JSON %s does not contain %s", data, want)
			}
			var got Run
			if err := json.Unmarshal(data, &got); err != nil {
				t.Fatal(err)
			}
			if got.Status != st {
				t.Errorf("decoded status = %v, want %v", got.Status, st)
			}
		})
	}
}

func TestStatusRejectsUnknown(t *testing.T) {
	for _, input := range []string{`"bogus"`, `""`, `"Success"`, `3`} {
		var st Status
		if err := json.Unmarshal([]byte(input), &st); err == nil {
			t.Errorf("json.Unmarshal(%s) = %v, want an error", input, st)
		}
	}
	for _, st := range []Status{0, StatusSkipped + 1, 255} {
		if _, err := json.Marshal(st); err == nil {
			t.Errorf("json.Marshal(Status(%d)) succeeded", uint8(st))
		}
	}
}

func TestCreateRun(t *testing.T) {
	s, _ := openTestStore(t)
	created := time.Date(2025, 2, 3, 4, 5, 6, 7, time.UTC)

	tests := []struct {
		name    string
		run     Run
		wantID  uint64
		wantErr bool
	}{
		{name: "first", run: Run{Pipeline: "web", Status: StatusQueued}, wantID: 1},
		{name: "keeps CreatedAt", run: Run{Pipeline: "web", Status: StatusQueued, CreatedAt: created}, wantID: 2},
		{name: "zero status", run: Run{Pipeline: "web"}, wantErr: true},
		{name: "unknown status", run: Run{Pipeline: "web", Status: 42}, wantErr: true},
		{name: "empty pipeline", run: Run{Status: StatusQueued}, wantErr: true},
		{name: "after errors", run: Run{Pipeline: "api", Status: StatusRunning, Commit: "c0ffee"}, wantID: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.run
			before := time.Now()
			err := s.CreateRun(&r)
			if tt.wantErr {
				if err == nil {
					t.Fatal("CreateRun succeeded, want an error")
				}
				if !reflect.DeepEqual(r, tt.run) {
					t.Errorf("failed CreateRun changed the run to %+v", r)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.ID != tt.wantID {
				t.Errorf("ID = %d, want %d", r.ID, tt.wantID)
			}
			switch {
			case !tt.run.CreatedAt.IsZero() && !r.CreatedAt.Equal(tt.run.CreatedAt):
				t.Errorf("CreatedAt = %v, want %v", r.CreatedAt, tt.run.CreatedAt)
			case tt.run.CreatedAt.IsZero() && r.CreatedAt.Before(before.Add(-time.Second)):
				t.Errorf("CreatedAt = %v, want about %v", r.CreatedAt, before)
			}

			stored, err := s.Run(r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(stored, r) {
				t.Errorf("Run(%d) = %+v, want %+v", r.ID, stored, r)
			}
		})
	}
}

func TestRunNotFound(t *testing.T) {
	s, _ := openTestStore(t)
	for _, id := range []uint64{0, 1, 1 << 40} {
		if _, err := s.Run(id); !errors.Is(err, ErrRunNotFound) {
			t.Errorf("Run(%d) error = %v, want ErrRunNotFound", id, err)
		}
	}
}

func TestUpdateRun(t *testing.T) {
	finished := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		name       string
		id         uint64
		fn         func(*Run) error
		wantErr    error
		anyErr     bool
		wantStatus Status
	}{
		{
			name:       "finish",
			id:         1,
			fn:         func(r *Run) error { r.Status = StatusSuccess; r.FinishedAt = finished; return nil },
			wantStatus: StatusSuccess,
		},
		{
			name:       "unknown run",
			id:         2,
			fn:         func(r *Run) error { return nil },
			wantErr:    ErrRunNotFound,
			wantStatus: StatusRunning,
		},
		{
			name:       "fn error aborts",
			id:         1,
			fn:         func(r *Run) error { r.Status = StatusFailure; return errTest },
			wantErr:    errTest,
			wantStatus: StatusRunning,
		},
		{
			name:       "invalid status",
			id:         1,
			fn:         func(r *Run) error { r.Status = 0; return nil },
			anyErr:     true,
			wantStatus: StatusRunning,
		},
		{
			name:       "ID change",
			id:         1,
			fn:         func(r *Run) error { r.ID = 7; r.Status = StatusFailure; return nil },
			anyErr:     true,
			wantStatus: StatusRunning,
		},
		{
			name:       "pipeline change",
			id:         1,
			fn:         func(r *Run) error { r.Pipeline = "api"; r.Status = StatusFailure; return nil },
			anyErr:     true,
			wantStatus: StatusRunning,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTestStore(t)
			if err := s.CreateRun(&Run{Pipeline: "web", Status: StatusRunning}); err != nil {
				t.Fatal(err)
			}

			got, err := s.UpdateRun(tt.id, tt.fn)
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("UpdateRun error = %v, want %v", err, tt.wantErr)
			case tt.anyErr && err == nil:
				t.Fatal("UpdateRun succeeded, want an error")
			case tt.wantErr == nil && !tt.anyErr:
				if err != nil {
					t.Fatalf("UpdateRun: %v", err)
				}
				if got.Status != tt.wantStatus || !got.FinishedAt.Equal(finished) {
					t.Errorf("returned run = %+v", got)
				}
			}

			stored, err := s.Run(1)
			if err != nil {
				t.Fatal(err)
			}
			if stored.Status != tt.wantStatus {
				t.Errorf("stored status = %v, want %v", stored.Status, tt.wantStatus)
			}
			if stored.Pipeline != "web" {
				t.Errorf("stored pipeline = %q, want web", stored.Pipeline)
			}
		})
	}
}

func TestListRuns(t *testing.T) {
	s, _ := openTestStore(t)
	if got, err := s.ListRuns("", 10, 0); err != nil || len(got) != 0 {
		t.Fatalf("ListRuns on an empty store = %v, %v", got, err)
	}
	// Runs 1..7 alternate between web (odd IDs) and api (even IDs).
	for i := range 7 {
		pipeline := "web"
		if i%2 == 1 {
			pipeline = "api"
		}
		if err := s.CreateRun(&Run{Pipeline: pipeline, Status: StatusQueued}); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		pipeline string
		limit    int
		beforeID uint64
		want     []uint64
	}{
		{"", 10, 0, []uint64{7, 6, 5, 4, 3, 2, 1}},
		{"", 3, 0, []uint64{7, 6, 5}},
		{"", 3, 5, []uint64{4, 3, 2}},
		{"", 3, 2, []uint64{1}},
		{"", 3, 1, nil},
		{"", 2, 100, []uint64{7, 6}},
		{"web", 10, 0, []uint64{7, 5, 3, 1}},
		{"web", 2, 0, []uint64{7, 5}},
		{"web", 2, 5, []uint64{3, 1}},
		{"web", 2, 6, []uint64{5, 3}},
		{"web", 10, 1, nil},
		{"api", 10, 0, []uint64{6, 4, 2}},
		{"api", 10, 100, []uint64{6, 4, 2}},
		{"missing", 10, 0, nil},
	}
	for _, tt := range tests {
		got, err := s.ListRuns(tt.pipeline, tt.limit, tt.beforeID)
		if err != nil {
			t.Fatalf("ListRuns(%q, %d, %d): %v", tt.pipeline, tt.limit, tt.beforeID, err)
		}
		var ids []uint64
		for _, r := range got {
			ids = append(ids, r.ID)
			if tt.pipeline != "" && r.Pipeline != tt.pipeline {
				t.Errorf("ListRuns(%q) returned run %d of %q", tt.pipeline, r.ID, r.Pipeline)
			}
		}
		if !reflect.DeepEqual(ids, tt.want) {
			t.Errorf("ListRuns(%q, %d, %d) = %v, want %v", tt.pipeline, tt.limit, tt.beforeID, ids, tt.want)
		}
	}
}

func TestRunsWithStatus(t *testing.T) {
	s, _ := openTestStore(t)
	statuses := []Status{StatusRunning, StatusSuccess, StatusQueued, StatusRunning, StatusFailure, StatusQueued}
	for _, st := range statuses {
		if err := s.CreateRun(&Run{Pipeline: "web", Status: st}); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name     string
		statuses []Status
		want     []uint64
		wantErr  bool
	}{
		{name: "live", statuses: []Status{StatusQueued, StatusRunning}, want: []uint64{1, 3, 4, 6}},
		{name: "one", statuses: []Status{StatusFailure}, want: []uint64{5}},
		{name: "none stored", statuses: []Status{StatusCanceled}},
		{name: "no statuses"},
		{name: "invalid", statuses: []Status{StatusQueued, 0}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.RunsWithStatus(tt.statuses...)
			if tt.wantErr {
				if err == nil {
					t.Fatal("RunsWithStatus succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []uint64
			for _, r := range got {
				ids = append(ids, r.ID)
				if !slices.Contains(tt.statuses, r.Status) {
					t.Errorf("run %d has status %v", r.ID, r.Status)
				}
			}
			if !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("RunsWithStatus(%v) = %v, want %v", tt.statuses, ids, tt.want)
			}
		})
	}
}

func TestCreateRunConcurrentIDsUnique(t *testing.T) {
	s, _ := openTestStore(t)
	const goroutines, perGoroutine = 8, 25

	ids := make(chan uint64, goroutines*perGoroutine)
	errs := make(chan error, goroutines*perGoroutine)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range perGoroutine {
				r := Run{Pipeline: "web", Status: StatusQueued}
				if err := s.CreateRun(&r); err != nil {
					errs <- err
					continue
				}
				ids <- r.ID
			}
		})
	}
	wg.Wait()
	close(ids)
	close(errs)

	for err := range errs {
		t.Error(err)
	}
	seen := map[uint64]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("ID %d assigned twice", id)
		}
		seen[id] = true
	}
	const total = goroutines * perGoroutine
	if len(seen) != total {
		t.Errorf("got %d distinct IDs, want %d", len(seen), total)
	}
	for id := uint64(1); id <= total; id++ {
		if !seen[id] {
			t.Errorf("ID %d missing from 1..%d", id, total)
		}
	}
}

func BenchmarkCreateRun(b *testing.B) {
	s, _ := openTestStore(b)
	b.ReportAllocs()
	for b.Loop() {
		r := Run{Pipeline: "web", Status: StatusQueued, Commit: "0123456789abcdef0123456789abcdef01234567"}
		if err := s.CreateRun(&r); err != nil {
			b.Fatal(err)
		}
	}
}

func TestUpdateRunStoresStepResults(t *testing.T) {
	s, _ := openTestStore(t)
	run := Run{Pipeline: "web", Status: StatusRunning}
	if err := s.CreateRun(&run); err != nil {
		t.Fatal(err)
	}
	started := time.Date(2025, 2, 3, 4, 5, 6, 0, time.UTC)
	want := []StepResult{
		{Name: "test", Status: StatusFailure, ExitCode: 2, Error: `step "test" exited with code 2`,
			StartedAt: started, FinishedAt: started.Add(time.Second)},
		{Name: "notify", Status: StatusSkipped, Error: "an earlier step failed"},
	}
	if _, err := s.UpdateRun(run.ID, func(r *Run) error { r.Steps = want; return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := s.Run(run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Steps, want) {
		t.Errorf("steps = %+v, want %+v", got.Steps, want)
	}

	_, err = s.UpdateRun(run.ID, func(r *Run) error { r.Steps[0].Status = 0; return nil })
	if err == nil || !strings.Contains(err.Error(), `step 0 ("test")`) {
		t.Errorf("storing a step without a status: error = %v, want one naming the step", err)
	}
}
