package hook

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/runner"
)

// Facts of testdata/github/pull_request/opened.json and synchronize.json.
const (
	prNumber     = 2
	prHeadCommit = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
	prBaseCommit = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
	prTitle      = "Update the README with new information."
)

// prPipeline runs on pull requests of the fixture repository.
func prPipeline(trigger pipeline.PullRequestTrigger) *pipeline.Pipeline {
	return &pipeline.Pipeline{Name: "checks", Repo: fixtureRepo, On: pipeline.Triggers{PullRequest: &trigger}}
}

func TestPullRequestStartsRun(t *testing.T) {
	for _, fixture := range []string{"pull_request/opened.json", "pull_request/synchronize.json"} {
		t.Run(fixture, func(t *testing.T) {
			pl := prPipeline(pipeline.PullRequestTrigger{})
			env := newTestEnv(t, pl)

			rec := env.serve(newPush("pull_request", "delivery-pr", readFixture(t, fixture)))
			if rec.Code != http.StatusAccepted {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, http.StatusAccepted, rec.Body)
			}
			reqs := env.queue.requests()
			if len(reqs) != 1 {
				t.Fatalf("queued %d runs, want 1", len(reqs))
			}
			want := runner.Request{
				Pipeline:    pl,
				Trigger:     runner.TriggerPullRequest,
				DeliveryID:  "delivery-pr",
				Repo:        fixtureRepo,
				Ref:         fmt.Sprintf("refs/pull/%d/head", prNumber),
				Commit:      prHeadCommit,
				CloneURL:    fixtureCloneURL,
				Message:     prTitle,
				Author:      "Codertocat",
				PullRequest: prNumber,
				Fork:        false,
				Before:      prBaseCommit,
			}
			if !reflect.DeepEqual(reqs[0], want) {
				t.Errorf("queued request\n got %+v\nwant %+v", reqs[0], want)
			}
			d := env.delivery(t, "delivery-pr")
			if d.Event != "pull_request" || d.Ref != want.Ref || d.Commit != prHeadCommit || d.Repo != fixtureRepo {
				t.Errorf("stored delivery %+v, want event pull_request, ref %s, commit %s", d, want.Ref, prHeadCommit)
			}
			if len(d.RunIDs) != 1 {
				t.Errorf("stored delivery run IDs %v, want one", d.RunIDs)
			}
		})
	}
}

func TestPullRequestActionsAndBranches(t *testing.T) {
	tests := []struct {
		name    string
		action  string
		trigger pipeline.PullRequestTrigger
		want    bool
	}{
		{"opened by default", "opened", pipeline.PullRequestTrigger{}, true},
		{"synchronize by default", "synchronize", pipeline.PullRequestTrigger{}, true},
		{"reopened by default", "reopened", pipeline.PullRequestTrigger{}, true},
		{"closed not by default", "closed", pipeline.PullRequestTrigger{}, false},
		{"edited not by default", "edited", pipeline.PullRequestTrigger{}, false},
		{"listed type", "labeled", pipeline.PullRequestTrigger{Types: []string{"labeled"}}, true},
		{"unlisted type", "opened", pipeline.PullRequestTrigger{Types: []string{"labeled"}}, false},
		{"base branch matches", "opened", pipeline.PullRequestTrigger{Branches: []string{"mas*"}}, true},
		{"base branch differs", "opened", pipeline.PullRequestTrigger{Branches: []string{"release/*"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, prPipeline(tt.trigger))
			body := derivePayload(t, "pull_request/opened.json", func(doc map[string]any) {
				doc["action"] = tt.action
			})

			rec := env.serve(newPush("pull_request", "delivery-action", body))
			if rec.Code != http.StatusAccepted {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, http.StatusAccepted, rec.Body)
			}
			if got := len(env.queue.requests()); (got == 1) != tt.want || got > 1 {
				t.Fatalf("queued %d runs, want match %v", got, tt.want)
			}
			if !tt.want {
				d := env.delivery(t, "delivery-action")
				if !strings.Contains(d.Result, "no pipeline matches pull request #2 ("+tt.action+")") {
					t.Errorf("stored delivery result %q does not name the pull request and action", d.Result)
				}
			}
		})
	}
}

