package pipeline

import (
	"fmt"
	"slices"
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

// MatchesPush reports whether the push's ref starts p. PushPaths decides
// the changed paths apart. A deleted ref never matches, and neither does
// a ref outside refs/heads/ and refs/tags/. Repo comparison is
// case-insensitive because GitHub names are. When on has no push event,
// nothing matches. Otherwise, for a branch:
//   - a branch matching BranchesIgnore never matches;
//   - with Branches set, the branch must match one of them;
//   - with only BranchesIgnore set, every other branch matches;
//   - with only tag filters set, no branch matches;
//   - with no filter at all, only DefaultBranch matches.
//
// A tag is matched the same way against Tags and TagsIgnore, and with
// neither set no tag matches.
func (p *Pipeline) MatchesPush(ev PushEvent) bool {
	if ev.Deleted || !strings.EqualFold(ev.Repo, p.Repo) || p.On.Push == nil {
		return false
	}
	if branch, ok := strings.CutPrefix(ev.Ref, "refs/heads/"); ok {
		return branch != "" && p.On.Push.matchesBranch(branch, ev.DefaultBranch)
	}
	if tag, ok := strings.CutPrefix(ev.Ref, "refs/tags/"); ok {
		return tag != "" && p.On.Push.matchesTag(tag)
	}
	return false
}

func (t *PushTrigger) matchesBranch(branch, defaultBranch string) bool {
	if matchAny(t.BranchesIgnore, branch) {
		return false
	}
	switch {
	case len(t.Branches) > 0:
		return matchAny(t.Branches, branch)
	case len(t.BranchesIgnore) > 0:
		return true
	case len(t.Tags) > 0 || len(t.TagsIgnore) > 0:
		return false
	default:
		return defaultBranch != "" && branch == defaultBranch
	}
}

func (t *PushTrigger) matchesTag(tag string) bool {
	if matchAny(t.TagsIgnore, tag) {
		return false
	}
	if len(t.Tags) > 0 {
		return matchAny(t.Tags, tag)
	}
	return len(t.TagsIgnore) > 0
}

// PathDecision is the outcome of a pipeline's path filters for one event.
type PathDecision int

// The outcomes of PushPaths and PullRequestPaths.
const (
	// PathRun: the filters let the run start.
	PathRun PathDecision = iota + 1
	// PathSkip: the list of changed files was complete and no file counts.
	// The run does not start, or ends as skipped with this reason.
	PathSkip
	// PathUndecided: the list may be incomplete and no listed file counts.
	// The caller computes the changed files itself (git diff between the
	// before and after commits in the checkout) and asks again with
	// complete set. When even that is impossible, it runs.
	PathUndecided
)

// String returns "run", "skip" or "undecided".
func (d PathDecision) String() string {
	switch d {
	case PathRun:
		return "run"
	case PathSkip:
		return "skip"
	case PathUndecided:
		return "undecided"
	default:
		return fmt.Sprintf("PathDecision(%d)", int(d))
	}
}

// PushPaths decides a push by its changed files, for a push that
// MatchesPush accepted. ref is the pushed ref. A tag push always runs,
// because a tag changes no file. files are the changed paths relative to
// the repository root, such as ChangedFiles returns. complete is false
// when the list may lack files: a push that creates a branch, a forced
// push, or a payload whose commit or file lists the sender truncated.
//
// A file counts when it matches no PathsIgnore pattern and, with Paths
// set, matches a Paths pattern. PushPaths returns PathRun when on.push has
// no path filter or a file counts, PathSkip when none counts and the list
// is complete (an empty complete list included), and PathUndecided when
// none counts and the list may be incomplete.
func (p *Pipeline) PushPaths(ref string, files []string, complete bool) PathDecision {
	if p.On.Push == nil || strings.HasPrefix(ref, "refs/tags/") {
		return PathRun
	}
	return decidePaths(p.On.Push.Paths, p.On.Push.PathsIgnore, files, complete)
}

// PullRequestPaths decides a pull request by the files it changes, for an
// event that MatchesPullRequest accepted, with the rules of PushPaths
// applied to on.pull_request's Paths and PathsIgnore.
func (p *Pipeline) PullRequestPaths(files []string, complete bool) PathDecision {
	if p.On.PullRequest == nil {
		return PathRun
	}
	return decidePaths(p.On.PullRequest.Paths, p.On.PullRequest.PathsIgnore, files, complete)
}

func decidePaths(include, ignore, files []string, complete bool) PathDecision {
	if len(include) == 0 && len(ignore) == 0 {
		return PathRun
	}
	for _, f := range files {
		if matchAny(ignore, f) {
			continue
		}
		if len(include) == 0 || matchAny(include, f) {
			return PathRun
		}
	}
	if complete {
		return PathSkip
	}
	return PathUndecided
}

// Commit is the part of a push payload's commit that lists changed files.
type Commit struct {
	Added    []string
	Removed  []string
	Modified []string
}

// ChangedFiles returns the union of the files every commit added, removed
// or modified, sorted and without repeats. A file that one commit adds and
// a later one removes is in it, because path filters ask whether the push
// touched a path, not what the result contains.
func ChangedFiles(commits []Commit) []string {
	var files []string
	for _, c := range commits {
		files = append(files, c.Added...)
		files = append(files, c.Removed...)
		files = append(files, c.Modified...)
	}
	slices.Sort(files)
	return slices.Compact(files)
}

// PullRequestEvent is the part of a pull_request webhook that trigger
// matching uses.
type PullRequestEvent struct {
	// Repo is the "owner/name" of the repository the pull request targets
	// (repository.full_name).
	Repo string
	// Action is the webhook's action, such as "opened" or "synchronize".
	Action string
	// BaseBranch is the branch the pull request targets
	// (pull_request.base.ref), with or without refs/heads/.
	BaseBranch string
	// HeadRepo is the "owner/name" of the repository the pull request's
	// commits come from (pull_request.head.repo.full_name), empty when
	// GitHub sends none because that repository was deleted.
	HeadRepo string
}

// MatchesPullRequest reports whether the pull request event starts p:
// on.pull_request is set, the repository is p.Repo (case-insensitive),
// Action is one of Types (opened, synchronize and reopened when Types is
// empty), and the base branch matches Branches when Branches is set.
// Changed paths are decided apart by PullRequestPaths.
func (p *Pipeline) MatchesPullRequest(ev PullRequestEvent) bool {
	pr := p.On.PullRequest
	if pr == nil || !strings.EqualFold(ev.Repo, p.Repo) {
		return false
	}
	types := pr.Types
	if len(types) == 0 {
		types = defaultPullRequestTypes
	}
	if !slices.Contains(types, ev.Action) {
		return false
	}
	base := strings.TrimPrefix(ev.BaseBranch, "refs/heads/")
	return base != "" && (len(pr.Branches) == 0 || matchAny(pr.Branches, base))
}

// FromFork reports whether the pull request's commits come from another
// repository than the one it targets, or from one GitHub no longer names.
// Such a run gets no secrets and never deploys, because its code could
// print them.
func (ev PullRequestEvent) FromFork() bool {
	return ev.HeadRepo == "" || !strings.EqualFold(ev.HeadRepo, ev.Repo)
}

// DeploysPullRequest reports whether a run started by ev deploys: p has a
// deploy block, on.pull_request.deploy is true, and ev is not FromFork.
func (p *Pipeline) DeploysPullRequest(ev PullRequestEvent) bool {
	return p.Deploy != nil && p.On.PullRequest != nil && p.On.PullRequest.Deploy && !ev.FromFork()
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
