package store

import (
	"errors"
	"testing"
)

func TestRolloutSaveAndLoad(t *testing.T) {
	s, _ := openTestStore(t)
	run := Run{Pipeline: "web", Status: StatusRunning}
	if err := s.CreateRun(&run); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rollout(run.ID); !errors.Is(err, ErrRolloutNotFound) {
		t.Fatalf("Rollout before any save returned %v, want ErrRolloutNotFound", err)
	}

	r := Rollout{RunID: run.ID, Pipeline: "web", Backend: "landing", NewSlot: "b", OldSlot: "a", Port: 4100}
	r.Steps = append(r.Steps, RolloutStep{Name: "start"})
	if err := s.SaveRollout(r); err != nil {
		t.Fatal(err)
	}
	r.Steps = append(r.Steps, RolloutStep{Name: "health"})
	if err := s.SaveRollout(r); err != nil {
		t.Fatal(err)
	}
	got, err := s.Rollout(run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Steps) != 2 || got.Steps[1].Name != "health" {
		t.Errorf("steps = %+v, want start then health", got.Steps)
	}
	if got.Port != 4100 || got.NewSlot != "b" || got.UpdatedAt.IsZero() {
		t.Errorf("rollout = %+v, want port 4100, new slot b and an update time", got)
	}
}

func TestRolloutUnknownRun(t *testing.T) {
	s, _ := openTestStore(t)
	err := s.SaveRollout(Rollout{RunID: 42, Pipeline: "web"})
	if !errors.Is(err, ErrRunNotFound) {
		t.Errorf("SaveRollout for an unknown run returned %v, want ErrRunNotFound", err)
	}
}

func TestDeploymentByID(t *testing.T) {
	s, _ := openTestStore(t)
	d := Deployment{Pipeline: "web", Image: "acme/web:abc", SecretIDAccessor: "acc-1"}
	if err := s.SaveDeployment(&d); err != nil {
		t.Fatal(err)
	}
	got, err := s.Deployment(d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Image != d.Image || got.SecretIDAccessor != "acc-1" {
		t.Errorf("Deployment(%d) = %+v, want the saved record", d.ID, got)
	}
	if _, err := s.Deployment(d.ID + 1); !errors.Is(err, ErrDeploymentNotFound) {
		t.Errorf("Deployment of an unknown id returned %v, want ErrDeploymentNotFound", err)
	}
}

func TestCreateRunsOneTransaction(t *testing.T) {
	s, _ := openTestStore(t)
	list := []*Run{
		{Pipeline: "a", Status: StatusSuccess},
		{Pipeline: "b", Status: StatusFailure},
		{Pipeline: "a", Status: StatusQueued},
	}
	if err := s.CreateRuns(list); err != nil {
		t.Fatal(err)
	}
	for i, r := range list {
		if r.ID != uint64(i+1) || r.CreatedAt.IsZero() {
			t.Errorf("run %d: id %d, created %v; want id %d and a creation time", i, r.ID, r.CreatedAt, i+1)
		}
	}
	runs, err := s.ListRuns("a", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].ID != 3 || runs[1].ID != 1 {
		t.Errorf("runs of a = %+v, want 3 then 1", runs)
	}

	bad := []*Run{{Pipeline: "a", Status: StatusSuccess}, {Pipeline: "", Status: StatusSuccess}}
	if err := s.CreateRuns(bad); err == nil {
		t.Fatal("CreateRuns accepted a run without a pipeline")
	}
	if bad[0].ID != 0 {
		t.Errorf("a rejected batch changed its first run to id %d", bad[0].ID)
	}
	all, err := s.ListRuns("", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Errorf("a rejected batch stored runs: %d runs, want 3", len(all))
	}
}
