package hook

import "github.com/google/go-github/v60/github"

// push is what quai needs from a push payload.
type push struct {
	repo          string
	ref           string
	commit        string
	cloneURL      string
	defaultBranch string
	message       string
	author        string
	deleted       bool
}

// parsePush reads a push payload. A push with an empty commits list (a new
// branch or tag) still names its commit in after and head_commit.
func parsePush(ev *github.PushEvent) push {
	p := push{
		ref:     ev.GetRef(),
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
		if p.commit == "" || p.commit == zeroCommit {
			p.commit = hc.GetID()
		}
		p.message = hc.GetMessage()
		p.author = hc.GetAuthor().GetName()
	}
	if p.deleted {
		p.commit = ""
	}
	return p
}
