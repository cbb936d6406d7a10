package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/docker/docker/api/types/build"
)

// BuildOptions describes one image build.
type BuildOptions struct {
	// ContextDir is the directory sent to the daemon as the build context.
	ContextDir string
	// Dockerfile is the Dockerfile path relative to ContextDir. Empty means
	// "Dockerfile".
	Dockerfile string
	// Tags are the references given to the built image, such as
	// "quai/web:0123abcd".
	Tags []string
	// Args are the build arguments, available to ARG instructions.
	Args map[string]string
	// Labels are set on the built image.
	Labels map[string]string
}

// errContextNotRead is the error the context writer gets when the build
// ended before the daemon read the whole context.
var errContextNotRead = errors.New("build ended before the daemon read the build context")

// Build builds an image with the daemon's classic builder and returns its ID
// ("sha256:…"). ContextDir is streamed to the daemon as a tar through a pipe,
// never held whole in memory, without the paths that its .dockerignore
// excludes. Build writes the build output to out with one Write call per
// line, and out may be nil. An error message from the daemon, such as a COPY of a missing
// file, fails the build with that message. A Dockerfile path that leaves
// ContextDir is an error naming it. Cancelling ctx stops the build.
func (e *Engine) Build(ctx context.Context, opts BuildOptions, out io.Writer) (string, error) {
	dockerfile, err := dockerfilePath(opts.ContextDir, opts.Dockerfile)
	if err != nil {
		return "", err
	}
	if out == nil {
		out = io.Discard
	}

	pr, pw := io.Pipe()
	packed := make(chan error, 1)
	go func() {
		err := writeContext(pw, opts.ContextDir, dockerfile)
		pw.CloseWithError(err)
		packed <- err
	}()

	imageID, buildErr := e.sendBuild(ctx, pr, opts, dockerfile, out)
	// Unblock the context writer when the build ended before the daemon
	// read the whole stream, then wait for it.
	pr.CloseWithError(errContextNotRead)
	packErr := <-packed

	// A daemon that fails the request closes the stream, and the writer's
	// io.ErrClosedPipe would hide the daemon's own error.
	if packErr != nil && !errors.Is(packErr, errContextNotRead) &&
		!(buildErr != nil && errors.Is(packErr, io.ErrClosedPipe)) {
		return "", fmt.Errorf("sending build context %q: %w", opts.ContextDir, packErr)
	}
	if buildErr != nil {
		return "", fmt.Errorf("building image from %q: %w", opts.ContextDir, buildErr)
	}
	return imageID, nil
}

// ImageExists reports whether the image reference or ID ref exists in the
// daemon's local image store. It never pulls.
func (e *Engine) ImageExists(ctx context.Context, ref string) (bool, error) {
	if ref == "" {
		return false, errors.New("checking image: empty image reference")
	}
	_, err := e.cli.ImageInspect(ctx, ref)
	if err == nil {
		return true, nil
	}
	if errors.Is(notFound(err), ErrNotFound) {
		return false, nil
	}
	return false, fmt.Errorf("inspecting image %q: %w", ref, err)
}

func (e *Engine) sendBuild(ctx context.Context, buildContext io.Reader, opts BuildOptions,
	dockerfile string, out io.Writer) (string, error) {
	args := make(map[string]*string, len(opts.Args))
	for k, v := range opts.Args {
		args[k] = &v
	}
	resp, err := e.cli.ImageBuild(ctx, buildContext, build.ImageBuildOptions{
		Tags:       opts.Tags,
		Dockerfile: dockerfile,
		BuildArgs:  args,
		Labels:     opts.Labels,
		// Intermediate containers are removed even when a step fails, so
		// failed builds leave nothing behind.
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
	})
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()

	imageID, err := readBuildOutput(resp.Body, out)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(imageID, "sha256:") {
		// Only the "Successfully built" line named the image, by its short
		// ID, so ask the daemon for the full one.
		img, err := e.cli.ImageInspect(ctx, imageID)
		if err != nil {
			return "", fmt.Errorf("inspecting built image %q: %w", imageID, err)
		}
		imageID = img.ID
	}
	return imageID, nil
}

// buildMessage is one JSON message of the daemon's build output stream.
type buildMessage struct {
	Stream      string `json:"stream"`
	Status      string `json:"status"`
	Progress    string `json:"progress"`
	ID          string `json:"id"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux *struct {
		ID string `json:"ID"`
	} `json:"aux"`
}

// successPrefix starts the classic builder's last output line. Daemons that
// send no "aux" message name the image only there.
const successPrefix = "Successfully built "

// readBuildOutput copies the text of the build output stream to out line by
// line and returns the built image's ID, or its short ID when the stream
// named the image only in a "Successfully built" line.
func readBuildOutput(body io.Reader, out io.Writer) (string, error) {
	lines := &lineWriter{out: out}
	var imageID, shortID string
	dec := json.NewDecoder(body)
	for {
		var msg buildMessage
		err := dec.Decode(&msg)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("decoding build output: %w", err)
		}

		if msg.ErrorDetail != nil && msg.ErrorDetail.Message != "" {
			msg.Error = msg.ErrorDetail.Message
		}
		if msg.Error != "" {
			// Flushing first keeps the output complete, and the build error
			// is the one to report when out fails too.
			_ = lines.flush()
			return "", errors.New(strings.TrimSpace(msg.Error))
		}
		if msg.Aux != nil && msg.Aux.ID != "" {
			imageID = msg.Aux.ID
		}
		if id, ok := strings.CutPrefix(strings.TrimSpace(msg.Stream), successPrefix); ok {
			shortID = id
		}
		if err := lines.write(messageText(msg)); err != nil {
			return "", err
		}
	}
	if err := lines.flush(); err != nil {
		return "", err
	}

	switch {
	case imageID != "":
		return imageID, nil
	case shortID != "":
		return shortID, nil
	}
	return "", errors.New("build output ended without naming the built image")
}

// messageText returns the human-readable text of msg, with a trailing
// newline for status messages, which carry one line each.
func messageText(msg buildMessage) string {
	if msg.Stream != "" {
		return msg.Stream
	}
	if msg.Status == "" {
		return ""
	}
	parts := make([]string, 0, 3)
	if msg.ID != "" {
		parts = append(parts, msg.ID+":")
	}
	parts = append(parts, msg.Status)
	if msg.Progress != "" {
		parts = append(parts, msg.Progress)
	}
	return strings.Join(parts, " ") + "\n"
}

// lineWriter passes text on to out in whole lines, one Write per line,
// because the daemon splits a step's output into messages at arbitrary
// points.
type lineWriter struct {
	out     io.Writer
	partial []byte
}

func (lw *lineWriter) write(text string) error {
	lw.partial = append(lw.partial, text...)
	for {
		i := bytes.IndexByte(lw.partial, '\n')
		if i < 0 {
			return nil
		}
		if _, err := lw.out.Write(lw.partial[:i+1]); err != nil {
			return fmt.Errorf("writing build output: %w", err)
		}
		lw.partial = lw.partial[i+1:]
	}
}

// flush writes a last line that has no newline, adding one.
func (lw *lineWriter) flush() error {
	if len(lw.partial) == 0 {
		return nil
	}
	line := append(lw.partial, '\n')
	lw.partial = nil
	if _, err := lw.out.Write(line); err != nil {
		return fmt.Errorf("writing build output: %w", err)
	}
	return nil
}
