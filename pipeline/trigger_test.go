package pipeline

import (
	"path/filepath"
	"reflect"
	"testing"
)

func TestMatchesPush(t *testing.T) {
	onBranches := func(branches ...string) *Pipeline {
		return &Pipeline{Repo: "acme/web", On: Triggers{Push: &PushTrigger{Branches: branches}}}
	}
	onTags := func(tags ...string) *Pipeline {
		return &Pipeline{Repo: "acme/web", On: Triggers{Push: &PushTrigger{Tags: tags}}}
	}
	defaults := &Pipeline{Repo: "acme/web", On: Triggers{Push: &PushTrigger{}}}
	with := func(t PushTrigger) *Pipeline {
		return &Pipeline{Repo: "acme/web", On: Triggers{Push: &t}}
	}
	noPush := &Pipeline{Repo: "acme/web"}
	push := func(ref string) PushEvent {
		return PushEvent{Repo: "acme/web", Ref: ref, DefaultBranch: "main"}
	}

	tests := []struct {
		name string
		p    *Pipeline
		ev   PushEvent
		want bool
	}{
		{"default branch by default", defaults, push("refs/heads/main"), true},
		{"other branch not by default", defaults, push("refs/heads/dev"), false},
		{"tag not by default", defaults, push("refs/tags/v1"), false},
		{"unknown default branch", defaults, PushEvent{Repo: "acme/web", Ref: "refs/heads/main"}, false},
		{"empty branch and default", defaults, PushEvent{Repo: "acme/web", Ref: "refs/heads/"}, false},
		{"deleted default branch", defaults,
			PushEvent{Repo: "acme/web", Ref: "refs/heads/main", DefaultBranch: "main", Deleted: true}, false},
		{"other repository", defaults,
			PushEvent{Repo: "acme/api", Ref: "refs/heads/main", DefaultBranch: "main"}, false},
		{"repository case differs", defaults,
			PushEvent{Repo: "ACME/Web", Ref: "refs/heads/main", DefaultBranch: "main"}, true},
		{"no push event", noPush, push("refs/heads/main"), false},
		{"pull request ref", defaults, push("refs/pull/1/head"), false},
		{"bare branch name", defaults, push("main"), false},

		{"exact branch", onBranches("main"), push("refs/heads/main"), true},
		{"exact branch is not a prefix", onBranches("main"), push("refs/heads/main2"), false},
		{"listed branch replaces default", onBranches("dev"), push("refs/heads/main"), false},
		{"star in one part", onBranches("release/*"), push("refs/heads/release/1.0"), true},
		{"star does not cross slash", onBranches("release/*"), push("refs/heads/release/1.0/fix"), false},
		{"double star crosses slash", onBranches("feature/**"), push("refs/heads/feature/a/b"), true},
		{"double star alone", onBranches("**"), push("refs/heads/a/b/c"), true},
		{"character class", onBranches("v[0-9]"), push("refs/heads/v2"), true},
		{"alternatives", onBranches("{main,dev}"), push("refs/heads/dev"), true},
		{"branch pattern ignores tags", onBranches("*"), push("refs/tags/v1"), false},
		{"deleted matching branch", onBranches("*"),
			PushEvent{Repo: "acme/web", Ref: "refs/heads/x", Deleted: true}, false},

		{"tag glob", onTags("v*"), push("refs/tags/v1.2.3"), true},
		{"tag glob mismatch", onTags("v*"), push("refs/tags/release-1"), false},
		{"tags only ignore branches", onTags("v*"), push("refs/heads/main"), false},
		{"deleted tag", onTags("v*"),
			PushEvent{Repo: "acme/web", Ref: "refs/tags/v1", Deleted: true}, false},
		{"tag with slash", onTags("release/*"), push("refs/tags/release/1.0"), true},
		{"empty tag name", onTags("**"), push("refs/tags/"), false},
		{"branch named like a ref", onBranches("refs/heads/main"), push("refs/heads/refs/heads/main"), true},

		// Ignore lists win over include lists and over the default.
		{"ignored branch", with(PushTrigger{Branches: []string{"release/*"}, BranchesIgnore: []string{"release/old"}}),
			push("refs/heads/release/old"), false},
		{"not ignored branch", with(PushTrigger{Branches: []string{"release/*"}, BranchesIgnore: []string{"release/old"}}),
			push("refs/heads/release/new"), true},
		{"ignore list alone allows others", with(PushTrigger{BranchesIgnore: []string{"wip/**"}}),
			push("refs/heads/feature/x"), true},
		{"ignore list alone ignores its own", with(PushTrigger{BranchesIgnore: []string{"wip/**"}}),
			push("refs/heads/wip/a/b"), false},
		{"ignore list alone ignores default branch", with(PushTrigger{BranchesIgnore: []string{"main"}}),
			push("refs/heads/main"), false},
		{"branch ignore list leaves tags out", with(PushTrigger{BranchesIgnore: []string{"wip"}}),
			push("refs/tags/v1"), false},
		{"ignored tag", with(PushTrigger{Tags: []string{"v*"}, TagsIgnore: []string{"v*-rc*"}}),
			push("refs/tags/v2.0-rc1"), false},
		{"not ignored tag", with(PushTrigger{Tags: []string{"v*"}, TagsIgnore: []string{"v*-rc*"}}),
			push("refs/tags/v2.0"), true},
		{"tag ignore list alone allows others", with(PushTrigger{TagsIgnore: []string{"nightly-*"}}),
			push("refs/tags/v1"), true},
		{"tag ignore list alone ignores its own", with(PushTrigger{TagsIgnore: []string{"nightly-*"}}),
			push("refs/tags/nightly-3"), false},
		{"tag ignore list leaves branches out", with(PushTrigger{TagsIgnore: []string{"nightly-*"}}),
			push("refs/heads/main"), false},
		{"path filters alone keep the default", with(PushTrigger{Paths: []string{"src/**"}}),
			push("refs/heads/main"), true},
		{"path filters alone keep other branches out", with(PushTrigger{Paths: []string{"src/**"}}),
			push("refs/heads/dev"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.MatchesPush(tt.ev); got != tt.want {
				t.Errorf("MatchesPush(%+v) = %v, want %v", tt.ev, got, tt.want)
			}
		})
	}
}

