package pipeline

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder walks a yaml.Node tree and collects every problem with its
// position, so that one run reports all mistakes in a file.
type decoder struct {
	file     string
	problems []Problem
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errorAt(n.Line, n.Column, format, args...)
}

func (d *decoder) errorAt(line, column int, format string, args ...any) {
	d.problems = append(d.problems, Problem{
		File: d.file, Line: line, Column: column, Message: fmt.Sprintf(format, args...),
	})
}

// entry is one key of a mapping with its value.
type entry struct {
	key, value *yaml.Node
}

// field is one known key of a mapping decoded into a T. Each mapping of the
// pipeline language has a table of fields, so a new key is one new row.
type field[T any] struct {
	key    string
	decode func(d *decoder, path string, e entry, out *T)
}

// mapping is a decoded YAML mapping: the entries found by key, and the node
// at which a missing key is reported.
type mapping struct {
	at      *yaml.Node
	entries map[string]entry
}

func (m mapping) has(key string) bool {
	_, ok := m.entries[key]
	return ok
}

// decodeFields decodes the mapping n into out using fields. It reports an
// unknown key with the closest known key, a duplicate key and a value that is
// not a mapping. A null value counts as an empty mapping. at is the node
// where missing keys are reported: the key that introduced n, or n itself at
// the top level. path names n in messages ("deploy.health"), "" at the top.
// ok is false when n is not a mapping at all.
func decodeFields[T any](d *decoder, path string, at, n *yaml.Node, fields []field[T], out *T) (m mapping, ok bool) {
	m = mapping{at: at, entries: map[string]entry{}}
	n = deref(n)
	if isNull(n) {
		return m, true
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: expected a mapping, got %s", describePath(path), describe(n))
		return m, false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		key, ok := d.mappingKey(path, k)
		if !ok {
			continue
		}
		if prev, dup := m.entries[key]; dup {
			d.errorf(k, "%s: duplicate key, first set at line %d", join(path, key), prev.key.Line)
			continue
		}
		f := findField(fields, key)
		if f == nil {
			d.errorf(k, "%s", unknownKeyMessage(path, key, fieldKeys(fields)))
			continue
		}
		e := entry{key: k, value: v}
		m.entries[key] = e
		f.decode(d, join(path, key), e, out)
	}
	return m, true
}

// mappingKey returns the text of a mapping key, reporting keys that are not
// plain strings.
func (d *decoder) mappingKey(path string, k *yaml.Node) (string, bool) {
	if k.Tag == "!!merge" {
		d.errorf(k, "%s: merge keys (<<) are not supported, write the keys out instead",
			describePath(path))
		return "", false
	}
	if k.Kind != yaml.ScalarNode || isNull(k) {
		d.errorf(k, "%s: expected a string key, got %s", describePath(path), describe(k))
		return "", false
	}
	return k.Value, true
}

// requireKey reports key as missing from m unless it is present.
func (d *decoder) requireKey(path string, m mapping, key, example string) {
	if m.has(key) {
		return
	}
	msg := fmt.Sprintf("missing required key %q", key)
	if path != "" {
		msg = path + ": " + msg
	}
	if example != "" {
		msg += ", for example " + example
	}
	d.errorf(m.at, "%s", msg)
}

func findField[T any](fields []field[T], key string) *field[T] {
	for i := range fields {
		if fields[i].key == key {
			return &fields[i]
		}
	}
	return nil
}

func fieldKeys[T any](fields []field[T]) []string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return keys
}

// unknownKeyMessage names the closest known key when one is near enough to
// be a typo, and lists all known keys otherwise.
func unknownKeyMessage(path, key string, known []string) string {
	where := "at top level"
	if path != "" {
		where = "in " + path
	}
	if s := suggest(key, known); s != "" {
		return fmt.Sprintf("unknown key %q %s, did you mean %q?", key, where, s)
	}
	return fmt.Sprintf("unknown key %q %s, known keys are %s", key, where, strings.Join(known, ", "))
}

// str decodes a scalar as its literal text, so "port: 08" or "tag: 1.10"
// keep their spelling. Null, lists, mappings and custom tags are reported.
func (d *decoder) str(path string, n *yaml.Node) (string, bool) {
	n = deref(n)
	switch {
	case n.Kind != yaml.ScalarNode:
		d.errorf(n, "%s: expected a string, got %s", path, describe(n))
		return "", false
	case isNull(n):
		d.errorf(n, "%s: value is empty, set a value or remove the key", path)
		return "", false
	case !strings.HasPrefix(n.Tag, "!!"):
		d.errorf(n, "%s: unsupported tag %s", path, n.Tag)
		return "", false
	}
	return n.Value, true
}

// int decodes a YAML integer.
func (d *decoder) int(path string, n *yaml.Node) (int, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		d.errorf(n, "%s: expected an integer, got %s", path, describe(n))
		return 0, false
	}
	var v int
	if err := n.Decode(&v); err != nil {
		d.errorf(n, "%s: invalid integer %s", path, n.Value)
		return 0, false
	}
	return v, true
}

