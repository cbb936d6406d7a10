package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openTestStore opens a store in a fresh folder. Its cleanup closes the
// store, reopens the file and checks the invariants, so every test also
// checks that what it wrote survives a reopen.
func openTestStore(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "quai.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		reopened, err := Open(path)
		if err != nil {
			t.Errorf("reopening %s for the invariant check: %v", path, err)
			return
		}
		defer reopened.Close()
		for _, err := range reopened.checkInvariants() {
			t.Errorf("invariant: %v", err)
		}
	})
	return s, path
}

// checkInvariants returns every violation of bbolt's page invariants and of
// the layout described in the package comment.
func (s *Store) checkInvariants() []error {
	var errs []error
	err := s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if v := tx.Bucket(bucketMeta).Get(keySchemaVersion); len(v) != 8 || btoi(v) != schemaVersion {
			errs = append(errs, fmt.Errorf("schema version %x, want %d", v, schemaVersion))
		}
		errs = append(errs, checkDeliveryOrder(tx)...)
		errs = append(errs, checkIndex(tx, bucketRuns, bucketRunsByPipeline)...)
		errs = append(errs, checkIndex(tx, bucketDeployments, bucketDeploymentsByPipeline)...)
		errs = append(errs, checkLogs(tx)...)
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errs
}

func checkDeliveryOrder(tx *bolt.Tx) []error {
	var errs []error
	deliveries := tx.Bucket(bucketDeliveries)
	order := tx.Bucket(bucketDeliveryOrder)
	seen := map[string]bool{}
	order.ForEach(func(k, id []byte) error {
		if deliveries.Get(id) == nil {
			errs = append(errs, fmt.Errorf("delivery_order %d names missing delivery %q", btoi(k), id))
		}
		if seen[string(id)] {
			errs = append(errs, fmt.Errorf("delivery %q appears twice in delivery_order", id))
		}
		seen[string(id)] = true
		return nil
	})
	if n := deliveries.Stats().KeyN; n != len(seen) {
		errs = append(errs, fmt.Errorf("%d deliveries but %d in delivery_order", n, len(seen)))
	}
	return errs
}

// checkIndex checks that every record of records is listed exactly once in
// the index bucket of its pipeline.
func checkIndex(tx *bolt.Tx, records, index []byte) []error {
	var errs []error
	recs := tx.Bucket(records)
	indexed := 0
	tx.Bucket(index).ForEachBucket(func(pipeline []byte) error {
		tx.Bucket(index).Bucket(pipeline).ForEach(func(k, _ []byte) error {
			indexed++
			var rec struct{ Pipeline string }
			found, err := getJSON(recs, k, &rec)
			switch {
			case err != nil:
				errs = append(errs, err)
			case !found:
				errs = append(errs, fmt.Errorf("%s/%s lists missing ID %d", index, pipeline, btoi(k)))
			case rec.Pipeline != string(pipeline):
				errs = append(errs, fmt.Errorf("%s/%s lists ID %d of pipeline %q",
					index, pipeline, btoi(k), rec.Pipeline))
			}
			return nil
		})
		return nil
	})
	if n := recs.Stats().KeyN; n != indexed {
		errs = append(errs, fmt.Errorf("%d records in %s but %d in %s", n, records, indexed, index))
	}
	return errs
}

// checkLogs checks that chunks are numbered 0, 1, 2, ... and that all but
// the last are full, which LogSize and CopyLog rely on.
func checkLogs(tx *bolt.Tx) []error {
	var errs []error
	logs := tx.Bucket(bucketLogs)
	logs.ForEachBucket(func(run []byte) error {
		if tx.Bucket(bucketRuns).Get(run) == nil {
			errs = append(errs, fmt.Errorf("log of missing run %d", btoi(run)))
		}
		var sizes []int
		logs.Bucket(run).ForEach(func(k, v []byte) error {
			if btoi(k) != uint64(len(sizes)) {
				errs = append(errs, fmt.Errorf("log of run %d: chunk %d, want %d",
					btoi(run), btoi(k), len(sizes)))
			}
			sizes = append(sizes, len(v))
			return nil
		})
		for i, size := range sizes {
			lastOK := i == len(sizes)-1 && size > 0 && size <= LogChunkSize
			if size != LogChunkSize && !lastOK {
				errs = append(errs, fmt.Errorf("log of run %d: chunk %d of %d has %d bytes",
					btoi(run), i, len(sizes), size))
			}
		}
		return nil
	})
	return errs
}

