package git

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Checkout fetches exactly commit from url into dir and checks it out with a
// detached HEAD. dir is created and must not exist or be empty. url is an
// https:// URL, a file:// URL or a local path. A non-empty token is sent as
// HTTP basic auth to https URLs only, through the environment of git, so it
// never appears in argv, the URL or an error. Git's output goes to out,
// which may be nil.
//
// Checkout first fetches only the commit (depth 1), which GitHub allows.
// When that fails, for example because the server rejects a request for a
// commit by hash as a local repository does over git protocol v0 without
// uploadpack.allowAnySHA1InWant, Checkout fetches all branches and tags. A commit the repository does
// not have returns an error wrapping ErrCommitNotFound. On error, dir may
// hold a partial repository for the caller to remove.
func Checkout(ctx context.Context, url, commit, dir, token string, out io.Writer) error {
	commit, err := validateCommit(commit)
	if err != nil {
		return err
	}
	r, err := parseRemote(url)
	if err != nil {
		return err
	}
	if err := prepareDir(dir); err != nil {
		return err
	}
	git := newCommand(dir, r, token, out)

	initArgs := []string{"init", "--quiet"}
	if len(commit) == 64 {
		initArgs = append(initArgs, "--object-format=sha256")
	}
	if _, err := git.run(ctx, initArgs...); err != nil {
		return fmt.Errorf("creating repository in %q: %w", dir, err)
	}
	if _, err := git.run(ctx, "remote", "add", "--", "origin", r.url); err != nil {
		return fmt.Errorf("adding remote %s in %q: %w", url, dir, err)
	}

	if err := fetchCommit(ctx, git, commit, out); err != nil {
		return fmt.Errorf("fetching commit %s from %s: %w", commit, url, err)
	}
	if !hasCommit(ctx, git, commit) {
		return fmt.Errorf("checking out %s from %s: %w in the repository", commit, url,
			ErrCommitNotFound)
	}

	if _, err := git.run(ctx, "-c", "advice.detachedHead=false",
		"checkout", "--quiet", "--detach", commit, "--"); err != nil {
		return fmt.Errorf("checking out %s from %s: %w", commit, url, err)
	}
	head, err := git.run(ctx, "rev-parse", "--verify", "HEAD")
	if err != nil {
		return fmt.Errorf("reading HEAD after checking out %s from %s: %w", commit, url, err)
	}
	// An annotated tag's object names the commit it tags: HEAD is that
	// commit, not the tag object.
	want, err := git.run(ctx, "rev-parse", "--verify", commit+"^{commit}")
	if err != nil {
		return fmt.Errorf("resolving %s from %s to a commit: %w", commit, url, err)
	}
	if head, want = strings.TrimSpace(head), strings.TrimSpace(want); head != want {
		return fmt.Errorf("checking out %s from %s: HEAD is %s", commit, url, head)
	}
	return nil
}

// Fetch adds commit, fetched from url without its history, to the
// repository that Checkout made in dir, so two commits can be compared
// with ChangedFiles. A commit the server no longer has returns an error
// wrapping ErrCommitNotFound.
func Fetch(ctx context.Context, url, commit, dir, token string) error {
	commit, err := validateCommit(commit)
	if err != nil {
		return err
	}
	r, err := parseRemote(url)
	if err != nil {
		return err
	}
	git := newCommand(dir, r, token, nil)
	err = fetchCommit(ctx, git, commit, nil)
	if err != nil || !hasCommit(ctx, git, commit) {
		return fmt.Errorf("fetching commit %s from %s: %w (%v)", commit, url, ErrCommitNotFound, err)
	}
	return nil
}

// fetchCommit fetches commit alone, or every branch and tag when that
// fails. Any failure leads to the second fetch, because git's messages for
// a rejected request by hash differ between protocol versions.
func fetchCommit(ctx context.Context, git *command, commit string, out io.Writer) error {
	_, shallowErr := git.run(ctx, "fetch", "--depth=1", "--no-tags", "origin", commit)
	if shallowErr == nil {
		return nil
	}
	if ctx.Err() != nil {
		return shallowErr
	}

	if out != nil {
		// git's output above already contains the reason, so this line only
		// announces the next step.
		fmt.Fprintf(out, "fetching commit %s alone failed, so fetching all branches and tags\n", commit)
	}
	_, err := git.run(ctx, "fetch", "--no-tags", "origin",
		"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
	if err != nil {
		if err.Error() == shallowErr.Error() {
			// A server that cannot be reached fails both fetches alike.
			return err
		}
		return errors.Join(shallowErr, err)
	}
	return nil
}

// hasCommit reports whether the repository of git has commit as a commit
// object.
func hasCommit(ctx context.Context, git *command, commit string) bool {
	_, err := git.run(ctx, "cat-file", "-e", commit+"^{commit}")
	return err == nil
}

// prepareDir creates dir, or accepts it when it is an empty directory.
func prepareDir(dir string) error {
	if dir == "" {
		return errors.New("empty checkout directory")
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating checkout directory: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading checkout directory: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("checkout directory %q is not empty: give a new or empty directory", dir)
	}
	return nil
}
