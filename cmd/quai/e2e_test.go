package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quai-ci/quai/internal/testenv"
)

// The end-to-end tests run the real daemon (the same code as "quai serve")
// against the real Docker daemon, real git repositories and a real Vault
// dev server, and talk to it only over HTTP.

const e2eSecret = "e2e-webhook-secret"

// e2eAPIToken is the deployer token the test daemons accept through
// QUAI_API_TOKEN; the API helpers send it.
const e2eAPIToken = "e2e-api-token"

// daemon is one running "quai serve" with its own data folder.
type daemon struct {
	url     string
	logs    *syncBuffer
	data    string
	done    chan error
	stopped bool
}

// wait waits for the daemon to stop, once.
func (d *daemon) wait(t *testing.T) {
	t.Helper()
	if d.stopped {
		return
	}
	d.stopped = true
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("quai serve returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("quai serve did not stop within 30s")
	}
}

// app is a git repository holding a copy of examples/hello.
type app struct {
	dir string
}

func TestEndToEndPushDeploys(t *testing.T) {
	base := testenv.BusyboxImage(t)
	requireCommand(t, "git")
	requireCommand(t, "docker")
	v := testenv.StartVault(t)
	v.CreateAppRole(t, "1interviewparjour-app")

	name := "quai-e2e-" + randomHex(t, 4)
	port := freePort(t)
	repo := newApp(t, "version 1")
	pipelines := t.TempDir()
	writeFile(t, filepath.Join(pipelines, "hello.yml"), withCloneURL(repo.dir, fmt.Sprintf(`
name: hello
repo: acme/hello
on:
  push:
    branches: ["main"]
build:
  image: quai-e2e/%[1]s
  args:
    BASE: %[2]s
deploy:
  container: %[1]s
  port: 8080
  publish: 127.0.0.1:%[3]d
  health:
    path: /
    timeout: 10s
  stop_timeout: 2s
  env:
    APP_ENV: e2e
  vault:
    approle: 1interviewparjour-app
`, name, base, port)))
	t.Cleanup(func() { removeApp(t, name, "quai-e2e/"+name) })

	d := startDaemon(t, pipelines, map[string]string{"VAULT_ADDR": v.Addr, "VAULT_TOKEN": v.RootToken})
	appURL := fmt.Sprintf("http://127.0.0.1:%d/", port)

	// First deploy: the app serves version 1 on its published port.
	c1 := repo.commit(t, "version 1")
	run1 := d.push(t, "acme/hello", "refs/heads/main", c1, repo.dir)
	d.waitRun(t, run1, "success")
	if body := get(t, appURL); !strings.Contains(body, "version 1") {
		t.Fatalf("app answered %q after the first deploy, want version 1", body)
	}
	if log := d.runLog(t, run1); !strings.Contains(log, "building") || !strings.Contains(log, c1) {
		t.Errorf("run log lacks the build and the commit %s:\n%s", c1, log)
	}
	first := containersOf(t, name)
	if len(first) != 1 {
		t.Fatalf("containers of %s after the first deploy: %v, want 1", name, first)
	}
	firstEnv := containerEnv(t, first[0])

	// Second deploy: version 2 serves and the first container is gone.
	repo.write(t, "www/index.html", "<p>hello from quai, version 2</p>\n")
	c2 := repo.commit(t, "version 2")
	run2 := d.push(t, "acme/hello", "refs/heads/main", c2, repo.dir)
	d.waitRun(t, run2, "success")
	if body := get(t, appURL); !strings.Contains(body, "version 2") {
		t.Fatalf("app answered %q after the second deploy, want version 2", body)
	}
	second := containersOf(t, name)
	if len(second) != 1 || second[0] == first[0] {
		t.Fatalf("containers of %s after the second deploy: %v, want one other than %v", name, second, first)
	}
	if err := v.Login(firstEnv["APPROLE_ID"], firstEnv["APPROLE_SECRET_ID"]); err == nil {
		t.Errorf("the replaced container's secret id still logs in to Vault, want it destroyed")
	}

	// A broken Dockerfile fails the build; version 2 keeps serving.
	repo.write(t, "Dockerfile", "ARG BASE\nFROM ${BASE}\nCOPY missing-file.txt /www/\n")
	c3 := repo.commit(t, "broken build")
	run3 := d.push(t, "acme/hello", "refs/heads/main", c3, repo.dir)
	failed := d.waitRun(t, run3, "failure")
	if !strings.Contains(failed.Error, "missing-file.txt") {
		t.Errorf("failed build says %q, want it to name missing-file.txt", failed.Error)
	}
	if body := get(t, appURL); !strings.Contains(body, "version 2") {
		t.Fatalf("app answered %q after a failed build, want version 2", body)
	}

	// An image that starts but never answers fails its health check; the
	// previous container is started again and serves version 2.
	repo.write(t, "Dockerfile", "ARG BASE\nFROM ${BASE}\nCMD [\"sleep\", \"3600\"]\n")
	c4 := repo.commit(t, "never healthy")
	run4 := d.push(t, "acme/hello", "refs/heads/main", c4, repo.dir)
	unhealthy := d.waitRun(t, run4, "failure")
	if !strings.Contains(unhealthy.Error, "healthy") {
		t.Errorf("unhealthy deploy says %q, want a health check failure", unhealthy.Error)
	}
	if body := get(t, appURL); !strings.Contains(body, "version 2") {
		t.Fatalf("app answered %q after a failed deploy, want version 2", body)
	}
	if after := containersOf(t, name); len(after) != 1 || after[0] != second[0] {
		t.Errorf("containers of %s after the failed deploy: %v, want only %v", name, after, second)
	}

	// An image that exits at once is restarted by its restart policy; the
	// deploy fails on the first restart instead of waiting out the timeout.
	repo.write(t, "Dockerfile", "ARG BASE\nFROM ${BASE}\nCMD [\"sh\", \"-c\", \"echo crashing; exit 3\"]\n")
	c5 := repo.commit(t, "crash loop")
	run5 := d.push(t, "acme/hello", "refs/heads/main", c5, repo.dir)
	crashed := d.waitRun(t, run5, "failure")
	if !strings.Contains(crashed.Error, "restarted") {
		t.Errorf("crashing deploy says %q, want it to say Docker restarted it", crashed.Error)
	}
	if log := d.runLog(t, run5); !strings.Contains(log, "crashing") {
		t.Errorf("run log lacks the crashing container's output:\n%s", log)
	}
	if body := get(t, appURL); !strings.Contains(body, "version 2") {
		t.Fatalf("app answered %q after a crashing deploy, want version 2", body)
	}

	// The injected credentials are never written to quai's log, a run log
	// or the database.
	env := containerEnv(t, second[0])
	for _, key := range []string{"APPROLE_ID", "APPROLE_SECRET_ID"} {
		value := env[key]
		if len(value) < 8 {
			t.Fatalf("container env %s = %q, want a credential", key, value)
		}
		if strings.Contains(d.logs.String(), value) {
			t.Errorf("quai's log contains the value of %s", key)
		}
		for _, run := range []uint64{run1, run2, run3, run4, run5} {
			if strings.Contains(d.runLog(t, run), value) {
				t.Errorf("run %d's log contains the value of %s", run, key)
			}
		}
		db, err := os.ReadFile(filepath.Join(d.data, "quai.db"))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(db, []byte(value)) {
			t.Errorf("quai.db contains the value of %s", key)
		}
	}
	if env["VAULT_ENDPOINT"] != v.Addr {
		t.Errorf("VAULT_ENDPOINT = %q, want quai's own Vault address %q", env["VAULT_ENDPOINT"], v.Addr)
	}
	if err := v.Login(env["APPROLE_ID"], env["APPROLE_SECRET_ID"]); err != nil {
		t.Errorf("credentials of the serving container do not log in: %v", err)
	}

	// Roll back to the first deployment: version 1 serves again, with new
	// credentials, and version 2's secret id stops working.
	var deps []struct {
		ID    uint64 `json:"id"`
		RunID uint64 `json:"run_id"`
		Kept  bool   `json:"kept"`
	}
	d.getJSON(t, "/api/pipelines/hello/deployments", &deps)
	if len(deps) != 2 || deps[1].RunID != run1 || !deps[1].Kept {
		t.Fatalf("deployments = %+v, want two, the older one from run %d and kept", deps, run1)
	}
	status, answer := d.post(t, "/api/pipelines/hello/rollback", fmt.Sprintf(`{"deployment": "%d"}`, deps[1].ID))
	if status != http.StatusAccepted {
		t.Fatalf("rollback answered %d %s, want 202", status, answer)
	}
	var rollback apiRun
	if err := json.Unmarshal([]byte(answer), &rollback); err != nil {
		t.Fatal(err)
	}
	d.waitRun(t, rollback.ID, "success")
	if body := get(t, appURL); !strings.Contains(body, "version 1") {
		t.Fatalf("app answered %q after the rollback, want version 1", body)
	}
	if err := v.Login(env["APPROLE_ID"], env["APPROLE_SECRET_ID"]); err == nil {
		t.Errorf("version 2's secret id still logs in after the rollback, want it destroyed")
	}
	rolledBack := containersOf(t, name)
	rolledEnv := containerEnv(t, rolledBack[0])
	if rolledEnv["APPROLE_SECRET_ID"] == firstEnv["APPROLE_SECRET_ID"] {
		t.Errorf("the rollback reused the first deploy's secret id, want a new one")
	}

	// Redeploy: the same image again in a new container.
	status, answer = d.post(t, "/api/pipelines/hello/redeploy", `{}`)
	if status != http.StatusAccepted {
		t.Fatalf("redeploy answered %d %s, want 202", status, answer)
	}
	var redeploy apiRun
	if err := json.Unmarshal([]byte(answer), &redeploy); err != nil {
		t.Fatal(err)
	}
	d.waitRun(t, redeploy.ID, "success")
	if body := get(t, appURL); !strings.Contains(body, "version 1") {
		t.Fatalf("app answered %q after the redeploy, want version 1", body)
	}
	if after := containersOf(t, name); len(after) != 1 || after[0] == rolledBack[0] {
		t.Errorf("containers after the redeploy: %v, want one new container", after)
	}

	// Bad requests are refused with a reason.
	for _, tc := range []struct {
		path, body string
		want       int
	}{
		{"/api/pipelines/hello/rollback", `{"deployment": "999"}`, http.StatusNotFound},
		{"/api/pipelines/hello/rollback", `{"deployment": "x"}`, http.StatusBadRequest},
		{"/api/pipelines/nope/redeploy", `{}`, http.StatusNotFound},
	} {
		if status, answer := d.post(t, tc.path, tc.body); status != tc.want {
			t.Errorf("POST %s %s answered %d %s, want %d", tc.path, tc.body, status, answer, tc.want)
		}
	}
}

