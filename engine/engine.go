// Package engine builds images and runs containers on one Docker daemon. It
// carries out what the runner decides and makes no decisions of its own.
package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
)

// pingTimeout bounds the daemon check in New, so a daemon that accepts
// connections but does not respond fails startup instead of hanging it.
const pingTimeout = 5 * time.Second

// ErrNotFound is returned, wrapped, when the named container does not exist.
var ErrNotFound = errors.New("container not found")

// Engine runs builds and containers on one Docker daemon. Safe for
// concurrent use.
type Engine struct {
	cli *client.Client
}

// New connects to the daemon named by DOCKER_HOST (default
// unix:///var/run/docker.sock) and pings it with a 5s timeout. The API
// version is negotiated, so a daemon as old as API 1.41 (Docker 20.10) works.
// When no daemon responds, the error names the address and suggests starting
// dockerd or setting DOCKER_HOST.
func New(ctx context.Context) (*Engine, error) {
	e, err := Dial("")
	if err != nil {
		return nil, err
	}
	if err := e.Ping(ctx); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Dial creates a client for the daemon at host, or the one named by
// DOCKER_HOST when host is empty, without contacting it, for a caller that
// must start while Docker is down. Calls fail with the daemon's connection
// error until it answers.
func Dial(host string) (*Engine, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating Docker client from DOCKER_HOST and DOCKER_* settings: %w", err)
	}
	return &Engine{cli: cli}, nil
}

// Ping checks within 5s that the daemon answers. The error names the
// daemon's address and suggests starting dockerd or setting DOCKER_HOST.
func (e *Engine) Ping(ctx context.Context) error {
	pingCtx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if _, err := e.cli.Ping(pingCtx); err != nil {
		return fmt.Errorf("connecting to Docker daemon at %s: %w; start dockerd or set "+
			"DOCKER_HOST to the daemon's address", e.cli.DaemonHost(), err)
	}
	return nil
}

// Close releases the connection to the daemon. Calls after the first one
// return nil.
func (e *Engine) Close() error {
	return e.cli.Close()
}

// notFound wraps a Docker "not found" error so that errors.Is(err,
// ErrNotFound) holds, and returns other errors unchanged.
func notFound(err error) error {
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
