package pipeline

import (
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// PushEvent is the part of a push webhook that trigger matching uses.
type PushEvent struct {
	// Repo is the "owner/name" of the payload's repository.full_name.
	Repo string
	// Ref is the pushed ref: "refs/heads/<branch>" or "refs/tags/<tag>".
	Ref string
	// DefaultBranch is the repository's default branch, without refs/heads/.
	DefaultBranch string
	// Deleted is true when the push deleted Ref.
	Deleted bool
}

// MatchesPush reports whether the push starts p. A deleted ref never
// matches, and neither does a ref outside refs/heads/ and refs/tags/. Repo
// comparison is case-insensitive because GitHub names are. When on.push
// lists neither branches nor tags, only the default branch matches. When on
// has no push event, nothing matches.
func (p *Pipeline) MatchesPush(ev PushEvent) bool {
	if ev.Deleted || !strings.EqualFold(ev.Repo, p.Repo) || p.On.Push == nil {
		return false
	}
	push := p.On.Push
	if branch, ok := strings.CutPrefix(ev.Ref, "refs/heads/"); ok {
		if len(push.Branches) == 0 && len(push.Tags) == 0 {
			return ev.DefaultBranch != "" && branch == ev.DefaultBranch
		}
		return matchAny(push.Branches, branch)
	}
	if tag, ok := strings.CutPrefix(ev.Ref, "refs/tags/"); ok {
		return matchAny(push.Tags, tag)
	}
	return false
}

// matchAny reports whether name matches one of the patterns. "*" matches
// within one "/"-separated part of the name and "**" across parts, so
// "release/*" matches "release/1.0" but not "release/1.0/hotfix".
func matchAny(patterns []string, name string) bool {
	for _, pattern := range patterns {
		// Match fails only on a bad pattern, which then matches nothing.
		// Parse rejects bad patterns, so this happens only for a Pipeline
		// built by hand.
		if ok, _ := doublestar.Match(pattern, name); ok {
			return true
		}
	}
	return false
}
