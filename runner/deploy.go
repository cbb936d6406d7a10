package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/quai-ci/quai/engine"
	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
)

// healthPoll is the pause between two health probes of a new container.
const healthPoll = 200 * time.Millisecond

// failedLogLines is how much of a failed container's output goes into the
// run log.
const failedLogLines = 50

// deploy replaces the app's container on a fixed published address: the
// old container gives the address up (stopped, not removed), the new one
// starts and must answer its health check, and only then is the old one
// removed. When the new one fails, it is removed and the old one started
// again, so the app comes back.
func (r *Runner) deploy(ctx context.Context, j job, image string, out *logWriter, log *slog.Logger) error {
	d := j.plan.Deploy
	app := d.Container
	name := pipeline.ContainerName(app, "r"+strconv.FormatUint(j.run.ID, 10))
	log = log.With("container", name)

	env, err := r.containerEnv(ctx, d, out)
	if err != nil {
		return err
	}
	previous, err := r.serving(ctx, app)
	if err != nil {
		return err
	}

	for _, c := range previous {
		out.Printf("stopping %s so it gives up %s", c.Name, d.Publish)
		if err := r.cfg.Engine.Stop(ctx, c.ID, d.StopTimeout); err != nil {
			r.restore(previous, out, log)
			return fmt.Errorf("stopping previous container %s: %w", c.Name, err)
		}
	}

	out.Printf("starting %s from %s", name, image)
	id, err := r.cfg.Engine.Run(ctx, engine.RunOptions{
		Name:        name,
		Image:       image,
		Env:         env,
		Labels:      containerLabels(j, app),
		Port:        d.Port,
		Publish:     publishFor(d),
		Network:     d.Network,
		Restart:     d.Restart,
		StopTimeout: d.StopTimeout,
	})
	if err != nil {
		r.restore(previous, out, log)
		return fmt.Errorf("starting %s: %w", name, err)
	}

	url := healthURL(d)
	out.Printf("waiting up to %s for %s to answer 2xx", d.Health.Timeout, url)
	if err := r.waitHealthy(ctx, id, url, d.Health.Timeout); err != nil {
		r.discard(id, name, out, log)
		r.restore(previous, out, log)
		return fmt.Errorf("deploying %s: %w", name, err)
	}
	out.Printf("%s is healthy", name)

	r.removeStale(ctx, app, id, out, log)
	dep := store.Deployment{
		Pipeline:    j.run.Pipeline,
		RunID:       j.run.ID,
		Image:       image,
		Commit:      j.run.Commit,
		Container:   name,
		ContainerID: id,
	}
	if len(previous) > 0 {
		dep.Replaced = previous[0].Name
	}
	if err := r.cfg.Store.SaveDeployment(&dep); err != nil {
		return fmt.Errorf("recording deployment of %s: %w", name, err)
	}
	log.Info("deploy switched", "image", image, "replaced", dep.Replaced)
	return nil
}

// containerEnv builds the container's environment, with freshly minted
// AppRole credentials when the pipeline asks for them. The credentials are
// masked in the run log and never stored.
func (r *Runner) containerEnv(ctx context.Context, d *pipeline.Deploy, out *logWriter) ([]string, error) {
	keys := make([]string, 0, len(d.Env))
	for k := range d.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	env := make([]string, 0, len(keys)+3)
	for _, k := range keys {
		env = append(env, k+"="+d.Env[k])
	}
	if d.Vault == nil {
		return env, nil
	}
	if r.cfg.Vault == nil {
		return nil, fmt.Errorf("pipeline asks for AppRole %q but quai has no Vault: set VAULT_ADDR and VAULT_TOKEN (or QUAI_APPROLE_ID and QUAI_APPROLE_SECRET_ID)", d.Vault.AppRole)
	}
	creds, err := r.cfg.Vault.IssueAppRole(ctx, d.Vault.AppRole)
	if err != nil {
		return nil, fmt.Errorf("issuing credentials for AppRole %q: %w", d.Vault.AppRole, err)
	}
	out.AddSecret(creds.RoleID)
	out.AddSecret(creds.SecretID.Reveal())
	endpoint := d.Vault.Address
	if endpoint == "" {
		endpoint = r.cfg.Vault.Address()
	}
	out.Printf("injecting AppRole %q credentials (secret id accessor %s), VAULT_ENDPOINT=%s", d.Vault.AppRole, creds.Accessor, endpoint)
	return append(env,
		"APPROLE_ID="+creds.RoleID,
		"APPROLE_SECRET_ID="+creds.SecretID.Reveal(),
		"VAULT_ENDPOINT="+endpoint,
	), nil
}

