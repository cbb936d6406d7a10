package pipeline

import (
	"cmp"
	"fmt"
	"slices"
)

// Problem is one error or warning found while loading, with its position.
// Line and Column are 1-based. Column is 0 when only the line is known (YAML
// syntax errors), and Line is 0 when the problem concerns the whole file.
type Problem struct {
	File    string
	Line    int
	Column  int
	Message string
	// Warning is true for problems that do not stop the pipeline from
	// loading.
	Warning bool
}

// String formats p as "file:line:column: message", the form compilers use
// and editors jump to. Warnings read "file:line:column: warning: message".
// An unknown column or line is left out rather than printed as 0.
func (p Problem) String() string {
	pos := p.File
	if p.Line > 0 {
		pos += fmt.Sprintf(":%d", p.Line)
		if p.Column > 0 {
			pos += fmt.Sprintf(":%d", p.Column)
		}
	}
	if p.Warning {
		return pos + ": warning: " + p.Message
	}
	return pos + ": " + p.Message
}

// HasErrors reports whether problems contains at least one problem that is
// not a warning.
func HasErrors(problems []Problem) bool {
	for _, p := range problems {
		if !p.Warning {
			return true
		}
	}
	return false
}

// sortProblems orders problems by file, then position, keeping the order in
// which problems at the same position were found.
func sortProblems(problems []Problem) {
	slices.SortStableFunc(problems, func(a, b Problem) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column),
		)
	})
}
