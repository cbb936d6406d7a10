package runner

import (
	"encoding/base64"
	"slices"
	"strings"
)

// mask replaces a secret value in the log.
const mask = "********"

// minMasked is the shortest value masked: masking shorter ones would blank
// ordinary output.
const minMasked = 4

// masker finds secret values in output and replaces every maximal stretch
// of bytes that occurrences of them cover with one mask. Covering is a union:
// when values overlap, touch or contain one another, no byte of either is
// left and one mask replaces them all.
// Every value is matched in one pass by an Aho-Corasick automaton, so the
// cost per byte barely grows with the number of values. The zero value masks
// nothing. A masker is not safe for concurrent use.
type masker struct {
	values map[string]struct{}
	// nodes is the automaton over values, rebuilt after add. nodes[0] is the
	// root, whose transitions are in root.
	nodes []maskNode
	root  [256]int32
	// runs is scratch space for replace.
	runs []span
}

// maskNode is one state of the automaton: the text read so far ends with
// the first depth bytes of some value.
type maskNode struct {
	edges []maskEdge
	// fail is the state of the longest proper suffix of this state's text
	// that also begins a value.
	fail  int32
	depth int32
	// match is the length of the longest value the text ends with, or 0.
	match int32
}

type maskEdge struct {
	b    byte
	next int32
}

// span is the half-open byte range [start, end) of a chunk of output.
type span struct{ start, end int }

// add registers value so that replace masks it. Values shorter than
// minMasked bytes are ignored. Besides the value itself, replace masks each
// line of a multi-line value that is at least minMasked bytes long. It also
// masks the standard and URL base64 encodings, with and without padding, of
// the value and of the value followed by a newline, which is what
// `echo "$SECRET" | base64` encodes.
//
// NOTE: base64 of a longer text that contains the value is not masked,
// because its encoding depends on the value's offset in that text. Nor is
// base64 output wrapped into lines, as `base64` and `openssl base64` print
// values longer than 57 and 48 bytes.
func (m *masker) add(value string) {
	if len(value) < minMasked {
		return
	}
	if m.values == nil {
		m.values = map[string]struct{}{}
	}
	forms := []string{value}
	if strings.Contains(value, "\n") {
		for line := range strings.SplitSeq(value, "\n") {
			forms = append(forms, strings.TrimSuffix(line, "\r"))
		}
	}
	withNewline := value + "\n"
	if strings.HasSuffix(value, "\n") {
		withNewline = strings.TrimSuffix(value, "\n")
	}
	for _, text := range []string{value, withNewline} {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding,
			base64.RawStdEncoding, base64.RawURLEncoding} {
			forms = append(forms, enc.EncodeToString([]byte(text)))
		}
	}

	for _, form := range forms {
		if len(form) < minMasked {
			continue
		}
		if _, ok := m.values[form]; !ok {
			m.values[form] = struct{}{}
			m.nodes = nil
		}
	}
}

// replace appends src to dst with every stretch of bytes covered by secret
// values replaced by mask, and returns the result and the number of bytes of
// src it consumed. The first covered bytes of src are already known to be
// covered, as the carry of the previous call reported.
//
// Unless final is set, replace stops before the longest tail of src that
// begins a value, because later output decides whether it is one. The
// caller passes those bytes again, followed by later output. A stretch that
// runs into that tail is masked up to it, and carry is the number of bytes
// of the tail that the stretch covers, to pass as covered with the tail.
// Because of that split, such output may show two masks where one call with
// all of it shows one, but no byte of a value is left unmasked.
func (m *masker) replace(dst, src []byte, covered int, final bool) (out []byte, consumed, carry int) {
	if len(m.values) == 0 {
		return append(dst, src...), len(src), 0
	}
	m.build()

	runs := m.runs[:0]
	if covered > 0 {
		runs = append(runs, span{0, covered})
	}
	done := 0 // src[:done] is in dst
	state := int32(0)
	for i, b := range src {
		state = m.next(state, b)
		node := &m.nodes[state]
		if node.match > 0 {
			runs = addSpan(runs, span{i + 1 - int(node.match), i + 1})
		}
		if len(runs) == 0 {
			continue
		}
		// A later match starts at or after safe, so runs ending before it
		// are final.
		safe := i + 1 - int(node.depth)
		n := 0
		for n < len(runs) && runs[n].end < safe {
			dst = append(dst, src[done:runs[n].start]...)
			dst = append(dst, mask...)
			done = runs[n].end
			n++
		}
		if n > 0 {
			runs = append(runs[:0], runs[n:]...)
		}
	}

	cut := len(src)
	if !final {
		cut -= int(m.nodes[state].depth)
	}
	for _, r := range runs {
		if r.start >= cut {
			break
		}
		dst = append(dst, src[done:r.start]...)
		dst = append(dst, mask...)
		done = min(r.end, cut)
		carry = max(r.end-cut, 0)
	}
	dst = append(dst, src[done:cut]...)
	m.runs = runs[:0]
	if final {
		carry = 0
	}
	return dst, cut, carry
}

// next returns the state after reading b in state s.
func (m *masker) next(s int32, b byte) int32 {
	for s != 0 {
		for _, e := range m.nodes[s].edges {
			if e.b == b {
				return e.next
			}
		}
		s = m.nodes[s].fail
	}
	return m.root[b]
}

// build creates the automaton when values changed since the last call.
func (m *masker) build() {
	if m.nodes != nil {
		return
	}
	values := make([]string, 0, len(m.values))
	for v := range m.values {
		values = append(values, v)
	}
	slices.Sort(values)

	// The trie of all values.
	m.nodes = []maskNode{{}}
	for _, v := range values {
		s := int32(0)
		for i := 0; i < len(v); i++ {
			s = m.child(s, v[i])
		}
		m.nodes[s].match = int32(len(v))
	}
	m.root = [256]int32{}
	for _, e := range m.nodes[0].edges {
		m.root[e.b] = e.next
	}

	// Fail links in breadth-first order, so that a node's fail state and
	// its match are complete before its children need them.
	queue := []int32{0}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, e := range m.nodes[s].edges {
			child := &m.nodes[e.next]
			if s != 0 {
				child.fail = m.next(m.nodes[s].fail, e.b)
			}
			child.match = max(child.match, m.nodes[child.fail].match)
			queue = append(queue, e.next)
		}
	}
}

// child returns the state after b in state s of the trie, adding it if
// needed.
func (m *masker) child(s int32, b byte) int32 {
	for _, e := range m.nodes[s].edges {
		if e.b == b {
			return e.next
		}
	}
	next := int32(len(m.nodes))
	m.nodes = append(m.nodes, maskNode{depth: m.nodes[s].depth + 1})
	m.nodes[s].edges = append(m.nodes[s].edges, maskEdge{b: b, next: next})
	return next
}

// addSpan adds s to runs, which are sorted, disjoint and not adjacent,
// merging the runs that overlap or touch s. Only the last of runs may end
// after s.end.
func addSpan(runs []span, s span) []span {
	for len(runs) > 0 && runs[len(runs)-1].end >= s.start {
		last := runs[len(runs)-1]
		s.start = min(s.start, last.start)
		s.end = max(s.end, last.end)
		runs = runs[:len(runs)-1]
	}
	return append(runs, s)
}
