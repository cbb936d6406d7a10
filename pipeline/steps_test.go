package pipeline

import (
	"strings"
	"testing"
)

func TestStepShouldRun(t *testing.T) {
	step := func(w When) Step { return Step{Name: "s", When: w} }
	always := step(When{})
	onFailure := step(When{Status: []string{StatusFailure}})
	onBoth := step(When{Status: []string{StatusSuccess, StatusFailure}})
	onMain := step(When{Branches: []string{"main", "release/**"}})
	onTags := step(When{Tags: []string{"v*"}})
	onRefs := step(When{Branches: []string{"main"}, Tags: []string{"v*"}})
	onTagEvent := step(When{Events: []Event{EventTag, EventManual}})
	notifyMain := step(When{Branches: []string{"main"}, Status: []string{StatusFailure}, Events: []Event{EventPush}})

	main := StepContext{Branch: "main", Event: EventPush}
	mainFailed := StepContext{Branch: "main", Event: EventPush, Failed: true}
	tag := StepContext{Tag: "v1.2", Event: EventTag}

	tests := []struct {
		name string
		s    Step
		c    StepContext
		want bool
	}{
		{"default runs on success", always, main, true},
		{"default skipped after failure", always, mainFailed, false},
		{"failure step skipped on success", onFailure, main, false},
		{"failure step runs after failure", onFailure, mainFailed, true},
		{"both statuses on success", onBoth, main, true},
		{"both statuses after failure", onBoth, mainFailed, true},

		{"branch match", onMain, main, true},
		{"branch glob with slash", onMain, StepContext{Branch: "release/2/x", Event: EventPush}, true},
		{"branch mismatch", onMain, StepContext{Branch: "dev", Event: EventPush}, false},
		{"branch condition on tag run", onMain, tag, false},
		{"tag match", onTags, tag, true},
		{"tag condition on branch run", onTags, main, false},
		{"either ref list, branch", onRefs, main, true},
		{"either ref list, tag", onRefs, tag, true},
		{"either ref list, other tag", onRefs, StepContext{Tag: "nightly", Event: EventTag}, false},
		{"ref condition without ref", onRefs, StepContext{Event: EventManual}, false},
		{"pull request uses the base branch", onMain,
			StepContext{Branch: "main", Event: EventPullRequest}, true},

		{"event listed", onTagEvent, tag, true},
		{"event listed second", onTagEvent, StepContext{Branch: "dev", Event: EventManual}, true},
		{"event not listed", onTagEvent, main, false},
		{"schedule by default", always, StepContext{Branch: "main", Event: EventSchedule}, true},

		{"all parts match", notifyMain, mainFailed, true},
		{"all parts but status", notifyMain, main, false},
		{"all parts but event", notifyMain, StepContext{Branch: "main", Event: EventManual, Failed: true}, false},
		{"all parts but branch", notifyMain, StepContext{Branch: "dev", Event: EventPush, Failed: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.ShouldRun(tt.c); got != tt.want {
				t.Errorf("ShouldRun(%+v) with when %+v = %v, want %v", tt.c, tt.s.When, got, tt.want)
			}
		})
	}
}

func TestBuildIndex(t *testing.T) {
	steps := func(images ...string) []Step {
		var s []Step
		for _, image := range images {
			s = append(s, Step{Image: image})
		}
		return s
	}
	tests := []struct {
		name string
		p    *Pipeline
		want int
	}{
		{"no build", &Pipeline{Steps: steps("busybox")}, -1},
		{"no build but build image", &Pipeline{Steps: steps(BuildImage)}, -1},
		{"build without steps", &Pipeline{Build: &Build{}}, 0},
		{"after the last step", &Pipeline{Build: &Build{}, Steps: steps("golang", "busybox")}, 2},
		{"before the first user", &Pipeline{Build: &Build{}, Steps: steps("golang", BuildImage, BuildImage)}, 1},
		{"first step uses it", &Pipeline{Build: &Build{}, Steps: steps(BuildImage, "busybox")}, 0},
	}
	for _, tt := range tests {
		if got := tt.p.BuildIndex(); got != tt.want {
			t.Errorf("%s: BuildIndex() = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestValidateStepImage(t *testing.T) {
	tests := []struct {
		image   string
		wantErr string // a part of the error, "" when valid
	}{
		{"busybox", ""},
		{"busybox:stable", ""},
		{"golang:1.26-bookworm", ""},
		{"localhost:5000/tools/lint:v1", ""},
		{"registry.example.com:5000/acme/app", ""},
		{"acme/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", ""},
		{"acme/app:v1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", ""},
		{BuildImage, ""},
		{"$BUILD", `the only image variable is "$build"`},
		{"Busybox", "must be lowercase"},
		{"busybox:", `tag ""`},
		{"busybox:-x", `tag "-x"`},
		{"acme/app:v1:v2", "more than one tag"},
		{"acme/app@sha256:short", `digest "sha256:short"`},
		{"registry.example.com:99999/app", `registry port "99999"`},
	}
	for _, tt := range tests {
		err := validateStepImage(tt.image)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("validateStepImage(%q) = %v, want nil", tt.image, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("validateStepImage(%q) = %v, want an error containing %q", tt.image, err, tt.wantErr)
		}
	}
}

func TestValidateStepEnvName(t *testing.T) {
	tests := []struct {
		name  string
		valid bool
	}{
		{"GOFLAGS", true},
		{"_X1", true},
		{"CIRCLE", true},
		{"QUAIL", true},
		{"CI", false},
		{"QUAI", false},
		{"QUAI_EVENT", false},
		{"QUAI_", false},
		{"1X", false},
		{"A-B", false},
	}
	for _, tt := range tests {
		if err := validateStepEnvName(tt.name); (err == nil) != tt.valid {
			t.Errorf("validateStepEnvName(%q) = %v, want valid %v", tt.name, err, tt.valid)
		}
	}
}
