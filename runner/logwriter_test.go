package runner

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/quai-ci/quai/store"
)

func TestLogWriterStoresLinesAndMasks(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		writes  []string
		want    string
	}{
		{"whole lines", nil, []string{"one\ntwo\n"}, "one\ntwo\n"},
		{"line split across writes", nil, []string{"hal", "f line\n"}, "half line\n"},
		{"unfinished line closed", nil, []string{"no newline"}, "no newline\n"},
		{"secret masked", []string{"s3cr3t-value"}, []string{"token=s3cr3t-value ok\n"}, "token=******** ok\n"},
		{"secret split across writes", []string{"s3cr3t-value"}, []string{"token=s3cr3", "t-value\n"}, "token=********\n"},
		{"short value left alone", []string{"abc"}, []string{"abc abc\n"}, "abc abc\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t)
			run := store.Run{Pipeline: "a", Status: store.StatusRunning}
			if err := s.CreateRun(&run); err != nil {
				t.Fatal(err)
			}
			w := newLogWriter(s, run.ID, slog.New(slog.DiscardHandler))
			for _, secret := range tt.secrets {
				w.AddSecret(secret)
			}
			for _, chunk := range tt.writes {
				if _, err := w.Write([]byte(chunk)); err != nil {
					t.Fatal(err)
				}
			}
			w.Close()
			var got bytes.Buffer
			if _, err := s.CopyLog(run.ID, 0, &got); err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want {
				t.Errorf("log = %q, want %q", got.String(), tt.want)
			}
		})
	}
}

func TestLogWriterBoundsUnfinishedLine(t *testing.T) {
	s := openStore(t)
	run := store.Run{Pipeline: "a", Status: store.StatusRunning}
	if err := s.CreateRun(&run); err != nil {
		t.Fatal(err)
	}
	w := newLogWriter(s, run.ID, slog.New(slog.DiscardHandler))
	long := strings.Repeat("x", 3*maxPending)
	if _, err := w.Write([]byte(long)); err != nil {
		t.Fatal(err)
	}
	if len(w.pending) != 0 {
		t.Errorf("writer holds %d bytes of an unfinished line, want them passed on", len(w.pending))
	}
	w.Close()
	size, err := s.LogSize(run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(long)) {
		t.Errorf("stored %d bytes, want %d", size, len(long))
	}
}

func TestLogWriterMasksSplitSecret(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		text    string
		want    string
	}{
		{"single-line secret", []string{"s3cr3t-value"}, "token=s3cr3t-value ok\n", "token=******** ok\n"},
		{"secret at line end", []string{"s3cr3t-value"}, "a\ntoken=s3cr3t-value\nb\n", "a\ntoken=********\nb\n"},
		{"multi-line secret", []string{testPEM}, "key:\n" + testPEM + "done\n", "key:\n********done\n"},
		{"base64 of secret", []string{"s3cr3t-value"}, "v=czNjcjN0LXZhbHVl\n", "v=********\n"},
		{"prefix secrets", []string{"abcd1234", "abcd1234efgh"}, "abcd1234efgh abcd1234\n", "******** ********\n"},
		{"unfinished last line", []string{"s3cr3t-value"}, "x s3cr3t-value", "x ********\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for split := 0; split <= len(tt.text); split++ {
				log := &memLog{}
				w := newLogWriter(log, 1, slog.New(slog.DiscardHandler))
				for _, secret := range tt.secrets {
					w.AddSecret(secret)
				}
				_, _ = w.Write([]byte(tt.text[:split]))
				_, _ = w.Write([]byte(tt.text[split:]))
				w.Close()
				if got := log.String(); got != tt.want {
					t.Errorf("split at %d: log = %q, want %q", split, got, tt.want)
				}
			}
		})
	}
}

func TestLogWriterPartialLineFlush(t *testing.T) {
	secrets := []string{"s3cr3t-value", testPEM}
	for _, secret := range secrets {
		// The first write fills the unfinished line to maxPending, which
		// makes the writer store it, while it ends k bytes into the secret.
		for k := 1; k < len(secret); k++ {
			log := &memLog{}
			w := newLogWriter(log, 1, slog.New(slog.DiscardHandler))
			w.AddSecret(secret)
			filler := strings.Repeat("x", maxPending-k)
			_, _ = w.Write([]byte(filler + secret[:k]))
			if len(log.chunks) == 0 {
				t.Fatalf("k=%d: nothing stored after an unfinished line of %d bytes", k, maxPending)
			}
			stored := log.String()
			for j := 1; j <= k; j++ {
				if strings.HasSuffix(stored, secret[:j]) {
					t.Fatalf("k=%d: stored chunk ends with the first %d bytes of the secret", k, j)
				}
			}

			_, _ = w.Write([]byte(secret[k:] + "\n"))
			w.Close()
			if got, want := log.String(), filler+mask+"\n"; got != want {
				t.Fatalf("k=%d: log ends %q, want it to end %q", k, tail(got), tail(want))
			}
		}
	}
}

func TestLogWriterUnfinishedLineWithoutSecrets(t *testing.T) {
	log := &memLog{}
	w := newLogWriter(log, 1, slog.New(slog.DiscardHandler))
	w.AddSecret("s3cr3t-value")
	long := strings.Repeat("x", maxPending)
	_, _ = w.Write([]byte(long))
	// No byte of the line can start the secret, so all of it is stored.
	if len(w.pending) != 0 {
		t.Errorf("writer holds %d bytes, want 0", len(w.pending))
	}
	w.Close()
	if got := log.String(); got != long {
		t.Errorf("stored %d bytes, want the %d bytes written", len(got), len(long))
	}
}

func TestRedactURL(t *testing.T) {
	tests := map[string]string{
		"https://x-access-token:abc@github.com/acme/a.git": "https://github.com/acme/a.git",
		"https://github.com/acme/a.git":                    "https://github.com/acme/a.git",
		"/srv/git/a":                                       "/srv/git/a",
	}
	for in, want := range tests {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// memLog is a Store that keeps each stored chunk in memory; the log writer
// calls no other method.
type memLog struct {
	Store
	mu     sync.Mutex
	chunks []string
}

func (m *memLog) AppendLog(_ uint64, p []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.chunks = append(m.chunks, string(p))
	return nil
}

func (m *memLog) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.chunks, "")
}

// discardLog is a Store that counts stored bytes and keeps nothing.
type discardLog struct {
	Store
	n int64
}

func (d *discardLog) AppendLog(_ uint64, p []byte) error {
	d.n += int64(len(p))
	return nil
}

func tail(s string) string {
	return s[max(0, len(s)-40):]
}
