package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/quai-ci/quai/engine"
	"github.com/quai-ci/quai/git"
	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/runner"
	"github.com/quai-ci/quai/store"
)

// runOnce runs one pipeline's steps and build against the local Docker
// daemon and prints the log as it comes, like `act` does for GitHub
// Actions. Nothing is deployed and nothing is kept: the run lives in a
// temporary database that is removed at the end.
func runOnce(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("pipelines", envOr(getenv, "QUAI_PIPELINES", "./pipelines.d"), "folder of pipeline files")
	ref := fs.String("ref", "", "branch, tag or commit to run (default: HEAD of --source, else the default branch)")
	source := fs.String("source", "", "a local git repository to run from instead of the pipeline's clone URL")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: quai run [flags] NAME\n\nRuns pipeline NAME's steps and build once against the local Docker daemon and\nprints the log. Nothing is deployed or recorded.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError(2)
	}
	pipelines, problems, err := pipeline.LoadDir(*dir)
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, p.String())
	}
	var plan *pipeline.Pipeline
	for _, p := range pipelines {
		if p.Name == fs.Arg(0) {
			plan = p
		}
	}
	if plan == nil {
		return fmt.Errorf("pipeline %q not found in %s (quai validate %s lists the valid ones)", fs.Arg(0), *dir, *dir)
	}

	local := *plan
	local.Deploy = nil
	token := getenv("QUAI_GITHUB_TOKEN")
	url, commit, fullRef, err := resolveRunSource(ctx, &local, *source, *ref, token)
	if err != nil {
		return err
	}
	local.CloneURL = url

	tmp, err := os.MkdirTemp("", "quai-run-")
	if err != nil {
		return fmt.Errorf("creating a temporary folder: %w", err)
	}
	defer os.RemoveAll(tmp)
	st, err := store.Open(filepath.Join(tmp, "quai.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	eng, err := engine.New(ctx)
	if err != nil {
		return err
	}
	defer eng.Close()
	vc, err := vaultClient(getenv, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	var rv runner.Vault
	if vc != nil {
		rv = vc
	}

	rn := runner.New(runner.Config{
		Store: st, Engine: eng, Checkout: git.Checkout, Vault: rv,
		Workspaces: filepath.Join(tmp, "workspaces"), GitHubToken: token, MaxRuns: 1,
		Log: slog.New(slog.DiscardHandler),
	})
	run, err := rn.Enqueue(runner.Request{Pipeline: &local, Trigger: runner.TriggerManual, Repo: local.Repo, Ref: fullRef, Commit: commit, Author: "quai run"})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rn.Run(runCtx)
	}()
	final, err := followRun(ctx, st, run.ID, stdout)
	stop()
	<-done
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "run %s", final.Status)
	if final.Error != "" {
		fmt.Fprintf(stdout, ": %s", final.Error)
	}
	fmt.Fprintln(stdout)
	if final.Status != store.StatusSuccess {
		return exitError(1)
	}
	return nil
}

// resolveRunSource picks the repository and commit to run: a local
// repository's ref (HEAD by default), or the pipeline's clone URL and a
// ref resolved there.
func resolveRunSource(ctx context.Context, p *pipeline.Pipeline, source, ref, token string) (url, commit, fullRef string, err error) {
	if source != "" {
		abs, err := filepath.Abs(source)
		if err != nil {
			return "", "", "", fmt.Errorf("resolving %s: %w", source, err)
		}
		if ref == "" {
			ref = "HEAD"
		}
		commit, err := gitOutput(ctx, abs, "rev-parse", "--verify", ref+"^{commit}")
		if err != nil {
			return "", "", "", err
		}
		full, _ := gitOutput(ctx, abs, "rev-parse", "--symbolic-full-name", ref)
		return abs, commit, full, nil
	}
	url = p.CloneURL
	if url == "" {
		url = "https://github.com/" + p.Repo + ".git"
	}
	if ref == "" {
		if ref, err = git.DefaultBranch(ctx, url, token); err != nil {
			return "", "", "", err
		}
	}
	resolved, err := git.ResolveRef(ctx, url, ref, token)
	if err != nil {
		return "", "", "", err
	}
	return url, resolved.Commit, resolved.Ref, nil
}

// followRun prints the run's log as it grows until the run is final.
func followRun(ctx context.Context, st *store.Store, id uint64, w io.Writer) (store.Run, error) {
	var offset int64
	for {
		run, err := st.Run(id)
		if err != nil {
			return store.Run{}, err
		}
		if offset, err = st.CopyLog(id, offset, w); err != nil {
			return store.Run{}, err
		}
		if run.Status.Final() {
			// The log writer's last batch lands before the final status.
			_, err = st.CopyLog(id, offset, w)
			return run, err
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
