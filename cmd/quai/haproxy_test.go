package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quai-ci/quai/internal/testenv"
)

func writeHAProxyPipeline(t *testing.T, dir, socket string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "landing.yml"), fmt.Sprintf(`
repo: acme/landing
build:
  image: acme/landing
deploy:
  container: landing
  port: 80
  health:
    path: /healthz
  haproxy:
    socket: %s
    backend: landing_page
    servers: [react_srv, react_srv_b]
    state_file: /var/lib/haproxy/server-state
`, socket))
}

func TestHAProxyCommandPrintsBackend(t *testing.T) {
	dir := t.TempDir()
	writeHAProxyPipeline(t, dir, "/run/haproxy/admin.sock")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"haproxy", dir}, &stdout, &stderr, os.Getenv); err != nil {
		t.Fatalf("quai haproxy: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{
		"stats socket /run/haproxy/admin.sock mode 660 level admin",
		"server-state-file /var/lib/haproxy/server-state",
		"load-server-state-from-file global",
		"backend landing_page",
		"option httpchk GET /healthz",
		"fall 2",
		"server react_srv 127.0.0.1:80 check\n",
		"server react_srv_b 127.0.0.1:80 check disabled",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestValidateOnline(t *testing.T) {
	hap := testenv.StartHAProxy(t, testenv.HAProxyBackend{
		Name:    "landing_page",
		Servers: []testenv.HAProxyServer{{Name: "react_srv", Port: 1}},
	})
	dir := t.TempDir()
	writeHAProxyPipeline(t, dir, hap.Socket)

	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"validate", "--online", dir}, &stdout, &stderr, os.Getenv)
	var exit exitError
	if !errors.As(err, &exit) || exit != 1 {
		t.Fatalf("validate --online returned %v, want exit status 1", err)
	}
	if !strings.Contains(stderr.String(), "landing_page/react_srv_b not found") {
		t.Errorf("stderr does not name the missing slot:\n%s", stderr.String())
	}

	stderr.Reset()
	err = run(context.Background(), []string{"validate", dir}, &stdout, &stderr, os.Getenv)
	if err != nil {
		t.Errorf("validate without --online returned %v, want success: %s", err, stderr.String())
	}
}

func TestValidateOnlineMissingSocket(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(t.TempDir(), "admin.sock")
	writeHAProxyPipeline(t, dir, socket)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"validate", "--online", dir}, &stdout, &stderr, os.Getenv)
	if err == nil {
		t.Fatal("validate --online succeeded without an HAProxy socket")
	}
	if !strings.Contains(stderr.String(), socket) {
		t.Errorf("stderr does not name the socket %s:\n%s", socket, stderr.String())
	}
}

func TestServeStartsWithoutHAProxy(t *testing.T) {
	dir := t.TempDir()
	writeHAProxyPipeline(t, dir, filepath.Join(t.TempDir(), "admin.sock"))
	d := startDaemon(t, dir, nil)
	if !strings.Contains(d.logs.String(), "HAProxy is not ready for pipeline") {
		t.Errorf("quai's log does not warn about the missing HAProxy:\n%s", d.logs.String())
	}
}

func TestShippedPipelinesValidate(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"validate", "../../pipelines.d"}, &stdout, &stderr, os.Getenv); err != nil {
		t.Fatalf("quai validate pipelines.d: %v\n%s", err, stderr.String())
	}
	for _, name := range []string{"landing-page", "admin", "hello"} {
		if !strings.Contains(stdout.String(), fmt.Sprintf("pipeline %q is valid", name)) {
			t.Errorf("pipeline %s is not listed as valid:\n%s", name, stdout.String())
		}
	}
}

func TestServeStartsWithShippedPipelinesWithoutHAProxy(t *testing.T) {
	if _, err := os.Stat("/run/haproxy/admin.sock"); err == nil {
		t.Skip("this machine runs an HAProxy with the shipped pipelines' socket")
	}
	d := startDaemon(t, "../../pipelines.d", nil)
	for _, backend := range []string{"landing_page", "admin_ui"} {
		if !strings.Contains(d.logs.String(), "backend="+backend) {
			t.Errorf("quai's log does not warn about backend %s:\n%s", backend, d.logs.String())
		}
	}
	if got := d.pipelineNames(t); got != "admin,hello,landing-page" {
		t.Errorf("pipelines = %q, want admin,hello,landing-page", got)
	}
}
