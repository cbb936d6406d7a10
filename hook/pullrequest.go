package hook

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/google/go-github/v60/github"

	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/runner"
	"github.com/quai-ci/quai/store"
)

// pullRequest holds the fields quai reads from a pull_request payload.
type pullRequest struct {
	number int
	action string
	// repo is the base repository's "owner/name".
	repo       string
	baseBranch string
	baseCommit string
	// commit is the head commit, the one a run checks out.
	commit string
	// cloneURL is the head repository's, else the base repository's.
	cloneURL string
	// headRepo is the head repository's "owner/name", empty when GitHub
	// names none.
	headRepo string
	title    string
	author   string
}

func (pr pullRequest) event() pipeline.PullRequestEvent {
	return pipeline.PullRequestEvent{Repo: pr.repo, Action: pr.action, BaseBranch: pr.baseBranch, HeadRepo: pr.headRepo}
}

// ref is the ref GitHub keeps for the pull request's head in the base
// repository.
func (pr pullRequest) ref() string {
	return fmt.Sprintf("refs/pull/%d/head", pr.number)
}

// parsePullRequest reads a pull_request payload.
func parsePullRequest(ev *github.PullRequestEvent) pullRequest {
	p := ev.GetPullRequest()
	base, head := p.GetBase(), p.GetHead()
	pr := pullRequest{
		number:     ev.GetNumber(),
		action:     ev.GetAction(),
		repo:       base.GetRepo().GetFullName(),
		baseBranch: base.GetRef(),
		baseCommit: base.GetSHA(),
		commit:     head.GetSHA(),
		cloneURL:   head.GetRepo().GetCloneURL(),
		title:      p.GetTitle(),
		author:     p.GetUser().GetLogin(),
	}
	if pr.number == 0 {
		pr.number = p.GetNumber()
	}
	if pr.repo == "" {
		pr.repo = ev.GetRepo().GetFullName()
	}
	// GitHub sends a null head repository once the fork is deleted. The
	// commit is still in the base repository under refs/pull/<n>/head, and
	// the empty headRepo counts as a fork.
	pr.headRepo = head.GetRepo().GetFullName()
	if pr.cloneURL == "" {
		pr.cloneURL = ev.GetRepo().GetCloneURL()
	}
	return pr
}

// pullRequest records a pull_request delivery and queues a run for each
// matching pipeline.
func (h *Handler) pullRequest(log *slog.Logger, id string, payload []byte) (int, response) {
	var ev github.PullRequestEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		log.Warn("webhook rejected", "error", err)
		return http.StatusBadRequest, response{Message: fmt.Sprintf("invalid pull_request payload: %v", err)}
	}
	pr := parsePullRequest(&ev)
	d := store.Delivery{ID: id, Event: "pull_request", Repo: pr.repo, Commit: pr.commit, ReceivedAt: h.now()}
	if pr.number > 0 {
		d.Ref = pr.ref()
	}
	return h.deliver(log, d, func() (int, response) { return h.startPullRequestRuns(log, pr, id) })
}

// startPullRequestRuns matches the pull request event against every loaded
// pipeline and queues one run per match. The payload lists no changed
// files, so paths filters are left to the run, which asks git.
func (h *Handler) startPullRequestRuns(log *slog.Logger, pr pullRequest, id string) (int, response) {
	log = log.With("repo", pr.repo, "ref", pr.ref(), "commit", pr.commit)
	if pr.number <= 0 || pr.commit == "" {
		log.Warn("webhook accepted", "result", "no pull request head")
		return http.StatusAccepted, response{Message: "pull request names no number or head commit; nothing started"}
	}

	ev := pr.event()
	var reqs []runner.Request
	for _, pl := range h.pipelines() {
		if !pl.MatchesPullRequest(ev) {
			continue
		}
		reqs = append(reqs, runner.Request{
			Pipeline:    pl,
			Trigger:     runner.TriggerPullRequest,
			DeliveryID:  id,
			Repo:        pr.repo,
			Ref:         pr.ref(),
			Commit:      pr.commit,
			CloneURL:    pr.cloneURL,
			Message:     pr.title,
			Author:      pr.author,
			PullRequest: pr.number,
			Fork:        ev.FromFork(),
			Before:      pr.baseCommit,
		})
	}
	noMatch := fmt.Sprintf("no pipeline matches pull request #%d (%s) to %s of %s", pr.number, pr.action, pr.baseBranch, pr.repo)
	return h.enqueue(log, reqs, noMatch)
}
