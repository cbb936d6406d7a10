package runner

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quai-ci/quai/git"
	"github.com/quai-ci/quai/internal/testenv"
	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
)

// refFixture is a local repository whose default branch is "trunk", and a
// runner with a real store that queues runs of it without executing them.
type refFixture struct {
	t      *testing.T
	dir    string
	store  *store.Store
	runner *Runner
}

func newRefFixture(t *testing.T) *refFixture {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		testenv.Skip(t, "git", err.Error())
	}
	f := &refFixture{t: t, dir: filepath.Join(t.TempDir(), "origin")}
	f.git("init", "--quiet", "--initial-branch=trunk", f.dir)

	st, err := store.Open(filepath.Join(t.TempDir(), "quai.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.store = st
	f.runner = New(Config{Store: st, Workspaces: t.TempDir()})
	return f
}

// git runs git in the repository with a configuration isolated from the
// machine's and returns its trimmed output.
func (f *refFixture) git(args ...string) string {
	f.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = filepath.Dir(f.dir)
	if _, err := os.Stat(f.dir); err == nil {
		cmd.Dir = f.dir
	}
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=quai test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=quai test", "GIT_COMMITTER_EMAIL=test@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		f.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (f *refFixture) commit() string {
	f.t.Helper()
	f.git("commit", "--quiet", "--allow-empty", "--message=test commit")
	return f.git("rev-parse", "HEAD")
}

func (f *refFixture) pipeline(name string, manual bool) *pipeline.Pipeline {
	return &pipeline.Pipeline{
		Name:     name,
		Repo:     "acme/" + name,
		CloneURL: f.dir,
		On:       pipeline.Triggers{Manual: manual},
	}
}

// setStatus moves a stored run to status.
func (f *refFixture) setStatus(id uint64, status store.Status) {
	f.t.Helper()
	_, err := f.store.UpdateRun(id, func(r *store.Run) error {
		r.Status = status
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *refFixture) runCount() int {
	f.t.Helper()
	runs, err := f.store.ListRuns("", 100, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	return len(runs)
}

func TestRunManualResolvesRef(t *testing.T) {
	f := newRefFixture(t)
	first := f.commit()
	f.git("tag", "--annotate", "--message=release", "v1", first)
	head := f.commit()
	f.git("branch", "feature/x", first)
	p := f.pipeline("web", true)

	tests := []struct {
		ref        string
		wantRef    string
		wantCommit string
	}{
		{"", "refs/heads/trunk", head},
		{"trunk", "refs/heads/trunk", head},
		{"feature/x", "refs/heads/feature/x", first},
		{"v1", "refs/tags/v1", first},
		{first, "", first},
	}
	for _, tt := range tests {
		name := tt.ref
		if name == "" {
			name = "default branch"
		}
		t.Run(name, func(t *testing.T) {
			run, err := f.runner.RunManual(context.Background(), p, tt.ref, "api from 127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			stored, err := f.store.Run(run.ID)
			if err != nil {
				t.Fatal(err)
			}
			if stored.Ref != tt.wantRef {
				t.Errorf("Ref = %q, want %q", stored.Ref, tt.wantRef)
			}
			if stored.Commit != tt.wantCommit {
				t.Errorf("Commit = %s, want %s", stored.Commit, tt.wantCommit)
			}
			if stored.Trigger != "manual" {
				t.Errorf("Trigger = %q, want manual", stored.Trigger)
			}
			if stored.Author != "api from 127.0.0.1" {
				t.Errorf("Author = %q, want the requester", stored.Author)
			}
			if stored.Status != store.StatusQueued {
				t.Errorf("Status = %s, want queued", stored.Status)
			}
			if stored.CloneURL != f.dir || stored.Repo != "acme/web" {
				t.Errorf("CloneURL %q, Repo %q; want %q, acme/web", stored.CloneURL, stored.Repo, f.dir)
			}
		})
	}
}

func TestRunManualRejects(t *testing.T) {
	f := newRefFixture(t)
	f.commit()

	_, err := f.runner.RunManual(context.Background(), f.pipeline("web", true), "nope", "me")
	if !errors.Is(err, ErrRefNotResolved) {
		t.Errorf("unknown ref: error = %v, want ErrRefNotResolved", err)
	}
	if !errors.Is(err, git.ErrRefNotFound) {
		t.Errorf("unknown ref: error = %v, want git.ErrRefNotFound", err)
	}
	for _, want := range []string{`"web"`, `"nope"`, f.dir} {
		if err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}

	_, err = f.runner.RunManual(context.Background(), f.pipeline("web", true), "a..b", "me")
	if !errors.Is(err, ErrRefNotResolved) || !errors.Is(err, git.ErrInvalidRef) {
		t.Errorf("invalid ref: error = %v, want ErrRefNotResolved and git.ErrInvalidRef", err)
	}

	// The repository is never read when manual runs are off.
	off := f.pipeline("quiet", false)
	off.CloneURL = filepath.Join(t.TempDir(), "missing")
	_, err = f.runner.RunManual(context.Background(), off, "trunk", "me")
	if !errors.Is(err, ErrManualDisabled) {
		t.Errorf("manual: false: error = %v, want ErrManualDisabled", err)
	}

	missing := f.pipeline("gone", true)
	missing.CloneURL = filepath.Join(t.TempDir(), "missing")
	_, err = f.runner.RunManual(context.Background(), missing, "", "me")
	if !errors.Is(err, ErrRefNotResolved) {
		t.Errorf("missing repository: error = %v, want ErrRefNotResolved", err)
	}

	if n := f.runCount(); n != 0 {
		t.Errorf("%d runs stored, want none after rejected requests", n)
	}
}

func TestRunScheduledSkipsWhileLive(t *testing.T) {
	f := newRefFixture(t)
	head := f.commit()
	p := f.pipeline("nightly", false)
	other := f.pipeline("other", true)
	daily := pipeline.Schedule{Cron: "30 2 * * *", Timezone: "Europe/Paris"}
	ctx := context.Background()

	// Live runs of other pipelines or triggers do not hold the schedule.
	if _, _, err := f.runner.RunScheduled(ctx, other, daily); err != nil {
		t.Fatal(err)
	}
	if _, err := f.runner.RunManual(ctx, f.pipeline("nightly", true), "", "me"); err != nil {
		t.Fatal(err)
	}

	first, started, err := f.runner.RunScheduled(ctx, p, daily)
	if err != nil {
		t.Fatal(err)
	}
	if !started {
		t.Fatalf("first activation did not start a run; live run %d holds it", first.ID)
	}
	if first.Trigger != "schedule" || first.Ref != "refs/heads/trunk" || first.Commit != head {
		t.Errorf("run = trigger %q, ref %q, commit %s; want schedule, refs/heads/trunk, %s",
			first.Trigger, first.Ref, first.Commit, head)
	}
	if !strings.Contains(first.Message, "30 2 * * *") || !strings.Contains(first.Message, "Europe/Paris") {
		t.Errorf("Message %q does not name the schedule", first.Message)
	}

	for _, status := range []store.Status{store.StatusQueued, store.StatusRunning} {
		f.setStatus(first.ID, status)
		got, started, err := f.runner.RunScheduled(ctx, p, daily)
		if err != nil {
			t.Fatal(err)
		}
		if started {
			t.Errorf("run %d started while run %d is %s", got.ID, first.ID, status)
		}
		if got.ID != first.ID {
			t.Errorf("skipped activation returned run %d, want the live run %d", got.ID, first.ID)
		}
	}

	f.setStatus(first.ID, store.StatusFailure)
	next, started, err := f.runner.RunScheduled(ctx, p, daily)
	if err != nil {
		t.Fatal(err)
	}
	if !started || next.ID == first.ID {
		t.Errorf("activation after run %d failed: started %v, run %d; want a new run",
			first.ID, started, next.ID)
	}
}

func TestRunScheduledBranch(t *testing.T) {
	f := newRefFixture(t)
	first := f.commit()
	f.git("branch", "release/1", first)
	f.git("tag", "nightly", first)
	head := f.commit()
	f.git("branch", "nightly", head)
	ctx := context.Background()

	tests := []struct {
		branch     string
		wantRef    string
		wantCommit string
	}{
		{"release/1", "refs/heads/release/1", first},
		{"nightly", "refs/heads/nightly", head},
	}
	for _, tt := range tests {
		t.Run(tt.branch, func(t *testing.T) {
			p := f.pipeline("p-"+strings.ReplaceAll(tt.branch, "/", "-"), true)
			run, started, err := f.runner.RunScheduled(ctx, p, pipeline.Schedule{Cron: "@daily", Branch: tt.branch})
			if err != nil {
				t.Fatal(err)
			}
			if !started {
				t.Fatal("no run started")
			}
			if run.Ref != tt.wantRef || run.Commit != tt.wantCommit {
				t.Errorf("run of %s = %s at %s, want %s at %s", tt.branch, run.Ref, run.Commit,
					tt.wantRef, tt.wantCommit)
			}
		})
	}

	// A tag is never taken for a schedule's branch.
	f.git("tag", "only-tag", first)
	_, started, err := f.runner.RunScheduled(ctx, f.pipeline("tagged", true),
		pipeline.Schedule{Cron: "@daily", Branch: "only-tag"})
	if !errors.Is(err, git.ErrRefNotFound) || !errors.Is(err, ErrRefNotResolved) {
		t.Errorf("branch that is only a tag: error = %v, want ErrRefNotResolved and git.ErrRefNotFound", err)
	}
	if started {
		t.Error("a run started for a branch that does not exist")
	}
}
