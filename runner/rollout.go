package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quai-ci/quai/engine"
	"github.com/quai-ci/quai/haproxy"
	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
)

// HAProxy is the part of HAProxy's runtime API a rollout uses.
type HAProxy interface {
	ServersState(ctx context.Context, backend string) ([]haproxy.ServerState, error)
	Stats(ctx context.Context, backend string) ([]haproxy.Stat, error)
	WorkerPID(ctx context.Context) (int, error)
	SetAddr(ctx context.Context, backend, server string, ip netip.Addr, port int) error
	SetState(ctx context.Context, backend, server string, state haproxy.AdminState) error
	WriteStateFile(ctx context.Context, path string) error
}

// rolloutPoll is the pause between two reads of HAProxy's state while a
// rollout waits for a check, a drain or the end of the watch.
const rolloutPoll = 100 * time.Millisecond

// loopback is the address rolled-out containers are published on and
// HAProxy reaches them at.
var loopback = netip.MustParseAddr("127.0.0.1")

// errRolledBack marks a rollout that switched traffic back to the previous
// container after the new one failed during the watch.
var errRolledBack = errors.New("rolled back")

// backendLocks serialises rollouts per HAProxy backend, so two pipelines
// that share a backend never switch it at once.
type backendLocks struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (b *backendLocks) lock(key string) func() {
	b.mu.Lock()
	if b.locks == nil {
		b.locks = map[string]*sync.Mutex{}
	}
	l, ok := b.locks[key]
	if !ok {
		l = &sync.Mutex{}
		b.locks[key] = l
	}
	b.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// slotConfig is the address and state a rollout wants HAProxy to keep for
// one slot. After a reload of HAProxy it is applied again.
type slotConfig struct {
	port  int
	state haproxy.AdminState
}

// rollout is one switch of traffic from the active slot to the idle one.
type rollout struct {
	r    *Runner
	hp   HAProxy
	cfg  *pipeline.HAProxy
	rec  store.Rollout
	out  *logWriter
	log  *slog.Logger
	pid  int
	want map[string]slotConfig
	// idleBefore is the idle slot as the rollout found it; a failed
	// rollout puts its address back, so HAProxy ends as it was.
	idleBefore haproxy.ServerState
}

// rollout puts the new container behind the idle HAProxy slot, proves it
// healthy to quai and to HAProxy, moves traffic to it, drains the old slot,
// watches the new one and only then stops the old container. Every step is
// recorded in the store before it starts. Any failure before the switch
// leaves HAProxy serving the old container; a failure during the watch
// switches back to it.
func (r *Runner) rollout(ctx context.Context, j job, image string, env []string, out *logWriter, log *slog.Logger) (placed, error) {
	d := j.plan.Deploy
	h := d.HAProxy
	if r.cfg.HAProxy == nil {
		return placed{}, errors.New("quai has no HAProxy client configured")
	}
	unlock := r.backends.lock(h.Socket + "\x00" + h.Backend)
	defer unlock()

	ro := &rollout{
		r:   r,
		hp:  r.cfg.HAProxy(h.Socket),
		cfg: h,
		rec: store.Rollout{RunID: j.run.ID, Pipeline: j.run.Pipeline, Backend: h.Backend},
		out: out,
		log: log.With("backend", h.Backend),
	}
	if err := ro.step("inspect", "reading the state of backend "+h.Backend); err != nil {
		return placed{}, err
	}
	active, idle, err := ro.slots(ctx)
	if err != nil {
		return placed{}, err
	}
	if ro.pid, err = ro.hp.WorkerPID(ctx); err != nil {
		return placed{}, fmt.Errorf("reading HAProxy's process id: %w", err)
	}
	ro.rec.OldSlot, ro.rec.NewSlot = active.Server, idle.Server
	ro.idleBefore = idle
	old := r.slotContainer(ctx, d.Container, active)
	if old != nil {
		ro.rec.OldContainer = old.Name
	}

	newc, err := ro.start(ctx, j, image, env, active.Port)
	if err != nil {
		return placed{}, err
	}
	if err := ro.precheck(ctx, newc); err != nil {
		return placed{}, err
	}
	if err := ro.switchTraffic(ctx, active.Server, idle.Server, newc.port); err != nil {
		ro.abort(newc, active, idle)
		return placed{}, err
	}
	if err := ro.watch(ctx, idle.Server); err != nil {
		return placed{}, ro.switchBack(ctx, newc, active, idle, err)
	}

	if old != nil {
		if err := ro.step("stop", "stopping the previous container "+old.Name); err != nil {
			return placed{}, err
		}
		ro.stopOld(ctx, old, d.StopTimeout)
	} else {
		ro.out.Printf("no container of app %q served slot %s; nothing to stop", d.Container, active.Server)
	}
	ro.persist(ctx)
	if err := ro.step("done", fmt.Sprintf("%s serves through %s/%s", newc.name, h.Backend, idle.Server)); err != nil {
		return placed{}, err
	}
	p := placed{name: newc.name, id: newc.id, slot: idle.Server, port: newc.port}
	if old != nil {
		p.replaced = old.Name
	}
	return p, nil
}

// step records that a step starts, in the run log and in the store.
func (ro *rollout) step(name, detail string) error {
	ro.out.Printf("rollout: %s: %s", name, detail)
	ro.rec.Steps = append(ro.rec.Steps, store.RolloutStep{Name: name, Detail: detail, At: time.Now().UTC()})
	if err := ro.r.cfg.Store.SaveRollout(ro.rec); err != nil {
		return fmt.Errorf("recording rollout step %q: %w", name, err)
	}
	return nil
}

// slots finds the serving slot and the idle one. Exactly one of the two
// configured servers must be ready and the other in maintenance; anything
// else means an operator or an interrupted rollout left the backend in a
// state quai will not guess about.
func (ro *rollout) slots(ctx context.Context) (active, idle haproxy.ServerState, err error) {
	states, err := ro.hp.ServersState(ctx, ro.cfg.Backend)
	if err != nil {
		return active, idle, fmt.Errorf("reading servers of backend %s: %w", ro.cfg.Backend, err)
	}
	byName := map[string]haproxy.ServerState{}
	for _, s := range states {
		byName[s.Server] = s
	}
	var found []haproxy.ServerState
	var desc []string
	for _, name := range ro.cfg.Servers {
		s, ok := byName[name]
		if !ok {
			return active, idle, fmt.Errorf("backend %s has no server %q: add `server %s 127.0.0.1:1 check disabled` to it (quai haproxy prints the lines)",
				ro.cfg.Backend, name, name)
		}
		found = append(found, s)
		desc = append(desc, fmt.Sprintf("%s is %s", name, s.Admin))
	}
	a, b := found[0], found[1]
	switch {
	case a.Admin == haproxy.AdminReady && b.Admin == haproxy.AdminMaint:
		return a, b, nil
	case b.Admin == haproxy.AdminReady && a.Admin == haproxy.AdminMaint:
		return b, a, nil
	default:
		return active, idle, fmt.Errorf("backend %s: want one slot ready and the other in maintenance, but %s; "+
			"set them with `set server %s/<name> state ready|maint` on the admin socket",
			ro.cfg.Backend, strings.Join(desc, " and "), ro.cfg.Backend)
	}
}

// newContainer is the container a rollout started.
type newContainer struct {
	name, id string
	port     int
}

// start runs the new container on a free loopback port and waits until it
// answers its health check directly. The port is bound by Docker when the
// container starts, so a 2xx from it comes from this container and not
// from a process that held the port before.
func (ro *rollout) start(ctx context.Context, j job, image string, env []string, activePort int) (newContainer, error) {
	d := j.plan.Deploy
	nc := newContainer{name: pipeline.ContainerName(d.Container, ro.rec.NewSlot, "r"+strconv.FormatUint(j.run.ID, 10))}
	ro.rec.NewContainer = nc.name
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		nc.port, err = freeLoopbackPort(activePort)
		if err != nil {
			return nc, err
		}
		ro.rec.Port = nc.port
		if err := ro.step("start", fmt.Sprintf("starting %s from %s on 127.0.0.1:%d", nc.name, image, nc.port)); err != nil {
			return nc, err
		}
		nc.id, err = ro.r.cfg.Engine.Run(ctx, engine.RunOptions{
			Name:        nc.name,
			Image:       image,
			Env:         env,
			Labels:      containerLabels(j, d.Container, ro.rec.NewSlot),
			Port:        d.Port,
			Publish:     net.JoinHostPort(loopback.String(), strconv.Itoa(nc.port)),
			Network:     "bridge",
			Restart:     d.Restart,
			StopTimeout: d.StopTimeout,
		})
		if !errors.Is(err, engine.ErrAddressInUse) {
			break
		}
		ro.out.Printf("port %d was taken meanwhile; trying another", nc.port)
	}
	if err != nil {
		return nc, fmt.Errorf("starting %s: %w", nc.name, err)
	}

	url := fmt.Sprintf("http://127.0.0.1:%d%s", nc.port, d.Health.Path)
	if err := ro.step("health", fmt.Sprintf("waiting up to %s for %s to answer 2xx", d.Health.Timeout, url)); err != nil {
		ro.r.discard(nc.id, nc.name, ro.out, ro.log)
		return nc, err
	}
	if err := ro.r.waitHealthy(ctx, nc.id, url, d.Health.Timeout); err != nil {
		ro.r.discard(nc.id, nc.name, ro.out, ro.log)
		return nc, fmt.Errorf("deploying %s: %w; HAProxy was not changed", nc.name, err)
	}
	return nc, nil
}