func TestEndToEndVaultLoginInsideContainer(t *testing.T) {
	base := testenv.BusyboxImage(t)
	requireCommand(t, "git")
	requireCommand(t, "docker")
	v := testenv.StartVault(t)
	v.CreateAppRole(t, "1interviewparjour-app", "1interviewparjour")
	v.WriteKV(t, "1interviewparjour/mysql", map[string]string{"user": "app"})

	// On the host network 127.0.0.1 is the host, so the container reaches
	// the Vault dev server that listens there.
	name := "quai-e2e-" + randomHex(t, 4)
	port := freePort(t)
	repo := newApp(t, "host network")
	pipelines := t.TempDir()
	writeFile(t, filepath.Join(pipelines, "host.yml"), withCloneURL(repo.dir, fmt.Sprintf(`
repo: acme/hello-host
build:
  image: quai-e2e/%[1]s
  args:
    BASE: %[2]s
deploy:
  container: %[1]s
  network: host
  port: %[3]d
  health:
    timeout: 10s
  env:
    PORT: "%[3]d"
  vault:
    approle: 1interviewparjour-app
`, name, base, port)))
	t.Cleanup(func() { removeApp(t, name, "quai-e2e/"+name) })

	d := startDaemon(t, pipelines, map[string]string{"VAULT_ADDR": v.Addr, "VAULT_TOKEN": v.RootToken})
	c := repo.commit(t, "first")
	run := d.push(t, "acme/hello-host", "refs/heads/main", c, repo.dir)
	d.waitRun(t, run, "success")

	ids := containersOf(t, name)
	if len(ids) != 1 {
		t.Fatalf("containers of %s: %v, want 1", name, ids)
	}
	// busybox wget can POST: log in with the injected credentials from
	// inside the container, then read a KV v2 secret with the token.
	script := `set -e
body=$(wget -qO- --post-data "{\"role_id\":\"$APPROLE_ID\",\"secret_id\":\"$APPROLE_SECRET_ID\"}" "$VAULT_ENDPOINT/v1/auth/approle/login")
token=$(echo "$body" | sed -n 's/.*"client_token":"\([^"]*\)".*/\1/p')
wget -qO- --header "X-Vault-Token: $token" "$VAULT_ENDPOINT/v1/secret/data/1interviewparjour/mysql"`
	out, err := exec.Command("docker", "exec", ids[0], "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("logging in to Vault from inside the container: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"user":"app"`) {
		t.Errorf("secret read from inside the container = %s, want the stored KV value", out)
	}
}

func TestEndToEndRejectsBadSignature(t *testing.T) {
	d := startDaemon(t, t.TempDir(), nil)
	body := []byte(`{"ref":"refs/heads/main"}`)
	req, err := http.NewRequest(http.MethodPost, d.url+"/hooks/github", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "bad-signature")
	req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bad signature answered %d, want 401", resp.StatusCode)
	}
	runs := d.runs(t)
	if len(runs) != 0 {
		t.Errorf("runs after a rejected webhook: %v, want none", runs)
	}
}

func TestEndToEndDockerDown(t *testing.T) {
	requireCommand(t, "git")
	repo := newApp(t, "docker down")
	pipelines := t.TempDir()
	writeFile(t, filepath.Join(pipelines, "hello.yml"), `
repo: acme/hello
clone_url: `+repo.dir+`
build:
  image: quai-e2e/docker-down
  args:
    BASE: quai-test/no-such-image
`)
	missing := "unix://" + filepath.Join(t.TempDir(), "docker.sock")
	d := startDaemon(t, pipelines, map[string]string{"DOCKER_HOST": missing})
	if !strings.Contains(d.logs.String(), "Docker is not reachable") {
		t.Errorf("quai's log does not warn that Docker is down:\n%s", d.logs.String())
	}

	run := d.push(t, "acme/hello", "refs/heads/main", repo.commit(t, "first"), repo.dir)
	failed := d.waitRun(t, run, "failure")
	if !strings.Contains(failed.Error, "docker.sock") {
		t.Errorf("run failed with %q, want the Docker address in the message", failed.Error)
	}
}

func TestEndToEndRestartBringsAppBack(t *testing.T) {
	base := testenv.BusyboxImage(t)
	requireCommand(t, "git")
	requireCommand(t, "docker")
	name := "quai-e2e-" + randomHex(t, 4)
	port := freePort(t)
	repo := newApp(t, "version 1")
	pipelines := t.TempDir()
	writeFile(t, filepath.Join(pipelines, "hello.yml"), withCloneURL(repo.dir, fmt.Sprintf(`
repo: acme/hello
build:
  image: quai-e2e/%[1]s
  args:
    BASE: %[2]s
deploy:
  container: %[1]s
  port: 8080
  publish: 127.0.0.1:%[3]d
  health:
    timeout: 10s
`, name, base, port)))
	t.Cleanup(func() { removeApp(t, name, "quai-e2e/"+name) })
	data := t.TempDir()

	ctx, stop := context.WithCancel(context.Background())
	d := startDaemonContext(ctx, t, pipelines, map[string]string{"QUAI_DATA": data})
	run := d.push(t, "acme/hello", "refs/heads/main", repo.commit(t, "first"), repo.dir)
	d.waitRun(t, run, "success")
	stop()
	d.wait(t)

	// What a crash between "stop the old container" and "start the new
	// one" leaves: the deployed container stopped, a new one crashing.
	ids := containersOf(t, name)
	if out, err := exec.Command("docker", "stop", "-t", "1", ids[0]).CombinedOutput(); err != nil {
		t.Fatalf("stopping %s: %v\n%s", ids[0], err, out)
	}
	leftover := name + "-r99"
	out, err := exec.Command("docker", "run", "-d", "--name", leftover, "--label", "quai.app="+name, base, "sh", "-c", "exit 3").CombinedOutput()
	if err != nil {
		t.Fatalf("creating a leftover container: %v\n%s", err, out)
	}

	d2 := startDaemon(t, pipelines, map[string]string{"QUAI_DATA": data})
	if body := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); !strings.Contains(body, "version 1") {
		t.Errorf("after a restart the app answered %q, want version 1", body)
	}
	if left := containersOf(t, name); len(left) != 1 || left[0] != ids[0] {
		t.Errorf("containers after the restart: %v, want only %v", left, ids[0])
	}
	if !strings.Contains(d2.logs.String(), "started the last deployed container again") {
		t.Errorf("quai's log does not say it restarted the app:\n%s", d2.logs.String())
	}
}

// startDaemon runs "quai serve" in this process on a free port and stops
// it when the test ends.
func startDaemon(t *testing.T, pipelines string, env map[string]string) *daemon {
	t.Helper()
	return startDaemonContext(context.Background(), t, pipelines, env)
}

// startDaemonContext is startDaemon with a context whose end stops the
// daemon before the test ends; wait then waits for it.
func startDaemonContext(parent context.Context, t *testing.T, pipelines string, env map[string]string) *daemon {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	data := t.TempDir()
	vars := map[string]string{
		"QUAI_LISTEN":         addr,
		"QUAI_DATA":           data,
		"QUAI_PIPELINES":      pipelines,
		"QUAI_WEBHOOK_SECRET": e2eSecret,
		"QUAI_API_TOKEN":      e2eAPIToken,
		"DOCKER_HOST":         os.Getenv("DOCKER_HOST"),
	}
	maps.Copy(vars, env)
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(parent)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, io.Discard, logs, func(k string) string { return vars[k] })
	}()
	d := &daemon{url: "http://" + addr, logs: logs, data: vars["QUAI_DATA"], done: done}
	t.Cleanup(func() {
		cancel()
		d.wait(t)
		if t.Failed() {
			t.Logf("quai's log:\n%s", logs.String())
		}
	})

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(d.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		select {
		case err := <-done:
			t.Fatalf("quai serve exited before answering: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("quai serve did not answer /healthz within 20s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// push sends a signed push webhook built from GitHub's own example payload,
// pointed at the test repository, and returns the one run it started.
func (d *daemon) push(t *testing.T, repo, ref, commit, cloneURL string) uint64 {
	t.Helper()
	return d.pushWith(t, repo, ref, commit, cloneURL, nil)
}

// pushWith is push with change applied to the payload's head_commit
// before it is signed, so a test controls the message and author shown.
func (d *daemon) pushWith(t *testing.T, repo, ref, commit, cloneURL string, change func(headCommit map[string]any)) uint64 {
	t.Helper()
	raw, err := os.ReadFile("testdata/github/push/branch-created.json")
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	p["ref"] = ref
	p["after"] = commit
	p["created"] = false
	r := p["repository"].(map[string]any)
	r["full_name"] = repo
	r["clone_url"] = cloneURL
	r["default_branch"] = "main"
	hc := p["head_commit"].(map[string]any)
	hc["id"] = commit
	if change != nil {
		change(hc)
	}
	body, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}

	mac := hmac.New(sha256.New, []byte(e2eSecret))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, d.url+"/hooks/github", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", randomHex(t, 16))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct {
		Message string   `json:"message"`
		Runs    []uint64 `json:"runs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		t.Fatalf("decoding webhook answer: %v", err)
	}
	if resp.StatusCode != http.StatusAccepted || len(answer.Runs) != 1 {
		t.Fatalf("push of %s answered %d %q with runs %v, want 202 and one run", commit, resp.StatusCode, answer.Message, answer.Runs)
	}
	return answer.Runs[0]
}

