package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/quai-ci/quai/haproxy"
	"github.com/quai-ci/quai/pipeline"
)

// haproxyCheckTimeout bounds the backend checks at start and in
// "quai validate --online": HAProxy answers in milliseconds or is not
// there.
const haproxyCheckTimeout = 5 * time.Second

// haproxyLines prints the haproxy.cfg lines each pipeline with a
// deploy.haproxy block needs.
func haproxyLines(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("haproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: quai haproxy [DIR]\n\nPrints the haproxy.cfg lines that the pipelines in DIR (default ./pipelines.d)\nwith a deploy.haproxy block need.")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir := "pipelines.d"
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	pipelines, problems, err := pipeline.LoadDir(dir)
	if err != nil {
		return err
	}
	if pipeline.HasErrors(problems) {
		for _, p := range problems {
			fmt.Fprintln(stderr, p.String())
		}
		return exitError(1)
	}
	printed := 0
	for _, p := range pipelines {
		if p.Deploy == nil || p.Deploy.HAProxy == nil {
			continue
		}
		if printed == 0 {
			fmt.Fprint(stdout, haproxyGlobal(p.Deploy.HAProxy))
		}
		fmt.Fprint(stdout, haproxyBackend(p))
		printed++
	}
	if printed == 0 {
		fmt.Fprintf(stderr, "%s: no pipeline has a deploy.haproxy block\n", dir)
		return exitError(1)
	}
	return nil
}

// haproxyGlobal returns the global and defaults lines a rollout relies on.
func haproxyGlobal(h *pipeline.HAProxy) string {
	stateFile := h.StateFile
	if stateFile == "" {
		stateFile = "/var/lib/haproxy/server-state    # also set deploy.haproxy.state_file to this path"
	}
	return fmt.Sprintf(`# In the global section: the admin socket quai uses, and where quai saves
# the servers' state so that a reload keeps serving the version it switched to.
global
    stats socket %s mode 660 level admin
    server-state-file %s

# In the defaults section (or in each backend below).
defaults
    load-server-state-from-file global

`, h.Socket, stateFile)
}

// haproxyBackend returns a backend section with two slots: the first
// serves, the second waits disabled for the next rollout.
func haproxyBackend(p *pipeline.Pipeline) string {
	h := p.Deploy.HAProxy
	var b strings.Builder
	fmt.Fprintf(&b, "# Pipeline %s (%s).\n", p.Name, p.File)
	fmt.Fprintf(&b, "backend %s\n", h.Backend)
	// HAProxy 2.6 checks with OPTIONS by default; many servers, busybox
	// httpd among them, answer that with 501.
	fmt.Fprintf(&b, "    option httpchk GET %s\n", p.Deploy.Health.Path)
	// fall 2: one lost check does not take a slot down; inter 2s keeps a
	// rollout's pre-check short.
	fmt.Fprintf(&b, "    default-server inter 2s fall 2 rise 2\n")
	fmt.Fprintf(&b, "    server %s 127.0.0.1:%d check\n", h.Servers[0], p.Deploy.Port)
	fmt.Fprintf(&b, "    server %s 127.0.0.1:%d check disabled\n\n", h.Servers[1], p.Deploy.Port)
	return b.String()
}

// checkHAProxy checks through each socket that the pipelines' backends and
// slots exist. It returns every finding; the daemon only warns about them,
// so it starts on a machine without HAProxy.
func checkHAProxy(ctx context.Context, pipelines []*pipeline.Pipeline, log *slog.Logger) []string {
	var all []string
	for _, p := range pipelines {
		if p.Deploy == nil || p.Deploy.HAProxy == nil {
			continue
		}
		h := p.Deploy.HAProxy
		ctx, cancel := context.WithTimeout(ctx, haproxyCheckTimeout)
		findings, err := haproxy.New(h.Socket, 0).CheckBackend(ctx, h.Backend, h.Servers)
		cancel()
		if err != nil {
			findings = []string{err.Error()}
		}
		for _, f := range findings {
			msg := fmt.Sprintf("%s: pipeline %q: %s", p.File, p.Name, f)
			log.Warn("HAProxy is not ready for pipeline", "pipeline", p.Name, "backend", h.Backend, "error", f)
			all = append(all, msg)
		}
	}
	return all
}