// A file without "on" must behave like on.push with no patterns.
func TestMatchesPushWithoutOnKey(t *testing.T) {
	data := readTestdata(t, filepath.Join("testdata", "valid", "minimal.yml"))
	p, problems := Parse("minimal.yml", data)
	if p == nil {
		t.Fatalf("Parse failed: %q", positioned(problems))
	}
	ev := PushEvent{Repo: "acme/minimal", Ref: "refs/heads/trunk", DefaultBranch: "trunk"}
	if !p.MatchesPush(ev) {
		t.Errorf("push to the default branch does not match")
	}
	ev.Ref = "refs/heads/main"
	if p.MatchesPush(ev) {
		t.Errorf("push to a branch other than the default matches")
	}
}

func TestPushPaths(t *testing.T) {
	filtered := func(paths, ignore []string) *Pipeline {
		return &Pipeline{Repo: "acme/web", On: Triggers{Push: &PushTrigger{Paths: paths, PathsIgnore: ignore}}}
	}
	src := filtered([]string{"src/**", "go.mod"}, nil)
	docsIgnored := filtered(nil, []string{"docs/**", "**/*.md"})
	both := filtered([]string{"src/**"}, []string{"src/**/*_test.go"})
	const main = "refs/heads/main"

	tests := []struct {
		name     string
		p        *Pipeline
		ref      string
		files    []string
		complete bool
		want     PathDecision
	}{
		{"no filter runs", &Pipeline{On: Triggers{Push: &PushTrigger{}}}, main, nil, true, PathRun},
		{"no push trigger runs", &Pipeline{}, main, nil, true, PathRun},
		{"deep match", src, main, []string{"README.md", "src/a/b/c.go"}, true, PathRun},
		{"exact file", src, main, []string{"go.mod"}, true, PathRun},
		{"double star matches the folder's files only", src, main, []string{"srcx/a.go"}, true, PathSkip},
		{"no match complete", src, main, []string{"README.md"}, true, PathSkip},
		{"no match incomplete", src, main, []string{"README.md"}, false, PathUndecided},
		{"match in incomplete list", src, main, []string{"src/x.go"}, false, PathRun},
		{"empty complete list", src, main, nil, true, PathSkip},
		{"empty incomplete list", src, main, nil, false, PathUndecided},
		{"ignore only, all ignored", docsIgnored, main, []string{"docs/a.txt", "src/README.md"}, true, PathSkip},
		{"ignore only, one counts", docsIgnored, main, []string{"docs/a.txt", "main.go"}, true, PathRun},
		{"ignore only, all ignored incomplete", docsIgnored, main, []string{"docs/a.txt"}, false, PathUndecided},
		{"ignore wins over include", both, main, []string{"src/pkg/x_test.go"}, true, PathSkip},
		{"include beside ignored", both, main, []string{"src/pkg/x_test.go", "src/pkg/x.go"}, true, PathRun},
		{"tag push always runs", src, "refs/tags/v1", nil, false, PathRun},
		{"branch with slash is still a branch", src, "refs/heads/release/1", []string{"a.md"}, true, PathSkip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.PushPaths(tt.ref, tt.files, tt.complete); got != tt.want {
				t.Errorf("PushPaths(%q, %q, %v) = %v, want %v", tt.ref, tt.files, tt.complete, got, tt.want)
			}
		})
	}
}

