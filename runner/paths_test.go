package runner

import (
	"strings"
	"testing"

	"github.com/quai-ci/quai/git"
	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
)

func TestPathFiltersAskGitWhenPayloadCannotDecide(t *testing.T) {
	requireGitBinary(t)
	repo := t.TempDir()
	gitIn(t, repo, "init", "-q", "-b", "main")
	commit := func(file, message string) string {
		writeText(t, repo+"/"+file, message+"\n")
		gitIn(t, repo, "add", "-A")
		gitIn(t, repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", message)
		return strings.TrimSpace(gitIn(t, repo, "rev-parse", "HEAD"))
	}
	base := commit("README.md", "start")
	srcOnly := commit("src/main.go", "code")
	docs := commit("docs/guide.md", "docs")

	s := openStore(t)
	r := New(Config{Store: s, Checkout: git.Checkout, Workspaces: t.TempDir()})
	startRunner(t, r)
	p := &pipeline.Pipeline{Name: "docs", Repo: "acme/docs", CloneURL: repo,
		On: pipeline.Triggers{Push: &pipeline.PushTrigger{Branches: []string{"main"}, Paths: []string{"docs/**"}}}}

	tests := []struct {
		name, before, after string
		want                store.Status
		reason              string
	}{
		{"only other files changed", base, srcOnly, store.StatusSkipped, "matches the pipeline's path filters"},
		{"a docs file changed", srcOnly, docs, store.StatusSuccess, ""},
		{"new branch without an earlier commit", strings.Repeat("0", 40), srcOnly, store.StatusSuccess, ""},
		{"earlier commit gone", strings.Repeat("1", 40), srcOnly, store.StatusSuccess, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run, err := r.Enqueue(Request{Pipeline: p, Trigger: TriggerPush, Ref: "refs/heads/main",
				Commit: tt.after, Before: tt.before, FilesComplete: false})
			if err != nil {
				t.Fatal(err)
			}
			got := waitStatus(t, s, run.ID, tt.want)
			if !strings.Contains(got.Error, tt.reason) {
				t.Errorf("reason %q, want it to contain %q", got.Error, tt.reason)
			}
		})
	}
}
