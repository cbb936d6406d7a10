package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// push sends a push webhook for a local git repository, signed like
// GitHub signs them, so a pipeline can be tried without GitHub.
func push(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://"+envOr(getenv, "QUAI_LISTEN", "127.0.0.1:8080")+"/hooks/github", "webhook URL of the quai daemon")
	secretFile := fs.String("webhook-secret-file", envOr(getenv, "QUAI_WEBHOOK_SECRET_FILE", filepath.Join(envOr(getenv, "QUAI_DATA", "./data"), secretFileName)), "file holding the webhook secret (QUAI_WEBHOOK_SECRET gives the value itself)")
	repo := fs.String("repo", "", "GitHub owner/name to claim the push came from: the pipeline's repo (required)")
	branch := fs.String("branch", "", "branch to push (default: the repository's current branch)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: quai push --repo OWNER/NAME [flags] REPO_DIR\n\nSends a signed push webhook for the head of a branch of the git repository in REPO_DIR,\nwith REPO_DIR as the clone URL.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *repo == "" {
		fs.Usage()
		return exitError(2)
	}
	dir, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("resolving %s: %w", fs.Arg(0), err)
	}

	secret := getenv("QUAI_WEBHOOK_SECRET")
	if secret == "" {
		b, err := readSecretFile(*secretFile, "webhook secret")
		if err != nil {
			return fmt.Errorf("%w (start quai serve once to generate it, or set QUAI_WEBHOOK_SECRET)", err)
		}
		secret = string(b)
	}
	body, err := pushPayload(ctx, dir, *repo, *branch)
	if err != nil {
		return err
	}
	return sendWebhook(ctx, *url, "push", []byte(secret), body, stdout)
}

// pushPayload builds a push payload with the fields GitHub sends and quai
// reads, for the head of branch in the repository at dir.
func pushPayload(ctx context.Context, dir, repo, branch string) ([]byte, error) {
	if branch == "" {
		b, err := gitOutput(ctx, dir, "symbolic-ref", "--short", "HEAD")
		if err != nil {
			return nil, err
		}
		branch = b
	}
	commit, err := gitOutput(ctx, dir, "rev-parse", "--verify", "refs/heads/"+branch+"^{commit}")
	if err != nil {
		return nil, err
	}
	message, err := gitOutput(ctx, dir, "log", "-1", "--format=%B", commit)
	if err != nil {
		return nil, err
	}
	author, err := gitOutput(ctx, dir, "log", "-1", "--format=%an", commit)
	if err != nil {
		return nil, err
	}
	email, err := gitOutput(ctx, dir, "log", "-1", "--format=%ae", commit)
	if err != nil {
		return nil, err
	}
	person := map[string]string{"name": author, "email": email}
	headCommit := map[string]any{
		"id": commit, "tree_id": "", "distinct": true, "message": message,
		"timestamp": time.Now().UTC().Format(time.RFC3339), "author": person, "committer": person,
		"added": []string{}, "removed": []string{}, "modified": []string{},
	}
	payload := map[string]any{
		"ref":     "refs/heads/" + branch,
		"before":  strings.Repeat("0", 40),
		"after":   commit,
		"created": false, "deleted": false, "forced": false,
		"repository": map[string]any{
			"name":           repo[strings.LastIndex(repo, "/")+1:],
			"full_name":      repo,
			"clone_url":      dir,
			"default_branch": branch,
		},
		"pusher":      person,
		"head_commit": headCommit,
		"commits":     []any{headCommit},
	}
	return json.Marshal(payload)
}

// sendWebhook posts body signed with secret and prints the answer.
func sendWebhook(ctx context.Context, url, event string, secret, body []byte, stdout io.Writer) error {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	id := make([]byte, 16)
	_, _ = rand.Read(id)

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building request to %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", hex.EncodeToString(id))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("sending webhook to %s: %w (is quai serve running?)", url, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprintf(stdout, "%s %s", resp.Status, answer)
	if resp.StatusCode >= 300 {
		return exitError(1)
	}
	return nil
}

func gitOutput(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("running git %s in %s: %w: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimRight(string(out), "\n"), nil
}