func TestPathDecisionString(t *testing.T) {
	tests := map[PathDecision]string{PathRun: "run", PathSkip: "skip", PathUndecided: "undecided", 0: "PathDecision(0)"}
	for d, want := range tests {
		if got := d.String(); got != want {
			t.Errorf("PathDecision(%d).String() = %q, want %q", int(d), got, want)
		}
	}
}

func TestChangedFiles(t *testing.T) {
	commits := []Commit{
		{Added: []string{"src/new.go"}, Modified: []string{"README.md"}},
		{Removed: []string{"src/new.go", "old.txt"}, Modified: []string{"README.md", "go.mod"}},
		{},
	}
	want := []string{"README.md", "go.mod", "old.txt", "src/new.go"}
	if got := ChangedFiles(commits); !reflect.DeepEqual(got, want) {
		t.Errorf("ChangedFiles = %q, want %q", got, want)
	}
	if got := ChangedFiles(nil); len(got) != 0 {
		t.Errorf("ChangedFiles(nil) = %q, want none", got)
	}
}

func TestMatchesPullRequest(t *testing.T) {
	defaults := &Pipeline{Repo: "acme/web", On: Triggers{PullRequest: &PullRequestTrigger{}}}
	toMain := &Pipeline{Repo: "acme/web", On: Triggers{PullRequest: &PullRequestTrigger{
		Branches: []string{"main", "release/**"}, Types: []string{"opened", "closed"},
	}}}
	pushOnly := &Pipeline{Repo: "acme/web", On: Triggers{Push: &PushTrigger{}}}
	pr := func(action, base string) PullRequestEvent {
		return PullRequestEvent{Repo: "acme/web", Action: action, BaseBranch: base, HeadRepo: "acme/web"}
	}

	tests := []struct {
		name string
		p    *Pipeline
		ev   PullRequestEvent
		want bool
	}{
		{"opened by default", defaults, pr("opened", "main"), true},
		{"synchronize by default", defaults, pr("synchronize", "dev"), true},
		{"reopened by default", defaults, pr("reopened", "dev"), true},
		{"closed not by default", defaults, pr("closed", "main"), false},
		{"edited not by default", defaults, pr("edited", "main"), false},
		{"other repository", defaults,
			PullRequestEvent{Repo: "acme/api", Action: "opened", BaseBranch: "main"}, false},
		{"repository case differs", defaults,
			PullRequestEvent{Repo: "Acme/WEB", Action: "opened", BaseBranch: "main"}, true},
		{"fork matches too", defaults,
			PullRequestEvent{Repo: "acme/web", Action: "opened", BaseBranch: "main", HeadRepo: "eve/web"}, true},
		{"no pull request trigger", pushOnly, pr("opened", "main"), false},
		{"listed type", toMain, pr("closed", "main"), true},
		{"unlisted type", toMain, pr("synchronize", "main"), false},
		{"base branch glob across slashes", toMain, pr("opened", "release/2/x"), true},
		{"base branch with refs prefix", toMain, pr("opened", "refs/heads/main"), true},
		{"other base branch", toMain, pr("opened", "dev"), false},
		{"empty base branch", defaults, pr("opened", ""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.MatchesPullRequest(tt.ev); got != tt.want {
				t.Errorf("MatchesPullRequest(%+v) = %v, want %v", tt.ev, got, tt.want)
			}
		})
	}
}

