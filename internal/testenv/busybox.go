package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
)

// busyboxRef is the tag of the test base image. Only tests create it.
const busyboxRef = "quai-test/busybox:latest"

// busyboxBinary is the statically linked busybox from Debian's busybox-static
// package. A dynamically linked one would not run in a FROM scratch image.
const busyboxBinary = "/bin/busybox"

const busyboxDockerfile = `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
`

var busybox struct {
	once      sync.Once
	component string // the missing component when err is not nil
	err       error
}

// BusyboxImage returns the reference of a local image that contains only a
// static busybox with its applets installed in /bin. The image is built once
// per test process from /bin/busybox with Docker's classic builder. When
// Docker or /bin/busybox is missing, BusyboxImage calls Skip, so the test is
// skipped, or fails under QUAI_REQUIRE_INTEGRATION=1. Safe for concurrent use.
func BusyboxImage(t testing.TB) string {
	t.Helper()
	busybox.once.Do(func() {
		busybox.component, busybox.err = buildBusybox()
	})
	if busybox.err != nil {
		Skip(t, busybox.component, busybox.err.Error())
	}
	return busyboxRef
}

// buildBusybox builds busyboxRef and, on failure, returns the component that
// caused it.
func buildBusybox() (component string, err error) {
	binary, err := os.ReadFile(busyboxBinary)
	if err != nil {
		return "busybox", fmt.Errorf("reading %s (install Debian's busybox-static): %w",
			busyboxBinary, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return "docker", fmt.Errorf("creating Docker client: %w", err)
	}
	defer cli.Close()

	pingCtx, pingCancel := context.WithTimeout(ctx, 5*time.Second)
	defer pingCancel()
	if _, err := cli.Ping(pingCtx); err != nil {
		return "docker", fmt.Errorf("pinging Docker daemon at %s: %w", cli.DaemonHost(), err)
	}

	buildContext, err := busyboxContext(binary)
	if err != nil {
		return "busybox", err
	}
	resp, err := cli.ImageBuild(ctx, buildContext, build.ImageBuildOptions{
		Tags:        []string{busyboxRef},
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
	})
	if err != nil {
		return "docker", fmt.Errorf("building %s: %w", busyboxRef, err)
	}
	defer resp.Body.Close()
	if err := readBuildErrors(resp.Body); err != nil {
		return "docker", fmt.Errorf("building %s: %w", busyboxRef, err)
	}
	return "", nil
}

// busyboxContext returns the build context as an in-memory tar. It is about
// 2 MB, so streaming it would gain nothing.
func busyboxContext(binary []byte) (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte(busyboxDockerfile)},
		{"busybox", 0o755, binary},
	}
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("writing %s to build context: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("writing %s to build context: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("closing build context: %w", err)
	}
	return &buf, nil
}

// readBuildErrors drains a build response and returns the first error
// message in it.
func readBuildErrors(body io.Reader) error {
	dec := json.NewDecoder(body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		err := dec.Decode(&msg)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("decoding build output: %w", err)
		}
		if msg.Error != "" {
			return errors.New(msg.Error)
		}
	}
}
