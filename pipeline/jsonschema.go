package pipeline

//go:generate go run schema_gen.go

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/invopop/jsonschema"
)

// SchemaID is the $id of the JSON Schema that GenerateJSONSchema returns:
// the address of docs/pipeline.schema.json in the repository.
const SchemaID = "https://github.com/quai-ci/quai/raw/main/docs/pipeline.schema.json"

// GenerateJSONSchema returns the JSON Schema (draft 2020-12) of a pipeline
// file, reflected from the Pipeline type with the yaml tags as property
// names. sourceDir is the folder of this package's Go files, whose field
// comments become the properties' descriptions; with "" the schema has no
// descriptions. The schema checks structure: keys, types, required keys,
// enumerations, bounds and the forms of names, durations and secret
// references. Loading checks more (globs, cron specs, image names, keys
// that conflict), so a file the schema accepts can still fail to load.
// The output is the same for the same types and comments.
func GenerateJSONSchema(sourceDir string) ([]byte, error) {
	r := &jsonschema.Reflector{
		FieldNameTag: "yaml",
		// Required keys are set by constrain, because a yaml tag without
		// omitempty does not mean that the key is required.
		RequiredFromJSONSchemaTags: true,
		ExpandedStruct:             true,
		Anonymous:                  true,
		Mapper:                     schemaForYAMLForm,
	}
	if sourceDir != "" {
		if err := r.AddGoComments("github.com/quai-ci/quai/pipeline", sourceDir); err != nil {
			return nil, fmt.Errorf("reading field comments in %s: %w", sourceDir, err)
		}
	}
	s := r.Reflect(&Pipeline{})
	s.ID = SchemaID
	s.Title = "quai pipeline"
	if err := constrain(s); err != nil {
		return nil, err
	}
	for _, def := range append([]*jsonschema.Schema{s}, slices.Collect(maps.Values(s.Definitions))...) {
		nameByKey(def)
		allowNull(def, s.Definitions)
	}

	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the pipeline JSON Schema: %w", err)
	}
	return append(out, '\n'), nil
}

// Patterns of the string forms of Go types.
const (
	durationPattern = `^(0|([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h))+$`
	// secretRefPattern is the shape ParseSecretRef accepts: an optional
	// "mount:", a path, "#" and a key, without white space.
	secretRefPattern = `^([A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*:)?[^\s:#/]+(/[^\s:#/]+)*#[^\s#]+$`
	repoPattern      = `^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9_.-]{1,100}$`
)

// schemaForYAMLForm describes the Go types whose YAML form differs from
// their reflected Go type: a duration is a string such as "30s", a secret
// reference is a "path#key" string, and a map of environment variables
// takes any scalar as a value because YAML reads 4 as a number and loading
// keeps its text.
func schemaForYAMLForm(t reflect.Type) *jsonschema.Schema {
	switch t {
	case reflect.TypeFor[time.Duration]():
		return &jsonschema.Schema{Type: "string", Pattern: durationPattern, Examples: []any{"30s", "1m30s"}}
	case reflect.TypeFor[SecretRef]():
		return &jsonschema.Schema{Type: "string", Pattern: secretRefPattern, Examples: []any{"app/db#url"}}
	case reflect.TypeFor[map[string]string]():
		return &jsonschema.Schema{
			Type:          "object",
			PropertyNames: &jsonschema.Schema{Pattern: envNamePattern.String()},
			AdditionalProperties: &jsonschema.Schema{
				Extras: map[string]any{"type": []string{"string", "number", "boolean"}},
			},
		}
	case reflect.TypeFor[map[string]SecretRef]():
		return &jsonschema.Schema{
			Type:                 "object",
			PropertyNames:        &jsonschema.Schema{Pattern: envNamePattern.String()},
			AdditionalProperties: &jsonschema.Schema{Type: "string", Pattern: secretRefPattern},
		}
	}
	return nil
}

