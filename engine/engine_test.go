package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/quai-ci/quai/internal/testenv"
)

// testLabel marks every container and image the tests create.
const testLabel = "quai-test"

// newTestEngine connects to the daemon, or skips the test (fails under
// QUAI_REQUIRE_INTEGRATION=1) when there is none.
func newTestEngine(t *testing.T) *Engine {
	t.Helper()
	e, err := New(context.Background())
	if err != nil {
		testenv.Skip(t, "docker", err.Error())
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func randomSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

var unsafeNameChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// testName returns a unique container name starting with "quai-test-".
func testName(t *testing.T) string {
	t.Helper()
	base := strings.ToLower(unsafeNameChars.ReplaceAllString(t.Name(), "-"))
	return "quai-test-" + base + "-" + randomSuffix(t)
}

// removeImageOnCleanup removes the image tag ref when the test ends.
func removeImageOnCleanup(t *testing.T, e *Engine, ref string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := e.cli.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
		if err != nil && !errors.Is(notFound(err), ErrNotFound) {
			t.Errorf("removing test image %s: %v", ref, err)
		}
	})
}

// buildAppImage builds testdata/app, whose containers run the shell command
// in $QUAI_TEST_CMD and can serve /www with busybox httpd.
func buildAppImage(t *testing.T, e *Engine) string {
	t.Helper()
	ref := "quai-test/engine-app:" + randomSuffix(t)
	removeImageOnCleanup(t, e, ref)
	_, err := e.Build(context.Background(), BuildOptions{
		ContextDir: "testdata/app",
		Tags:       []string{ref},
		Args:       map[string]string{"BASE": testenv.BusyboxImage(t), "GREETING": "hi"},
		Labels:     map[string]string{testLabel: "true"},
	}, nil)
	if err != nil {
		t.Fatalf("building test image: %v", err)
	}
	return ref
}

// runTest runs a container and removes it when the test ends. The name and
// the quai-test label are filled in when missing.
func runTest(t *testing.T, e *Engine, opts RunOptions) (string, error) {
	t.Helper()
	if opts.Name == "" {
		opts.Name = testName(t)
	}
	if opts.Labels == nil {
		opts.Labels = map[string]string{}
	}
	opts.Labels[testLabel] = "true"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.Remove(ctx, opts.Name); err != nil {
			t.Errorf("removing test container: %v", err)
		}
	})
	return e.Run(context.Background(), opts)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// poll calls check until it returns true or the deadline passes.
func poll(t *testing.T, timeout time.Duration, what string, check func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	var lastErr error
	for {
		ok, err := check()
		if ok {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, lastErr)
		}
		<-ticker.C
	}
}

// waitExited waits until the container is no longer running.
func waitExited(t *testing.T, e *Engine, name string) Container {
	t.Helper()
	var c Container
	poll(t, 20*time.Second, name+" to exit", func() (bool, error) {
		var err error
		c, err = e.Inspect(context.Background(), name)
		return err == nil && !c.Running, err
	})
	return c
}

// getBody polls url until it returns 200 and returns the body.
func getBody(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	var body string
	poll(t, 20*time.Second, "GET "+url, func() (bool, error) {
		resp, err := client.Get(url)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return false, err
		}
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("status %s", resp.Status)
		}
		body = string(b)
		return true, nil
	})
	return body
}

// lineRecorder records every Write call.
type lineRecorder struct {
	mu     sync.Mutex
	writes []string
}

