package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
)

// Defaults for the json-file log driver, which keeps logs unbounded without
// a max-size.
const (
	defaultLogMaxSize  = "10m"
	defaultLogMaxFiles = 3
)

// cleanupTimeout bounds the removal of a container that failed to start. It
// runs even when the caller's context is cancelled.
const cleanupTimeout = 30 * time.Second

// ErrAddressInUse is returned, wrapped, by Run when the host address to
// publish on is taken by another process or container.
var ErrAddressInUse = errors.New("address already in use")

// RunOptions describes one container to create and start.
type RunOptions struct {
	// Name is the container name. Empty lets Docker choose one.
	Name string
	// Image is the image reference or ID to run. It must exist locally,
	// because Run does not pull.
	Image string
	// Env holds "KEY=value" entries.
	Env []string
	// Labels are set on the container, for List.
	Labels map[string]string
	// Port is the TCP port the container listens on, required with Publish.
	Port int
	// Publish is the host address, such as "127.0.0.1:18567", on which Port
	// is published. It must be empty with the host network.
	Publish string
	// Network is "bridge" (the default when empty) or "host".
	Network string
	// Restart is a Docker restart policy: "no" (the default when empty),
	// "always", "unless-stopped" or "on-failure".
	Restart string
	// LogMaxSize is the size at which the json-file log rotates, in Docker's
	// notation such as "10m". Empty means "10m".
	LogMaxSize string
	// LogMaxFiles is the number of json-file log files kept. Zero means 3.
	LogMaxFiles int
	// StopTimeout is how long the daemon waits after the stop signal before
	// it kills the container, rounded up to whole seconds. Zero leaves the
	// daemon's default of 10s.
	StopTimeout time.Duration
}

// Container is the state of one container.
type Container struct {
	ID   string
	Name string // without Docker's leading "/"
	// Image is the image reference the container was created from.
	Image    string
	Labels   map[string]string
	Running  bool
	ExitCode int
	// RestartCount is how often Docker restarted the container under its
	// restart policy: a container that keeps crashing looks running most
	// of the time, but its count rises.
	RestartCount int
	StartedAt    time.Time // zero when the container never started
	// Health is "starting", "healthy" or "unhealthy", or empty when the
	// image defines no health check.
	Health string
}

// Run creates and starts a container and returns its ID. The json-file log
// driver is bounded by LogMaxSize and LogMaxFiles. When the start fails, the
// created container is removed. When Docker reports the published address
// taken, the error wraps ErrAddressInUse and names the address.
func (e *Engine) Run(ctx context.Context, opts RunOptions) (string, error) {
	config, hostConfig, err := containerConfig(opts)
	if err != nil {
		return "", err
	}

	created, err := e.cli.ContainerCreate(ctx, config, hostConfig, nil, nil, opts.Name)
	if err != nil {
		return "", fmt.Errorf("creating container %q from image %q: %w", opts.Name, opts.Image, err)
	}

	if err := e.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		startErr := startError(opts.Name, err)
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if rmErr := e.Remove(cleanupCtx, created.ID); rmErr != nil {
			return "", errors.Join(startErr, rmErr)
		}
		return "", startErr
	}
	return created.ID, nil
}

// Start starts a stopped container. Starting a running container is not an
// error. A missing container returns an error wrapping ErrNotFound.
func (e *Engine) Start(ctx context.Context, nameOrID string) error {
	if nameOrID == "" {
		return errors.New("starting container: empty container name")
	}
	if err := e.cli.ContainerStart(ctx, nameOrID, container.StartOptions{}); err != nil {
		return fmt.Errorf("starting container %q: %w", nameOrID, notFound(err))
	}
	return nil
}

// Stop sends the container's stop signal (SIGTERM unless the image sets
// STOPSIGNAL), waits up to timeout, rounded up to whole seconds, then sends
// SIGKILL. A negative timeout uses the container's StopTimeout, or the
// daemon's default of 10s. The call blocks until the container has exited,
// so ctx must allow for timeout. Stopping a stopped container is not an
// error. A missing container returns an error wrapping ErrNotFound.
func (e *Engine) Stop(ctx context.Context, nameOrID string, timeout time.Duration) error {
	if nameOrID == "" {
		return errors.New("stopping container: empty container name")
	}
	var opts container.StopOptions
	if timeout >= 0 {
		seconds := ceilSeconds(timeout)
		opts.Timeout = &seconds
	}
	if err := e.cli.ContainerStop(ctx, nameOrID, opts); err != nil {
		return fmt.Errorf("stopping container %q: %w", nameOrID, notFound(err))
	}
	return nil
}

// Remove force-removes a container, killing it if it runs, together with
// its anonymous volumes. Removing a missing container, or one whose removal
// is already in progress, is not an error.
func (e *Engine) Remove(ctx context.Context, nameOrID string) error {
	if nameOrID == "" {
		return errors.New("removing container: empty container name")
	}
	err := e.cli.ContainerRemove(ctx, nameOrID, container.RemoveOptions{
		Force:         true,
		RemoveVolumes: true,
	})
	switch {
	case err == nil, cerrdefs.IsNotFound(err):
		return nil
	case cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress"):
		return nil
	}
	return fmt.Errorf("removing container %q: %w", nameOrID, err)
}

