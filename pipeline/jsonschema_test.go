package pipeline

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

const schemaFile = "../docs/pipeline.schema.json"

// The committed schema must be what the types generate today.
func TestJSONSchemaUpToDate(t *testing.T) {
	want, err := GenerateJSONSchema(".")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the schema the pipeline types generate, "+
			"run \"go generate ./pipeline\" and commit the result", schemaFile)
	}
}

func TestGenerateJSONSchemaWithoutComments(t *testing.T) {
	schema, err := GenerateJSONSchema("")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(schema, []byte(`"description"`)) {
		t.Errorf("schema without source folder has descriptions")
	}
	if again, _ := GenerateJSONSchema(""); !bytes.Equal(schema, again) {
		t.Errorf("two generations differ")
	}
}

// compileSchema compiles the committed schema, whose metaschema
// (draft 2020-12) the validator embeds, so nothing is downloaded.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	data, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decoding %s: %v", schemaFile, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatalf("compiling %s: %v", schemaFile, err)
	}
	return schema
}

// yamlInstance reads a pipeline file as the JSON value an editor's YAML
// support validates: scalars typed by YAML, aliases and merge keys
// resolved.
func yamlInstance(t *testing.T, file string) (any, error) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(j))
}

func TestJSONSchemaAcceptsValidFiles(t *testing.T) {
	schema := compileSchema(t)
	var files []string
	for _, pattern := range []string{
		filepath.Join("testdata", "valid", "*"),
		filepath.Join("..", "examples", "hello", "pipeline.yml"),
		filepath.Join("..", "pipelines.d", "*.yml"),
		filepath.Join("..", "pipelines.d", "*.yaml"),
	} {
		matches, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, matches...)
	}
	if len(files) < 10 {
		t.Fatalf("found only %d files: %q", len(files), files)
	}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			if _, problems := Parse(file, readTestdata(t, file)); HasErrors(problems) {
				t.Fatalf("the loader rejects %s: %q", file, positioned(problems))
			}
			v, err := yamlInstance(t, file)
			if err != nil {
				t.Fatalf("reading %s as JSON: %v", file, err)
			}
			if err := schema.Validate(v); err != nil {
				t.Errorf("schema rejects %s: %v", file, err)
			}
		})
	}
}

// schemaRejects are the invalid files whose mistakes are structural:
// unknown keys, wrong types, missing required keys, values outside an
// enumeration or a bound, and malformed names, durations and secret
// references. The schema must reject each one.
var schemaRejects = []string{
	"build-null.yml", "comment-only.yml", "concurrency.yml", "concurrency-2.yml", "container.yml",
	"container-missing.yml", "duration.yml", "duration-2.yml", "empty.yml", "env-names.yml",
	"haproxy.yml", "haproxy-host.yml", "health-path.yml", "image-missing.yml", "multi-error.yml",
	"name.yml", "network.yml", "not-mapping.yml", "null.yml", "on-empty.yml", "port.yml",
	"pull-request.yml", "push-filters.yml", "repo-extra.yml", "repo-form.yml", "repo-missing.yml",
	"restart.yml", "schedule.yml", "schedule-shape.yml", "secrets.yml", "steps.yml",
	"steps-build.yml", "steps-shape.yml", "unknown-key.yml", "vault-approle-missing.yml",
	"wrong-types.yml", "wrong-types-2.yml",
}

// loaderOnly are the invalid files that only loading rejects, each for
// the reason given.
var loaderOnly = map[string]string{
	"build-paths.yml":             "paths that leave the repository",
	"deploy-no-build.yml":         "a deploy without a build block",
	"duration-3.yml":              "a zero health timeout",
	"glob.yml":                    "malformed glob patterns",
	"image-case.yml":              "Docker image name rules",
	"image-empty-component.yml":   "Docker image name rules",
	"image-registry-port.yml":     "Docker image name rules",
	"image-tag.yml":               "Docker image name rules",
	"merge-key.yml":               "YAML merge keys, which YAML readers resolve",
	"multi-doc.yml":               "a second YAML document, which YAML readers ignore",
	"publish-host.yml":            "an address that is not an IP address",
	"publish-missing.yml":         "publish required on the bridge network only",
	"publish-on-host-network.yml": "publish forbidden on the host network",
	"pull-request-types.yml":      "an empty types list, while null means the default",
	"Upper_Case.yml":              "a pipeline name taken from the file name",
	"vault-conflict.yml":          "env names that deploy.vault sets",
	"duplicate-key.yml":           "not valid YAML for JSON Schema tools",
	"syntax-anchor.yml":           "not valid YAML",
	"syntax-colon.yml":            "not valid YAML",
	"syntax-flow.yml":             "not valid YAML",
	"syntax-indent.yml":           "not valid YAML",
	"syntax-nested-indent.yml":    "not valid YAML",
	"syntax-sequence.yml":         "not valid YAML",
	"syntax-tab.yml":              "not valid YAML",
}

func TestJSONSchemaRejectsInvalidFiles(t *testing.T) {
	schema := compileSchema(t)
	for _, name := range schemaRejects {
		t.Run(name, func(t *testing.T) {
			v, err := yamlInstance(t, filepath.Join("testdata", "invalid", name))
			if err != nil {
				t.Fatalf("reading %s as JSON: %v", name, err)
			}
			if err := schema.Validate(v); err == nil {
				t.Errorf("schema accepts %s", name)
			}
		})
	}

	// Every invalid file is in one list or the other.
	files, err := filepath.Glob(filepath.Join("testdata", "invalid", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		_, loader := loaderOnly[name]
		if rejects := slices.Contains(schemaRejects, name); rejects == loader {
			t.Errorf("%s must be in exactly one of schemaRejects and loaderOnly", name)
		}
	}
}
