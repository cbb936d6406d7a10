package runner

import (
	"bytes"
	"log/slog"
	"strings"
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
