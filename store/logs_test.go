package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

// randomBytes returns n bytes that differ at every offset often enough to
// catch a chunk written at the wrong place.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

func createTestRun(t testing.TB, s *Store) uint64 {
	t.Helper()
	r := Run{Pipeline: "web", Status: StatusRunning}
	if err := s.CreateRun(&r); err != nil {
		t.Fatal(err)
	}
	return r.ID
}

func TestLogAppendAndCopy(t *testing.T) {
	const c = LogChunkSize
	tests := []struct {
		name    string
		appends []int
	}{
		{name: "nothing"},
		{name: "empty append", appends: []int{0}},
		{name: "one line", appends: []int{13}},
		{name: "small lines", appends: []int{1, 2, 3, 100, 0, 4096}},
		{name: "exactly one chunk", appends: []int{c}},
		{name: "fills chunk then more", appends: []int{c - 1, 1, 1}},
		{name: "crosses boundary", appends: []int{c - 10, 20}},
		{name: "several chunks at once", appends: []int{3*c + 5}},
		{name: "partial then several chunks", appends: []int{7, 2*c + 3, c - 10, 11}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTestStore(t)
			id := createTestRun(t, s)
			other := createTestRun(t, s)

			var want []byte
			for i, n := range tt.appends {
				p := randomBytes(uint64(i), n)
				if err := s.AppendLog(id, p); err != nil {
					t.Fatal(err)
				}
				want = append(want, p...)
				// Appending to another run must not touch this one.
				if err := s.AppendLog(other, []byte("other\n")); err != nil {
					t.Fatal(err)
				}
			}

			size, err := s.LogSize(id)
			if err != nil {
				t.Fatal(err)
			}
			if size != int64(len(want)) {
				t.Errorf("LogSize = %d, want %d", size, len(want))
			}

			offsets := []int64{0, 1, c - 1, c, c + 1, int64(len(want)) - 1, int64(len(want))}
			for _, off := range offsets {
				if off < 0 || off > int64(len(want)) {
					continue
				}
				var got bytes.Buffer
				end, err := s.CopyLog(id, off, &got)
				if err != nil {
					t.Fatalf("CopyLog(offset %d): %v", off, err)
				}
				if end != int64(len(want)) {
					t.Errorf("CopyLog(offset %d) returned %d, want %d", off, end, len(want))
				}
				if !bytes.Equal(got.Bytes(), want[off:]) {
					t.Errorf("CopyLog(offset %d) wrote %d bytes that differ from the %d appended",
						off, got.Len(), len(want[off:]))
				}
			}
		})
	}
}

func TestLogErrors(t *testing.T) {
	s, _ := openTestStore(t)
	id := createTestRun(t, s)
	if err := s.AppendLog(id, []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	const missing = 99

	if err := s.AppendLog(missing, []byte("x")); !errors.Is(err, ErrRunNotFound) {
		t.Errorf("AppendLog(unknown run) error = %v, want ErrRunNotFound", err)
	}
	if err := s.AppendLog(missing, nil); !errors.Is(err, ErrRunNotFound) {
		t.Errorf("AppendLog(unknown run, nil) error = %v, want ErrRunNotFound", err)
	}
	if _, err := s.LogSize(missing); !errors.Is(err, ErrRunNotFound) {
		t.Errorf("LogSize(unknown run) error = %v, want ErrRunNotFound", err)
	}

	tests := []struct {
		name    string
		run     uint64
		offset  int64
		wantErr error
	}{
		{name: "unknown run", run: missing, wantErr: ErrRunNotFound},
		{name: "negative offset", run: id, offset: -1},
		{name: "offset beyond size", run: id, offset: 11},
		{name: "offset far beyond size", run: id, offset: 10 * LogChunkSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w bytes.Buffer
			end, err := s.CopyLog(tt.run, tt.offset, &w)
			if err == nil {
				t.Fatal("CopyLog succeeded, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("CopyLog error = %v, want %v", err, tt.wantErr)
			}
			if end != tt.offset {
				t.Errorf("CopyLog returned offset %d, want %d", end, tt.offset)
			}
			if w.Len() != 0 {
				t.Errorf("CopyLog wrote %d bytes", w.Len())
			}
		})
	}
}

// limitedWriter accepts n bytes, then fails.
type limitedWriter struct {
	n   int
	buf bytes.Buffer
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		w.buf.Write(p[:w.n])
		n := w.n
		w.n = 0
		return n, errTest
	}
	w.n -= len(p)
	return w.buf.Write(p)
}

