package webui

import (
	"testing"
)

func TestRenderLog(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "hello\nworld\n", "hello\nworld\n"},
		{"no final newline", "a\nb", "a\nb"},
		{"html escaped", "<b>x</b> & \"y\"\n", "&lt;b&gt;x&lt;/b&gt; &amp; &#34;y&#34;\n"},
		{"script escaped", "<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"},
		{"red", "\x1b[31mred\x1b[0m plain", `<span class="f1">red</span> plain`},
		{"bright and bold", "\x1b[1;92mok\x1b[m", `<span class="f10 b">ok</span>`},
		{"background", "\x1b[41;37mX\x1b[49mY\x1b[0m", `<span class="f7 g1">X</span><span class="f7">Y</span>`},
		{"256 low index", "\x1b[38;5;4mblue\x1b[0m", `<span class="f4">blue</span>`},
		{"256 high index ignored", "\x1b[38;5;208mo\x1b[0m", `o`},
		{"truecolor ignored keeps later bold", "\x1b[38;2;1;2;3;1mt\x1b[0m", `<span class="b">t</span>`},
		{"style carries over lines", "\x1b[32ma\nb\x1b[0m\nc", "<span class=\"f2\">a</span>\n<span class=\"f2\">b</span>\nc"},
		{"other CSI dropped", "\x1b[2Kclear\x1b[1A", "clear"},
		{"control chars dropped", "a\x07b\x00c\td", "abc\td"},
		{"unterminated escape", "x\x1b[31", "x"},
		{"progress collapsed", "10%\r50%\r100%\ndone\n", "100%\ndone\n"},
		{"crlf kept", "line\r\n", "line\n"},
		{"progress keeps earlier colour", "\x1b[33m1/3\r2/3\r3/3\x1b[0m\n", "<span class=\"f3\">3/3</span>\n"},
		{"escaped after collapse", "<a>\r<b>", "&lt;b&gt;"},
		{"quai line", "[quai 12:34:56] step <x> started\n",
			"<span class=\"q\">[quai <span class=\"ts\">12:34:56</span>] step &lt;x&gt; started</span>\n"},
		{"not a quai line", "[quai] hi", "[quai] hi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(renderLog([]byte(tt.in))); got != tt.want {
				t.Errorf("renderLog(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCompleteLines(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"whole lines", "a\nb\n", "a\nb\n"},
		{"partial end held", "a\nb", "a\n"},
		{"short partial held", "abc", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(completeLines([]byte(tt.in))); got != tt.want {
				t.Errorf("completeLines(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	long := make([]byte, maxPartialLine)
	if got := completeLines(long); len(got) != len(long) {
		t.Errorf("completeLines of a %d-byte unfinished line kept %d bytes, want all", len(long), len(got))
	}
}
