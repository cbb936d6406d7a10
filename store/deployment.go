package store

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Deployment records one container that a run put in service.
type Deployment struct {
	ID       uint64 `json:"id"`
	Pipeline string `json:"pipeline"`
	RunID    uint64 `json:"run_id"`
	Image    string `json:"image"`
	Commit   string `json:"commit"`
	// Container is the Docker name of the container that serves.
	Container   string `json:"container"`
	ContainerID string `json:"container_id"`
	// Replaced is the name of the container this one replaced, if any.
	Replaced string `json:"replaced,omitempty"`
	// Trigger is what started the deploying run: "push", "manual",
	// "schedule", "redeploy" or "rollback".
	Trigger string `json:"trigger,omitempty"`
	// Slot is the HAProxy server that sends traffic to the container, and
	// Port the loopback port the container is published on. Both are
	// empty for a deploy on a fixed published address.
	Slot string `json:"slot,omitempty"`
	Port int    `json:"port,omitempty"`
	// AppRole and SecretIDAccessor identify the Vault secret id the
	// container received, so it can be destroyed once the container is
	// replaced. The accessor cannot log in; the secret id itself is never
	// stored.
	AppRole          string    `json:"approle,omitempty"`
	SecretIDAccessor string    `json:"secret_id_accessor,omitempty"`
	CreatedAt        time.Time `json:"created_at"`
}

// SaveDeployment assigns d.ID from a sequence (1, 2, ...), sets d.CreatedAt
// to the current time when zero, and stores d. d.Pipeline must not be empty.
// d is changed only when SaveDeployment succeeds.
func (s *Store) SaveDeployment(d *Deployment) error {
	if d.Pipeline == "" {
		return errors.New("saving deployment: missing pipeline name")
	}

	dep := *d
	if dep.CreatedAt.IsZero() {
		dep.CreatedAt = time.Now().UTC()
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		deployments := tx.Bucket(bucketDeployments)
		id, err := deployments.NextSequence()
		if err != nil {
			return err
		}
		dep.ID = id
		if err := putJSON(deployments, itob(id), dep); err != nil {
			return err
		}

		byPipeline := tx.Bucket(bucketDeploymentsByPipeline)
		index, err := byPipeline.CreateBucketIfNotExists([]byte(dep.Pipeline))
		if err != nil {
			return fmt.Errorf("creating deployment index: %w", err)
		}
		return index.Put(itob(id), []byte{})
	})
	if err != nil {
		return fmt.Errorf("saving deployment of pipeline %q: %w", dep.Pipeline, err)
	}
	*d = dep
	return nil
}

// Deployments returns at most limit deployments of pipeline, newest first.
// A pipeline that was never deployed has none. limit must be at least 1.
func (s *Store) Deployments(pipeline string, limit int) ([]Deployment, error) {
	if err := validLimit(limit); err != nil {
		return nil, fmt.Errorf("listing deployments: %w", err)
	}

	var list []Deployment
	err := s.db.View(func(tx *bolt.Tx) error {
		index := tx.Bucket(bucketDeploymentsByPipeline).Bucket([]byte(pipeline))
		if index == nil {
			return nil
		}

		deployments := tx.Bucket(bucketDeployments)
		c := index.Cursor()
		for k, _ := c.Last(); k != nil && len(list) < limit; k, _ = c.Prev() {
			var dep Deployment
			found, err := getJSON(deployments, k, &dep)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("loading deployment %d: %w", btoi(k), ErrDeploymentNotFound)
			}
			list = append(list, dep)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing deployments of pipeline %q: %w", pipeline, err)
	}
	return list, nil
}

// CurrentDeployment returns pipeline's newest deployment, or
// ErrDeploymentNotFound when the pipeline was never deployed.
func (s *Store) CurrentDeployment(pipeline string) (Deployment, error) {
	list, err := s.Deployments(pipeline, 1)
	if err != nil {
		return Deployment{}, err
	}
	if len(list) == 0 {
		return Deployment{}, fmt.Errorf("loading current deployment of pipeline %q: %w",
			pipeline, ErrDeploymentNotFound)
	}
	return list[0], nil
}

// Deployment returns the deployment with the given ID, or
// ErrDeploymentNotFound.
func (s *Store) Deployment(id uint64) (Deployment, error) {
	var dep Deployment
	err := s.db.View(func(tx *bolt.Tx) error {
		found, err := getJSON(tx.Bucket(bucketDeployments), itob(id), &dep)
		if err != nil {
			return err
		}
		if !found {
			return ErrDeploymentNotFound
		}
		return nil
	})
	if err != nil {
		return Deployment{}, fmt.Errorf("loading deployment %d: %w", id, err)
	}
	return dep, nil
}
