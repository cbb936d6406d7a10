package store

import (
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// LogChunkSize is the size of one stored log chunk. A run's log is the
// bucket logs/<run ID> of chunks keyed 0, 1, 2, ...; every chunk except the
// last contains exactly LogChunkSize bytes, so byte offset o sits in chunk
// o/LogChunkSize and no index of offsets is needed.
const LogChunkSize = 64 << 10

// AppendLog appends p to run runID's log. To keep every chunk but the last
// full, it reads the last chunk when that is partial and rewrites it with
// the start of p, then stores the rest of p as new chunks. It reads no other
// chunk, so the cost of an append does not grow with the log. It returns
// ErrRunNotFound for an unknown run. Appending nothing only checks the run.
// Each call commits one write transaction, which bbolt syncs to disk, so a
// caller should batch output (by time or size) rather than append per line.
func (s *Store) AppendLog(runID uint64, p []byte) error {
	// The transaction consumes p, so whether anything is appended is
	// decided before it.
	appended := len(p) > 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		key := itob(runID)
		if tx.Bucket(bucketRuns).Get(key) == nil {
			return ErrRunNotFound
		}
		if len(p) == 0 {
			return nil
		}
		chunks, err := tx.Bucket(bucketLogs).CreateBucketIfNotExists(key)
		if err != nil {
			return fmt.Errorf("creating log bucket: %w", err)
		}

		var next uint64
		if k, last := chunks.Cursor().Last(); k != nil {
			next = btoi(k) + 1
			if len(last) < LogChunkSize {
				// last points into the mmap and is valid only until the
				// Put, so the merged chunk gets its own buffer.
				n := min(LogChunkSize-len(last), len(p))
				merged := make([]byte, len(last)+n)
				copy(merged, last)
				copy(merged[len(last):], p[:n])
				if err := chunks.Put(k, merged); err != nil {
					return err
				}
				p = p[n:]
			}
		}

		// bbolt keeps a reference to each value until the commit, which
		// happens before AppendLog returns, so slices of p are safe here.
		for ; len(p) > 0; next++ {
			n := min(LogChunkSize, len(p))
			if err := chunks.Put(itob(next), p[:n]); err != nil {
				return err
			}
			p = p[n:]
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("appending to log of run %d: %w", runID, err)
	}
	if appended {
		s.notifier.notify(runID)
	}
	return nil
}

// LogSize returns the length of run runID's log in bytes: 0 when nothing was
// appended yet, ErrRunNotFound for an unknown run.
func (s *Store) LogSize(runID uint64) (int64, error) {
	var size int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		size, err = logSize(tx, runID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("reading log size of run %d: %w", runID, err)
	}
	return size, nil
}

// CopyLog writes run runID's log from byte offset to w and returns the
// offset after the last byte written, from which a later call continues.
// It copies one chunk at a time out of a short read transaction and writes
// it to w after the transaction ends, so a slow w delays no writer and
// CopyLog holds at most one chunk in memory. Bytes appended while it runs
// are written too, up to the first partial chunk that it reads.
// It returns ErrRunNotFound for an unknown run and an error when offset is
// negative or beyond the log size. On a write error it returns the offset
// after the bytes that w accepted.
func (s *Store) CopyLog(runID uint64, offset int64, w io.Writer) (int64, error) {
	err := s.db.View(func(tx *bolt.Tx) error {
		size, err := logSize(tx, runID)
		if err != nil {
			return err
		}
		if offset < 0 || offset > size {
			return fmt.Errorf("invalid offset %d: must be between 0 and the log size %d", offset, size)
		}
		return nil
	})
	if err != nil {
		return offset, fmt.Errorf("copying log of run %d: %w", runID, err)
	}

	var buf []byte
	for {
		var full bool
		err := s.db.View(func(tx *bolt.Tx) error {
			chunks := tx.Bucket(bucketLogs).Bucket(itob(runID))
			if chunks == nil {
				buf = buf[:0]
				return nil
			}
			// Bytes below the log size never change, so a chunk read in a
			// later transaction continues the bytes of the earlier ones.
			chunk := chunks.Get(itob(uint64(offset / LogChunkSize)))
			start := int(offset % LogChunkSize)
			if start > len(chunk) {
				return fmt.Errorf("chunk %d ends before offset %d", offset/LogChunkSize, offset)
			}
			if buf == nil {
				buf = make([]byte, 0, LogChunkSize)
			}
			buf = append(buf[:0], chunk[start:]...)
			full = len(chunk) == LogChunkSize
			return nil
		})
		if err != nil {
			return offset, fmt.Errorf("copying log of run %d: %w", runID, err)
		}
		if len(buf) == 0 {
			return offset, nil
		}

		n, err := w.Write(buf)
		offset += int64(n)
		if err != nil {
			return offset, fmt.Errorf("copying log of run %d: writing at offset %d: %w",
				runID, offset, err)
		}
		if !full {
			return offset, nil
		}
	}
}

// logSize computes the size from the last chunk alone, because every
// earlier chunk is full.
func logSize(tx *bolt.Tx, runID uint64) (int64, error) {
	key := itob(runID)
	if tx.Bucket(bucketRuns).Get(key) == nil {
		return 0, ErrRunNotFound
	}
	chunks := tx.Bucket(bucketLogs).Bucket(key)
	if chunks == nil {
		return 0, nil
	}
	k, last := chunks.Cursor().Last()
	if k == nil {
		return 0, nil
	}
	return int64(btoi(k))*LogChunkSize + int64(len(last)), nil
}