type apiRun struct {
	ID     uint64 `json:"id"`
	Status string `json:"status"`
	Commit string `json:"commit"`
	Error  string `json:"error"`
}

// waitRun polls the API until the run is final and checks its status.
func (d *daemon) waitRun(t *testing.T, id uint64, want string) apiRun {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var r apiRun
		d.getJSON(t, fmt.Sprintf("/api/runs/%d", id), &r)
		switch r.Status {
		case "success", "failure", "canceled":
			if r.Status != want {
				t.Fatalf("run %d ended %s (%s), want %s; its log:\n%s", id, r.Status, r.Error, want, d.runLog(t, id))
			}
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %d still %s after 3 minutes", id, r.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// post sends a JSON body and returns the status and the answer.
func (d *daemon) post(t *testing.T, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, d.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e2eAPIToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func (d *daemon) runs(t *testing.T) []apiRun {
	var runs []apiRun
	d.getJSON(t, "/api/runs", &runs)
	return runs
}

func (d *daemon) runLog(t *testing.T, id uint64) string {
	t.Helper()
	return get(t, fmt.Sprintf("%s/api/runs/%d/log", d.url, id))
}

func (d *daemon) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(get(t, d.url+path)), v); err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
}

func newApp(t *testing.T, version string) *app {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"Dockerfile", "www/index.html"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "hello", f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, f), string(b))
	}
	a := &app{dir: dir}
	a.write(t, "www/index.html", "<p>hello from quai, "+version+"</p>\n")
	gitRun(t, dir, "init", "-q", "-b", "main")
	return a
}