// precheck points the idle slot at the new container and puts it in drain,
// where HAProxy checks it without sending it traffic, then waits for a
// fresh passing check. Right after maintenance HAProxy still shows the
// slot's previous check result, as "DRAIN 1/2" while its health counter
// rises; only a plain "DRAIN" with L7OK is a check of the new container.
func (ro *rollout) precheck(ctx context.Context, nc newContainer) error {
	idle := ro.rec.NewSlot
	if err := ro.step("precheck", fmt.Sprintf("pointing %s/%s at 127.0.0.1:%d and waiting up to %s for HAProxy's check",
		ro.cfg.Backend, idle, nc.port, ro.cfg.CheckTimeout)); err != nil {
		ro.r.discard(nc.id, nc.name, ro.out, ro.log)
		return err
	}
	ro.want = map[string]slotConfig{
		ro.rec.OldSlot: {state: haproxy.AdminReady},
		idle:           {port: nc.port, state: haproxy.AdminDrain},
	}
	err := ro.hp.SetAddr(ctx, ro.cfg.Backend, idle, loopback, nc.port)
	if err == nil {
		err = ro.hp.SetState(ctx, ro.cfg.Backend, idle, haproxy.AdminDrain)
	}
	if err == nil {
		err = ro.waitCheck(ctx, idle, "DRAIN", ro.cfg.CheckTimeout)
	}
	if err != nil {
		ro.maint(idle)
		ro.r.discard(nc.id, nc.name, ro.out, ro.log)
		return fmt.Errorf("HAProxy's check of %s/%s: %w; the slot is back in maintenance", ro.cfg.Backend, idle, err)
	}
	return nil
}