// serving returns the app's running containers: those quai labeled with
// the app, and a container named exactly like the app that another tool
// (such as Jenkins) started.
func (r *Runner) serving(ctx context.Context, app string) ([]engine.Container, error) {
	all, err := r.cfg.Engine.List(ctx, map[string]string{LabelApp: app})
	if err != nil {
		return nil, fmt.Errorf("listing containers of app %q: %w", app, err)
	}
	foreign, err := r.cfg.Engine.Inspect(ctx, app)
	switch {
	case err == nil && foreign.Labels[LabelApp] == "":
		all = append(all, foreign)
	case err != nil && !errors.Is(err, engine.ErrNotFound):
		return nil, fmt.Errorf("inspecting container %q: %w", app, err)
	}
	var running []engine.Container
	for _, c := range all {
		if c.Running {
			running = append(running, c)
		}
	}
	return running, nil
}

// waitHealthy polls url until it answers 2xx, the container exits, or
// timeout passes.
func (r *Runner) waitHealthy(ctx context.Context, id, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer yet"
	for {
		c, err := r.cfg.Engine.Inspect(ctx, id)
		if err == nil && !c.Running {
			return fmt.Errorf("%w: it exited with code %d", errUnhealthy, c.ExitCode)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("health check of %s: %w", url, err)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode >= 200 && resp.StatusCode < 300 {
				return nil
			}
			last = "last answer " + resp.Status
		} else if ctx.Err() == nil {
			last = "last error: " + err.Error()
		}
		select {
		case <-ctx.Done():
			if parent := context.Cause(ctx); errors.Is(parent, context.DeadlineExceeded) {
				return fmt.Errorf("%w: %s gave no 2xx within %s (%s)", errUnhealthy, url, timeout, last)
			}
			return ctx.Err()
		case <-time.After(healthPoll):
		}
	}
}

// discard copies the tail of a failed container's output into the run log
// and removes the container.
func (r *Runner) discard(id, name string, out *logWriter, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if logs, err := r.cfg.Engine.Logs(ctx, id, failedLogLines); err == nil && logs != "" {
		out.Printf("last output of %s:", name)
		_, _ = out.Write([]byte(logs))
	}
	out.Printf("removing %s", name)
	if err := r.cfg.Engine.Remove(ctx, id); err != nil {
		out.Printf("removing %s failed: %v", name, err)
		log.Error("removing failed container failed", "container", name, "error", err)
	}
}

// restore starts the previous containers again after a failed deploy. It
// runs on its own context: a canceled run must still bring the app back.
func (r *Runner) restore(previous []engine.Container, out *logWriter, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	for _, c := range previous {
		out.Printf("starting previous container %s again", c.Name)
		if err := r.cfg.Engine.Start(ctx, c.ID); err != nil {
			out.Printf("starting %s failed: %v", c.Name, err)
			log.Error("restoring previous container failed", "container", c.Name, "error", err)
		}
	}
}

// removeStale removes every container of the app except keep, once keep
// serves.
func (r *Runner) removeStale(ctx context.Context, app, keep string, out *logWriter, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	all, err := r.cfg.Engine.List(ctx, map[string]string{LabelApp: app})
	if err != nil {
		log.Error("listing old containers failed", "error", err)
		return
	}
	if foreign, err := r.cfg.Engine.Inspect(ctx, app); err == nil && foreign.Labels[LabelApp] == "" {
		all = append(all, foreign)
	}
	for _, c := range all {
		if c.ID == keep {
			continue
		}
		out.Printf("removing previous container %s", c.Name)
		if err := r.cfg.Engine.Remove(ctx, c.ID); err != nil {
			out.Printf("removing %s failed: %v", c.Name, err)
			log.Error("removing old container failed", "container", c.Name, "error", err)
		}
	}
}

func containerLabels(j job, app string) map[string]string {
	return map[string]string{
		LabelApp:      app,
		LabelPipeline: j.run.Pipeline,
		LabelRepo:     j.run.Repo,
		LabelCommit:   j.run.Commit,
		LabelRun:      strconv.FormatUint(j.run.ID, 10),
	}
}

func publishFor(d *pipeline.Deploy) string {
	if d.Network == "host" {
		return ""
	}
	return d.Publish
}

// healthURL is where quai probes the new container from the host.
func healthURL(d *pipeline.Deploy) string {
	hostPort := net.JoinHostPort("127.0.0.1", strconv.Itoa(d.Port))
	if d.Network != "host" {
		host, port, err := net.SplitHostPort(d.Publish)
		if err == nil {
			if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
				host = "127.0.0.1"
			}
			hostPort = net.JoinHostPort(host, port)
		}
	}
	return "http://" + hostPort + d.Health.Path
}