// duration decodes a Go duration such as "30s" or "1m30s".
func (d *decoder) duration(path string, n *yaml.Node) (time.Duration, bool) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		d.errorf(n, "%s: invalid duration %s, add a unit such as %ss", path, n.Value, n.Value)
		return 0, false
	}
	s, ok := d.str(path, n)
	if !ok {
		return 0, false
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.errorf(n, "%s: invalid duration %q, expected a number with a unit such as 30s or 2m", path, s)
		return 0, false
	}
	return v, true
}

// bool decodes a YAML boolean: true or false.
func (d *decoder) bool(path string, n *yaml.Node) (bool, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		d.errorf(n, "%s: expected true or false, got %s", path, describe(n))
		return false, false
	}
	var v bool
	if err := n.Decode(&v); err != nil {
		d.errorf(n, "%s: invalid boolean %s, use true or false", path, n.Value)
		return false, false
	}
	return v, true
}

// stringList decodes a list of strings. Null is an empty list. example is
// a list shown when n is not one, such as ["main"].
func (d *decoder) stringList(path string, n *yaml.Node, example string) ([]string, bool) {
	n = deref(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: expected a list such as %s, got %s", path, example, describe(n))
		return nil, false
	}
	list := make([]string, 0, len(n.Content))
	ok := true
	for i, item := range n.Content {
		s, itemOK := d.str(fmt.Sprintf("%s[%d]", path, i), item)
		ok = ok && itemOK
		list = append(list, s)
	}
	return list, ok
}

// stringMap decodes a mapping of names to strings, checking each name with
// validName. Null is an empty map.
func (d *decoder) stringMap(path string, n *yaml.Node, validName func(string) error) (map[string]string, bool) {
	out, _, ok := decodeMap(d, path, n, validName, d.str)
	return out, ok
}

// decodeMap decodes a mapping of names to values of type V, checking each
// name with validName and decoding each value with value. Null is an empty
// map. keys holds the key node of each name, for errors that involve
// another mapping.
func decodeMap[V any](d *decoder, path string, n *yaml.Node, validName func(string) error,
	value func(path string, n *yaml.Node) (V, bool),
) (out map[string]V, keys map[string]*yaml.Node, ok bool) {
	n = deref(n)
	out, keys = map[string]V{}, map[string]*yaml.Node{}
	if isNull(n) {
		return out, keys, true
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: expected a mapping of names to values, got %s", path, describe(n))
		return nil, keys, false
	}
	ok = true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		name, keyOK := d.mappingKey(path, k)
		if !keyOK {
			ok = false
			continue
		}
		if prev, dup := keys[name]; dup {
			d.errorf(k, "%s: duplicate key, first set at line %d", join(path, name), prev.Line)
			ok = false
			continue
		}
		keys[name] = k
		if err := validName(name); err != nil {
			d.errorf(k, "%s: %v", join(path, name), err)
			ok = false
		}
		val, valueOK := value(join(path, name), v)
		ok = ok && valueOK
		out[name] = val
	}
	return out, keys, ok
}

// deref follows aliases to the node they name. yaml.v3 rejects an alias to
// an unknown anchor and an anchor that contains itself, so the chain ends.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names a node's type for messages, quoting scalars.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "an empty value"
		case "!!int":
			return "the integer " + n.Value
		case "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		default:
			return "the string " + strconv.Quote(n.Value)
		}
	default:
		return "an unexpected YAML node"
	}
}

func describePath(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// findKey returns the key node named key in mapping n, or nil.
func findKey(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := deref(n.Content[i]); k.Kind == yaml.ScalarNode && k.Value == key {
			return k
		}
	}
	return nil
}

// findValue returns the value of key in mapping n, aliases followed, or
// nil.
func findValue(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := deref(n.Content[i]); k.Kind == yaml.ScalarNode && k.Value == key {
			return deref(n.Content[i+1])
		}
	}
	return nil
}

func (d *decoder) warnf(n *yaml.Node, format string, args ...any) {
	d.problems = append(d.problems, Problem{
		File: d.file, Line: n.Line, Column: n.Column, Message: fmt.Sprintf(format, args...), Warning: true,
	})
}

// checkedStr decodes a string and reports the error of validate at the
// value's position.
func (d *decoder) checkedStr(path string, n *yaml.Node, validate func(string) error) (string, bool) {
	s, ok := d.str(path, n)
	if !ok {
		return s, false
	}
	if err := validate(s); err != nil {
		d.errorf(deref(n), "%s: %v", path, err)
		return s, false
	}
	return s, true
}

// oneOf decodes a string that must be one of allowed.
func (d *decoder) oneOf(path string, n *yaml.Node, allowed ...string) (string, bool) {
	return d.checkedStr(path, n, func(s string) error {
		if slices.Contains(allowed, s) {
			return nil
		}
		quoted := make([]string, len(allowed))
		for i, a := range allowed {
			quoted[i] = strconv.Quote(a)
		}
		return fmt.Errorf("invalid value %q, expected one of %s", s, strings.Join(quoted, ", "))
	})
}