func TestCopyLogWriteError(t *testing.T) {
	s, _ := openTestStore(t)
	id := createTestRun(t, s)
	log := randomBytes(1, 3*LogChunkSize)
	if err := s.AppendLog(id, log); err != nil {
		t.Fatal(err)
	}

	const start, accepted = 100, LogChunkSize + 17
	w := &limitedWriter{n: accepted}
	end, err := s.CopyLog(id, start, w)
	if !errors.Is(err, errTest) {
		t.Fatalf("CopyLog error = %v, want the writer's error", err)
	}
	if end != start+accepted {
		t.Errorf("CopyLog returned offset %d, want %d", end, start+accepted)
	}
	if !bytes.Equal(w.buf.Bytes(), log[start:start+accepted]) {
		t.Error("bytes written before the error differ from the log")
	}

	// The returned offset resumes the copy where it stopped.
	var rest bytes.Buffer
	if _, err := s.CopyLog(id, end, &rest); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rest.Bytes(), log[end:]) {
		t.Error("resumed copy differs from the log")
	}
}

// txCheckingWriter records whether a bbolt read transaction was open while
// CopyLog wrote to it.
type txCheckingWriter struct {
	s      *Store
	writes int
	openTx int
}

func (w *txCheckingWriter) Write(p []byte) (int, error) {
	w.writes++
	w.openTx = max(w.openTx, w.s.db.Stats().OpenTxN)
	return len(p), nil
}

func TestCopyLogWritesOutsideTransaction(t *testing.T) {
	s, _ := openTestStore(t)
	id := createTestRun(t, s)
	if err := s.AppendLog(id, randomBytes(2, 3*LogChunkSize+1)); err != nil {
		t.Fatal(err)
	}

	w := &txCheckingWriter{s: s}
	if _, err := s.CopyLog(id, 0, w); err != nil {
		t.Fatal(err)
	}
	if w.writes != 4 {
		t.Errorf("CopyLog made %d writes, want one per chunk (4)", w.writes)
	}
	if w.openTx != 0 {
		t.Errorf("%d read transactions were open during a write", w.openTx)
	}
}

func TestCopyLogDuringAppends(t *testing.T) {
	s, _ := openTestStore(t)
	id := createTestRun(t, s)
	log := randomBytes(3, 40*LogChunkSize)

	var wg sync.WaitGroup
	wg.Go(func() {
		for p := log; len(p) > 0; {
			n := min(len(p), 10_000)
			if err := s.AppendLog(id, p[:n]); err != nil {
				t.Error(err)
				return
			}
			p = p[n:]
		}
	})

	// Follow the log as a client polling for new bytes does, until it has
	// everything or the deadline passes.
	var got bytes.Buffer
	var offset int64
	deadline := time.Now().Add(30 * time.Second)
	for offset < int64(len(log)) && time.Now().Before(deadline) {
		var err error
		offset, err = s.CopyLog(id, offset, &got)
		if err != nil {
			t.Fatal(err)
		}
		if int64(got.Len()) != offset {
			t.Fatalf("CopyLog returned offset %d after %d bytes", offset, got.Len())
		}
		if !bytes.Equal(got.Bytes(), log[:offset]) {
			t.Fatalf("bytes 0..%d read during appends differ from the appended ones", offset)
		}
	}
	wg.Wait()
	if offset != int64(len(log)) {
		t.Errorf("copied %d of %d bytes before the deadline", offset, len(log))
	}
}