// switchTraffic makes to ready and from drain, waits until from has no
// sessions and no queue, and puts it in maintenance. Each command goes on
// its own connection: HAProxy runs every command of a ";" chain even when
// one fails.
func (ro *rollout) switchTraffic(ctx context.Context, from, to string, port int) error {
	if err := ro.step("switch", fmt.Sprintf("%s/%s ready, %s/%s drain", ro.cfg.Backend, to, ro.cfg.Backend, from)); err != nil {
		return err
	}
	ro.want[to] = slotConfig{port: port, state: haproxy.AdminReady}
	if err := ro.hp.SetState(ctx, ro.cfg.Backend, to, haproxy.AdminReady); err != nil {
		return fmt.Errorf("switching traffic to %s: %w", to, err)
	}
	ro.want[from] = slotConfig{port: ro.want[from].port, state: haproxy.AdminDrain}
	if err := ro.hp.SetState(ctx, ro.cfg.Backend, from, haproxy.AdminDrain); err != nil {
		return fmt.Errorf("draining %s: %w", from, err)
	}

	if err := ro.step("drain", fmt.Sprintf("waiting up to %s for %s/%s to finish its requests", ro.cfg.DrainTimeout, ro.cfg.Backend, from)); err != nil {
		return err
	}
	if err := ro.waitDrained(ctx, from); err != nil {
		// The requests still running keep going in maintenance; only
		// stopping the container ends them, and that waits for the watch.
		ro.out.Printf("warning: %v; putting it in maintenance anyway", err)
		ro.log.Warn("drain timed out", "server", from, "error", err)
	}
	ro.want[from] = slotConfig{port: ro.want[from].port, state: haproxy.AdminMaint}
	if err := ro.hp.SetState(ctx, ro.cfg.Backend, from, haproxy.AdminMaint); err != nil {
		return fmt.Errorf("putting %s in maintenance: %w", from, err)
	}
	return nil
}

