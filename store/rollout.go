package store

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrRolloutNotFound is returned by Rollout when the run never started a
// rollout through HAProxy.
var ErrRolloutNotFound = errors.New("rollout not found")

// Rollout records how far a run's switch of traffic through HAProxy got.
// The runner saves it before each step, so after a crash the record names
// the step that was under way and the containers and slots involved.
type Rollout struct {
	RunID    uint64 `json:"run_id"`
	Pipeline string `json:"pipeline"`
	Backend  string `json:"backend"`
	// NewSlot is the server the new container is put behind; OldSlot the
	// one that served before. Port is the new container's loopback port.
	NewSlot      string `json:"new_slot"`
	OldSlot      string `json:"old_slot"`
	Port         int    `json:"port"`
	NewContainer string `json:"new_container,omitempty"`
	OldContainer string `json:"old_container,omitempty"`
	// Steps lists the steps started so far, oldest first; the last one is
	// where the rollout is or stopped.
	Steps     []RolloutStep `json:"steps"`
	UpdatedAt time.Time     `json:"updated_at"`
}

// RolloutStep is one step of a rollout, recorded when it starts.
type RolloutStep struct {
	Name   string    `json:"name"`
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
}

// SaveRollout stores r under its run, replacing an earlier record of the
// same run. r.RunID must name a stored run.
func (s *Store) SaveRollout(r Rollout) error {
	r.UpdatedAt = time.Now().UTC()
	err := s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRuns).Get(itob(r.RunID)) == nil {
			return fmt.Errorf("run %d: %w", r.RunID, ErrRunNotFound)
		}
		return putJSON(tx.Bucket(bucketRollouts), itob(r.RunID), r)
	})
	if err != nil {
		return fmt.Errorf("saving rollout of run %d: %w", r.RunID, err)
	}
	return nil
}

// Rollout returns the rollout record of a run, or ErrRolloutNotFound.
func (s *Store) Rollout(runID uint64) (Rollout, error) {
	var r Rollout
	err := s.db.View(func(tx *bolt.Tx) error {
		found, err := getJSON(tx.Bucket(bucketRollouts), itob(runID), &r)
		if err != nil {
			return err
		}
		if !found {
			return ErrRolloutNotFound
		}
		return nil
	})
	if err != nil {
		return Rollout{}, fmt.Errorf("loading rollout of run %d: %w", runID, err)
	}
	return r, nil
}
