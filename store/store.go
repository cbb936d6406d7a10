// Package store keeps quai's webhook deliveries, runs, run logs and
// deployments in one bbolt file. It is the only package that imports bbolt:
// callers see the record types of this package and the sentinel errors below.
//
// Layout of the file, with every numeric key an 8-byte big-endian uint64 so
// that cursor order is numeric order, and every record JSON:
//
//	meta                         "schema_version" -> uint64
//	deliveries                   delivery ID -> Delivery
//	delivery_order               receive sequence -> delivery ID
//	runs                         run ID -> Run
//	runs_by_pipeline/<pipeline>  run ID -> empty
//	logs/<run ID>                chunk index -> up to LogChunkSize bytes
//	deployments                  deployment ID -> Deployment
//	deployments_by_pipeline/<pipeline>  deployment ID -> empty
package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Sentinel errors. Methods wrap them with the ID they looked up, so test
// with errors.Is.
var (
	// ErrRunNotFound is returned by the run and log methods when no run has
	// the given ID.
	ErrRunNotFound = errors.New("run not found")
	// ErrDeploymentNotFound is returned by CurrentDeployment when the
	// pipeline has never been deployed.
	ErrDeploymentNotFound = errors.New("deployment not found")
	// ErrDeliveryExists is returned by SaveDelivery when a delivery with the
	// same ID was stored before, which is how a GitHub redelivery shows.
	ErrDeliveryExists = errors.New("delivery already exists")
	// ErrDeliveryNotFound is returned by Delivery and UpdateDelivery when no
	// delivery has the given ID.
	ErrDeliveryNotFound = errors.New("delivery not found")
)

// schemaVersion is the layout described in the package comment. Open rejects
// a file with a higher version, because an older quai would misread it.
const schemaVersion = 1

// lockTimeout bounds how long Open waits for another process's file lock.
const lockTimeout = time.Second

var (
	bucketMeta                  = []byte("meta")
	bucketDeliveries            = []byte("deliveries")
	bucketDeliveryOrder         = []byte("delivery_order")
	bucketRuns                  = []byte("runs")
	bucketRunsByPipeline        = []byte("runs_by_pipeline")
	bucketLogs                  = []byte("logs")
	bucketDeployments           = []byte("deployments")
	bucketDeploymentsByPipeline = []byte("deployments_by_pipeline")
	bucketRollouts              = []byte("rollouts")

	keySchemaVersion = []byte("schema_version")
)

// Store is quai's database. All methods are safe for concurrent use: bbolt
// runs one write transaction at a time and any number of read transactions
// beside it.
type Store struct {
	db *bolt.DB
	// notifier wakes LogNotify's followers after log appends and run
	// updates.
	notifier logNotifier
}

// Open opens or creates the bbolt file at path (mode 0600, creating the
// parent folder with mode 0700) and creates any missing bucket. It waits at
// most 1s for the file lock. When another process holds the lock, the error
// contains the path and the hint that another quai is probably running on
// that data folder. Open also fails when the file was written by a newer schema.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating database folder for %s: %w", path, err)
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("opening database %s: file still locked after %s; "+
			"another quai is probably running on that data folder: "+
			"stop it or choose another data folder: %w", path, lockTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	}

	if err := db.Update(initSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("initialising database %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close releases the file lock and closes the file. It waits for running
// transactions to finish. Calling Close twice returns nil; any other method
// called after Close returns an error.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing database: %w", err)
	}
	return nil
}

func initSchema(tx *bolt.Tx) error {
	for _, name := range [][]byte{
		bucketMeta, bucketDeliveries, bucketDeliveryOrder, bucketRuns,
		bucketRunsByPipeline, bucketLogs, bucketDeployments, bucketDeploymentsByPipeline,
		bucketRollouts,
	} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("creating bucket %s: %w", name, err)
		}
	}

	meta := tx.Bucket(bucketMeta)
	v := meta.Get(keySchemaVersion)
	if v == nil {
		return meta.Put(keySchemaVersion, itob(schemaVersion))
	}
	if len(v) != 8 {
		return fmt.Errorf("invalid schema version %x: the file is not a quai database", v)
	}
	if got := btoi(v); got > schemaVersion {
		return fmt.Errorf("schema version %d is newer than %d: upgrade quai to open this file",
			got, schemaVersion)
	}
	return nil
}

// itob encodes an ID as a big-endian key, so keys sort numerically.
func itob(v uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v)
}

func btoi(b []byte) uint64 {
	return binary.BigEndian.Uint64(b)
}

// validLimit rejects a list limit below 1, which would return nothing.
func validLimit(limit int) error {
	if limit < 1 {
		return fmt.Errorf("invalid list limit %d: must be at least 1", limit)
	}
	return nil
}

// seekBefore positions c at the last key below beforeID, or at the last key
// when beforeID is 0, and returns that key (nil when there is none).
func seekBefore(c *bolt.Cursor, beforeID uint64) []byte {
	if beforeID == 0 {
		k, _ := c.Last()
		return k
	}
	k, _ := c.Seek(itob(beforeID))
	if k == nil {
		// Every key is below beforeID.
		k, _ = c.Last()
		return k
	}
	k, _ = c.Prev()
	return k
}

// getJSON decodes the record at key into v and reports whether it exists.
func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("decoding record %x: %w", key, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding record: %w", err)
	}
	return b.Put(key, data)
}
