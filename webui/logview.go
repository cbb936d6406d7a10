package webui

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"strconv"
	"strings"
)

// logTailBytes is how much of a log's end the run page renders, and how
// much each "load earlier" request returns. A 50 MB log thus opens as a page
// of a few hundred KB; the rest is fetched on demand.
const logTailBytes = 256 << 10

// sgrStyle is the graphic rendition in effect at a point of a log line.
// Colour fields hold 1 + the palette index (0-15), so 0 means the default.
type sgrStyle struct {
	fg, bg                       int
	bold, dim, italic, underline bool
}

// classes returns the CSS classes of s, "" for the default rendition.
func (s sgrStyle) classes() string {
	var c []string
	if s.fg > 0 {
		c = append(c, "f"+strconv.Itoa(s.fg-1))
	}
	if s.bg > 0 {
		c = append(c, "g"+strconv.Itoa(s.bg-1))
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{s.bold, "b"}, {s.dim, "d"}, {s.italic, "i"}, {s.underline, "u"}} {
		if f.on {
			c = append(c, f.name)
		}
	}
	return strings.Join(c, " ")
}

// apply updates s with the parameters of one SGR sequence (ESC [ ... m).
// NOTE: 256-colour indices above 15 and 24-bit colours are consumed but
// shown in the default colour, because the page uses classes only.
func (s *sgrStyle) apply(params string) {
	if params == "" {
		*s = sgrStyle{}
		return
	}
	p := strings.Split(strings.ReplaceAll(params, ":", ";"), ";")
	for i := 0; i < len(p); i++ {
		n, err := strconv.Atoi(p[i])
		if err != nil {
			n = 0
		}
		switch {
		case n == 0:
			*s = sgrStyle{}
		case n == 1:
			s.bold = true
		case n == 2:
			s.dim = true
		case n == 3:
			s.italic = true
		case n == 4:
			s.underline = true
		case n == 22:
			s.bold, s.dim = false, false
		case n == 23:
			s.italic = false
		case n == 24:
			s.underline = false
		case n >= 30 && n <= 37:
			s.fg = n - 30 + 1
		case n == 39:
			s.fg = 0
		case n >= 40 && n <= 47:
			s.bg = n - 40 + 1
		case n == 49:
			s.bg = 0
		case n >= 90 && n <= 97:
			s.fg = n - 90 + 8 + 1
		case n >= 100 && n <= 107:
			s.bg = n - 100 + 8 + 1
		case n == 38 || n == 48:
			i += s.extendedColour(n, p[i+1:])
		}
	}
}

// extendedColour applies "38;5;n", "48;5;n", "38;2;r;g;b" or "48;2;r;g;b"
// (rest starts after the 38 or 48) and returns how many parameters it used.
func (s *sgrStyle) extendedColour(n int, rest []string) int {
	if len(rest) == 0 {
		return 0
	}
	switch rest[0] {
	case "5":
		if len(rest) < 2 {
			return len(rest)
		}
		idx, err := strconv.Atoi(rest[1])
		colour := 0
		if err == nil && idx >= 0 && idx < 16 {
			colour = idx + 1
		}
		if n == 38 {
			s.fg = colour
		} else {
			s.bg = colour
		}
		return 2
	case "2":
		if n == 38 {
			s.fg = 0
		} else {
			s.bg = 0
		}
		return min(4, len(rest))
	}
	return 1
}

// renderLog turns raw log bytes into HTML for a <pre> element. Every byte
// of text is escaped. SGR sequences become spans with classes, other escape
// sequences and control characters except tab are dropped, and a line
// rewritten with "\r" (a progress bar) shows only its last state. Lines of
// quai's own messages ("[quai 15:04:05] ...") get the class "q" and their
// time the class "ts". The style state starts from the default at data's
// start and carries from line to line within data.
func renderLog(data []byte) template.HTML {
	var out bytes.Buffer
	out.Grow(len(data) + len(data)/8)
	var style sgrStyle
	for len(data) > 0 {
		line := data
		nl := bytes.IndexByte(data, '\n')
		if nl >= 0 {
			line, data = data[:nl], data[nl+1:]
		} else {
			data = nil
		}
		style = renderLine(&out, line, style)
		if nl >= 0 {
			out.WriteByte('\n')
		}
	}
	return template.HTML(out.String())
}

