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

// placed is a container that a deploy put in service.
type placed struct {
	name, id string
	// slot and port are set by HAProxy rollouts.
	slot string
	port int
	// replaced names the container that served before, if any.
	replaced string
}

// credentials identify the Vault secret id a deploy minted for its
// container.
type credentials struct {
	approle  string
	accessor string
}

// deploy puts image in service, records the deployment, destroys the
// Vault secret id of the container it replaced and prunes old images.
func (r *Runner) deploy(ctx context.Context, j job, image string, out *logWriter, log *slog.Logger) error {
	d := j.plan.Deploy
	previous, err := r.cfg.Store.CurrentDeployment(j.run.Pipeline)
	if err != nil && !errors.Is(err, store.ErrDeploymentNotFound) {
		return fmt.Errorf("loading current deployment: %w", err)
	}

	env, creds, err := r.containerEnv(ctx, d, out)
	if err != nil {
		return err
	}
	var p placed
	if d.HAProxy != nil {
		p, err = r.rollout(ctx, j, image, env, out, log)
	} else {
		p, err = r.replace(ctx, j, image, env, out, log)
	}
	if err != nil {
		// The secret id went to a container that is gone: destroy it.
		r.destroySecretID(creds, out, log)
		return err
	}

	dep := store.Deployment{
		Pipeline:         j.run.Pipeline,
		RunID:            j.run.ID,
		Image:            image,
		Commit:           j.run.Commit,
		Container:        p.name,
		ContainerID:      p.id,
		Replaced:         p.replaced,
		Trigger:          j.run.Trigger,
		Slot:             p.slot,
		Port:             p.port,
		AppRole:          creds.approle,
		SecretIDAccessor: creds.accessor,
	}
	if err := r.cfg.Store.SaveDeployment(&dep); err != nil {
		return fmt.Errorf("recording deployment of %s: %w", p.name, err)
	}
	log.Info("deploy switched", "image", image, "container", p.name, "replaced", p.replaced)

	if previous.SecretIDAccessor != "" {
		r.destroySecretID(credentials{approle: previous.AppRole, accessor: previous.SecretIDAccessor}, out, log)
	}
	r.pruneImages(ctx, j.run.Pipeline, d.KeepImages, out, log)
	return nil
}

// replace puts the new container on the fixed published address: the old
// container gives the address up (stopped, not removed), the new one starts
// and must answer its health check, and only then is the old one removed.
// When the new one fails, it is removed and the old one started again, so
// the app comes back.
func (r *Runner) replace(ctx context.Context, j job, image string, env []string, out *logWriter, log *slog.Logger) (placed, error) {
	d := j.plan.Deploy
	app := d.Container
	name := pipeline.ContainerName(app, "r"+strconv.FormatUint(j.run.ID, 10))
	log = log.With("container", name)

	previous, err := r.serving(ctx, app)
	if err != nil {
		return placed{}, err
	}
	for _, c := range previous {
		out.Printf("stopping %s so it gives up %s", c.Name, d.Publish)
		if err := r.cfg.Engine.Stop(ctx, c.ID, d.StopTimeout); err != nil {
			r.restore(previous, out, log)
			return placed{}, fmt.Errorf("stopping previous container %s: %w", c.Name, err)
		}
	}

	if d.Network == "host" {
		if err := portFree(d.Port); err != nil {
			r.restore(previous, out, log)
			return placed{}, err
		}
	}
	out.Printf("starting %s from %s", name, image)
	id, err := r.cfg.Engine.Run(ctx, engine.RunOptions{
		Name:        name,
		Image:       image,
		Env:         env,
		Labels:      containerLabels(j, app, ""),
		Port:        d.Port,
		Publish:     publishFor(d),
		Network:     d.Network,
		Restart:     d.Restart,
		StopTimeout: d.StopTimeout,
	})
	if err != nil {
		r.restore(previous, out, log)
		return placed{}, fmt.Errorf("starting %s: %w", name, err)
	}

	url := healthURL(d)
	out.Printf("waiting up to %s for %s to answer 2xx", d.Health.Timeout, url)
	if err := r.waitHealthy(ctx, id, url, d.Health.Timeout); err != nil {
		r.discard(id, name, out, log)
		r.restore(previous, out, log)
		return placed{}, fmt.Errorf("deploying %s: %w", name, err)
	}
	out.Printf("%s is healthy", name)

	r.removeStale(ctx, app, id, out, log)
	p := placed{name: name, id: id}
	if len(previous) > 0 {
		p.replaced = previous[0].Name
	}
	return p, nil
}

// containerEnv builds the container's environment, with freshly minted
// AppRole credentials when the pipeline asks for them. The credentials are
// masked in the run log and never stored; only the secret id's accessor is
// returned, so the secret id can be destroyed later.
func (r *Runner) containerEnv(ctx context.Context, d *pipeline.Deploy, out *logWriter) ([]string, credentials, error) {
	keys := make([]string, 0, len(d.Env))
	for k := range d.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	env := make([]string, 0, len(keys)+3)
	for _, k := range keys {
		env = append(env, k+"="+d.Env[k])
	}
	secrets, err := r.readSecrets(ctx, d.Secrets, out)
	if err != nil {
		return nil, credentials{}, fmt.Errorf("reading deploy secrets: %w", err)
	}
	env = append(env, secrets...)
	if d.Vault == nil {
		return env, credentials{}, nil
	}
	if r.cfg.Vault == nil {
		return nil, credentials{}, fmt.Errorf("pipeline asks for AppRole %q but quai has no Vault: set VAULT_ADDR and VAULT_TOKEN (or QUAI_APPROLE_ID and QUAI_APPROLE_SECRET_ID)", d.Vault.AppRole)
	}
	creds, err := r.cfg.Vault.IssueAppRole(ctx, d.Vault.AppRole)
	if err != nil {
		return nil, credentials{}, fmt.Errorf("issuing credentials for AppRole %q: %w", d.Vault.AppRole, err)
	}
	out.AddSecret(creds.RoleID)
	out.AddSecret(creds.SecretID.Reveal())
	endpoint := d.Vault.Address
	if endpoint == "" {
		endpoint = r.cfg.Vault.Address()
	}
	out.Printf("injecting AppRole %q credentials (secret id accessor %s), VAULT_ENDPOINT=%s", d.Vault.AppRole, creds.Accessor, endpoint)
	env = append(env,
		"APPROLE_ID="+creds.RoleID,
		"APPROLE_SECRET_ID="+creds.SecretID.Reveal(),
		"VAULT_ENDPOINT="+endpoint,
	)
	return env, credentials{approle: d.Vault.AppRole, accessor: creds.Accessor}, nil
}

