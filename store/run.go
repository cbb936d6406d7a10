package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Status is the state of a run. The zero value is not a valid status.
type Status uint8

// Run and step statuses. Queued and Running are live, and the others are
// final. Skipped marks a run that its trigger's filters left with nothing
// to do, or a step whose condition did not hold.
const (
	StatusQueued Status = iota + 1
	StatusRunning
	StatusSuccess
	StatusFailure
	StatusCanceled
	StatusSkipped
)

var statusNames = map[Status]string{
	StatusQueued:   "queued",
	StatusRunning:  "running",
	StatusSuccess:  "success",
	StatusFailure:  "failure",
	StatusCanceled: "canceled",
	StatusSkipped:  "skipped",
}

// String returns the status as the API and the UI spell it.
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

func (s Status) valid() bool {
	_, ok := statusNames[s]
	return ok
}

// Final reports whether a run or step in this status will not change any
// more.
func (s Status) Final() bool {
	return s == StatusSuccess || s == StatusFailure || s == StatusCanceled || s == StatusSkipped
}

// MarshalText encodes the status by name, so JSON and bbolt never carry a
// bare number.
func (s Status) MarshalText() ([]byte, error) {
	n, ok := statusNames[s]
	if !ok {
		return nil, fmt.Errorf("marshaling run status: unknown value %d", uint8(s))
	}
	return []byte(n), nil
}