func TestPullRequestNeedsTrigger(t *testing.T) {
	// A pipeline that runs on pushes only ignores pull requests.
	env := newTestEnv(t, masterPipeline(t))
	rec := env.serve(newPush("pull_request", "delivery-notrigger", readFixture(t, "pull_request/opened.json")))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, http.StatusAccepted, rec.Body)
	}
	env.assertNothingQueued(t)
}

func TestPullRequestFork(t *testing.T) {
	const forkCloneURL = "https://github.com/octo-fork/Hello-World.git"
	tests := []struct {
		name     string
		change   func(t *testing.T, head map[string]any)
		fork     bool
		cloneURL string
	}{
		{"same repository", func(*testing.T, map[string]any) {}, false, fixtureCloneURL},
		{"fork", func(t *testing.T, head map[string]any) {
			repo := object(t, head, "repo")
			repo["full_name"] = "octo-fork/Hello-World"
			repo["clone_url"] = forkCloneURL
		}, true, forkCloneURL},
		{"same name in other case", func(t *testing.T, head map[string]any) {
			object(t, head, "repo")["full_name"] = strings.ToLower(fixtureRepo)
		}, false, fixtureCloneURL},
		// GitHub sends a null head repository once the fork is deleted.
		{"deleted fork", func(_ *testing.T, head map[string]any) {
			head["repo"] = nil
		}, true, fixtureCloneURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, prPipeline(pipeline.PullRequestTrigger{}))
			body := derivePayload(t, "pull_request/opened.json", func(doc map[string]any) {
				tt.change(t, object(t, object(t, doc, "pull_request"), "head"))
			})

			rec := env.serve(newPush("pull_request", "delivery-fork", body))
			if rec.Code != http.StatusAccepted {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, http.StatusAccepted, rec.Body)
			}
			reqs := env.queue.requests()
			if len(reqs) != 1 {
				t.Fatalf("queued %d runs, want 1", len(reqs))
			}
			if reqs[0].Fork != tt.fork {
				t.Errorf("queued Fork = %v, want %v", reqs[0].Fork, tt.fork)
			}
			if reqs[0].CloneURL != tt.cloneURL {
				t.Errorf("queued clone URL %q, want %q", reqs[0].CloneURL, tt.cloneURL)
			}
			if reqs[0].Repo != fixtureRepo {
				t.Errorf("queued repo %q, want the base repository %q", reqs[0].Repo, fixtureRepo)
			}
		})
	}
}

func TestPullRequestRejected(t *testing.T) {
	tests := []struct {
		name   string
		body   []byte
		status int
		text   string
	}{
		{"invalid JSON", []byte(`{"number": "two"}`), http.StatusBadRequest, "invalid pull_request payload"},
		{"no head commit", []byte(`{"action": "opened", "number": 2, "pull_request": {"head": {}}}`), http.StatusAccepted, "no number or head commit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, prPipeline(pipeline.PullRequestTrigger{}))
			rec := env.serve(newPush("pull_request", "delivery-pr-bad", tt.body))
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if resp := decodeResponse(t, rec); !strings.Contains(resp.Message, tt.text) {
				t.Errorf("message %q does not contain %q", resp.Message, tt.text)
			}
			env.assertNothingQueued(t)
		})
	}
}

func FuzzPullRequestPayload(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "github", "pull_request", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("listing pull request fixtures: %v (found %d)", err, len(files))
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"pull_request": {"head": {"repo": null}}}`))

	env := newTestEnv(f, prPipeline(pipeline.PullRequestTrigger{}))
	var deliveries int
	f.Fuzz(func(t *testing.T, body []byte) {
		deliveries++
		rec := env.serve(newPush("pull_request", fmt.Sprintf("fuzz-pr-%d", deliveries), body))
		if rec.Code != http.StatusAccepted && rec.Code != http.StatusBadRequest {
			t.Fatalf("status = %d, want 202 or 400; body %s", rec.Code, rec.Body)
		}
		decodeResponse(t, rec)
	})
}
