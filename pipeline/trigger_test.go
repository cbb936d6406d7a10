package pipeline

import (
	"path/filepath"
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
