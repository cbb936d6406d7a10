package hook

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/google/go-github/v60/github"

	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/runner"
	"github.com/quai-ci/quai/store"
)

// maxPushCommits is the maximum number of commits GitHub lists in a push
// webhook's "commits" array: GitHub's push payload reference states that
// the array "includes a maximum of 2048 commits". A push listing that many
// may have more.
const maxPushCommits = 2048

// push holds the fields quai reads from a push payload.
type push struct {
	repo          string
	ref           string
	before        string
	commit        string
	cloneURL      string
	defaultBranch string
	message       string
	author        string
	deleted       bool
	// tagObject is set when after names an annotated tag object: commit
	// is then the tagged commit, taken from head_commit.
	tagObject bool
	// files is the sorted union of the files that the listed commits
	// added, modified and removed.
	files []string
	// filesComplete is set when files is every file changed between
	// before and commit.
	filesComplete bool
}

// push records a push delivery and queues a run for each matching pipeline.
func (h *Handler) push(log *slog.Logger, id string, payload []byte) (int, response) {
	var ev github.PushEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		log.Warn("webhook rejected", "error", err)
		return http.StatusBadRequest, response{Message: fmt.Sprintf("invalid push payload: %v", err)}
	}
	p := parsePush(&ev)
	if !p.deleted && p.commit != "" && !isCommitID(p.commit) {
		log.Warn("webhook rejected", "error", "invalid commit", "commit", truncate(p.commit, 80))
		return http.StatusBadRequest, response{Message: fmt.Sprintf("invalid commit %q in after or head_commit.id: want 40 or 64 lowercase hex characters", truncate(p.commit, 80))}
	}
	p.message = truncate(p.message, maxMessage)
	p.author = truncate(p.author, maxAuthor)
	d := store.Delivery{ID: id, Event: "push", Repo: p.repo, Ref: p.ref, Commit: p.commit, ReceivedAt: h.now()}
	return h.deliver(log, d, func() (int, response) { return h.startPushRuns(log, p, id) })
}

// startPushRuns matches the push against every loaded pipeline, by ref and
// then by changed files, and queues one run per match.
func (h *Handler) startPushRuns(log *slog.Logger, p push, id string) (int, response) {
	if p.deleted {
		log.Info("webhook accepted", "repo", p.repo, "ref", p.ref, "result", "ref deleted")
		return http.StatusAccepted, response{Message: "ref deleted; nothing started"}
	}
	if p.commit == "" {
		log.Warn("webhook accepted", "repo", p.repo, "ref", p.ref, "result", "no commit")
		return http.StatusAccepted, response{Message: "push names no commit (after and head_commit are empty); nothing started"}
	}
	if p.tagObject {
		log.Debug("annotated tag: building the commit it points to", "ref", p.ref, "commit", p.commit)
	}

	ev := pipeline.PushEvent{Repo: p.repo, Ref: p.ref, DefaultBranch: p.defaultBranch}
	var reqs []runner.Request
	for _, pl := range h.pipelines() {
		if !pl.MatchesPush(ev) {
			continue
		}
		// An undecided push runs, and the runner computes its changed files with git.
		if pl.PushPaths(p.ref, p.files, p.filesComplete) == pipeline.PathSkip {
			continue
		}
		reqs = append(reqs, runner.Request{
			Pipeline:      pl,
			Trigger:       runner.TriggerPush,
			DeliveryID:    id,
			Repo:          p.repo,
			Ref:           p.ref,
			Commit:        p.commit,
			CloneURL:      p.cloneURL,
			Message:       p.message,
			Author:        p.author,
			Before:        p.before,
			ChangedFiles:  p.files,
			FilesComplete: p.filesComplete,
		})
	}
	noMatch := fmt.Sprintf("no pipeline matches a push of %s to %s", p.ref, p.repo)
	return h.enqueue(log.With("repo", p.repo, "ref", p.ref, "commit", p.commit), reqs, noMatch)
}

// parsePush reads a push payload. A push with an empty commits list (a new
// branch or tag) still names its commit in after and head_commit.
func parsePush(ev *github.PushEvent) push {
	p := push{
		ref:     ev.GetRef(),
		before:  ev.GetBefore(),
		commit:  ev.GetAfter(),
		deleted: ev.GetDeleted() || ev.GetAfter() == zeroCommit,
	}
	if repo := ev.GetRepo(); repo != nil {
		p.repo = repo.GetFullName()
		p.cloneURL = repo.GetCloneURL()
		p.defaultBranch = repo.GetDefaultBranch()
		if p.defaultBranch == "" {
			p.defaultBranch = repo.GetMasterBranch()
		}
	}
	if hc := ev.GetHeadCommit(); hc != nil {
		switch id := hc.GetID(); {
		case p.commit == "" || p.commit == zeroCommit:
			p.commit = id
		case id != "" && id != p.commit && strings.HasPrefix(p.ref, "refs/tags/"):
			// For an annotated tag, after is the tag object and head_commit
			// the commit it points to (GitHub's push payload reference,
			// field head_commit). The run builds that commit.
			p.commit = id
			p.tagObject = true
		}
		p.message = hc.GetMessage()
		p.author = hc.GetAuthor().GetName()
	}
	if p.deleted {
		p.commit = ""
	}
	p.files, p.filesComplete = changedFiles(ev)
	return p
}

// changedFiles returns the union of the files the push's listed commits
// added, modified and removed, and whether that list is known to be every
// change between before and after. It is not for a forced push (the files
// of the commits it dropped changed too, but no listed commit names them),
// a push that created its ref (before is zero), a push that lists no
// commits, or a push whose list GitHub truncated.
func changedFiles(ev *github.PushEvent) (files []string, complete bool) {
	commits := make([]pipeline.Commit, len(ev.Commits))
	for i, c := range ev.Commits {
		commits[i] = pipeline.Commit{Added: c.Added, Removed: c.Removed, Modified: c.Modified}
	}
	files = pipeline.ChangedFiles(commits)

	n := len(ev.Commits)
	// size is only sent by GitHub Enterprise Server: the number of commits
	// in the push, listed or not.
	truncated := n >= maxPushCommits || (ev.Size != nil && ev.GetSize() > n)
	// NOTE: users report that GitHub cuts short the file lists of a commit
	// that changes thousands of files. GitHub's payload reference states no
	// such limit, so such a push still counts as complete here.
	complete = !ev.GetForced() && !ev.GetCreated() && n > 0 && !truncated
	return files, complete
}

// Commit messages and author names are stored with every run and shown on
// every run list; a push of a 20 MB message must not make every page that
// large.
const (
	maxMessage = 16 << 10
	maxAuthor  = 256
)

// truncate shortens s to at most n bytes on a UTF-8 boundary, marking the
// cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// isCommitID reports whether s is a full SHA-1 or SHA-256 object name.
func isCommitID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
