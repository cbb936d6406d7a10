package pipeline

import (
	"fmt"
	"regexp"
	"strings"
)

// buildKitFlags lists the instruction flags that need BuildKit. quai's
// Docker daemon builds with the classic builder. Tried with Docker 20.10.24,
// that builder fails on "RUN --mount" ("the --mount option requires
// BuildKit") and on "RUN --network", "RUN --security" and "COPY --link" or
// "ADD --link" ("Unknown flag"). It ignores a "# syntax=" directive and reads
// heredoc lines as instructions.
var buildKitFlags = map[string][]string{
	"RUN":  {"--mount", "--network", "--security"},
	"COPY": {"--link"},
	"ADD":  {"--link"},
}

var (
	directivePattern = regexp.MustCompile(`^#\s*([A-Za-z][A-Za-z0-9]*)\s*=\s*(.*?)\s*$`)
	heredocPattern   = regexp.MustCompile(`^<<-?(["']?)([A-Za-z_][A-Za-z0-9_]*)(["']?)`)
)

// CheckDockerfile returns warnings for Dockerfile syntax that needs BuildKit,
// which the pipeline file alone cannot show: a "# syntax=" parser directive,
// BuildKit-only flags such as RUN --mount, and heredocs. Each warning has
// the line and column of the construct. file is used in positions only.
// CheckDockerfile returns no errors. The build reports other mistakes.
func CheckDockerfile(file string, data []byte) []Problem {
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	var problems []Problem
	warn := func(line, column int, format string, args ...any) {
		problems = append(problems, Problem{
			File: file, Line: line, Column: column, Message: fmt.Sprintf(format, args...), Warning: true,
		})
	}

	// Parser directives are only read before the first comment, empty line
	// or instruction.
	escape := byte('\\')
	start := 0
	for ; start < len(lines); start++ {
		m := directivePattern.FindStringSubmatch(lines[start])
		if m == nil {
			break
		}
		switch strings.ToLower(m[1]) {
		case "syntax":
			warn(start+1, 1, "the # syntax directive needs BuildKit, so the classic builder that the "+
				"daemon uses ignores it")
		case "escape":
			if len(m[2]) == 1 {
				escape = m[2][0]
			}
		}
	}

	for _, inst := range splitInstructions(lines[start:], start+1, escape) {
		keyword := strings.ToUpper(inst.words[0].text)
		for _, w := range inst.words[1:] {
			if !strings.HasPrefix(w.text, "--") {
				break
			}
			name, _, _ := strings.Cut(w.text, "=")
			for _, flag := range buildKitFlags[keyword] {
				if name == flag {
					warn(w.line, w.column, "%s %s needs BuildKit, so the build fails on the classic builder that the daemon uses", keyword, flag)
				}
			}
		}
		for _, w := range inst.words[1:] {
			if heredocPattern.MatchString(w.text) {
				warn(w.line, w.column, "heredocs (%s) need BuildKit, so the classic builder reads the "+
					"following lines as instructions and fails", w.text)
				break
			}
		}
	}
	return problems
}

// dockerfileWord is one whitespace-separated word of an instruction with its
// 1-based position.
type dockerfileWord struct {
	text         string
	line, column int
}

type dockerfileInstruction struct {
	words []dockerfileWord
}

// splitInstructions joins continuation lines into instructions, dropping
// empty lines and comments. firstLine is the number of lines[0]. A heredoc
// body is skipped so that its lines are not read as instructions.
func splitInstructions(lines []string, firstLine int, escape byte) []dockerfileInstruction {
	var out []dockerfileInstruction
	var cur []dockerfileWord
	var heredocEnd string
	for i, line := range lines {
		if heredocEnd != "" {
			if strings.TrimSpace(line) == heredocEnd {
				heredocEnd = ""
			}
			continue
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		body := strings.TrimRight(line, " \t")
		continued := body[len(body)-1] == escape
		if continued {
			body = body[:len(body)-1]
		}
		cur = append(cur, splitWords(body, firstLine+i)...)
		if continued {
			continue
		}
		if len(cur) > 0 {
			out = append(out, dockerfileInstruction{words: cur})
			for _, w := range cur[1:] {
				if m := heredocPattern.FindStringSubmatch(w.text); m != nil {
					heredocEnd = m[2]
					break
				}
			}
		}
		cur = nil
	}
	if len(cur) > 0 {
		out = append(out, dockerfileInstruction{words: cur})
	}
	return out
}

func splitWords(line string, lineNumber int) []dockerfileWord {
	var words []dockerfileWord
	start := -1
	for i := 0; i <= len(line); i++ {
		space := i == len(line) || line[i] == ' ' || line[i] == '\t'
		switch {
		case space && start >= 0:
			words = append(words, dockerfileWord{text: line[start:i], line: lineNumber, column: start + 1})
			start = -1
		case !space && start < 0:
			start = i
		}
	}
	return words
}