// watch observes the new slot for the configured window. The slot fails
// when HAProxy marks it DOWN or it returns more 5xx responses than allowed.
func (ro *rollout) watch(ctx context.Context, slot string) error {
	if ro.cfg.Watch <= 0 {
		return nil
	}
	if err := ro.step("watch", fmt.Sprintf("watching %s/%s for %s (at most %d answers with status 5xx)", ro.cfg.Backend, slot, ro.cfg.Watch, ro.cfg.Max5xx)); err != nil {
		return err
	}
	start, err := ro.stat(ctx, slot)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(ro.cfg.Watch)
	for time.Now().Before(deadline) {
		if err := ro.pause(ctx); err != nil {
			return err
		}
		s, err := ro.stat(ctx, slot)
		if err != nil {
			return err
		}
		if n := s.Hrsp5xx - start.Hrsp5xx; n > int64(ro.cfg.Max5xx) {
			return fmt.Errorf("%s/%s answered %d requests with status 5xx during the watch (at most %d allowed)", ro.cfg.Backend, slot, n, ro.cfg.Max5xx)
		}
		if isDown(s.Status) {
			return fmt.Errorf("HAProxy marked %s/%s %s during the watch (check %s %s)", ro.cfg.Backend, slot, s.Status, s.CheckStatus, s.CheckDesc)
		}
	}
	return nil
}

// switchBack returns traffic to the previous container, which kept running
// during the watch, and removes the new one.
func (ro *rollout) switchBack(ctx context.Context, nc newContainer, active, idle haproxy.ServerState, cause error) error {
	ro.out.Printf("rollout: %v", cause)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := ro.step("rollback", fmt.Sprintf("switching %s back to %s", ro.cfg.Backend, active.Server)); err != nil {
		ro.log.Error("recording rollback failed", "error", err)
	}
	ro.want[active.Server] = slotConfig{port: active.Port, state: haproxy.AdminDrain}
	err := ro.hp.SetState(ctx, ro.cfg.Backend, active.Server, haproxy.AdminDrain)
	if err == nil {
		err = ro.waitCheck(ctx, active.Server, "DRAIN", ro.cfg.CheckTimeout)
	}
	if err == nil {
		err = ro.switchTraffic(ctx, idle.Server, active.Server, active.Port)
	}
	if err != nil {
		ro.log.Error("switching back failed", "error", err)
		return fmt.Errorf("%w, and switching back to %s failed: %w; check backend %s by hand", cause, active.Server, err, ro.cfg.Backend)
	}
	ro.maint(idle.Server)
	ro.r.discard(nc.id, nc.name, ro.out, ro.log)
	ro.persist(ctx)
	ro.log.Warn("deploy rolled back", "error", cause)
	return fmt.Errorf("%w to %s: %w", errRolledBack, active.Server, cause)
}