// UnmarshalText decodes a status name and rejects unknown names.
func (s *Status) UnmarshalText(b []byte) error {
	for v, n := range statusNames {
		if n == string(b) {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("unknown run status %q: want one of queued, running, success, failure, canceled, skipped", b)
}

// Run is one execution of a pipeline for one commit.
type Run struct {
	ID       uint64 `json:"id"`
	Pipeline string `json:"pipeline"`
	Status   Status `json:"status"`
	// Trigger names what started the run: "push", "pull_request",
	// "manual", "schedule", "redeploy" or "rollback".
	Trigger string `json:"trigger"`
	// Deployment is the deployment a redeploy or rollback run puts back in
	// service; 0 for runs that build.
	Deployment uint64 `json:"deployment,omitempty"`
	// PullRequest is the pull request number of a pull request run, and
	// Fork says whether its head is in another repository (then the run
	// gets no secrets and never deploys).
	PullRequest int  `json:"pull_request,omitempty"`
	Fork        bool `json:"fork,omitempty"`
	// Before is the commit the ref pointed to before the push (or the base
	// of a pull request), for computing changed files.
	Before string `json:"before,omitempty"`
	// DeliveryID is the X-GitHub-Delivery of the webhook, if any.
	DeliveryID string `json:"delivery_id,omitempty"`
	Repo       string `json:"repo"`
	// Ref is the full git ref, for example "refs/heads/main".
	Ref    string `json:"ref"`
	Commit string `json:"commit"`
	// CloneURL is the repository the commit is fetched from. It never contains a
	// token: credentials are added at checkout time.
	CloneURL string `json:"clone_url,omitempty"`
	Message  string `json:"message,omitempty"`
	Author   string `json:"author,omitempty"`
	// Image is the image reference the run built, once built.
	Image string `json:"image,omitempty"`
	// Error is the reason a run failed or was canceled.
	Error      string    `json:"error,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Steps has one entry per step of the pipeline, in pipeline order,
	// from the run's start. It is nil for a queued run and for a pipeline
	// without steps.
	Steps []StepResult `json:"steps,omitempty"`
}

// StepResult is the state of one step of a run.
type StepResult struct {
	// Name is the step's name in the pipeline.
	Name string `json:"name"`
	// Status is queued until the step starts, running while its container
	// runs, then success, failure, canceled or skipped.
	Status Status `json:"status"`
	// ExitCode is the exit status of the step's commands. It is -1 when
	// the container did not exit by itself (a timeout, a cancellation, or
	// a Docker error), and 0 for a step that never started.
	ExitCode int `json:"exit_code"`
	// Error is the reason a step failed, was canceled or was skipped.
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Duration is how long the run has taken so far, or took.
func (r *Run) Duration(now time.Time) time.Duration {
	switch {
	case r.StartedAt.IsZero():
		return 0
	case r.FinishedAt.IsZero():
		return now.Sub(r.StartedAt)
	default:
		return r.FinishedAt.Sub(r.StartedAt)
	}
}

// CreateRun assigns r.ID from a sequence (1, 2, ...), sets r.CreatedAt to the
// current time when zero, and stores r. r.Status must be valid and
// r.Pipeline not empty. r is changed only when CreateRun succeeds.
func (s *Store) CreateRun(r *Run) error {
	return s.CreateRuns([]*Run{r})
}

// CreateRuns stores several runs in one transaction, as CreateRun does for
// one: each gets the next ID, and CreatedAt when zero. Importing history
// this way costs one disk sync instead of one per run. Either every run is
// stored and changed, or none is.
func (s *Store) CreateRuns(list []*Run) error {
	runs := make([]Run, len(list))
	for i, r := range list {
		if err := checkRun(r); err != nil {
			return fmt.Errorf("creating run: %w", err)
		}
		runs[i] = *r
		if runs[i].CreatedAt.IsZero() {
			runs[i].CreatedAt = time.Now().UTC()
		}
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i := range runs {
			if err := putNewRun(tx, &runs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if len(runs) == 1 {
			return fmt.Errorf("creating run of pipeline %q: %w", runs[0].Pipeline, err)
		}
		return fmt.Errorf("creating %d runs: %w", len(runs), err)
	}
	for i, r := range list {
		*r = runs[i]
	}
	return nil
}

// putNewRun assigns run the next ID and stores it with its index entry.
func putNewRun(tx *bolt.Tx, run *Run) error {
	runs := tx.Bucket(bucketRuns)
	id, err := runs.NextSequence()
	if err != nil {
		return err
	}
	run.ID = id
	if err := putJSON(runs, itob(id), *run); err != nil {
		return err
	}
	index, err := tx.Bucket(bucketRunsByPipeline).CreateBucketIfNotExists([]byte(run.Pipeline))
	if err != nil {
		return fmt.Errorf("creating run index of pipeline %q: %w", run.Pipeline, err)
	}
	return index.Put(itob(id), []byte{})
}

// UpdateRun loads run id, calls fn on it and stores the result in one write
// transaction, and returns the updated run. fn blocks every other writer
// while it runs, so it must be quick and must not call the Store. fn's error
// aborts the update and is returned wrapped. UpdateRun returns
// ErrRunNotFound for an unknown id, and an error when fn changes the ID or
// the pipeline or leaves an invalid status.
func (s *Store) UpdateRun(id uint64, fn func(*Run) error) (Run, error) {
	var run Run
	err := s.db.Update(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		var err error
		run, err = getRun(runs, id)
		if err != nil {
			return err
		}
		pipeline := run.Pipeline

		if err := fn(&run); err != nil {
			return err
		}
		if run.ID != id {
			return fmt.Errorf("run ID changed to %d: the ID is the key and cannot change", run.ID)
		}
		if run.Pipeline != pipeline {
			return fmt.Errorf("pipeline changed from %q to %q: a run's pipeline cannot change",
				pipeline, run.Pipeline)
		}
		if err := checkRun(&run); err != nil {
			return err
		}
		return putJSON(runs, itob(id), run)
	})
	if err != nil {
		return Run{}, fmt.Errorf("updating run %d: %w", id, err)
	}
	s.notifier.notify(id)
	return run, nil
}

// Run returns the run with the given ID, or ErrRunNotFound.
func (s *Store) Run(id uint64) (Run, error) {
	var run Run
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		run, err = getRun(tx.Bucket(bucketRuns), id)
		return err
	})
	if err != nil {
		return Run{}, fmt.Errorf("loading run %d: %w", id, err)
	}
	return run, nil
}

// ListRuns returns at most limit runs, newest first, with IDs below beforeID
// (0 = from the newest), so a page continues from the last ID of the page
// before. pipeline "" means every pipeline, otherwise the runs_by_pipeline
// index supplies the IDs without decoding other pipelines' runs. limit must
// be at least 1.
func (s *Store) ListRuns(pipeline string, limit int, beforeID uint64) ([]Run, error) {
	if err := validLimit(limit); err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}

	var list []Run
	err := s.db.View(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		keys := runs
		if pipeline != "" {
			keys = tx.Bucket(bucketRunsByPipeline).Bucket([]byte(pipeline))
			if keys == nil {
				return nil
			}
		}

		c := keys.Cursor()
		for k := seekBefore(c, beforeID); k != nil && len(list) < limit; k, _ = c.Prev() {
			run, err := getRun(runs, btoi(k))
			if err != nil {
				return fmt.Errorf("loading run %d: %w", btoi(k), err)
			}
			list = append(list, run)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing runs of pipeline %q: %w", pipeline, err)
	}
	return list, nil
}

// RunsWithStatus returns every run in one of the statuses, oldest first.
// At start-up it finds the runs that a crash interrupted. It decodes every
// stored run, which takes well under a second for tens of thousands of runs.
func (s *Store) RunsWithStatus(statuses ...Status) ([]Run, error) {
	want := make(map[Status]bool, len(statuses))
	for _, st := range statuses {
		if !st.valid() {
			return nil, fmt.Errorf("listing runs by status: invalid status %s", st)
		}
		want[st] = true
	}

	var list []Run
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRuns).ForEach(func(k, v []byte) error {
			var run Run
			if err := json.Unmarshal(v, &run); err != nil {
				return fmt.Errorf("decoding run %d: %w", btoi(k), err)
			}
			if want[run.Status] {
				list = append(list, run)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing runs by status: %w", err)
	}
	return list, nil
}

func checkRun(r *Run) error {
	if !r.Status.valid() {
		return fmt.Errorf("invalid run status %s: use one of the Status constants", r.Status)
	}
	if r.Pipeline == "" {
		return errors.New("missing pipeline name")
	}
	for i, st := range r.Steps {
		if !st.Status.valid() {
			return fmt.Errorf("invalid status %s of step %d (%q): use one of the Status constants", st.Status, i, st.Name)
		}
	}
	return nil
}

func getRun(runs *bolt.Bucket, id uint64) (Run, error) {
	var run Run
	found, err := getJSON(runs, itob(id), &run)
	if err != nil {
		return Run{}, err
	}
	if !found {
		return Run{}, ErrRunNotFound
	}
	return run, nil
}