// destroySecretID destroys a secret id that no running container needs any
// more, so a leaked copy stops working. A failure is reported, not fatal:
// the deploy itself succeeded or already failed for another reason.
func (r *Runner) destroySecretID(c credentials, out *logWriter, log *slog.Logger) {
	if c.accessor == "" || r.cfg.Vault == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := r.cfg.Vault.DestroySecretID(ctx, c.approle, c.accessor); err != nil {
		out.Printf("destroying the secret id with accessor %s failed: %v", c.accessor, err)
		log.Error("destroying secret id failed", "approle", c.approle, "accessor", c.accessor, "error", err)
		return
	}
	out.Printf("destroyed the secret id with accessor %s of AppRole %q", c.accessor, c.approle)
}

// pruneImages removes the images of deployments older than the newest
// keep, unless a kept deployment uses the same image.
func (r *Runner) pruneImages(ctx context.Context, pipelineName string, keep int, out *logWriter, log *slog.Logger) {
	if keep <= 0 {
		return
	}
	deps, err := r.cfg.Store.Deployments(pipelineName, keep+50)
	if err != nil {
		log.Error("listing deployments for image pruning failed", "error", err)
		return
	}
	kept := map[string]bool{}
	for i, d := range deps {
		if i < keep {
			kept[d.Image] = true
			continue
		}
		if kept[d.Image] {
			continue
		}
		kept[d.Image] = true // try each old image once
		err := r.cfg.Engine.RemoveImage(ctx, d.Image)
		switch {
		case errors.Is(err, engine.ErrImageInUse):
			log.Debug("old image still in use", "image", d.Image)
		case err != nil:
			log.Warn("removing old image failed", "image", d.Image, "error", err)
		default:
			out.Printf("removed old image %s", d.Image)
		}
	}
}

// serving returns the app's running containers: those quai labeled with
// the app, and a container named exactly like the app that another tool
// (such as Jenkins) started.
func (r *Runner) serving(ctx context.Context, app string) ([]engine.Container, error) {
	all, err := r.appContainers(ctx, app)
	if err != nil {
		return nil, err
	}
	var running []engine.Container
	for _, c := range all {
		if c.Running {
			running = append(running, c)
		}
	}
	return running, nil
}

// appContainers returns every container of the app, running or not.
func (r *Runner) appContainers(ctx context.Context, app string) ([]engine.Container, error) {
	all, err := r.cfg.Engine.List(ctx, map[string]string{LabelApp: app})
	if err != nil {
		return nil, fmt.Errorf("listing containers of app %q: %w", app, err)
	}
	// Docker resolves a name it does not know as a container ID prefix, so
	// "cafe" could find an unrelated container: only an exact name counts.
	foreign, err := r.cfg.Engine.Inspect(ctx, app)
	switch {
	case err == nil && foreign.Name == app && foreign.Labels[LabelApp] == "":
		all = append(all, foreign)
	case err != nil && !errors.Is(err, engine.ErrNotFound):
		return nil, fmt.Errorf("inspecting container %q: %w", app, err)
	}
	return all, nil
}

// waitHealthy polls url until it returns 2xx, the container exits, or
// timeout passes.
func (r *Runner) waitHealthy(ctx context.Context, id, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer yet"
	for {
		c, err := r.cfg.Engine.Inspect(ctx, id)
		switch {
		case err == nil && !c.Running:
			return fmt.Errorf("%w: it exited with code %d", errUnhealthy, c.ExitCode)
		case err == nil && c.RestartCount > 0:
			return fmt.Errorf("%w: it exited and Docker restarted it (%d restarts so far); its output is in the run log", errUnhealthy, c.RestartCount)
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
			if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
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
	all, err := r.appContainers(ctx, app)
	if err != nil {
		log.Error("listing old containers failed", "error", err)
		return
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

// portFree checks that no process answers on a host-network app's port
// once the old container is stopped. Docker binds nothing for the host
// network, so a health check would otherwise reach whatever listens there.
func portFree(port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil
	}
	conn.Close()
	return fmt.Errorf("port %d is taken by a process that is not this app's container: stop it or change deploy.port", port)
}

func containerLabels(j job, app, slot string) map[string]string {
	labels := map[string]string{
		LabelApp:      app,
		LabelPipeline: j.run.Pipeline,
		LabelRepo:     j.run.Repo,
		LabelCommit:   j.run.Commit,
		LabelRun:      strconv.FormatUint(j.run.ID, 10),
	}
	if slot != "" {
		labels[LabelSlot] = slot
	}
	return labels
}

func publishFor(d *pipeline.Deploy) string {
	if d.Network == "host" {
		return ""
	}
	return d.Publish
}

// healthURL returns the URL quai probes the new container at from the host.
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