func (a *app) write(t *testing.T, name, content string) {
	t.Helper()
	writeFile(t, filepath.Join(a.dir, name), content)
}

// commit commits every change and returns the new commit's SHA.
func (a *app) commit(t *testing.T, message string) string {
	t.Helper()
	gitRun(t, a.dir, "add", "-A")
	gitRun(t, a.dir, "-c", "user.name=e2e", "-c", "user.email=e2e@example.com", "commit", "-q", "--allow-empty", "-m", message)
	return strings.TrimSpace(gitRun(t, a.dir, "rev-parse", "HEAD"))
}

func gitRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// containersOf lists the IDs of every container, running or not, that
// quai labeled with app.
func containersOf(t *testing.T, app string) []string {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-aq", "--no-trunc", "--filter", "label=quai.app="+app).Output()
	if err != nil {
		t.Fatalf("listing containers of %s: %v", app, err)
	}
	return strings.Fields(string(out))
}

func containerEnv(t *testing.T, id string) map[string]string {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "--format", "{{json .Config.Env}}", id).Output()
	if err != nil {
		t.Fatalf("inspecting %s: %v", id, err)
	}
	var list []string
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

// removeApp removes the containers and images a test's daemon created.
func removeApp(t *testing.T, app, image string) {
	for _, id := range containersOf(t, app) {
		if out, err := exec.Command("docker", "rm", "-f", id).CombinedOutput(); err != nil {
			t.Errorf("removing container %s: %v\n%s", id, err, out)
		}
	}
	out, _ := exec.Command("docker", "images", "-q", image).Output()
	for _, id := range strings.Fields(string(out)) {
		_ = exec.Command("docker", "rmi", "-f", id).Run()
	}
}

// get returns the body at url. It sends the daemon's API token with
// every request, because the apps that tests deploy ignore the header.
func get(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e2eAPIToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	return string(b)
}

func requireCommand(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		testenv.Skip(t, name, "not on PATH")
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// syncBuffer collects the daemon's log, written from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// withCloneURL adds clone_url to a pipeline after its repo line: quai
// takes only https clone URLs from webhook payloads, so a test repository
// on disk is named in the pipeline.
func withCloneURL(dir, yaml string) string {
	return strings.Replace(yaml, "\nrepo: ", "\nclone_url: "+dir+"\nrepo: ", 1)
}
