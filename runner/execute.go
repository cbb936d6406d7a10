package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/quai-ci/quai/engine"
	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
)

// Labels quai sets on the images and containers it creates.
const (
	LabelPipeline = "quai.pipeline"
	LabelRepo     = "quai.repo"
	LabelCommit   = "quai.commit"
	LabelRun      = "quai.run"
	LabelApp      = "quai.app"
	LabelSlot     = "quai.slot"
	// LabelStep is the step name on a step container.
	LabelStep = "quai.step"
)

// cleanupTimeout bounds work that must finish after a run's context is
// canceled, such as restarting the previous container.
const cleanupTimeout = 2 * time.Minute

// defaultRunTimeout bounds a run whose pipeline sets no timeout.
const defaultRunTimeout = time.Hour

// runTimeoutError is the cause of a run's context when the run timeout
// ends it.
type runTimeoutError struct {
	timeout time.Duration
}

func (e *runTimeoutError) Error() string {
	return fmt.Sprintf("run timed out after %s", e.timeout)
}

// execute runs one job to a final status.
func (r *Runner) execute(ctx context.Context, j job) {
	log := r.log.With("run_id", j.run.ID, "pipeline", j.run.Pipeline, "commit", j.run.Commit)
	out := newLogWriter(r.cfg.Store, j.run.ID, log)
	defer out.Close()

	_, err := r.cfg.Store.UpdateRun(j.run.ID, func(run *store.Run) error {
		run.Status = store.StatusRunning
		run.StartedAt = time.Now()
		initSteps(run, j.plan)
		return nil
	})
	if err != nil {
		log.Error("starting run failed", "error", err)
		return
	}
	log.Info("run started", "ref", j.run.Ref)
	started := time.Now()

	timeout := j.plan.Timeout
	if timeout <= 0 {
		timeout = defaultRunTimeout
	}
	runCtx, cancel := context.WithTimeoutCause(ctx, timeout, &runTimeoutError{timeout: timeout})
	defer cancel()

	err = r.steps(runCtx, j, out, log)
	status, reason := store.StatusSuccess, ""
	var skip *skipError
	switch {
	case err == nil:
		out.Printf("run succeeded in %s", time.Since(started).Round(time.Millisecond))
	case errors.As(err, &skip):
		status, reason, err = store.StatusSkipped, skip.reason, nil
		out.Printf("run skipped: %s", skip.reason)
	case ctx.Err() != nil:
		status, reason = store.StatusCanceled, cancelReason(ctx)
		out.Printf("run canceled: %v", err)
	default:
		if cause := context.Cause(runCtx); runCtx.Err() != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w: %w", cause, err)
		}
		status, reason = store.StatusFailure, err.Error()
		out.Printf("run failed: %v", err)
	}
	out.Close()
	r.settleSteps(j.run.ID, status)
	r.finish(j.run.ID, status, reason)
	if err != nil {
		log.Warn("run finished", "status", status, "duration", time.Since(started), "error", err)
		return
	}
	log.Info("run finished", "status", status, "duration", time.Since(started))
}

// steps checks out the commit, then runs the pipeline's steps, build and
// deploy. A redeploy or rollback deploys the image of an earlier deployment
// instead.
func (r *Runner) steps(ctx context.Context, j job, out *logWriter, log *slog.Logger) error {
	if j.run.Deployment != 0 {
		return r.deployAgain(ctx, j, out, log)
	}
	if !validCommit(j.run.Commit) {
		return fmt.Errorf("invalid commit %q: want a full 40-character SHA", j.run.Commit)
	}
	dir := filepath.Join(r.cfg.Workspaces, "run-"+strconv.FormatUint(j.run.ID, 10))
	if err := os.MkdirAll(r.cfg.Workspaces, 0o700); err != nil {
		return fmt.Errorf("creating workspace folder %s: %w", r.cfg.Workspaces, err)
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			log.Error("removing workspace failed", "dir", dir, "error", err)
		}
	}()

	out.Printf("checking out %s at %s", redactURL(j.run.CloneURL), j.run.Commit)
	if err := r.cfg.Checkout(ctx, j.run.CloneURL, j.run.Commit, dir, r.cfg.GitHubToken, out); err != nil {
		return fmt.Errorf("checking out: %w", err)
	}
	if err := r.filterPaths(ctx, j, dir, out); err != nil {
		return err
	}
	return r.runPlan(ctx, j, dir, out, log)
}

// deployImage waits until no other run of the pipeline deploys, then puts
// image in service. From then on the run can no longer be canceled.
func (r *Runner) deployImage(ctx context.Context, j job, image string, out *logWriter, log *slog.Logger) error {
	release, err := r.enterDeploy(ctx, j.run.ID, j.run.Pipeline)
	if err != nil {
		return err
	}
	defer release()
	dctx, done := deployContext(ctx, log)
	defer done()
	return r.deploy(dctx, j, image, out, log)
}

// settleSteps records the steps that a finished run left queued or
// running: skipped, or canceled when the run was.
func (r *Runner) settleSteps(id uint64, status store.Status) {
	reason := "the run ended before this step"
	if status == store.StatusCanceled {
		reason = "the run was canceled"
	}
	_, err := r.cfg.Store.UpdateRun(id, func(run *store.Run) error {
		settleSteps(run, reason)
		return nil
	})
	if err != nil {
		r.log.Error("recording unfinished steps failed", "run_id", id, "error", err)
	}
}

