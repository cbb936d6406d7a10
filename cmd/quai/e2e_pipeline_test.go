package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quai-ci/quai/internal/testenv"
)

func TestEndToEndStepsReadVaultSecrets(t *testing.T) {
	base := testenv.BusyboxImage(t)
	requireCommand(t, "git")
	v := testenv.StartVault(t)
	const password = "correct-horse-battery-staple"
	v.WriteKV(t, "1interviewparjour/mysql", map[string]string{"password": password})

	repo := newApp(t, "steps")
	pipelines := t.TempDir()
	writeFile(t, filepath.Join(pipelines, "ci.yml"), withCloneURL(repo.dir, fmt.Sprintf(`
repo: acme/ci
steps:
  - name: check
    image: %[1]s
    commands:
      - test "$DB_PASSWORD" = "%[2]s"
      - echo "password is $DB_PASSWORD"
      - echo "encoded $(printf %%s "$DB_PASSWORD" | base64)"
      - test -f %[3]s/www/index.html
      - echo "event $QUAI_EVENT on $QUAI_BRANCH CI=$CI"
    secrets:
      DB_PASSWORD: 1interviewparjour/mysql#password
  - name: fail
    image: %[1]s
    commands:
      - exit 4
  - name: skipped
    image: %[1]s
    commands:
      - echo never
  - name: notify
    image: %[1]s
    commands:
      - echo "notified of the failure"
    when:
      status: [failure]
`, base, password, "/workspace")))

	d := startDaemon(t, pipelines, map[string]string{"VAULT_ADDR": v.Addr, "VAULT_TOKEN": v.RootToken})
	run := d.push(t, "acme/ci", "refs/heads/main", repo.commit(t, "steps"), repo.dir)
	failed := d.waitRun(t, run, "failure")
	if !strings.Contains(failed.Error, `step "fail" exited with code 4`) {
		t.Errorf("run failed with %q, want the failing step and its exit code", failed.Error)
	}
	log := d.runLog(t, run)
	for _, want := range []string{"[check] password is ********", "[check] encoded ********", "[check] event push on main CI=true", "[notify] notified of the failure"} {
		if !strings.Contains(log, want) {
			t.Errorf("run log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, password) || strings.Contains(log, "never") {
		t.Errorf("run log shows the secret or the skipped step's output:\n%s", log)
	}

	var detail struct {
		Steps []struct {
			Name     string `json:"name"`
			Status   string `json:"status"`
			ExitCode int    `json:"exit_code"`
		} `json:"steps"`
	}
	d.getJSON(t, fmt.Sprintf("/api/runs/%d", run), &detail)
	got := map[string]string{}
	for _, s := range detail.Steps {
		got[s.Name] = s.Status
	}
	want := map[string]string{"check": "success", "fail": "failure", "skipped": "skipped", "notify": "success"}
	for name, status := range want {
		if got[name] != status {
			t.Errorf("step %s is %q, want %q (all: %v)", name, got[name], status, got)
		}
	}
}

func TestEndToEndSupersededPushes(t *testing.T) {
	base := testenv.BusyboxImage(t)
	requireCommand(t, "git")
	requireCommand(t, "docker")
	name := "quai-e2e-" + randomHex(t, 4)
	port := freePort(t)
	repo := newApp(t, "version 1")
	pipelines := t.TempDir()
	writeFile(t, filepath.Join(pipelines, "hello.yml"), withCloneURL(repo.dir, fmt.Sprintf(`
repo: acme/hello
on:
  push:
    branches: [main, feature]
build:
  image: quai-e2e/%[1]s
  args:
    BASE: %[2]s
deploy:
  container: %[1]s
  port: 8080
  publish: 127.0.0.1:%[3]d
  stop_timeout: 1s
  health:
    timeout: 20s
`, name, base, port)))
	t.Cleanup(func() { removeApp(t, name, "quai-e2e/"+name) })
	d := startDaemon(t, pipelines, nil)

	// The first version starts slowly, so its deploy is under way while
	// the next pushes arrive.
	repo.write(t, "Dockerfile", "ARG BASE\nFROM ${BASE}\nCOPY www/ /www/\nCMD [\"sh\", \"-c\", \"sleep 3; exec httpd -f -p 8080 -h /www\"]\n")
	c1 := repo.commit(t, "version 1")
	run1 := d.push(t, "acme/hello", "refs/heads/main", c1, repo.dir)
	waitFor(t, "the first run's deploy", func() bool {
		return strings.Contains(d.runLog(t, run1), "to answer 2xx")
	})

	repo.write(t, "www/index.html", "version 2\n")
	run2 := d.push(t, "acme/hello", "refs/heads/main", repo.commit(t, "version 2"), repo.dir)
	repo.write(t, "www/index.html", "feature\n")
	gitRun(t, repo.dir, "checkout", "-q", "-b", "feature")
	feature := d.push(t, "acme/hello", "refs/heads/feature", repo.commit(t, "feature"), repo.dir)
	gitRun(t, repo.dir, "checkout", "-q", "main")
	repo.write(t, "www/index.html", "version 3\n")
	c3 := repo.commit(t, "version 3")
	run3 := d.push(t, "acme/hello", "refs/heads/main", c3, repo.dir)

	d.waitRun(t, run1, "success")
	middle := d.waitRun(t, run2, "canceled")
	if want := "superseded by " + c3[:12]; !strings.Contains(middle.Error, want) {
		t.Errorf("middle run says %q, want %q", middle.Error, want)
	}
	d.waitRun(t, feature, "success")
	d.waitRun(t, run3, "success")

	var deps []struct {
		RunID uint64 `json:"run_id"`
	}
	d.getJSON(t, "/api/pipelines/hello/deployments", &deps)
	var runs []uint64
	for _, dep := range deps {
		runs = append(runs, dep.RunID)
	}
	for _, r := range runs {
		if r == run2 {
			t.Errorf("the superseded run %d deployed: %v", run2, runs)
		}
	}
	if len(runs) != 3 {
		t.Fatalf("deployments by run %v, want three: the first, the feature push and the newest", runs)
	}
	last := "version 3"
	if runs[0] == feature {
		last = "feature"
	}
	deadline := time.Now().Add(10 * time.Second)
	for body := ""; !strings.Contains(body, last); body = get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)) {
		if time.Now().After(deadline) {
			t.Fatalf("the app serves %q, want the last deployment's %q", body, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
