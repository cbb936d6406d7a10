package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/quai-ci/quai/pipeline"
)

// stepStopTimeout is how long a canceled step gets between SIGTERM and
// SIGKILL. A shell running as PID 1 ignores SIGTERM, so most steps are
// killed when it passes.
const stepStopTimeout = 2 * time.Second

// StepOptions describes one step container.
type StepOptions struct {
	// Name is the container name. Empty lets Docker choose one.
	Name string
	// Image is the image reference or ID to run. It must exist locally,
	// because RunStep does not pull, and it must contain /bin/sh.
	Image string
	// Commands run in order by "/bin/sh -e": the first one that exits
	// non-zero ends the step with its exit code. Each is echoed as
	// "+ command" before it runs. At least one is required.
	Commands []string
	// Env holds "KEY=value" entries.
	Env []string
	// Workdir is the host folder bind-mounted read-write at
	// pipeline.Workspace, which is also the commands' working folder.
	// Empty: nothing is mounted and the image's working folder is used.
	Workdir string
	// Labels are set on the container, for List.
	Labels map[string]string
	// Network is "bridge" (the default when empty), "host" or "none".
	Network string
}

// RunStep runs opts.Commands in a new container and returns their exit
// code. It writes the container's stdout and stderr to out, which may be
// nil, byte for byte as the daemon delivers them and without Docker's
// stream headers, so carriage returns, ANSI escapes and long lines arrive
// unchanged. A non-zero exit code is not an error.
//
// The container is always removed before RunStep returns, even when ctx is
// canceled. When ctx ends while the step runs, the container gets SIGTERM,
// SIGKILL 2s later, and RunStep returns -1 and an error wrapping ctx.Err().
// An error in creating, starting or waiting for the container returns -1.
// Safe for concurrent use with different container names.
func (e *Engine) RunStep(ctx context.Context, opts StepOptions, out io.Writer) (exitCode int, err error) {
	config, hostConfig, err := stepConfig(opts)
	if err != nil {
		return -1, err
	}
	if out == nil {
		out = io.Discard
	}

	created, err := e.cli.ContainerCreate(ctx, config, hostConfig, nil, nil, opts.Name)
	if err != nil {
		return -1, fmt.Errorf("creating step container %q from image %q: %w", opts.Name, opts.Image, err)
	}
	id := created.ID
	defer func() {
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if rmErr := e.Remove(cleanupCtx, id); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
	}()

	// Attaching before the start is what guarantees that no early output is
	// lost: the daemon only streams what is written while attached.
	stream, err := e.cli.ContainerAttach(ctx, id, container.AttachOptions{
		Stream: true, Stdout: true, Stderr: true,
	})
	if err != nil {
		return -1, fmt.Errorf("attaching to step container %q: %w", opts.Name, err)
	}
	defer stream.Close()
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(out, out, stream.Reader)
		copied <- err
	}()

	if err := e.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		stream.Close()
		<-copied
		return -1, fmt.Errorf("starting step container %q: %w", opts.Name, err)
	}
	return e.waitStep(ctx, id, opts.Name, stream.Close, copied)
}

// waitStep waits until the step's output stream ends and the container
// exits, and returns its exit code. When ctx ends first it stops the
// container. closeStream unblocks the output copy, whose result arrives on
// copied.
func (e *Engine) waitStep(ctx context.Context, id, name string, closeStream func(), copied <-chan error) (int, error) {
	// The attach stream ends when the container's stdout and stderr close,
	// which is when its main process exits.
	select {
	case err := <-copied:
		if err != nil && ctx.Err() == nil {
			return -1, e.stopStep(ctx, id, name, fmt.Errorf("reading output of step container %q: %w", name, err))
		}
	case <-ctx.Done():
		err := e.stopStep(ctx, id, name, nil)
		closeStream()
		<-copied
		return -1, err
	}

	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	results, errs := e.cli.ContainerWait(waitCtx, id, container.WaitConditionNotRunning)
	select {
	case res := <-results:
		if res.Error != nil && res.Error.Message != "" {
			return -1, fmt.Errorf("waiting for step container %q: %s", name, res.Error.Message)
		}
		return int(res.StatusCode), nil
	case err := <-errs:
		if ctx.Err() != nil {
			return -1, e.stopStep(ctx, id, name, nil)
		}
		return -1, fmt.Errorf("waiting for step container %q: %w", name, err)
	case <-ctx.Done():
		err := e.stopStep(ctx, id, name, nil)
		// The client's wait goroutine sends exactly one value, on an
		// unbuffered channel for a result, so one is received to let it end.
		cancel()
		select {
		case <-results:
		case <-errs:
		}
		return -1, err
	}
}

// stopStep stops a step container on a context that outlives ctx and
// returns cause, or ctx's error wrapped when cause is nil. The caller
// removes the container.
func (e *Engine) stopStep(ctx context.Context, id, name string, cause error) error {
	if cause == nil {
		cause = fmt.Errorf("running step container %q: %w", name, ctx.Err())
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := e.Stop(stopCtx, id, stepStopTimeout); err != nil && !errors.Is(err, ErrNotFound) {
		return errors.Join(cause, err)
	}
	return cause
}

// stepConfig validates opts and turns them into Docker's create
// configuration.
func stepConfig(opts StepOptions) (*container.Config, *container.HostConfig, error) {
	if opts.Image == "" {
		return nil, nil, fmt.Errorf("running step container %q: empty image reference", opts.Name)
	}
	if len(opts.Commands) == 0 {
		return nil, nil, fmt.Errorf("running step container %q: no commands given", opts.Name)
	}
	config := &container.Config{
		Image:        opts.Image,
		Cmd:          []string{"/bin/sh", "-e", "-c", stepScript(opts.Commands)},
		Env:          opts.Env,
		Labels:       opts.Labels,
		AttachStdout: true,
		AttachStderr: true,
	}
	// The output reaches the run log through the attach stream, and the
	// container is removed at the end, so a log file would only cost disk.
	hostConfig := &container.HostConfig{LogConfig: container.LogConfig{Type: "none"}}

	switch opts.Network {
	case "", "bridge":
		hostConfig.NetworkMode = "bridge"
	case "host", "none":
		hostConfig.NetworkMode = container.NetworkMode(opts.Network)
	default:
		return nil, nil, fmt.Errorf("running step container %q: unsupported network %q: use \"bridge\", \"host\" or \"none\"",
			opts.Name, opts.Network)
	}

	if opts.Workdir != "" {
		if !filepath.IsAbs(opts.Workdir) {
			return nil, nil, fmt.Errorf("running step container %q: workspace folder %q is not an absolute path",
				opts.Name, opts.Workdir)
		}
		hostConfig.Mounts = []mount.Mount{{
			Type:   mount.TypeBind,
			Source: opts.Workdir,
			Target: pipeline.Workspace,
		}}
		config.WorkingDir = pipeline.Workspace
	}
	return config, hostConfig, nil
}

// stepScript joins commands into one shell script that echoes each command
// as "+ command" before running it, as CI tools and "sh -x" do. Each
// command is quoted for the echo, so it is printed exactly as written and
// never expanded.
func stepScript(commands []string) string {
	var b strings.Builder
	for _, c := range commands {
		fmt.Fprintf(&b, "printf '+ %%s\\n' %s\n%s\n", shellQuote(c), c)
	}
	return b.String()
}

// shellQuote returns s as one single-quoted POSIX shell word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