// Rename renames a container. A missing container returns an error wrapping
// ErrNotFound. A newName that another container has is an error from Docker.
func (e *Engine) Rename(ctx context.Context, nameOrID, newName string) error {
	if nameOrID == "" || newName == "" {
		return fmt.Errorf("renaming container %q to %q: empty container name", nameOrID, newName)
	}
	if err := e.cli.ContainerRename(ctx, nameOrID, newName); err != nil {
		return fmt.Errorf("renaming container %q to %q: %w", nameOrID, newName, notFound(err))
	}
	return nil
}

// Inspect returns the state of a container. A missing container returns an
// error wrapping ErrNotFound.
func (e *Engine) Inspect(ctx context.Context, nameOrID string) (Container, error) {
	if nameOrID == "" {
		return Container{}, errors.New("inspecting container: empty container name")
	}
	resp, err := e.cli.ContainerInspect(ctx, nameOrID)
	if err != nil {
		return Container{}, fmt.Errorf("inspecting container %q: %w", nameOrID, notFound(err))
	}
	return toContainer(resp), nil
}

// List returns every container, running or not, that carries all the given
// labels with the given values, in no particular order. Containers removed
// while List runs are left out.
func (e *Engine) List(ctx context.Context, labels map[string]string) ([]Container, error) {
	args := filters.NewArgs()
	for k, v := range labels {
		args.Add("label", k+"="+v)
	}
	summaries, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, fmt.Errorf("listing containers with labels %v: %w", labels, err)
	}

	// The list summary has no exit code, start time or health, so each
	// container is inspected.
	containers := make([]Container, 0, len(summaries))
	for _, s := range summaries {
		c, err := e.Inspect(ctx, s.ID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		containers = append(containers, c)
	}
	return containers, nil
}

// Logs returns the last n lines of a container's stdout and stderr,
// interleaved as Docker stored them. n <= 0 returns all lines. A missing
// container returns an error wrapping ErrNotFound.
func (e *Engine) Logs(ctx context.Context, nameOrID string, n int) (string, error) {
	if nameOrID == "" {
		return "", errors.New("reading container logs: empty container name")
	}
	info, err := e.cli.ContainerInspect(ctx, nameOrID)
	if err != nil {
		return "", fmt.Errorf("reading logs of container %q: %w", nameOrID, notFound(err))
	}

	tail := "all"
	if n > 0 {
		tail = strconv.Itoa(n)
	}
	rc, err := e.cli.ContainerLogs(ctx, nameOrID, container.LogsOptions{
		ShowStdout: true,
		ShowStderr: true,
		Tail:       tail,
	})
	if err != nil {
		return "", fmt.Errorf("reading logs of container %q: %w", nameOrID, notFound(err))
	}
	defer rc.Close()

	var buf strings.Builder
	// Without a TTY, Docker multiplexes both streams into frames with
	// 8-byte headers. With one, the output is a single raw stream.
	if info.Config != nil && info.Config.Tty {
		_, err = io.Copy(&buf, rc)
	} else {
		_, err = stdcopy.StdCopy(&buf, &buf, rc)
	}
	if err != nil {
		return "", fmt.Errorf("reading logs of container %q: %w", nameOrID, err)
	}
	return buf.String(), nil
}

// containerConfig validates opts and turns them into Docker's create
// configuration.
func containerConfig(opts RunOptions) (*container.Config, *container.HostConfig, error) {
	if opts.Image == "" {
		return nil, nil, fmt.Errorf("running container %q: empty image reference", opts.Name)
	}
	config := &container.Config{
		Image:  opts.Image,
		Env:    opts.Env,
		Labels: opts.Labels,
	}
	hostConfig := &container.HostConfig{}

	if err := setNetwork(config, hostConfig, opts); err != nil {
		return nil, nil, fmt.Errorf("running container %q: %w", opts.Name, err)
	}

	policy := container.RestartPolicy{Name: container.RestartPolicyMode(opts.Restart)}
	if err := container.ValidateRestartPolicy(policy); err != nil {
		return nil, nil, fmt.Errorf("running container %q: %w", opts.Name, err)
	}
	hostConfig.RestartPolicy = policy

	logConfig, err := jsonFileLogConfig(opts.LogMaxSize, opts.LogMaxFiles)
	if err != nil {
		return nil, nil, fmt.Errorf("running container %q: %w", opts.Name, err)
	}
	hostConfig.LogConfig = logConfig

	if opts.StopTimeout < 0 {
		return nil, nil, fmt.Errorf("running container %q: negative stop timeout %s",
			opts.Name, opts.StopTimeout)
	}
	if opts.StopTimeout > 0 {
		seconds := ceilSeconds(opts.StopTimeout)
		config.StopTimeout = &seconds
	}
	return config, hostConfig, nil
}

