package engine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quai-ci/quai/internal/testenv"
	"github.com/quai-ci/quai/pipeline"
)

// syncBuffer is a bytes.Buffer that the test may read while RunStep writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runStepTest runs a step in the busybox image with a unique name and the
// quai-test label, and checks that no container is left behind.
func runStepTest(t *testing.T, ctx context.Context, opts StepOptions, out *syncBuffer) (int, error) {
	t.Helper()
	e := newTestEngine(t)
	if opts.Image == "" {
		opts.Image = testenv.BusyboxImage(t)
	}
	opts.Name = testName(t)
	opts.Labels = map[string]string{testLabel: "true"}
	code, err := e.RunStep(ctx, opts, out)
	if _, inspectErr := e.Inspect(context.Background(), opts.Name); !errors.Is(inspectErr, ErrNotFound) {
		t.Errorf("step container %s still exists after RunStep (inspect error %v)", opts.Name, inspectErr)
	}
	return code, err
}

func TestStepConfigRejects(t *testing.T) {
	valid := StepOptions{Name: "quai-test-x", Image: "img", Commands: []string{"true"}, Workdir: "/tmp"}
	tests := []struct {
		name    string
		change  func(*StepOptions)
		wantErr string
	}{
		{"empty image", func(o *StepOptions) { o.Image = "" }, "empty image"},
		{"no commands", func(o *StepOptions) { o.Commands = nil }, "no commands"},
		{"unknown network", func(o *StepOptions) { o.Network = "overlay" }, `unsupported network "overlay"`},
		{"relative workdir", func(o *StepOptions) { o.Workdir = "run-1" }, "not an absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := valid
			tt.change(&opts)
			_, _, err := stepConfig(opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestStepConfigMountsWorkspace(t *testing.T) {
	config, hostConfig, err := stepConfig(StepOptions{Image: "img", Commands: []string{"true"}, Workdir: "/srv/run-1"})
	if err != nil {
		t.Fatal(err)
	}
	if config.WorkingDir != pipeline.Workspace {
		t.Errorf("working dir = %q, want %q", config.WorkingDir, pipeline.Workspace)
	}
	if len(hostConfig.Mounts) != 1 {
		t.Fatalf("mounts = %v, want one", hostConfig.Mounts)
	}
	m := hostConfig.Mounts[0]
	if m.Source != "/srv/run-1" || m.Target != pipeline.Workspace || m.ReadOnly {
		t.Errorf("mount = %+v, want /srv/run-1 read-write at %s", m, pipeline.Workspace)
	}
	if want := []string{"/bin/sh", "-e", "-c"}; !slices.Equal(config.Cmd[:3], want) {
		t.Errorf("command = %q, want it to start with %q", config.Cmd, want)
	}
}

func TestRunStepStdoutStderrAndExitCode(t *testing.T) {
	var out syncBuffer
	code, err := runStepTest(t, context.Background(), StepOptions{
		Commands: []string{"echo to-stdout", "echo to-stderr >&2", "exit 3", "echo never"},
	}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if code != 3 {
		t.Errorf("exit code = %d, want 3", code)
	}
	// The daemon copies stdout and stderr separately, so only the order
	// within each stream is fixed.
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	slices.Sort(got)
	want := []string{"+ echo to-stderr >&2", "+ echo to-stdout", "+ exit 3", "to-stderr", "to-stdout"}
	if !slices.Equal(got, want) {
		t.Errorf("output lines = %q, want %q", got, want)
	}
}

func TestRunStepFailingCommandEndsStep(t *testing.T) {
	var out syncBuffer
	code, err := runStepTest(t, context.Background(), StepOptions{
		Commands: []string{"echo first", "false", "echo second"},
	}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	if want := "+ echo first\nfirst\n+ false\n"; out.String() != want {
		t.Errorf("output = %q, want %q", out.String(), want)
	}
}

func TestRunStepLongLine(t *testing.T) {
	const size = 300 << 10
	var out syncBuffer
	cmd := "head -c 307200 /dev/zero | tr '\\0' a; echo"
	code, err := runStepTest(t, context.Background(), StepOptions{Commands: []string{cmd}}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	want := "+ " + cmd + "\n" + strings.Repeat("a", size) + "\n"
	if got := out.String(); got != want {
		t.Errorf("output is %d bytes, want %d: the %d-byte line was altered", len(got), len(want), size)
	}
}

func TestRunStepCarriageReturnAndANSI(t *testing.T) {
	var out syncBuffer
	cmd := `printf 'progress 10%%\rprogress 100%%\n\033[31mred\033[0m\n'`
	if _, err := runStepTest(t, context.Background(), StepOptions{Commands: []string{cmd}}, &out); err != nil {
		t.Fatal(err)
	}
	want := "+ " + cmd + "\nprogress 10%\rprogress 100%\n\x1b[31mred\x1b[0m\n"
	if got := out.String(); got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

func TestRunStepEnvAndWorkspace(t *testing.T) {
	dir := t.TempDir()
	var out syncBuffer
	commands := []string{
		`echo "it's $GREETING" > result.txt`,
		`pwd >> result.txt`,
	}
	code, err := runStepTest(t, context.Background(), StepOptions{
		Commands: commands,
		Env:      []string{"GREETING=hello world"},
		Workdir:  dir,
	}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("exit code = %d, want 0; output:\n%s", code, out.String())
	}
	data, err := os.ReadFile(filepath.Join(dir, "result.txt"))
	if err != nil {
		t.Fatalf("reading the file the step wrote: %v", err)
	}
	if want := "it's hello world\n" + pipeline.Workspace + "\n"; string(data) != want {
		t.Errorf("result.txt = %q, want %q", data, want)
	}
	// The echo shows each command as written, unexpanded.
	if want := "+ " + commands[0] + "\n+ " + commands[1] + "\n"; out.String() != want {
		t.Errorf("output = %q, want %q", out.String(), want)
	}
}

func TestRunStepCancelStopsContainer(t *testing.T) {
	e := newTestEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The first command gives ContainerStart time to return, so the cancel
	// reaches a running step rather than the start request.
	out := &cancelAfterMarker{marker: "+ sleep 600", cancel: cancel}
	name := testName(t)

	code, err := e.RunStep(ctx, StepOptions{
		Name:     name,
		Image:    testenv.BusyboxImage(t),
		Commands: []string{"sleep 1", "sleep 600"},
		Labels:   map[string]string{testLabel: "true"},
	}, out)
	returned := time.Now()

	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
	if code != -1 {
		t.Errorf("exit code = %d, want -1", code)
	}
	if out.canceledAt.IsZero() {
		t.Fatalf("the step never printed %q; output %q", out.marker, out.buf.String())
	}
	if d := returned.Sub(out.canceledAt); d > 5*time.Second {
		t.Errorf("RunStep returned %s after the cancel, want within 5s", d)
	}
	if _, err := e.Inspect(context.Background(), name); !errors.Is(err, ErrNotFound) {
		t.Errorf("step container still exists after the cancel (inspect error %v)", err)
	}
}

// cancelAfterMarker records output and cancels a context once the output
// contains marker. RunStep writes from one goroutine and has returned
// before the test reads the fields.
type cancelAfterMarker struct {
	marker     string
	cancel     context.CancelFunc
	buf        bytes.Buffer
	canceledAt time.Time
}

func (c *cancelAfterMarker) Write(p []byte) (int, error) {
	c.buf.Write(p)
	if c.canceledAt.IsZero() && strings.Contains(c.buf.String(), c.marker) {
		c.canceledAt = time.Now()
		c.cancel()
	}
	return len(p), nil
}

func TestRunStepMissingImage(t *testing.T) {
	var out syncBuffer
	code, err := runStepTest(t, context.Background(), StepOptions{
		Image:    "quai-test/no-such-image:" + randomSuffix(t),
		Commands: []string{"true"},
	}, &out)
	if err == nil || !strings.Contains(err.Error(), "no-such-image") {
		t.Errorf("error = %v, want one naming the missing image", err)
	}
	if code != -1 {
		t.Errorf("exit code = %d, want -1", code)
	}
}