// abort undoes a switch that failed half way: the previous slot serves
// again and the new container goes.
func (ro *rollout) abort(nc newContainer, active, idle haproxy.ServerState) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := ro.hp.SetState(ctx, ro.cfg.Backend, active.Server, haproxy.AdminReady); err != nil {
		ro.out.Printf("making %s ready again failed: %v", active.Server, err)
	}
	ro.maint(idle.Server)
	ro.r.discard(nc.id, nc.name, ro.out, ro.log)
}

// maint puts the idle slot back in maintenance and at the address it had,
// on a context of its own.
func (ro *rollout) maint(slot string) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := ro.hp.SetState(ctx, ro.cfg.Backend, slot, haproxy.AdminMaint); err != nil {
		ro.out.Printf("putting %s back in maintenance failed: %v", slot, err)
		ro.log.Error("restoring maintenance failed", "server", slot, "error", err)
	}
	if slot != ro.idleBefore.Server {
		return
	}
	addr, err := netip.ParseAddr(ro.idleBefore.Addr)
	if err != nil {
		return
	}
	if err := ro.hp.SetAddr(ctx, ro.cfg.Backend, slot, addr, ro.idleBefore.Port); err != nil {
		ro.out.Printf("putting %s back at %s:%d failed: %v", slot, ro.idleBefore.Addr, ro.idleBefore.Port, err)
		ro.log.Error("restoring address failed", "server", slot, "error", err)
	}
}

// stopOld stops the previous container gracefully and removes it.
func (ro *rollout) stopOld(ctx context.Context, c *engine.Container, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := ro.r.cfg.Engine.Stop(ctx, c.ID, timeout); err != nil {
		ro.out.Printf("stopping %s failed: %v", c.Name, err)
		ro.log.Error("stopping old container failed", "container", c.Name, "error", err)
		return
	}
	if err := ro.r.cfg.Engine.Remove(ctx, c.ID); err != nil {
		ro.out.Printf("removing %s failed: %v", c.Name, err)
		ro.log.Error("removing old container failed", "container", c.Name, "error", err)
	}
}

// persist writes HAProxy's server state to its state file, so a reload
// keeps serving what quai switched to.
func (ro *rollout) persist(ctx context.Context) {
	if ro.cfg.StateFile == "" {
		ro.out.Printf("no haproxy.state_file set: a reload of HAProxy returns to the servers in haproxy.cfg")
		return
	}
	if err := ro.step("persist", "writing the server state to "+ro.cfg.StateFile); err != nil {
		ro.log.Error("recording persist step failed", "error", err)
	}
	if err := ro.hp.WriteStateFile(ctx, ro.cfg.StateFile); err != nil {
		ro.out.Printf("writing %s failed: %v; a reload of HAProxy would serve the previous state", ro.cfg.StateFile, err)
		ro.log.Error("writing HAProxy state file failed", "file", ro.cfg.StateFile, "error", err)
	}
}

// waitCheck waits until HAProxy shows slot with exactly the given status
// and a passing layer 7 check. A DOWN slot fails at once.
func (ro *rollout) waitCheck(ctx context.Context, slot, status string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := "no state read yet"
	for {
		s, err := ro.stat(ctx, slot)
		if err != nil {
			return err
		}
		switch {
		case s.Status == status && s.CheckStatus == "L7OK":
			return nil
		case s.Status == "no check":
			return fmt.Errorf("server %s has no `check` on its line in haproxy.cfg, so HAProxy cannot prove it healthy", slot)
		case isDown(s.Status):
			return fmt.Errorf("HAProxy marks %s %s: check %s %s %s", slot, s.Status, s.CheckStatus, s.CheckDesc, s.LastCheck)
		}
		last = fmt.Sprintf("status %q, check %q", s.Status, s.CheckStatus)
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s to be %s with a passing check (%s)", timeout, slot, status, last)
		}
		if err := ro.pause(ctx); err != nil {
			return err
		}
	}
}