// constrain adds what reflection cannot see: required keys, allowed
// values, bounds and defaults, from the same tables and constants that
// loading uses. root is the Pipeline schema with the other types in its
// definitions, named after their Go types.
func constrain(root *jsonschema.Schema) error {
	var errs []error
	def := func(name string) *jsonschema.Schema {
		if d, ok := root.Definitions[name]; ok {
			return d
		}
		errs = append(errs, fmt.Errorf("the pipeline JSON Schema has no definition %s", name))
		return &jsonschema.Schema{}
	}
	prop := func(s *jsonschema.Schema, name string) *jsonschema.Schema {
		if p, ok := s.Properties.Get(name); ok {
			return p
		}
		errs = append(errs, fmt.Errorf("the pipeline JSON Schema has no property %s", name))
		return &jsonschema.Schema{Items: &jsonschema.Schema{}}
	}
	enum := func(values []string) []any {
		out := make([]any, len(values))
		for i, v := range values {
			out[i] = v
		}
		return out
	}
	count := func(n uint64) *uint64 { return &n }

	root.Required = []string{"repo"}
	prop(root, "name").Pattern = pipelineNamePattern.String()
	prop(root, "name").MaxLength = count(maxPipelineNameLength)
	prop(root, "repo").Pattern = repoPattern
	prop(root, "timeout").Default = defaultRunTimeout.String()

	triggers := def("Triggers")
	triggers.MinProperties = count(1)
	prop(triggers, "manual").Default = true
	pr := def("PullRequestTrigger")
	prop(pr, "types").Items.Enum = enum(pullRequestTypes)
	prop(pr, "types").Default = enum(defaultPullRequestTypes)
	prop(pr, "deploy").Default = false
	schedule := def("Schedule")
	schedule.Required = []string{"cron"}
	prop(schedule, "timezone").Default = defaultTimezone

	step := def("Step")
	step.Required = []string{"name", "image", "commands"}
	prop(step, "name").Pattern = stepNamePattern.String()
	prop(step, "name").MaxLength = count(maxStepNameLength)
	prop(step, "commands").MinItems = count(1)
	prop(step, "commands").Items.MinLength = count(1)
	when := def("When")
	prop(when, "events").Items.Enum = enum(stepEvents)
	prop(when, "status").Items.Enum = enum(stepStatuses)
	prop(when, "status").Default = enum([]string{StatusSuccess})
	concurrency := def("Concurrency")
	prop(concurrency, "cancel_superseded").Default = true
	prop(concurrency, "limit").Minimum = "1"
	prop(concurrency, "limit").Default = defaultRunLimit

	build := def("Build")
	build.Required = []string{"image"}
	prop(build, "context").Default = defaultContext
	prop(build, "dockerfile").Default = defaultDockerfile
	deploy := def("Deploy")
	deploy.Required = []string{"container", "port"}
	prop(deploy, "container").Pattern = containerNamePattern.String()
	prop(deploy, "port").Minimum = "1"
	prop(deploy, "port").Maximum = "65535"
	prop(deploy, "network").Enum = enum(deployNetworks)
	prop(deploy, "network").Default = defaultNetwork
	prop(deploy, "restart").Enum = enum(restartPolicies)
	prop(deploy, "restart").Default = defaultRestart
	prop(deploy, "stop_timeout").Default = defaultStopTimeout.String()
	prop(deploy, "keep_images").Minimum = "1"
	prop(deploy, "keep_images").Default = defaultKeepImages
	health := def("Health")
	prop(health, "path").Pattern = "^/"
	prop(health, "path").Default = defaultHealthPath
	prop(health, "timeout").Default = defaultHealthWait.String()
	def("VaultLogin").Required = []string{"approle"}
	haproxy := def("HAProxy")
	haproxy.Required = []string{"socket", "backend", "servers"}
	prop(haproxy, "servers").MinItems = count(2)
	prop(haproxy, "servers").MaxItems = count(2)
	prop(haproxy, "max_5xx").Minimum = "0"
	return errors.Join(errs...)
}

// nameByKey starts each property's description with the YAML key where
// it starts with the Go field name, so that "CancelSuperseded cancels"
// reads "cancel_superseded cancels" in an editor.
func nameByKey(s *jsonschema.Schema) {
	if s.Properties == nil {
		return
	}
	for pair := s.Properties.Oldest(); pair != nil; pair = pair.Next() {
		key, prop := pair.Key, pair.Value
		word, rest, _ := strings.Cut(prop.Description, " ")
		if strings.EqualFold(word, strings.ReplaceAll(key, "_", "")) {
			prop.Description = key + " " + rest
		}
	}
}

// allowNull lets each property of s be null where loading reads null as
// empty: a mapping without required keys, or a list that may be empty.
// defs are the definitions that "$ref" properties point into.
func allowNull(s *jsonschema.Schema, defs jsonschema.Definitions) {
	if s.Properties == nil {
		return
	}
	for pair := s.Properties.Oldest(); pair != nil; pair = pair.Next() {
		prop := pair.Value
		target := prop
		if name, ok := strings.CutPrefix(prop.Ref, "#/$defs/"); ok {
			target = defs[name]
		}
		if target == nil || !emptyAllowed(target) {
			continue
		}
		inner := *prop
		inner.Description, inner.Default = "", nil
		pair.Value = &jsonschema.Schema{
			Description: prop.Description,
			Default:     prop.Default,
			AnyOf:       []*jsonschema.Schema{&inner, {Type: "null"}},
		}
	}
}

func emptyAllowed(s *jsonschema.Schema) bool {
	switch s.Type {
	case "object":
		return len(s.Required) == 0 && s.MinProperties == nil
	case "array":
		return s.MinItems == nil
	default:
		return false
	}
}