func TestPullRequestPaths(t *testing.T) {
	p := &Pipeline{On: Triggers{PullRequest: &PullRequestTrigger{
		Paths: []string{"src/**"}, PathsIgnore: []string{"**/*.md"},
	}}}
	tests := []struct {
		files    []string
		complete bool
		want     PathDecision
	}{
		{[]string{"src/a.go"}, true, PathRun},
		{[]string{"src/README.md"}, true, PathSkip},
		{[]string{"src/README.md"}, false, PathUndecided},
	}
	for _, tt := range tests {
		if got := p.PullRequestPaths(tt.files, tt.complete); got != tt.want {
			t.Errorf("PullRequestPaths(%q, %v) = %v, want %v", tt.files, tt.complete, got, tt.want)
		}
	}
	if got := (&Pipeline{}).PullRequestPaths(nil, true); got != PathRun {
		t.Errorf("PullRequestPaths without trigger = %v, want run", got)
	}
}

func TestPullRequestForkAndDeploy(t *testing.T) {
	optIn := &Pipeline{Repo: "acme/web", Build: &Build{}, Deploy: &Deploy{},
		On: Triggers{PullRequest: &PullRequestTrigger{Deploy: true}}}
	noOptIn := &Pipeline{Repo: "acme/web", Build: &Build{}, Deploy: &Deploy{},
		On: Triggers{PullRequest: &PullRequestTrigger{}}}
	noDeploy := &Pipeline{Repo: "acme/web", Build: &Build{},
		On: Triggers{PullRequest: &PullRequestTrigger{Deploy: true}}}
	same := PullRequestEvent{Repo: "acme/web", HeadRepo: "ACME/web"}
	fork := PullRequestEvent{Repo: "acme/web", HeadRepo: "eve/web"}
	deletedFork := PullRequestEvent{Repo: "acme/web"}

	forks := []struct {
		name string
		ev   PullRequestEvent
		want bool
	}{
		{"same repository", same, false},
		{"fork", fork, true},
		{"deleted head repository", deletedFork, true},
	}
	for _, tt := range forks {
		if got := tt.ev.FromFork(); got != tt.want {
			t.Errorf("%s: FromFork() = %v, want %v", tt.name, got, tt.want)
		}
	}

	deploys := []struct {
		name string
		p    *Pipeline
		ev   PullRequestEvent
		want bool
	}{
		{"opted in", optIn, same, true},
		{"opted in from fork", optIn, fork, false},
		{"opted in from deleted fork", optIn, deletedFork, false},
		{"not opted in", noOptIn, same, false},
		{"nothing to deploy", noDeploy, same, false},
	}
	for _, tt := range deploys {
		if got := tt.p.DeploysPullRequest(tt.ev); got != tt.want {
			t.Errorf("%s: DeploysPullRequest = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// A file whose only trigger is pull_request parses with its deploy, and
// its pull request runs never deploy.
func TestPullRequestOnlyNeverDeploys(t *testing.T) {
	data := readTestdata(t, filepath.Join("testdata", "valid", "pull-request.yml"))
	p, problems := Parse("pull-request.yml", data)
	if p == nil {
		t.Fatalf("Parse failed: %q", positioned(problems))
	}
	ev := PullRequestEvent{Repo: "acme/pr", Action: "opened", BaseBranch: "main", HeadRepo: "acme/pr"}
	if !p.MatchesPullRequest(ev) {
		t.Errorf("pull request does not start the pipeline")
	}
	if p.DeploysPullRequest(ev) {
		t.Errorf("pull request run deploys without pull_request.deploy")
	}
	if p.MatchesPush(PushEvent{Repo: "acme/pr", Ref: "refs/heads/main", DefaultBranch: "main"}) {
		t.Errorf("push starts a pipeline whose on lists pull_request only")
	}
	if !p.On.Manual {
		t.Errorf("manual runs are off, want them on by default")
	}
}
