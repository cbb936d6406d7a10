package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadDir loads every *.yml and *.yaml file in dir (not recursive, sorted by
// name). It returns the valid pipelines sorted by Name, and every problem
// found in all files (not only the first), sorted by file and position. A
// pipeline with an error is left out, and so is every pipeline whose name
// another file also uses. A file that cannot be read is a problem too. err
// is non-nil only when dir cannot be read.
func LoadDir(dir string) (pipelines []*Pipeline, problems []Problem, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("reading pipeline directory %q: %w "+
			"(create it, or name the folder that holds the pipeline files)", dir, err)
	}

	var results []parsed
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yml" && ext != ".yaml") {
			continue
		}
		file := filepath.Join(dir, e.Name())
		data, err := readPipelineFile(file)
		if err != nil {
			problems = append(problems, Problem{File: file, Message: fmt.Sprintf("reading file: %v", err)})
			continue
		}
		r := parse(file, data)
		problems = append(problems, r.problems...)
		if r.pipeline != nil {
			results = append(results, r)
		}
	}

	problems = append(problems, duplicateNames(results)...)
	problems = append(problems, sharedDeployTargets(results)...)
	for _, r := range results {
		if !r.duplicate {
			pipelines = append(pipelines, r.pipeline)
		}
	}
	slices.SortFunc(pipelines, func(a, b *Pipeline) int { return strings.Compare(a.Name, b.Name) })
	sortProblems(problems)
	return pipelines, problems, nil
}

// MaxFileSize bounds a pipeline file. Real ones are a few kilobytes; the
// bound keeps a mistaken file (a log, a link to a device) from filling
// memory.
const MaxFileSize = 1 << 20

// readPipelineFile reads a regular file of at most MaxFileSize bytes,
// following links. A FIFO or device would block or never end, so anything
// else is refused with the reason.
func readPipelineFile(file string) ([]byte, error) {
	info, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s), so it is not read", info.Mode().Type())
	}
	if info.Size() > MaxFileSize {
		return nil, fmt.Errorf("the file has %d bytes, more than the %d a pipeline file may have", info.Size(), MaxFileSize)
	}
	return os.ReadFile(file)
}

// Parse parses one file's bytes. file is used in positions and for the
// default name. It returns nil and at least one error problem when the file
// is invalid, and the pipeline with any warnings otherwise. Parse cannot see
// other files, so duplicate names are checked by LoadDir only.
func Parse(file string, data []byte) (*Pipeline, []Problem) {
	r := parse(file, data)
	return r.pipeline, r.problems
}

// parsed is the result of parsing one file.
type parsed struct {
	pipeline *Pipeline // nil when the file has errors
	namePos  position
	problems []Problem
	// duplicate is set when another file uses the same pipeline name.
	duplicate bool
}

func parse(file string, data []byte) parsed {
	d := &decoder{file: file}
	root := d.document(data)
	if root == nil {
		return parsed{problems: d.problems}
	}
	p, namePos := decodePipeline(d, root)
	sortProblems(d.problems)
	if HasErrors(d.problems) {
		return parsed{problems: d.problems}
	}
	return parsed{pipeline: p, namePos: namePos, problems: d.problems}
}

// document decodes data as one YAML document and returns its root mapping,
// or nil after reporting why there is none.
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.errorAt(1, 1, "file is empty, expected a pipeline with at least repo")
		} else {
			d.syntaxError(err, data)
		}
		return nil
	}

	// A second document would be ignored silently, so it is an error. An
	// empty one after a trailing "---" is harmless.
	var next yaml.Node
	err := dec.Decode(&next)
	switch {
	case err == nil:
		if len(next.Content) > 0 && !isNull(deref(next.Content[0])) {
			d.errorAt(next.Line, next.Column, "file contains more than one YAML document, "+
				"put each pipeline in its own file")
		}
	case !errors.Is(err, io.EOF):
		d.syntaxError(err, data)
	}

	if len(doc.Content) == 0 || isNull(deref(doc.Content[0])) {
		d.errorAt(1, 1, "file is empty, expected a pipeline with at least repo")
		return nil
	}
	root := deref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		d.errorf(root, "expected a mapping of keys such as name, repo and build, got %s", describe(root))
		return nil
	}
	return root
}

var (
	yamlLinePattern   = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlAnchorPattern = regexp.MustCompile(`^(unknown anchor|anchor) '([^']*)' (referenced|value contains itself)$`)
)

// yamlParserProblems are the messages of yaml.v3's parser, as opposed to
// its scanner. yaml.v3 (v3.0.1, decode.go parser.fail) prints a parser
// error's 0-based line but a scanner error's 1-based line, and leaves the
// line out when the 0-based line is 0.
var yamlParserProblems = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"found undefined tag handle",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found duplicate %TAG directive",
}