// largeLog appends size bytes in 32 KiB writes and returns the SHA-256 of
// the whole log and of the log from offset mid on, without holding the log
// in memory.
func largeLog(tb testing.TB, s *Store, id uint64, size, mid int64) (whole, fromMid []byte) {
	tb.Helper()
	const write = 32 << 10
	src := rand.NewChaCha8([32]byte{42})
	all, tail := sha256.New(), sha256.New()
	buf := make([]byte, write)
	for off := int64(0); off < size; off += write {
		p := buf[:min(write, size-off)]
		src.Read(p)
		all.Write(p)
		if off+int64(len(p)) > mid {
			tail.Write(p[max(0, mid-off):])
		}
		if err := s.AppendLog(id, p); err != nil {
			tb.Fatal(err)
		}
	}
	return all.Sum(nil), tail.Sum(nil)
}

// peakHeapWriter discards what it is given and samples the heap every few
// writes, because the peak during CopyLog is what must stay bounded.
type peakHeapWriter struct {
	writes int
	peak   uint64
}

func (w *peakHeapWriter) Write(p []byte) (int, error) {
	if w.writes%8 == 0 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		w.peak = max(w.peak, m.HeapInuse)
	}
	w.writes++
	return io.Discard.Write(p)
}

// checkLargeLog writes a log of size bytes and reads it back whole and from
// the middle, comparing hashes, and checks that CopyLog uses bounded memory.
func checkLargeLog(tb testing.TB, size int64) {
	s, _ := openTestStore(tb)
	id := createTestRun(tb, s)
	mid := size/2 + 12345

	start := time.Now()
	whole, fromMid := largeLog(tb, s, id, size, mid)
	tb.Logf("appended %d MiB in 32 KiB writes in %s", size>>20, time.Since(start).Round(time.Millisecond))

	if got, err := s.LogSize(id); err != nil || got != size {
		tb.Fatalf("LogSize = %d, %v; want %d", got, err, size)
	}

	copies := []struct {
		offset int64
		want   []byte
	}{{0, whole}, {mid, fromMid}}
	for _, c := range copies {
		h := sha256.New()
		end, err := s.CopyLog(id, c.offset, h)
		if err != nil {
			tb.Fatal(err)
		}
		if end != size {
			tb.Errorf("CopyLog(offset %d) returned %d, want %d", c.offset, end, size)
		}
		if !bytes.Equal(h.Sum(nil), c.want) {
			tb.Errorf("CopyLog(offset %d): SHA-256 differs from the appended bytes", c.offset)
		}
	}

	// Memory: HeapInuse may drop when a GC runs in between, but never
	// grows by more than a few chunks while copying one chunk at a time.
	const bound = 16 << 20
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	w := &peakHeapWriter{}
	start = time.Now()
	if _, err := s.CopyLog(id, 0, w); err != nil {
		tb.Fatal(err)
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)

	growth := int64(w.peak) - int64(before.HeapInuse)
	allocated := after.TotalAlloc - before.TotalAlloc
	tb.Logf("CopyLog of %d MiB: %s, peak HeapInuse growth %d KiB, %d KiB allocated",
		size>>20, elapsed.Round(time.Millisecond), growth>>10, allocated>>10)
	if growth > bound {
		tb.Errorf("HeapInuse grew by %d bytes during CopyLog, want below %d", growth, bound)
	}
	if allocated > bound {
		tb.Errorf("CopyLog allocated %d bytes, want below %d", allocated, bound)
	}
}

func TestLargeLog(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the 20 MiB log in -short mode")
	}
	checkLargeLog(t, 20<<20)
}

// BenchmarkLargeLog100MiB runs the large-log check on 100 MiB, which takes
// too long for every test run.
func BenchmarkLargeLog100MiB(b *testing.B) {
	for b.Loop() {
		checkLargeLog(b, 100<<20)
	}
}

func BenchmarkAppendLog(b *testing.B) {
	s, _ := openTestStore(b)
	id := createTestRun(b, s)
	line := bytes.Repeat([]byte("0123456789abcdef"), 256)
	line[len(line)-1] = '\n'

	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if err := s.AppendLog(id, line); err != nil {
			b.Fatal(err)
		}
	}
}