func (r *lineRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func TestNewDeadDaemon(t *testing.T) {
	const host = "unix:///nonexistent.sock"
	t.Setenv("DOCKER_HOST", host)

	_, err := New(context.Background())
	if err == nil {
		t.Fatal("New succeeded without a daemon")
	}
	for _, want := range []string{host, "start dockerd", "DOCKER_HOST"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestBuildArgsAndLabels(t *testing.T) {
	e := newTestEngine(t)
	ref := "quai-test/engine-build:" + randomSuffix(t)
	removeImageOnCleanup(t, e, ref)
	labels := map[string]string{testLabel: "true", "org.quai.commit": "0123abcd"}

	var out lineRecorder
	id, err := e.Build(context.Background(), BuildOptions{
		ContextDir: "testdata/app",
		Tags:       []string{ref},
		Args:       map[string]string{"BASE": testenv.BusyboxImage(t), "GREETING": "hello-args"},
		Labels:     labels,
	}, &out)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}

	if !strings.HasPrefix(id, "sha256:") {
		t.Errorf("image ID %q does not start with sha256:", id)
	}
	img, err := e.cli.ImageInspect(context.Background(), ref)
	if err != nil {
		t.Fatalf("inspecting %s: %v", ref, err)
	}
	if img.ID != id {
		t.Errorf("Build returned %s, tag %s points to %s", id, ref, img.ID)
	}
	for k, v := range labels {
		if got := img.Config.Labels[k]; got != v {
			t.Errorf("image label %s = %q, want %q", k, got, v)
		}
	}

	if len(out.writes) == 0 {
		t.Fatal("no build output")
	}
	for _, w := range out.writes {
		if !strings.HasSuffix(w, "\n") || strings.Count(w, "\n") != 1 {
			t.Errorf("write %q is not exactly one line", w)
		}
	}
	all := strings.Join(out.writes, "")
	for _, want := range []string{"Step 1/", "greeting=hello-args\n"} {
		if !strings.Contains(all, want) {
			t.Errorf("build output does not contain %q:\n%s", want, all)
		}
	}
}

func TestBuildMissingCopyFails(t *testing.T) {
	e := newTestEngine(t)
	ref := "quai-test/engine-missing:" + randomSuffix(t)
	removeImageOnCleanup(t, e, ref)

	_, err := e.Build(context.Background(), BuildOptions{
		ContextDir: "testdata/missingcopy",
		Tags:       []string{ref},
		Args:       map[string]string{"BASE": testenv.BusyboxImage(t)},
	}, nil)
	if err == nil {
		t.Fatal("Build succeeded with a COPY of a missing file")
	}
	if !strings.Contains(err.Error(), "missing-file.txt") {
		t.Errorf("error %q does not name missing-file.txt", err)
	}
	if exists, err := e.ImageExists(context.Background(), ref); err != nil || exists {
		t.Errorf("ImageExists(%s) = %v, %v after a failed build, want false, nil", ref, exists, err)
	}
}

func TestBuildDockerignore(t *testing.T) {
	e := newTestEngine(t)
	ref := "quai-test/engine-ignore:" + randomSuffix(t)
	removeImageOnCleanup(t, e, ref)

	var out lineRecorder
	_, err := e.Build(context.Background(), BuildOptions{
		ContextDir: "testdata/dockerignore",
		Tags:       []string{ref},
		Args:       map[string]string{"BASE": testenv.BusyboxImage(t)},
	}, &out)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}

	// The Dockerfile's RUN lists every file copied from the context.
	all := strings.Join(out.writes, "")
	for _, want := range []string{"/ctx/keep.txt\n", "/ctx/reports/final.txt\n"} {
		if !strings.Contains(all, want) {
			t.Errorf("image lacks %s; build output:\n%s", strings.TrimSpace(want), all)
		}
	}
	for _, unwanted := range []string{"/ctx/secret.txt", "/ctx/reports/draft.txt", "/ctx/cache"} {
		if strings.Contains(all, unwanted) {
			t.Errorf("image contains excluded %s; build output:\n%s", unwanted, all)
		}
	}
}

// cancelOnLine cancels a context when a written line contains marker.
type cancelOnLine struct {
	marker string
	cancel context.CancelFunc
}

func (c *cancelOnLine) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.marker) {
		c.cancel()
	}
	return len(p), nil
}

