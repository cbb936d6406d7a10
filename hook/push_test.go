package hook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"

	"github.com/quai-ci/quai/pipeline"
)

// updatePush derives from branch-created.json a push that updates master
// from fixtureCommit with the given commits, each a map of "added",
// "modified" and "removed" lists.
func updatePush(t *testing.T, commits []map[string][]string, change func(map[string]any)) []byte {
	t.Helper()
	return derivePayload(t, "push/branch-created.json", func(doc map[string]any) {
		doc["before"] = fixtureCommit
		doc["created"] = false
		list := make([]any, len(commits))
		for i, files := range commits {
			c := map[string]any{"id": fmt.Sprintf("%040x", i+1), "message": "change", "distinct": true}
			for _, kind := range []string{"added", "modified", "removed"} {
				c[kind] = files[kind]
			}
			list[i] = c
		}
		doc["commits"] = list
		if change != nil {
			change(doc)
		}
	})
}

func TestPushChangedFiles(t *testing.T) {
	two := []map[string][]string{
		{"added": {"src/b.go"}, "modified": {"README.md"}},
		{"modified": {"README.md", "src/a.go"}, "removed": {"old.txt"}},
	}
	union := []string{"README.md", "old.txt", "src/a.go", "src/b.go"}
	many := make([]map[string][]string, maxPushCommits)
	for i := range many {
		many[i] = map[string][]string{"modified": {"README.md"}}
	}

	tests := []struct {
		name     string
		body     func(t *testing.T) []byte
		files    []string
		complete bool
	}{
		{"update", func(t *testing.T) []byte { return updatePush(t, two, nil) }, union, true},
		{"forced", func(t *testing.T) []byte {
			return updatePush(t, two, func(doc map[string]any) { doc["forced"] = true })
		}, union, false},
		{"created branch", func(t *testing.T) []byte { return readFixture(t, "push/branch-created.json") }, []string{"README.md"}, false},
		{"created tag without commits", func(t *testing.T) []byte { return readFixture(t, "push/tag-created-ghes-35.json") }, nil, false},
		{"no commits", func(t *testing.T) []byte { return updatePush(t, nil, nil) }, nil, false},
		{"commits list at GitHub's cap", func(t *testing.T) []byte { return updatePush(t, many, nil) }, []string{"README.md"}, false},
		{"size above listed commits", func(t *testing.T) []byte {
			return updatePush(t, two, func(doc map[string]any) { doc["size"] = 3 })
		}, union, false},
		{"size equal to listed commits", func(t *testing.T) []byte {
			return updatePush(t, two, func(doc map[string]any) { doc["size"] = 2 })
		}, union, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev github.PushEvent
			if err := json.Unmarshal(tt.body(t), &ev); err != nil {
				t.Fatal(err)
			}
			p := parsePush(&ev)
			if !reflect.DeepEqual(p.files, tt.files) {
				t.Errorf("files %q, want %q", p.files, tt.files)
			}
			if p.filesComplete != tt.complete {
				t.Errorf("complete = %v, want %v", p.filesComplete, tt.complete)
			}
		})
	}
}

func TestPushPathsFilter(t *testing.T) {
	docsOnly := []map[string][]string{{"modified": {"docs/guide.md", "docs/img/a.png"}}}
	mixed := []map[string][]string{{"modified": {"docs/guide.md"}}, {"added": {"src/main.go"}}}

	tests := []struct {
		name         string
		paths        []string
		pathsIgnore  []string
		commits      []map[string][]string
		forced       bool
		wantQueued   bool
		wantComplete bool
	}{
		{"no filters", nil, nil, docsOnly, false, true, true},
		{"paths match", []string{"src/**"}, nil, mixed, false, true, true},
		{"paths miss", []string{"src/**"}, nil, docsOnly, false, false, false},
		{"ignore drops every file", nil, []string{"docs/**"}, docsOnly, false, false, false},
		{"ignore leaves a file", nil, []string{"docs/**"}, mixed, false, true, true},
		{"ignored file does not count for paths", []string{"**/*.md", "src/**"}, []string{"docs/**"}, docsOnly, false, false, false},
		// The payload cannot decide a forced push: the run asks git.
		{"forced push undecided", []string{"src/**"}, nil, docsOnly, true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl := &pipeline.Pipeline{Name: "web", Repo: fixtureRepo, On: pipeline.Triggers{Push: &pipeline.PushTrigger{
				Branches: []string{"master"}, Paths: tt.paths, PathsIgnore: tt.pathsIgnore,
			}}}
			env := newTestEnv(t, pl)
			body := updatePush(t, tt.commits, func(doc map[string]any) { doc["forced"] = tt.forced })

			rec := env.serve(newPush("push", "delivery-paths", body))
			if rec.Code != http.StatusAccepted {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, http.StatusAccepted, rec.Body)
			}
			reqs := env.queue.requests()
			if !tt.wantQueued {
				env.assertNothingQueued(t)
				if d := env.delivery(t, "delivery-paths"); !strings.Contains(d.Result, "no pipeline matches") {
					t.Errorf("stored delivery result %q does not say that no pipeline matches", d.Result)
				}
				return
			}
			if len(reqs) != 1 {
				t.Fatalf("queued %d runs, want 1", len(reqs))
			}
			if reqs[0].FilesComplete != tt.wantComplete {
				t.Errorf("queued FilesComplete = %v, want %v", reqs[0].FilesComplete, tt.wantComplete)
			}
			if reqs[0].Before != fixtureCommit {
				t.Errorf("queued Before = %q, want %q", reqs[0].Before, fixtureCommit)
			}
			if len(reqs[0].ChangedFiles) == 0 {
				t.Errorf("queued no changed files")
			}
		})
	}
}

func TestPushBranchKeepsAfter(t *testing.T) {
	// Only a tag push may name a tag object in after; on a branch, after
	// is the pushed commit even when head_commit disagrees.
	const headID = "b9d5e7c1a2f3049586d7e8f9a0b1c2d3e4f5a6b7"
	body := derivePayload(t, "push/branch-created.json", func(doc map[string]any) {
		object(t, doc, "head_commit")["id"] = headID
	})
	env := newTestEnv(t, masterPipeline(t))

	rec := env.serve(newPush("push", "delivery-branch", body))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, http.StatusAccepted, rec.Body)
	}
	reqs := env.queue.requests()
	if len(reqs) != 1 {
		t.Fatalf("queued %d runs, want 1", len(reqs))
	}
	if reqs[0].Commit != fixtureCommit {
		t.Errorf("queued commit %q, want after %q", reqs[0].Commit, fixtureCommit)
	}
}
