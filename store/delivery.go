package store

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Delivery records one accepted webhook request. Its ID is GitHub's
// X-GitHub-Delivery header, so a redelivery is recognised.
type Delivery struct {
	ID     string `json:"id"`
	Event  string `json:"event"`
	Repo   string `json:"repo,omitempty"`
	Ref    string `json:"ref,omitempty"`
	Commit string `json:"commit,omitempty"`
	// Result says what the delivery started ("runs 4, 5") or why it
	// started nothing ("no matching pipeline", "branch deleted").
	Result     string    `json:"result,omitempty"`
	RunIDs     []uint64  `json:"run_ids,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
}

// SaveDelivery stores d and appends it to the receive order that
// ListDeliveries follows. It sets d.ReceivedAt to the current time when zero.
// It returns ErrDeliveryExists when a delivery with d.ID was stored before (a
// GitHub redelivery), and an error when d.ID is empty.
func (s *Store) SaveDelivery(d Delivery) error {
	if d.ID == "" {
		return errors.New("saving delivery: missing delivery ID")
	}
	if d.ReceivedAt.IsZero() {
		d.ReceivedAt = time.Now().UTC()
	}

	err := s.db.Update(func(tx *bolt.Tx) error {
		deliveries := tx.Bucket(bucketDeliveries)
		if deliveries.Get([]byte(d.ID)) != nil {
			return ErrDeliveryExists
		}
		if err := putJSON(deliveries, []byte(d.ID), d); err != nil {
			return err
		}

		order := tx.Bucket(bucketDeliveryOrder)
		seq, err := order.NextSequence()
		if err != nil {
			return err
		}
		return order.Put(itob(seq), []byte(d.ID))
	})
	if err != nil {
		return fmt.Errorf("saving delivery %q: %w", d.ID, err)
	}
	return nil
}

// UpdateDelivery loads delivery id, calls fn on it and stores the result in
// one write transaction, so fn must be quick and must not call the Store. It
// returns ErrDeliveryNotFound for an unknown id, and fn's error, wrapped,
// without storing anything. fn must not change the ID.
func (s *Store) UpdateDelivery(id string, fn func(*Delivery) error) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeliveries)
		var d Delivery
		found, err := getJSON(b, []byte(id), &d)
		if err != nil {
			return err
		}
		if !found {
			return ErrDeliveryNotFound
		}

		if err := fn(&d); err != nil {
			return err
		}
		if d.ID != id {
			return fmt.Errorf("delivery ID changed to %q: the ID is the key and cannot change", d.ID)
		}
		return putJSON(b, []byte(id), d)
	})
	if err != nil {
		return fmt.Errorf("updating delivery %q: %w", id, err)
	}
	return nil
}

// Delivery returns the delivery with the given ID, or ErrDeliveryNotFound.
func (s *Store) Delivery(id string) (Delivery, error) {
	var d Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		found, err := getJSON(tx.Bucket(bucketDeliveries), []byte(id), &d)
		if err == nil && !found {
			return ErrDeliveryNotFound
		}
		return err
	})
	if err != nil {
		return Delivery{}, fmt.Errorf("loading delivery %q: %w", id, err)
	}
	return d, nil
}

// ListDeliveries returns at most limit deliveries, the most recently saved
// first. limit must be at least 1.
func (s *Store) ListDeliveries(limit int) ([]Delivery, error) {
	if err := validLimit(limit); err != nil {
		return nil, fmt.Errorf("listing deliveries: %w", err)
	}

	var list []Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		deliveries := tx.Bucket(bucketDeliveries)
		c := tx.Bucket(bucketDeliveryOrder).Cursor()
		for k, id := c.Last(); k != nil && len(list) < limit; k, id = c.Prev() {
			var d Delivery
			found, err := getJSON(deliveries, id, &d)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("delivery %q at receive index %d: %w", id, btoi(k), ErrDeliveryNotFound)
			}
			list = append(list, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing deliveries: %w", err)
	}
	return list, nil
}