// waitDrained waits until slot has no current sessions and nothing queued.
func (ro *rollout) waitDrained(ctx context.Context, slot string) error {
	deadline := time.Now().Add(ro.cfg.DrainTimeout)
	for {
		s, err := ro.stat(ctx, slot)
		if err != nil {
			return err
		}
		if s.Scur == 0 && s.Qcur == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still has %d sessions and %d queued requests after %s", slot, s.Scur, s.Qcur, ro.cfg.DrainTimeout)
		}
		if err := ro.pause(ctx); err != nil {
			return err
		}
	}
}

// stat reads one slot's row of `show stat`, noticing a reload of HAProxy
// first.
func (ro *rollout) stat(ctx context.Context, slot string) (haproxy.Stat, error) {
	if err := ro.followReload(ctx); err != nil {
		return haproxy.Stat{}, err
	}
	stats, err := ro.hp.Stats(ctx, ro.cfg.Backend)
	if err != nil {
		return haproxy.Stat{}, fmt.Errorf("reading stats of backend %s: %w", ro.cfg.Backend, err)
	}
	for _, s := range stats {
		if s.Server == slot {
			return s, nil
		}
	}
	return haproxy.Stat{}, fmt.Errorf("backend %s has no server %q any more: was haproxy.cfg changed?", ro.cfg.Backend, slot)
}

// followReload notices a reload of HAProxy by its worker's process id. The
// new process starts from haproxy.cfg and the state file, which predate
// this rollout, so the slots are set again as the rollout wants them.
func (ro *rollout) followReload(ctx context.Context) error {
	pid, err := ro.hp.WorkerPID(ctx)
	if err != nil {
		return fmt.Errorf("reading HAProxy's process id: %w", err)
	}
	if pid == ro.pid {
		return nil
	}
	ro.out.Printf("rollout: HAProxy reloaded (process %d, was %d); setting the slots again", pid, ro.pid)
	ro.log.Warn("HAProxy reloaded during rollout", "pid", pid, "previous_pid", ro.pid)
	ro.pid = pid
	for slot, want := range ro.want {
		if want.port != 0 {
			if err := ro.hp.SetAddr(ctx, ro.cfg.Backend, slot, loopback, want.port); err != nil {
				return fmt.Errorf("setting %s's address again after a reload: %w", slot, err)
			}
		}
		if err := ro.hp.SetState(ctx, ro.cfg.Backend, slot, want.state); err != nil {
			return fmt.Errorf("setting %s's state again after a reload: %w", slot, err)
		}
	}
	return nil
}

func (ro *rollout) pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(rolloutPoll):
		return nil
	}
}

// slotContainer finds the container serving a slot: quai's container of
// the app labeled with the slot, else a container named like the app that
// another tool started (the one a migration from Jenkins leaves behind).
func (r *Runner) slotContainer(ctx context.Context, app string, slot haproxy.ServerState) *engine.Container {
	all, err := r.appContainers(ctx, app)
	if err != nil {
		r.log.Warn("listing containers of app failed", "app", app, "error", err)
		return nil
	}
	var foreign *engine.Container
	for i, c := range all {
		if !c.Running {
			continue
		}
		if c.Labels[LabelSlot] == slot.Server {
			return &all[i]
		}
		if c.Labels[LabelApp] == "" {
			foreign = &all[i]
		}
	}
	return foreign
}

// isDown reports whether a `show stat` status marks the server down, as
// opposed to "DOWN 1/2", a down server on its way up.
func isDown(status string) bool {
	return status == "DOWN" || strings.HasPrefix(status, "DOWN ") && !strings.Contains(status, "/")
}

// freeLoopbackPort returns a port on 127.0.0.1 that is free now and is not
// avoid, the port of the slot that serves.
func freeLoopbackPort(avoid int) (int, error) {
	for range 5 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("finding a free loopback port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if port != avoid {
			return port, nil
		}
	}
	return 0, errors.New("finding a free loopback port: the system kept offering the serving slot's port")
}