func TestCheckInvariantsFindsShortChunk(t *testing.T) {
	s, _ := openTestStore(t)
	r := Run{Pipeline: "web", Status: StatusRunning}
	if err := s.CreateRun(&r); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLog(r.ID, make([]byte, LogChunkSize+10)); err != nil {
		t.Fatal(err)
	}
	if errs := s.checkInvariants(); len(errs) != 0 {
		t.Fatalf("valid store reported: %v", errs)
	}

	// A short chunk before the last would shift every later offset.
	corrupt := func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLogs).Bucket(itob(r.ID)).Put(itob(0), []byte("short"))
	}
	if err := s.db.Update(corrupt); err != nil {
		t.Fatal(err)
	}
	if errs := s.checkInvariants(); len(errs) == 0 {
		t.Error("short first chunk was not reported")
	}

	repair := func(tx *bolt.Tx) error { return tx.Bucket(bucketLogs).DeleteBucket(itob(r.ID)) }
	if err := s.db.Update(repair); err != nil {
		t.Fatal(err)
	}
}

func TestOpenCreatesFolderAndFile(t *testing.T) {
	s, path := openTestStore(t)
	_ = s

	dir, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if got := dir.Mode().Perm(); got != 0o700 {
		t.Errorf("folder mode = %v, want 0700", got)
	}
	file, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := file.Mode().Perm(); got != 0o600 {
		t.Errorf("file mode = %v, want 0600", got)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notFolder := filepath.Join(dir, "file")
	if err := os.WriteFile(notFolder, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not bbolt "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		path string
	}{
		{"parent is a file", filepath.Join(notFolder, "quai.db")},
		{"not a bbolt file", garbage},
		{"path is a folder", dir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(tt.path)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded", tt.path)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name the path %s", err, tt.path)
			}
		})
	}
}

func TestOpenLockedFails(t *testing.T) {
	_, path := openTestStore(t)

	start := time.Now()
	second, err := Open(path)
	elapsed := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	for _, want := range []string{path, "another quai is probably running"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if elapsed < 500*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("Open gave up after %s, want about %s", elapsed, lockTimeout)
	}
}

func TestOpenRejectsNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "quai.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, itob(schemaVersion+1))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a newer schema succeeded")
	}
	if !strings.Contains(err.Error(), "upgrade quai") {
		t.Errorf("error %q does not say to upgrade", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	s, path := openTestStore(t)
	run := Run{Pipeline: "web", Status: StatusSuccess, Commit: "abc123"}
	if err := s.CreateRun(&run); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLog(run.ID, []byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveDelivery(Delivery{ID: "d-1", Event: "push"}); err != nil {
		t.Fatal(err)
	}
	dep := Deployment{Pipeline: "web", RunID: run.ID}
	if err := s.SaveDeployment(&dep); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Run(run.ID); err == nil {
		t.Error("Run after Close succeeded")
	}

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	got, err := s.Run(run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Commit != "abc123" || got.Status != StatusSuccess {
		t.Errorf("reopened run = %+v, want commit abc123 and status success", got)
	}
	var log bytes.Buffer
	if _, err := s.CopyLog(run.ID, 0, &log); err != nil {
		t.Fatal(err)
	}
	if log.String() != "hello\n" {
		t.Errorf("reopened log = %q, want %q", log.String(), "hello\n")
	}
	if _, err := s.Delivery("d-1"); err != nil {
		t.Error(err)
	}
	if _, err := s.CurrentDeployment("web"); err != nil {
		t.Error(err)
	}

	// The sequence continues after a reopen, so IDs are never reused.
	next := Run{Pipeline: "web", Status: StatusQueued}
	if err := s.CreateRun(&next); err != nil {
		t.Fatal(err)
	}
	if next.ID != run.ID+1 {
		t.Errorf("run ID after reopen = %d, want %d", next.ID, run.ID+1)
	}
}

func TestListLimitErrors(t *testing.T) {
	s, _ := openTestStore(t)
	calls := map[string]func(limit int) error{
		"ListDeliveries": func(limit int) error { _, err := s.ListDeliveries(limit); return err },
		"ListRuns":       func(limit int) error { _, err := s.ListRuns("", limit, 0); return err },
		"Deployments":    func(limit int) error { _, err := s.Deployments("web", limit); return err },
	}
	for name, call := range calls {
		for _, limit := range []int{0, -1} {
			if err := call(limit); err == nil {
				t.Errorf("%s(limit %d) succeeded", name, limit)
			}
		}
	}
}
