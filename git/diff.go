package git

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ChangedFiles returns the paths of the files that differ between the
// commits before and after in the checkout dir, relative to the repository
// root and in git's order. A renamed file is listed under both its old and
// its new path. Both commits must be in dir: a missing one returns an error
// wrapping ErrCommitNotFound. A checkout made by Checkout is shallow, so it
// usually lacks before, and callers should then treat every file as changed.
func ChangedFiles(ctx context.Context, dir, before, after string) ([]string, error) {
	before, err := validateCommit(before)
	if err != nil {
		return nil, err
	}
	after, err = validateCommit(after)
	if err != nil {
		return nil, err
	}

	if dir == "" {
		return nil, errors.New("listing changes: empty checkout directory")
	}
	git := newCommand(dir, remote{}, "", nil)
	if _, err := git.run(ctx, "rev-parse", "--git-dir"); err != nil {
		return nil, fmt.Errorf("listing changes in %q: not a git checkout: %w", dir, err)
	}
	for _, commit := range []string{before, after} {
		if !hasCommit(ctx, git, commit) {
			return nil, fmt.Errorf("listing changes from %s to %s: %w: %s is not in %q",
				before, after, ErrCommitNotFound, commit, dir)
		}
	}

	out, err := git.run(ctx, "diff", "--name-only", "--no-renames", "--no-ext-diff", "-z",
		before, after, "--")
	if err != nil {
		return nil, fmt.Errorf("listing changes from %s to %s in %q: %w", before, after, dir, err)
	}
	var files []string
	for _, name := range strings.Split(out, "\x00") {
		if name != "" {
			files = append(files, name)
		}
	}
	return files, nil
}