// setNetwork applies the network mode, the exposed port and the port
// binding of opts.
func setNetwork(config *container.Config, hostConfig *container.HostConfig, opts RunOptions) error {
	if opts.Port < 0 || opts.Port > 65535 {
		return fmt.Errorf("invalid container port %d: want 1-65535", opts.Port)
	}

	switch opts.Network {
	case "host":
		if opts.Publish != "" {
			return fmt.Errorf("publish address %q given with the host network, "+
				"where the container listens on the host directly: leave it empty", opts.Publish)
		}
		hostConfig.NetworkMode = "host"
		return nil
	case "", "bridge":
		hostConfig.NetworkMode = "bridge"
	default:
		return fmt.Errorf("unsupported network %q: use \"bridge\" or \"host\"", opts.Network)
	}

	if opts.Port == 0 {
		if opts.Publish != "" {
			return fmt.Errorf("publish address %q given without a container port", opts.Publish)
		}
		return nil
	}
	port := nat.Port(strconv.Itoa(opts.Port) + "/tcp")
	config.ExposedPorts = nat.PortSet{port: struct{}{}}
	if opts.Publish == "" {
		return nil
	}

	host, hostPort, err := net.SplitHostPort(opts.Publish)
	if err != nil {
		return fmt.Errorf("invalid publish address %q: want IP:port such as 127.0.0.1:18567: %w",
			opts.Publish, err)
	}
	if net.ParseIP(host) == nil {
		return fmt.Errorf("invalid publish address %q: %q is not an IP address", opts.Publish, host)
	}
	if n, err := strconv.Atoi(hostPort); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("invalid publish address %q: port must be 1-65535", opts.Publish)
	}
	hostConfig.PortBindings = nat.PortMap{port: {{HostIP: host, HostPort: hostPort}}}
	return nil
}

func jsonFileLogConfig(maxSize string, maxFiles int) (container.LogConfig, error) {
	if maxSize == "" {
		maxSize = defaultLogMaxSize
	}
	if maxFiles == 0 {
		maxFiles = defaultLogMaxFiles
	}
	if maxFiles < 0 {
		return container.LogConfig{}, fmt.Errorf("invalid log file count %d: want 1 or more", maxFiles)
	}
	return container.LogConfig{
		Type: "json-file",
		Config: map[string]string{
			"max-size": maxSize,
			"max-file": strconv.Itoa(maxFiles),
		},
	}, nil
}

// busyAddressPatterns match the two messages Docker 20.10 gives for a
// published address that is taken: the userland proxy failing to listen
// (another process holds it), and the port allocator refusing it (another
// container holds it).
var busyAddressPatterns = []*regexp.Regexp{
	regexp.MustCompile(`listen tcp[46]? (\S+): bind: address already in use`),
	regexp.MustCompile(`Bind for (\S+) failed: port is already allocated`),
}

// startError wraps a container start failure, naming the busy address when
// Docker reported one.
func startError(name string, err error) error {
	for _, re := range busyAddressPatterns {
		if m := re.FindStringSubmatch(err.Error()); m != nil {
			return fmt.Errorf("starting container %q: publish address %s: %w (stop the process "+
				"or container listening there, or publish on another port): %w",
				name, m[1], ErrAddressInUse, err)
		}
	}
	return fmt.Errorf("starting container %q: %w", name, err)
}

func toContainer(resp container.InspectResponse) Container {
	var c Container
	if resp.ContainerJSONBase != nil {
		c.ID = resp.ID
		c.Name = strings.TrimPrefix(resp.Name, "/")
		c.RestartCount = resp.RestartCount
		if s := resp.State; s != nil {
			c.Running = s.Running
			c.ExitCode = s.ExitCode
			if t, err := time.Parse(time.RFC3339Nano, s.StartedAt); err == nil && t.Year() > 1 {
				c.StartedAt = t
			}
			if s.Health != nil {
				c.Health = string(s.Health.Status)
			}
		}
	}
	if resp.Config != nil {
		c.Image = resp.Config.Image
		c.Labels = resp.Config.Labels
	}
	return c
}

// ceilSeconds rounds d up to whole seconds, the unit of Docker's timeouts.
func ceilSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// ContainerState returns a short description of a container's state for
// people: "healthy" or "unhealthy" when the image defines a health check,
// else "running", "restarting" or "exited (code N)", and "missing" when
// the container is gone.
func (e *Engine) ContainerState(ctx context.Context, id string) (string, error) {
	c, err := e.Inspect(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return "missing", nil
	case err != nil:
		return "", err
	case c.Running && c.Health != "":
		return c.Health, nil
	case c.Running && c.RestartCount > 0:
		return fmt.Sprintf("running (restarted %d times)", c.RestartCount), nil
	case c.Running:
		return "running", nil
	default:
		return fmt.Sprintf("exited (code %d)", c.ExitCode), nil
	}
}
