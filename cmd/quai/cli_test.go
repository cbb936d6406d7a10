package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateCommand(t *testing.T) {
	tests := []struct {
		name     string
		dir      string
		wantExit int
		stdout   []string
		stderr   []string
	}{
		{"valid folder", "testdata/validate/good", 0, []string{`pipeline "hello" is valid`}, nil},
		{
			"errors with positions", "testdata/validate/bad", 1, nil,
			[]string{"testdata/validate/bad/web.yml:4:3: ", `did you mean "dockerfile"`, "testdata/validate/bad/web.yml:7:9: "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"validate", tt.dir}, &stdout, &stderr, os.Getenv)
			exit := 0
			var e exitError
			if errors.As(err, &e) {
				exit = int(e)
			} else if err != nil {
				t.Fatalf("validate returned %v", err)
			}
			if exit != tt.wantExit {
				t.Errorf("exit status %d, want %d; stderr:\n%s", exit, tt.wantExit, stderr.String())
			}
			for _, want := range tt.stdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
				}
			}
			for _, want := range tt.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
		})
	}
}

func TestValidateMissingFolder(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"validate", "testdata/no-such-folder"}, &stdout, &stderr, os.Getenv)
	if err == nil || !strings.Contains(err.Error(), "testdata/no-such-folder") {
		t.Errorf("validate of a missing folder returned %v, want an error naming it", err)
	}
}

func TestParseServeFlagsAndEnv(t *testing.T) {
	env := map[string]string{"QUAI_LISTEN": "127.0.0.1:9999", "QUAI_DATA": "/var/lib/quai", "QUAI_MAX_RUNS": "3"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name   string
		args   []string
		listen string
		data   string
		runs   int
	}{
		{"environment", nil, "127.0.0.1:9999", "/var/lib/quai", 3},
		{"flag wins", []string{"--listen", "127.0.0.1:7000", "--max-runs", "1"}, "127.0.0.1:7000", "/var/lib/quai", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseServe(tt.args, &bytes.Buffer{}, getenv)
			if err != nil {
				t.Fatal(err)
			}
			if c.listen != tt.listen {
				t.Errorf("listen = %q, want %q", c.listen, tt.listen)
			}
			if c.data != tt.data {
				t.Errorf("data = %q, want %q", c.data, tt.data)
			}
			if c.maxRuns != tt.runs {
				t.Errorf("max runs = %d, want %d", c.maxRuns, tt.runs)
			}
			if c.pipelines != "./pipelines.d" {
				t.Errorf("pipelines = %q, want the default ./pipelines.d", c.pipelines)
			}
		})
	}
}

func TestParseServeRejectsBadValues(t *testing.T) {
	for _, args := range [][]string{{"--max-runs", "many"}, {"--log-level", "loud"}, {"extra"}} {
		_, err := parseServe(args, &bytes.Buffer{}, func(string) string { return "" })
		if err == nil {
			t.Errorf("parseServe(%q) accepted bad input", args)
		}
	}
}

func TestWebhookSecretGeneratedOnce(t *testing.T) {
	data := t.TempDir()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	c := serveConfig{data: data}

	first, err := webhookSecret(c, log)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) < 32 {
		t.Fatalf("generated secret has %d characters, want at least 32", len(first))
	}
	path := filepath.Join(data, secretFileName)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v, want 0600", info.Mode().Perm())
	}
	if !strings.Contains(logs.String(), path) {
		t.Errorf("log does not say where the secret is:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), string(first)) {
		t.Errorf("log contains the secret itself")
	}

	logs.Reset()
	second, err := webhookSecret(c, log)
	if err != nil {
		t.Fatal(err)
	}
	if string(second) != string(first) {
		t.Errorf("second start read %q, want the stored secret", second)
	}
	if logs.Len() != 0 {
		t.Errorf("second start logged %q, want nothing", logs.String())
	}
}

func TestWebhookSecretFromEnvironmentAndFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	tests := []struct {
		name    string
		c       serveConfig
		want    string
		wantErr string
	}{
		{"value wins", serveConfig{webhookSecret: "from-env", secretFile: file}, "from-env", ""},
		{"file without newline", serveConfig{secretFile: file}, "from-file", ""},
		{"empty file", serveConfig{secretFile: empty}, "", "is empty"},
		{"missing file", serveConfig{secretFile: file + ".missing"}, "", "secret.missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.data = t.TempDir()
			got, err := webhookSecret(tt.c, log)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("secret %q, want %q", got, tt.want)
			}
		})
	}
}