func TestBuildCancel(t *testing.T) {
	e := newTestEngine(t)
	dir := t.TempDir()
	dockerfile := "ARG BASE\nFROM $BASE\nRUN sleep 60\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	start := time.Now()
	_, err := e.Build(ctx, BuildOptions{
		ContextDir: dir,
		Args:       map[string]string{"BASE": testenv.BusyboxImage(t)},
		Labels:     map[string]string{testLabel: "true"},
	}, &cancelOnLine{marker: "Running in", cancel: cancel})

	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
	if elapsed := time.Since(start); elapsed > 30*time.Second {
		t.Errorf("Build returned %s after the start, want well before the 60s step ends", elapsed)
	}
}

func TestBuildDockerfileOutsideContext(t *testing.T) {
	// Validation happens before any daemon request, so no daemon is needed.
	e := &Engine{}
	for _, dockerfile := range []string{"../Dockerfile", "/etc/passwd"} {
		_, err := e.Build(context.Background(), BuildOptions{
			ContextDir: "testdata/app",
			Dockerfile: dockerfile,
		}, nil)
		if err == nil {
			t.Errorf("Build with Dockerfile %q succeeded", dockerfile)
			continue
		}
		if !strings.Contains(err.Error(), dockerfile) {
			t.Errorf("error %q does not name %q", err, dockerfile)
		}
	}
}