// renderLine writes one line without its newline, starting in style, and
// returns the style in effect at its end.
func renderLine(out *bytes.Buffer, line []byte, style sgrStyle) sgrStyle {
	line = bytes.TrimRight(line, "\r")
	// Only the text after the last carriage return is visible, but the
	// sequences before it still set the style that text starts with.
	if cr := bytes.LastIndexByte(line, '\r'); cr >= 0 {
		style = scanLine(nil, line[:cr], style)
		line = line[cr+1:]
	}
	quai := bytes.HasPrefix(line, []byte("[quai ")) && len(line) >= 15 && line[14] == ']'
	if quai {
		out.WriteString(`<span class="q">[quai <span class="ts">`)
		template.HTMLEscape(out, line[6:14])
		out.WriteString(`</span>]`)
		line = line[15:]
	}
	style = scanLine(out, line, style)
	if quai {
		out.WriteString(`</span>`)
	}
	return style
}

// scanLine applies the escape sequences of line to style and, when out is
// not nil, writes the line's text escaped, wrapped in spans for non-default
// styles.
func scanLine(out *bytes.Buffer, line []byte, style sgrStyle) sgrStyle {
	open := false
	openSpan := func() {
		if c := style.classes(); c != "" && out != nil {
			fmt.Fprintf(out, `<span class="%s">`, c)
			open = true
		}
	}
	closeSpan := func() {
		if open {
			out.WriteString("</span>")
			open = false
		}
	}
	openSpan()

	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == 0x1b:
			params, final, n := parseEscape(line[i:])
			i += n
			if final == 'm' {
				closeSpan()
				style.apply(params)
				openSpan()
			}
		case c < 0x20 && c != '\t', c == 0x7f:
			i++
		default:
			j := i + 1
			for j < len(line) && line[j] != 0x1b && (line[j] >= 0x20 || line[j] == '\t') && line[j] != 0x7f {
				j++
			}
			if out != nil {
				template.HTMLEscape(out, line[i:j])
			}
			i = j
		}
	}
	closeSpan()
	return style
}

// parseEscape reads the escape sequence at the start of b (b[0] is ESC)
// and returns the CSI parameters, the final byte (0 for a sequence that is
// not CSI) and the sequence's length.
func parseEscape(b []byte) (params string, final byte, n int) {
	if len(b) < 2 {
		return "", 0, len(b)
	}
	if b[1] != '[' {
		// A two-byte escape such as ESC 7 or ESC =.
		return "", 0, 2
	}
	for j := 2; j < len(b); j++ {
		if b[j] >= 0x40 && b[j] <= 0x7e {
			return string(b[2:j]), b[j], j + 1
		}
	}
	return "", 0, len(b)
}

// errLogChunkFull stops CopyLog once a chunk has the bytes it needs.
var errLogChunkFull = errors.New("log chunk full")

// cappedWriter keeps the first limit bytes written to it and then fails
// with errLogChunkFull, so CopyLog stops reading.
type cappedWriter struct {
	buf   []byte
	limit int
}

func (w *cappedWriter) Write(p []byte) (int, error) {
	room := w.limit - len(w.buf)
	if len(p) <= room {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	w.buf = append(w.buf, p[:room]...)
	return room, errLogChunkFull
}

// logChunk is a part of a run's log: the bytes from Start to End.
type logChunk struct {
	Start, End int64
	Data       []byte
}

// readLogBefore reads at most logTailBytes of run runID's log that end at
// offset end. A chunk that does not start at the log's beginning starts
// after its first newline, so no line is shown cut. A chunk without any
// newline is kept whole.
func (s *Server) readLogBefore(runID uint64, end int64) (logChunk, error) {
	start := max(0, end-logTailBytes)
	w := &cappedWriter{limit: int(end - start)}
	if _, err := s.cfg.Runs.CopyLog(runID, start, w); err != nil && !errors.Is(err, errLogChunkFull) {
		return logChunk{}, fmt.Errorf("reading log of run %d before offset %d: %w", runID, end, err)
	}
	data := w.buf
	if start > 0 {
		if nl := bytes.IndexByte(data, '\n'); nl >= 0 && nl+1 < len(data) {
			data = data[nl+1:]
			start += int64(nl + 1)
		}
	}
	return logChunk{Start: start, End: start + int64(len(data)), Data: data}, nil
}

// completeLines cuts data after its last newline, so a live log is shown
// up to a line boundary and followed from there. Data without any newline
// is kept whole once it reaches maxPartialLine bytes, so a program that
// never ends a line still shows its output.
func completeLines(data []byte) []byte {
	if nl := bytes.LastIndexByte(data, '\n'); nl >= 0 {
		return data[:nl+1]
	}
	if len(data) >= maxPartialLine {
		return data
	}
	return nil
}

// maxPartialLine is how much of an unfinished line is held back from a
// live log view before it is shown anyway.
const maxPartialLine = 64 << 10