// syntaxError reports a yaml.v3 error at the line its message names,
// corrected for parser errors. The column is unknown because yaml.v3 does
// not report it.
func (d *decoder) syntaxError(err error, data []byte) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if m := yamlLinePattern.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if slices.Contains(yamlParserProblems, msg) {
			line = exactLine(data, line+1, msg)
		}
	} else if slices.Contains(yamlParserProblems, msg) {
		line = exactLine(data, 1, msg)
	} else if m := yamlAnchorPattern.FindStringSubmatch(msg); m != nil {
		// Errors about anchors carry no line, so find the first use.
		sigil := "*"
		if m[1] == "anchor" {
			sigil = "&"
		}
		line = lineOf(data, sigil+m[2])
	}
	if lineHasTab(data, line) {
		msg += " (YAML indentation must use spaces, not tabs)"
	}
	d.errorAt(line, 0, "invalid YAML: %s", msg)
}

// Bounds on the search in exactLine, so a large file costs at most
// maxSearchLines parses of maxSearchBytes.
const (
	maxSearchLines = 200
	maxSearchBytes = 64 << 10
)

// exactLine returns the line of a parser error. yaml.v3 reports the line
// where the enclosing block or flow collection starts whenever that is not
// line 1, which for a wrongly indented key can be far above it. So prefixes
// of data from line from on are parsed until one fails with the same
// message. from is returned when none does within the bounds.
func exactLine(data []byte, from int, msg string) int {
	if len(data) > maxSearchBytes {
		return from
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	prefix := 0
	for _, l := range lines[:min(from-1, len(lines))] {
		prefix += len(l)
	}
	for k := from; k <= len(lines) && k < from+maxSearchLines; k++ {
		prefix += len(lines[k-1])
		if err := decodeAll(data[:prefix]); err != nil && strings.HasSuffix(err.Error(), msg) {
			return k
		}
	}
	return from
}

// decodeAll parses every YAML document in data and returns the first error.
func decodeAll(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// lineOf returns the 1-based line of the first occurrence of s in data, or 1.
func lineOf(data []byte, s string) int {
	i := bytes.Index(data, []byte(s))
	if i < 0 {
		return 1
	}
	return bytes.Count(data[:i], []byte("\n")) + 1
}

// lineHasTab reports whether the 1-based line is indented with a tab.
func lineHasTab(data []byte, line int) bool {
	lines := bytes.Split(data, []byte("\n"))
	if line < 1 || line > len(lines) {
		return false
	}
	indent := lines[line-1][:len(lines[line-1])-len(bytes.TrimLeft(lines[line-1], " \t"))]
	return bytes.Contains(indent, []byte("\t"))
}

// duplicateNames reports each pipeline whose name another file uses, at the
// position of its name, and marks it so LoadDir leaves it out.
func duplicateNames(results []parsed) []Problem {
	byName := map[string][]int{}
	for i, r := range results {
		byName[r.pipeline.Name] = append(byName[r.pipeline.Name], i)
	}
	var problems []Problem
	for i := range results {
		r := &results[i]
		same := byName[r.pipeline.Name]
		if len(same) < 2 {
			continue
		}
		r.duplicate = true
		var others []string
		for _, j := range same {
			if j != i {
				o := results[j]
				others = append(others, fmt.Sprintf("%s:%d:%d", o.pipeline.File, o.namePos.line, o.namePos.column))
			}
		}
		problems = append(problems, Problem{
			File: r.pipeline.File, Line: r.namePos.line, Column: r.namePos.column,
			Message: fmt.Sprintf("duplicate pipeline name %q, also used at %s, rename one of them",
				r.pipeline.Name, strings.Join(others, ", ")),
		})
	}
	return problems
}

// sharedDeployTargets reports pipelines that deploy the same app name or
// publish on the same address: each deploy removes the other app's
// containers, or cannot bind its port. Both pipelines are left out.
func sharedDeployTargets(results []parsed) []Problem {
	type use struct{ key, what string }
	byTarget := map[use][]int{}
	for i, r := range results {
		d := r.pipeline.Deploy
		if r.duplicate || d == nil {
			continue
		}
		byTarget[use{d.Container, "deploy.container"}] = append(byTarget[use{d.Container, "deploy.container"}], i)
		if d.Publish != "" {
			byTarget[use{d.Publish, "deploy.publish"}] = append(byTarget[use{d.Publish, "deploy.publish"}], i)
		}
	}
	var problems []Problem
	for target, same := range byTarget {
		if len(same) < 2 {
			continue
		}
		for _, i := range same {
			r := &results[i]
			r.duplicate = true
			var others []string
			for _, j := range same {
				if j != i {
					others = append(others, fmt.Sprintf("pipeline %q (%s)", results[j].pipeline.Name, results[j].pipeline.File))
				}
			}
			problems = append(problems, Problem{
				File: r.pipeline.File,
				Message: fmt.Sprintf("%s %q is also used by %s: the deploys would replace each other's containers, give each pipeline its own",
					target.what, target.key, strings.Join(others, ", ")),
			})
		}
	}
	return problems
}
