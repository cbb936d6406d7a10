package pipeline

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// StepContext is the state of a run that a step's When condition is
// checked against.
type StepContext struct {
	// Branch is the run's branch without "refs/heads/", or for a pull
	// request the branch it targets. Empty for a run of a tag.
	Branch string
	// Tag is the run's tag without "refs/tags/", empty for a branch.
	Tag string
	// Event is the kind of event that started the run.
	Event Event
	// Failed is true when an earlier step of the run failed.
	Failed bool
}

// ShouldRun reports whether the step runs in context c. A step without a
// when block runs while no earlier step failed. Otherwise every part of
// When must match:
//   - Status: "success" runs while no step failed, "failure" once one
//     has. Empty means success only.
//   - Events: c.Event is listed. Empty means every event.
//   - Branches and Tags: when either is set, a run with a Tag needs a match
//     in Tags, a run with only a Branch needs a match in Branches, and a
//     run with neither never matches.
//
// ShouldRun is a pure function, safe for concurrent use.
func (s Step) ShouldRun(c StepContext) bool {
	w := s.When
	onSuccess := len(w.Status) == 0 || slices.Contains(w.Status, StatusSuccess)
	onFailure := slices.Contains(w.Status, StatusFailure)
	if (c.Failed && !onFailure) || (!c.Failed && !onSuccess) {
		return false
	}
	if len(w.Events) > 0 && !slices.Contains(w.Events, c.Event) {
		return false
	}
	if len(w.Branches) == 0 && len(w.Tags) == 0 {
		return true
	}
	switch {
	case c.Tag != "":
		return matchAny(w.Tags, c.Tag)
	case c.Branch != "":
		return matchAny(w.Branches, c.Branch)
	default:
		return false
	}
}

// BuildIndex returns the index i of the step that the build runs right
// before: the first step whose image is BuildImage. It returns len(Steps)
// when no step uses the built image, so that the build follows the last
// step, and -1 when the pipeline builds no image.
func (p *Pipeline) BuildIndex() int {
	if p.Build == nil {
		return -1
	}
	for i, s := range p.Steps {
		if s.Image == BuildImage {
			return i
		}
	}
	return len(p.Steps)
}

// maxStepNameLength keeps step names short enough for log prefixes and
// container names.
const maxStepNameLength = 63

var stepNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

var stepFields = []field[Step]{
	{"name", func(d *decoder, path string, e entry, s *Step) {
		s.Name, _ = d.checkedStr(path, e.value, validateStepName)
	}},
	{"image", func(d *decoder, path string, e entry, s *Step) {
		s.Image, _ = d.checkedStr(path, e.value, validateStepImage)
	}},
	{"commands", func(d *decoder, path string, e entry, s *Step) {
		s.Commands = d.commands(path, e.value)
	}},
	{"env", func(d *decoder, path string, e entry, s *Step) {
		s.Env, _ = d.stringMap(path, e.value, validateStepEnvName)
	}},
	{"secrets", func(d *decoder, path string, e entry, s *Step) {
		s.Secrets = d.secretMap(path, e.value, validateStepEnvName)
	}},
	{"timeout", func(d *decoder, path string, e entry, s *Step) {
		s.Timeout = d.positiveDuration(path, e.value)
	}},
	{"when", func(d *decoder, path string, e entry, s *Step) {
		decodeFields(d, path, e.key, e.value, whenFields, &s.When)
	}},
}

var whenFields = []field[When]{
	{"branches", func(d *decoder, path string, e entry, w *When) {
		w.Branches = d.globList(path, e.value, "refs/heads/")
	}},
	{"tags", func(d *decoder, path string, e entry, w *When) {
		w.Tags = d.globList(path, e.value, "refs/tags/")
	}},
	{"events", func(d *decoder, path string, e entry, w *When) {
		for _, ev := range d.enumList(path, e.value, stepEvents) {
			w.Events = append(w.Events, Event(ev))
		}
	}},
	{"status", func(d *decoder, path string, e entry, w *When) {
		w.Status = d.enumList(path, e.value, stepStatuses)
	}},
}

// decodeSteps decodes the steps list. Each item yields one Step, valid or
// not, so that Steps[i] belongs to the i-th item.
func decodeSteps(d *decoder, path string, e entry) []Step {
	n := deref(e.value)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: expected a list of steps, each a mapping with name, image and commands, got %s",
			path, describe(n))
		return nil
	}
	steps := make([]Step, 0, len(n.Content))
	firstLine := map[string]int{}
	for i, item := range n.Content {
		itemPath := fmt.Sprintf("%s[%d]", path, i)
		s := decodeStep(d, itemPath, item)
		steps = append(steps, s)
		nameNode := findValue(item, "name")
		if s.Name == "" || nameNode == nil {
			continue
		}
		if line, dup := firstLine[s.Name]; dup {
			d.errorf(nameNode, "%s.name: duplicate step name %q, first used at line %d, rename one of them",
				itemPath, s.Name, line)
			continue
		}
		firstLine[s.Name] = nameNode.Line
	}
	return steps
}