func TestImageExists(t *testing.T) {
	e := newTestEngine(t)
	base := testenv.BusyboxImage(t)

	tests := []struct {
		ref  string
		want bool
	}{
		{base, true},
		{"quai-test/never-built:" + randomSuffix(t), false},
	}
	for _, tt := range tests {
		got, err := e.ImageExists(context.Background(), tt.ref)
		if err != nil {
			t.Errorf("ImageExists(%s): %v", tt.ref, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ImageExists(%s) = %v, want %v", tt.ref, got, tt.want)
		}
	}
}

func TestRunPublishServesHTTP(t *testing.T) {
	e := newTestEngine(t)
	ref := buildAppImage(t, e)
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))

	name := testName(t)
	id, err := runTest(t, e, RunOptions{
		Name:        name,
		Image:       ref,
		Env:         []string{"QUAI_TEST_CMD=exec httpd -f -p 8080 -h /www"},
		Port:        8080,
		Publish:     addr,
		Restart:     "unless-stopped",
		StopTimeout: 1500 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	if body := getBody(t, "http://"+addr+"/"); body != "hello from quai-test\n" {
		t.Errorf("GET returned %q", body)
	}

	c, err := e.Inspect(context.Background(), name)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if c.ID != id || c.Name != name || c.Image != ref || !c.Running {
		t.Errorf("Inspect = %+v, want ID %s, name %s, image %s, running", c, id, name, ref)
	}
	if c.StartedAt.IsZero() {
		t.Error("StartedAt is zero for a running container")
	}

	info, err := e.cli.ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	logConfig := info.HostConfig.LogConfig
	if logConfig.Type != "json-file" || logConfig.Config["max-size"] != "10m" ||
		logConfig.Config["max-file"] != "3" {
		t.Errorf("log config = %+v, want json-file with max-size 10m and max-file 3", logConfig)
	}
	if got := info.HostConfig.RestartPolicy.Name; got != "unless-stopped" {
		t.Errorf("restart policy = %q, want unless-stopped", got)
	}
	if info.Config.StopTimeout == nil || *info.Config.StopTimeout != 2 {
		t.Errorf("stop timeout = %v, want 2 (1.5s rounded up)", info.Config.StopTimeout)
	}
}

func TestRunHostNetwork(t *testing.T) {
	e := newTestEngine(t)
	ref := buildAppImage(t, e)
	port := freePort(t)

	_, err := runTest(t, e, RunOptions{
		Image:   ref,
		Env:     []string{"PORT=" + strconv.Itoa(port), `QUAI_TEST_CMD=exec httpd -f -p 127.0.0.1:$PORT -h /www`},
		Network: "host",
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if body := getBody(t, url); body != "hello from quai-test\n" {
		t.Errorf("GET returned %q", body)
	}
}

func TestRunPortConflict(t *testing.T) {
	e := newTestEngine(t)
	ref := buildAppImage(t, e)
	httpdOpts := func(name, addr string) RunOptions {
		return RunOptions{
			Name:    name,
			Image:   ref,
			Env:     []string{"QUAI_TEST_CMD=exec httpd -f -p 8080 -h /www"},
			Port:    8080,
			Publish: addr,
		}
	}

	tests := []struct {
		name   string
		occupy func(t *testing.T, addr string)
	}{
		{"held by process", func(t *testing.T, addr string) {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}},
		{"held by container", func(t *testing.T, addr string) {
			if _, err := runTest(t, e, httpdOpts(testName(t), addr)); err != nil {
				t.Fatalf("running the first container: %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
			tt.occupy(t, addr)

			name := testName(t)
			_, err := runTest(t, e, httpdOpts(name, addr))
			if err == nil {
				t.Fatal("Run succeeded on a taken address")
			}
			if !errors.Is(err, ErrAddressInUse) {
				t.Errorf("error %q does not wrap ErrAddressInUse", err)
			}
			if !strings.Contains(err.Error(), addr) {
				t.Errorf("error %q does not name %s", err, addr)
			}
			if _, err := e.Inspect(context.Background(), name); !errors.Is(err, ErrNotFound) {
				t.Errorf("container that failed to start was not removed: Inspect error %v", err)
			}
		})
	}
}

func TestStopStartRemoveIdempotent(t *testing.T) {
	e := newTestEngine(t)
	ref := buildAppImage(t, e)
	ctx := context.Background()
	name := testName(t)
	if _, err := runTest(t, e, RunOptions{
		Name:  name,
		Image: ref,
		Env:   []string{"QUAI_TEST_CMD=exec httpd -f -p 8080 -h /www"},
	}); err != nil {
		t.Fatalf("Run: %v", err)
	}

	for i := range 2 {
		if err := e.Stop(ctx, name, time.Second); err != nil {
			t.Fatalf("Stop #%d: %v", i+1, err)
		}
	}
	if c, err := e.Inspect(ctx, name); err != nil || c.Running {
		t.Fatalf("after Stop: Inspect = %+v, %v, want not running", c, err)
	}

	for i := range 2 {
		if err := e.Start(ctx, name); err != nil {
			t.Fatalf("Start #%d: %v", i+1, err)
		}
	}
	if c, err := e.Inspect(ctx, name); err != nil || !c.Running {
		t.Fatalf("after Start: Inspect = %+v, %v, want running", c, err)
	}

	for i := range 2 {
		if err := e.Remove(ctx, name); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
	if _, err := e.Inspect(ctx, name); !errors.Is(err, ErrNotFound) {
		t.Errorf("Inspect after Remove: error %v, want ErrNotFound", err)
	}
	if err := e.Stop(ctx, name, time.Second); !errors.Is(err, ErrNotFound) {
		t.Errorf("Stop of a missing container: error %v, want ErrNotFound", err)
	}
	if err := e.Start(ctx, name); !errors.Is(err, ErrNotFound) {
		t.Errorf("Start of a missing container: error %v, want ErrNotFound", err)
	}
}

func TestRename(t *testing.T) {
	e := newTestEngine(t)
	ref := buildAppImage(t, e)
	ctx := context.Background()
	oldName, newName := testName(t), testName(t)

	id, err := runTest(t, e, RunOptions{Name: oldName, Image: ref, Env: []string{"QUAI_TEST_CMD=true"}})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() { e.Remove(context.Background(), id) })

	if err := e.Rename(ctx, oldName, newName); err != nil {
		t.Fatalf("Rename: %v", err)
	}
	c, err := e.Inspect(ctx, newName)
	if err != nil {
		t.Fatalf("Inspect(%s): %v", newName, err)
	}
	if c.ID != id || c.Name != newName {
		t.Errorf("Inspect(%s) = ID %s name %s, want ID %s", newName, c.ID, c.Name, id)
	}
	if _, err := e.Inspect(ctx, oldName); !errors.Is(err, ErrNotFound) {
		t.Errorf("Inspect(%s) after rename: error %v, want ErrNotFound", oldName, err)
	}
	if err := e.Rename(ctx, oldName, newName+"-x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Rename of a missing container: error %v, want ErrNotFound", err)
	}
}

func TestListByLabel(t *testing.T) {
	e := newTestEngine(t)
	ref := buildAppImage(t, e)
	ctx := context.Background()
	group := randomSuffix(t)

	names := map[string]string{}
	for _, role := range []string{"web", "worker"} {
		name := testName(t)
		names[role] = name
		_, err := runTest(t, e, RunOptions{
			Name:   name,
			Image:  ref,
			Env:    []string{"QUAI_TEST_CMD=exit 3"},
			Labels: map[string]string{"quai-test.group": group, "quai-test.role": role},
		})
		if err != nil {
			t.Fatalf("Run %s: %v", role, err)
		}
		waitExited(t, e, name)
	}

	tests := []struct {
		labels map[string]string
		want   []string
	}{
		{map[string]string{"quai-test.group": group}, []string{names["web"], names["worker"]}},
		{map[string]string{"quai-test.group": group, "quai-test.role": "web"}, []string{names["web"]}},
		{map[string]string{"quai-test.group": group, "quai-test.role": "db"}, nil},
	}
	for _, tt := range tests {
		got, err := e.List(ctx, tt.labels)
		if err != nil {
			t.Fatalf("List(%v): %v", tt.labels, err)
		}
		var gotNames []string
		for _, c := range got {
			gotNames = append(gotNames, c.Name)
			if c.Running || c.ExitCode != 3 {
				t.Errorf("List: %s running=%v exit code %d, want exited with 3", c.Name, c.Running, c.ExitCode)
			}
			if c.Labels["quai-test.group"] != group {
				t.Errorf("List: %s labels %v lack group %s", c.Name, c.Labels, group)
			}
		}
		slices.Sort(gotNames)
		slices.Sort(tt.want)
		if !slices.Equal(gotNames, tt.want) {
			t.Errorf("List(%v) = %v, want %v", tt.labels, gotNames, tt.want)
		}
	}
}

func TestLogs(t *testing.T) {
	e := newTestEngine(t)
	ref := buildAppImage(t, e)
	name := testName(t)
	_, err := runTest(t, e, RunOptions{
		Name:  name,
		Image: ref,
		Env:   []string{"QUAI_TEST_CMD=for i in 1 2 3 4 5; do echo out$i; done; echo err1 >&2; exit 1"},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if c := waitExited(t, e, name); c.ExitCode != 1 {
		t.Errorf("exit code %d, want 1", c.ExitCode)
	}

	all, err := e.Logs(context.Background(), name, 0)
	if err != nil {
		t.Fatalf("Logs(0): %v", err)
	}
	allLines := strings.Split(strings.TrimSuffix(all, "\n"), "\n")
	// Docker copies stdout and stderr separately, so only the set of lines
	// is certain, not their order across the two streams.
	sorted := slices.Sorted(slices.Values(allLines))
	want := []string{"err1", "out1", "out2", "out3", "out4", "out5"}
	if !slices.Equal(sorted, want) {
		t.Fatalf("Logs(0) = %q, want lines %v", all, want)
	}

	tail, err := e.Logs(context.Background(), name, 2)
	if err != nil {
		t.Fatalf("Logs(2): %v", err)
	}
	if wantTail := strings.Join(allLines[4:], "\n") + "\n"; tail != wantTail {
		t.Errorf("Logs(2) = %q, want the last two lines %q", tail, wantTail)
	}

	if _, err := e.Logs(context.Background(), name+"-missing", 10); !errors.Is(err, ErrNotFound) {
		t.Errorf("Logs of a missing container: error %v, want ErrNotFound", err)
	}
}
