package git

import (
	"context"
	"fmt"
	"strings"
)

// DefaultBranch returns the name of the branch that HEAD of the repository
// at url points to, such as "main", by running `git ls-remote --symref url
// HEAD`. url and token are handled as in Checkout.
func DefaultBranch(ctx context.Context, url, token string) (string, error) {
	r, err := parseRemote(url)
	if err != nil {
		return "", err
	}
	git := newCommand("", r, token, nil)
	out, err := git.run(ctx, "ls-remote", "--symref", r.url, "HEAD")
	if err != nil {
		return "", fmt.Errorf("reading default branch of %s: %w", url, err)
	}

	// The symbolic ref line reads "ref: refs/heads/<branch>\tHEAD".
	for _, line := range strings.Split(out, "\n") {
		target, name, ok := strings.Cut(line, "\t")
		if !ok || name != "HEAD" {
			continue
		}
		ref, ok := strings.CutPrefix(target, "ref: ")
		if !ok {
			continue
		}
		if branch, ok := strings.CutPrefix(ref, "refs/heads/"); ok && branch != "" {
			return branch, nil
		}
	}
	return "", fmt.Errorf("reading default branch of %s: HEAD is not a symbolic ref to a "+
		"branch (empty repository or server without symref support)", url)
}