func decodeStep(d *decoder, path string, n *yaml.Node) Step {
	var s Step
	m, ok := decodeFields(d, path, deref(n), n, stepFields, &s)
	if !ok {
		return s
	}
	d.requireKey(path, m, "name", `"name: test"`)
	d.requireKey(path, m, "image", `"image: busybox:stable"`)
	d.requireKey(path, m, "commands", `"commands: [\"make test\"]"`)
	d.conflictingNames(path+".secrets", m.entries["secrets"], s.Secrets, s.Env, path+".env")
	return s
}

// commands decodes a step's commands: a list of at least one non-blank
// string.
func (d *decoder) commands(path string, n *yaml.Node) []string {
	list, ok := d.stringList(path, n, `["make test"]`)
	if !ok {
		return list
	}
	if len(list) == 0 {
		d.errorf(deref(n), "%s: no commands listed, add at least one such as \"make test\"", path)
		return list
	}
	for i, c := range list {
		if strings.TrimSpace(c) == "" {
			d.errorf(deref(deref(n).Content[i]), "%s[%d]: empty command, remove it", path, i)
		}
	}
	return list
}

// checkStepsAgainstPipeline reports what is wrong with the steps given the
// rest of the pipeline: a "$build" image without a build, and a step
// timeout that the run's timeout cuts short. n is the steps node.
func checkStepsAgainstPipeline(d *decoder, n *yaml.Node, p *Pipeline, hasBuild bool) {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		return
	}
	for i, item := range n.Content {
		if i >= len(p.Steps) {
			break
		}
		s := p.Steps[i]
		path := fmt.Sprintf("steps[%d]", i)
		if s.Image == BuildImage && !hasBuild {
			d.errorf(findValue(item, "image"), "%s.image: %q is the image this run builds, but the "+
				"pipeline has no build block: add one or use another image", path, BuildImage)
		}
		if s.Timeout > 0 && p.Timeout > 0 && s.Timeout > p.Timeout {
			d.warnf(findValue(item, "timeout"), "%s.timeout: %v is longer than the run timeout %v, "+
				"which ends the step first", path, s.Timeout, p.Timeout)
		}
	}
}

func validateStepName(name string) error {
	if len(name) > maxStepNameLength || !stepNamePattern.MatchString(name) {
		return fmt.Errorf("invalid step name %q, use at most %d letters, digits, \"_\", \".\" or \"-\", "+
			"starting with a letter or digit, such as \"unit-tests\"", name, maxStepNameLength)
	}
	return nil
}

// validateStepImage accepts BuildImage or an image reference with an
// optional tag and digest.
func validateStepImage(image string) error {
	if image == BuildImage {
		return nil
	}
	if strings.HasPrefix(image, "$") {
		return fmt.Errorf("invalid image %q, the only image variable is %q, the image this run builds",
			image, BuildImage)
	}
	return validateImageRef(image)
}

var (
	// imageTagPattern is Docker's tag syntax (distribution/reference).
	imageTagPattern    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	imageDigestPattern = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$`)
)

// validateImageRef checks "name[:tag][@digest]".
func validateImageRef(ref string) error {
	name, digest, hasDigest := strings.Cut(ref, "@")
	if hasDigest && !imageDigestPattern.MatchString(digest) {
		return fmt.Errorf("invalid image %q, digest %q is not algorithm:hex such as sha256:<64 hex digits>", ref, digest)
	}
	// A colon after the last "/" starts the tag; one before it belongs to
	// a registry host:port.
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		tag := name[i+1:]
		name = name[:i]
		if strings.LastIndex(name, ":") > strings.LastIndex(name, "/") {
			return fmt.Errorf("invalid image %q, it has more than one tag", ref)
		}
		if !imageTagPattern.MatchString(tag) {
			return fmt.Errorf("invalid image %q, tag %q must be at most 128 letters, digits, "+
				"\"_\", \".\" or \"-\", not starting with \".\" or \"-\"", ref, tag)
		}
	}
	return validateImageName(name)
}

// validateStepEnvName checks a step variable name, which may not replace a
// variable quai sets for every step.
func validateStepEnvName(name string) error {
	if err := validateEnvName(name); err != nil {
		return err
	}
	if name == "CI" || name == "QUAI" || strings.HasPrefix(name, "QUAI_") {
		return fmt.Errorf("variable %s is set by quai for every step, use another name", name)
	}
	return nil
}