// deployContext keeps a deploy going when quai shuts down: stopping half
// way could leave the app without a container. Every wait of a deploy is
// bounded by the pipeline's timeouts, so shutdown waits for at most those.
// Call done when the deploy ends.
func deployContext(ctx context.Context, log *slog.Logger) (dctx context.Context, done func()) {
	stop := context.AfterFunc(ctx, func() {
		log.Warn("quai is stopping; waiting for the deploy under way to finish")
	})
	return context.WithoutCancel(ctx), func() { stop() }
}

// deployAgain puts the image of an earlier deployment back in service,
// with freshly minted credentials.
func (r *Runner) deployAgain(ctx context.Context, j job, out *logWriter, log *slog.Logger) error {
	if j.plan.Deploy == nil {
		return fmt.Errorf("pipeline %q has no deploy block", j.plan.Name)
	}
	ok, err := r.cfg.Engine.ImageExists(ctx, j.run.Image)
	if err != nil {
		return fmt.Errorf("checking image %s: %w", j.run.Image, err)
	}
	if !ok {
		return fmt.Errorf("image %s of deployment %d is no longer on this Docker host: %w", j.run.Image, j.run.Deployment, ErrImageGone)
	}
	out.Printf("%s of deployment %d: deploying image %s (commit %s) again", j.run.Trigger, j.run.Deployment, j.run.Image, j.run.Commit)
	return r.deployImage(ctx, j, j.run.Image, out, log)
}

// build builds the run's image and records its reference on the run.
func (r *Runner) build(ctx context.Context, j job, dir string, out *logWriter) (string, error) {
	b := j.plan.Build
	image := b.Image + ":" + imageTag(j.run.Commit)
	contextDir, err := within(dir, b.Context)
	if err != nil {
		return "", fmt.Errorf("building %s: %w", image, err)
	}
	dockerfile := filepath.Join(contextDir, b.Dockerfile)
	if data, err := readSmallFile(dockerfile, maxDockerfile); err == nil {
		rel := filepath.ToSlash(filepath.Join(b.Context, b.Dockerfile))
		for _, p := range pipeline.CheckDockerfile(rel, data) {
			out.Printf("%s", p.String())
		}
	}
	args, err := r.buildArgs(ctx, j, out)
	if err != nil {
		return "", fmt.Errorf("building %s: %w", image, err)
	}
	out.Printf("building %s from %s (%s)", image, b.Context, b.Dockerfile)
	_, err = r.cfg.Engine.Build(ctx, engine.BuildOptions{
		ContextDir: contextDir,
		Dockerfile: b.Dockerfile,
		Tags:       []string{image, b.Image + ":" + pipeline.ImageTag(branchOf(j.run.Ref))},
		Args:       args,
		Labels: map[string]string{
			LabelPipeline: j.run.Pipeline,
			LabelRepo:     j.run.Repo,
			LabelCommit:   j.run.Commit,
			LabelRun:      strconv.FormatUint(j.run.ID, 10),
		},
	}, out)
	if err != nil {
		return "", fmt.Errorf("building %s: %w", image, err)
	}
	if _, err := r.cfg.Store.UpdateRun(j.run.ID, func(run *store.Run) error {
		run.Image = image
		return nil
	}); err != nil {
		return "", fmt.Errorf("recording image %s: %w", image, err)
	}
	return image, nil
}

// within resolves rel inside root and rejects paths that leave it, so a
// pipeline cannot send files outside the checkout to the Docker daemon.
func within(root, rel string) (string, error) {
	p := filepath.Join(root, rel)
	r, err := filepath.Rel(root, p)
	if err != nil || r == ".." || (len(r) > 2 && r[:3] == ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("build context %q leaves the repository: use a path inside it", rel)
	}
	return p, nil
}

func validCommit(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// imageTag is the tag that identifies a commit's image.
func imageTag(commit string) string {
	return commit[:12]
}

// branchOf returns the branch or tag name of a full ref.
func branchOf(ref string) string {
	for _, prefix := range []string{"refs/heads/", "refs/tags/"} {
		if len(ref) > len(prefix) && ref[:len(prefix)] == prefix {
			return ref[len(prefix):]
		}
	}
	return ref
}

// errUnhealthy marks a deploy whose new container never became healthy.
var errUnhealthy = errors.New("container never became healthy")

// maxDockerfile bounds the Dockerfile read for syntax warnings: a commit
// could make it a link to /dev/zero.
const maxDockerfile = 1 << 20

// readSmallFile reads a regular file of at most limit bytes. Links are
// followed, but anything that is not a regular file (a device, a FIFO) is
// refused, so a checked-out repository cannot make quai read forever.
func readSmallFile(path string, limit int64) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if info.Size() > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return os.ReadFile(path)
}

// buildArgs returns the build's arguments with its secrets read from
// Vault. A pull request from a fork gets no secrets.
func (r *Runner) buildArgs(ctx context.Context, j job, out *logWriter) (map[string]string, error) {
	b := j.plan.Build
	if len(b.Secrets) == 0 {
		return b.Args, nil
	}
	args := make(map[string]string, len(b.Args)+len(b.Secrets))
	for k, v := range b.Args {
		args[k] = v
	}
	if j.fork {
		out.Printf("the build gets no secrets: the pull request comes from a fork")
		return args, nil
	}
	secrets, err := r.readSecrets(ctx, b.Secrets, out)
	if err != nil {
		return nil, err
	}
	out.Printf("warning: %d secret(s) passed as build arguments stay readable in the image's history", len(secrets))
	for _, kv := range secrets {
		name, value, _ := strings.Cut(kv, "=")
		args[name] = value
	}
	return args, nil
}
