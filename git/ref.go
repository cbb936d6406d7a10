package git

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Errors of ResolveRef, returned wrapped.
var (
	// ErrRefNotFound is returned when the repository has no branch or tag
	// of the given name.
	ErrRefNotFound = errors.New("ref not found")
	// ErrInvalidRef is returned when the ref is not a valid branch or tag
	// name, full ref or commit hash.
	ErrInvalidRef = errors.New("invalid ref")
)

// shortHashPattern matches what may be an abbreviated commit hash.
var shortHashPattern = regexp.MustCompile(`^[0-9a-fA-F]{4,63}$`)

// Resolved is a branch, tag or commit resolved to the commit it names.
type Resolved struct {
	// Ref is the full ref found, "refs/heads/<branch>" or
	// "refs/tags/<tag>", or "" when a commit hash was resolved.
	Ref string
	// Commit is the full commit hash in lower case. For an annotated tag it
	// is the commit the tag points to (the tag peeled with ^{}), never the
	// tag object.
	Commit string
}

// ResolveRef finds the commit that ref names in the repository at url by
// running `git ls-remote`. url and token are handled as in Checkout.
//
// ref is one of:
//   - a full commit hash (40 or 64 hexadecimal characters), returned as is
//     in lower case with an empty Ref and without asking the repository, so
//     a commit the repository lacks fails later, at checkout;
//   - a full ref, "refs/heads/<branch>" or "refs/tags/<tag>";
//   - a branch or tag name such as "main", "release/2.0" or "v1.4". When
//     both a branch and a tag have that name, the branch wins. A name
//     usually means the moving branch, and "refs/tags/<name>" selects the
//     tag.
//
// Abbreviated hashes and revision expressions such as "main~2" are not
// supported, because a remote cannot evaluate them. A ref that is not a
// valid git ref name returns an error wrapping ErrInvalidRef, and a name
// with no branch or tag an error wrapping ErrRefNotFound. Errors name the
// URL without credentials and never contain the token.
//
// NOTE: a tag that points to a tree or a blob resolves to that object, and
// Checkout then rejects it with ErrCommitNotFound.
func ResolveRef(ctx context.Context, url, ref, token string) (Resolved, error) {
	if commitPattern.MatchString(ref) {
		return Resolved{Commit: strings.ToLower(ref)}, nil
	}
	candidates, err := refCandidates(ref)
	if err != nil {
		return Resolved{}, err
	}
	r, err := parseRemote(url)
	if err != nil {
		return Resolved{}, err
	}

	// ls-remote matches its patterns against the end of each ref name, so
	// "main" alone would also list "refs/heads/feature/main". Full refs
	// avoid most such matches, and the exact comparison below drops the
	// rest. A peeled tag is listed as "<tag>^{}" only when asked for.
	args := []string{"ls-remote", r.url}
	for _, c := range candidates {
		args = append(args, c, c+"^{}")
	}
	git := newCommand("", r, token, nil)
	out, err := git.run(ctx, args...)
	if err != nil {
		return Resolved{}, fmt.Errorf("resolving ref %q in %s: %w", ref, displayURL(url), err)
	}

	listed := parseLsRemote(out)
	for _, c := range candidates {
		commit, ok := listed[c]
		if !ok {
			continue
		}
		if peeled, ok := listed[c+"^{}"]; ok {
			commit = peeled
		}
		return Resolved{Ref: c, Commit: strings.ToLower(commit)}, nil
	}
	hint := "give a branch, a tag, refs/heads/<branch>, refs/tags/<tag> or a full commit hash"
	if shortHashPattern.MatchString(ref) {
		hint = "abbreviated commit hashes cannot be resolved remotely: give the full hash"
	}
	return Resolved{}, fmt.Errorf("resolving ref %q in %s: %w: no branch or tag has that name; %s",
		ref, displayURL(url), ErrRefNotFound, hint)
}

// refCandidates returns the full refs that ref may name, in order of
// preference.
func refCandidates(ref string) ([]string, error) {
	if strings.HasPrefix(ref, "refs/") {
		name, ok := strings.CutPrefix(ref, "refs/heads/")
		if !ok {
			name, ok = strings.CutPrefix(ref, "refs/tags/")
		}
		if !ok {
			return nil, fmt.Errorf("%w %q: a full ref must start with refs/heads/ or refs/tags/",
				ErrInvalidRef, ref)
		}
		if err := checkRefName(name); err != nil {
			return nil, fmt.Errorf("%w %q: %s", ErrInvalidRef, ref, err)
		}
		return []string{ref}, nil
	}
	if err := checkRefName(ref); err != nil {
		return nil, fmt.Errorf("%w %q: %s; give a branch, a tag, a full ref or a full commit hash",
			ErrInvalidRef, ref, err)
	}
	return []string{"refs/heads/" + ref, "refs/tags/" + ref}, nil
}

// checkRefName applies the rules of git check-ref-format to a branch or tag
// name, and also rejects a leading "-". Since "*", "?" and "[" are
// rejected, the name is read literally as an ls-remote pattern.
func checkRefName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case name == "@":
		return errors.New(`"@" alone is not a ref name`)
	case strings.HasPrefix(name, "-"):
		return errors.New(`it starts with "-"`)
	case strings.HasPrefix(name, "/"), strings.HasSuffix(name, "/"), strings.Contains(name, "//"):
		return errors.New(`it starts or ends with "/" or contains "//"`)
	case strings.HasSuffix(name, "."):
		return errors.New(`it ends with "."`)
	case strings.Contains(name, ".."):
		return errors.New(`it contains ".."`)
	case strings.Contains(name, "@{"):
		return errors.New(`it contains "@{"`)
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(" ~^:?*[\\", c) {
			return fmt.Errorf("it contains %q, which git does not allow in ref names", c)
		}
	}
	for part := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			return fmt.Errorf(`its part %q starts with "." or ends with ".lock"`, part)
		}
	}
	return nil
}

// parseLsRemote maps each ref name in ls-remote output to its object hash.
func parseLsRemote(out string) map[string]string {
	refs := map[string]string{}
	for line := range strings.SplitSeq(out, "\n") {
		hash, name, ok := strings.Cut(line, "\t")
		if ok && commitPattern.MatchString(hash) {
			refs[name] = hash
		}
	}
	return refs
}

// displayURL returns raw for an error message, with any password in it
// replaced, so a file:// URL with credentials cannot leak them either.
func displayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
