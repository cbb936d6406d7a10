package runner

import (
	"context"
	"strings"

	"github.com/quai-ci/quai/git"
	"github.com/quai-ci/quai/pipeline"
)

// skipError ends a run with status skipped: its path filters match no
// changed file.
type skipError struct {
	reason string
}

func (e *skipError) Error() string { return "skipped: " + e.reason }

// filterPaths applies the pipeline's path filters once the commit is
// checked out. The webhook's file list decides when it is complete; else
// the files come from git, comparing the commit with the one the ref had
// before. When git cannot tell either (the earlier commit is gone after a
// forced push, or the ref is new), the run goes ahead and logs why.
func (r *Runner) filterPaths(ctx context.Context, j job, dir string, out *logWriter) error {
	var decide func(files []string, complete bool) pipeline.PathDecision
	switch {
	case j.run.Trigger == TriggerPush && j.plan.On.Push != nil:
		decide = func(files []string, complete bool) pipeline.PathDecision {
			return j.plan.PushPaths(j.run.Ref, files, complete)
		}
	case j.run.Trigger == TriggerPullRequest && j.plan.On.PullRequest != nil:
		decide = j.plan.PullRequestPaths
	default:
		return nil
	}

	switch decide(j.changedFiles, j.filesComplete) {
	case pipeline.PathRun:
		return nil
	case pipeline.PathSkip:
		return &skipError{reason: "no changed file matches the pipeline's path filters"}
	}

	before := j.before
	if before == "" || strings.Trim(before, "0") == "" {
		out.Printf("path filters: the push names no earlier commit to compare with, so the run goes ahead")
		return nil
	}
	if err := git.Fetch(ctx, j.run.CloneURL, before, dir, r.cfg.GitHubToken); err != nil {
		out.Printf("path filters: cannot compare with %s (%v), so the run goes ahead", before, err)
		return nil
	}
	files, err := git.ChangedFiles(ctx, dir, before, j.run.Commit)
	if err != nil {
		out.Printf("path filters: comparing %s with %s failed (%v), so the run goes ahead", before, j.run.Commit, err)
		return nil
	}
	if decide(files, true) == pipeline.PathSkip {
		return &skipError{reason: "no file changed between " + before[:12] + " and " + j.run.Commit[:12] + " matches the pipeline's path filters"}
	}
	out.Printf("path filters: %d file(s) changed since %s, and one matches", len(files), before[:min(12, len(before))])
	return nil
}
