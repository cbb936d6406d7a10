package pipeline

import (
	"regexp"
	"strings"
	"testing"
)

var (
	tagPattern       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	containerPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
	hashedPattern    = regexp.MustCompile(`(^|-)[0-9a-f]{12}$`)
)

func TestImageTag(t *testing.T) {
	long := strings.Repeat("a", 300)
	tests := []struct {
		in string
		// wantPrefix is the start of the tag. When hashed is false the tag
		// must equal wantPrefix exactly.
		wantPrefix string
		hashed     bool
	}{
		{"main", "main", false},
		{"v1.2.3", "v1.2.3", false},
		{"feature_x", "feature_x", false},
		{"_private", "_private", false},
		{"Release-1.0", "Release-1.0", false},
		{strings.Repeat("b", 128), strings.Repeat("b", 128), false},
		{"feature/x", "feature-x-", true},
		{"feature/été", "feature-t-", true},
		{"日本", "", true},
		{"fix/日本語/bug", "fix-bug-", true},
		{".hidden", "hidden-", true},
		{"-dash", "dash-", true},
		{"--", "", true},
		{"", "", true},
		{"a b\tc", "a-b-c-", true},
		{"bad\xffutf8", "bad-utf8-", true},
		{long, strings.Repeat("a", 115) + "-", true},
		{strings.Repeat("é", 300), "", true},
		// Names shaped like a hashed result are hashed again, so a branch
		// cannot take over another branch's tag.
		{"feature-x-0123456789ab", "feature-x-0123456789ab-", true},
		{"0123456789ab", "0123456789ab-", true},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got := ImageTag(tt.in)
		if !tagPattern.MatchString(got) {
			t.Errorf("ImageTag(%q) = %q, not a valid Docker tag", tt.in, got)
		}
		if got != ImageTag(tt.in) {
			t.Errorf("ImageTag(%q) is not deterministic", tt.in)
		}
		if !tt.hashed && got != tt.wantPrefix {
			t.Errorf("ImageTag(%q) = %q, want it unchanged", tt.in, got)
		}
		if tt.hashed {
			if !strings.HasPrefix(got, tt.wantPrefix) {
				t.Errorf("ImageTag(%q) = %q, want prefix %q", tt.in, got, tt.wantPrefix)
			}
			if !hashedPattern.MatchString(got) {
				t.Errorf("ImageTag(%q) = %q, want a hash suffix", tt.in, got)
			}
		}
		if other, dup := seen[got]; dup {
			t.Errorf("ImageTag(%q) = ImageTag(%q) = %q", tt.in, other, got)
		}
		seen[got] = tt.in
	}
}

// The tag of a branch names images already built, so it must not change
// between versions of quai.
func TestImageTagStable(t *testing.T) {
	// 3d3a9540c3c5 starts the output of: printf 'feature/été' | sha256sum
	const want = "feature-t-3d3a9540c3c5"
	if got := ImageTag("feature/été"); got != want {
		t.Errorf("ImageTag(\"feature/été\") = %q, want %q", got, want)
	}
}

func TestImageTagDistinctBranches(t *testing.T) {
	branches := []string{
		"feature/x", "feature-x", "feature_x", "feature.x", "feature//x", "feature/x/",
		"é", "è", "日", "本", "", "-", ".", "..", "a", "A",
		strings.Repeat("a", 200), strings.Repeat("a", 201), strings.Repeat("a", 128), strings.Repeat("a", 129),
	}
	seen := map[string]string{}
	for _, b := range branches {
		tag := ImageTag(b)
		if other, dup := seen[tag]; dup {
			t.Errorf("branches %q and %q both map to %q", b, other, tag)
		}
		seen[tag] = b
	}
}

func TestContainerName(t *testing.T) {
	tests := []struct {
		parts      []string
		wantPrefix string
		hashed     bool
	}{
		{[]string{"hello"}, "hello", false},
		{[]string{"hello", "blue"}, "hello-blue", false},
		{[]string{"hello", "v1.2", "a_b"}, "hello-v1.2-a_b", false},
		{[]string{"hello", "feature/été"}, "hello-feature-t-", true},
		{[]string{"x"}, "x-", true},
		{[]string{}, "", true},
		{[]string{"", ""}, "", true},
		{[]string{"_app", "blue"}, "app-blue-", true},
		{[]string{".app"}, "app-", true},
		{[]string{"日本", "app"}, "app-", true},
		{[]string{strings.Repeat("a", 100), strings.Repeat("b", 100)}, strings.Repeat("a", 100) + "-" + strings.Repeat("b", 14) + "-", true},
	}
	seen := map[string][]string{}
	for _, tt := range tests {
		got := ContainerName(tt.parts...)
		if !containerPattern.MatchString(got) || len(got) > 128 {
			t.Errorf("ContainerName(%q) = %q, not a valid container name", tt.parts, got)
		}
		if !tt.hashed && got != tt.wantPrefix {
			t.Errorf("ContainerName(%q) = %q, want %q", tt.parts, got, tt.wantPrefix)
		}
		if tt.hashed && (!strings.HasPrefix(got, tt.wantPrefix) || !hashedPattern.MatchString(got)) {
			t.Errorf("ContainerName(%q) = %q, want prefix %q and a hash suffix", tt.parts, got, tt.wantPrefix)
		}
		if other, dup := seen[got]; dup && strings.Join(other, "-") != strings.Join(tt.parts, "-") {
			t.Errorf("ContainerName(%q) = ContainerName(%q) = %q", tt.parts, other, got)
		}
		seen[got] = tt.parts
	}
}

func FuzzImageTag(f *testing.F) {
	for _, s := range []string{"main", "feature/été", "", "-", strings.Repeat("x", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tag := ImageTag(s)
		if !tagPattern.MatchString(tag) {
			t.Errorf("ImageTag(%q) = %q, not a valid Docker tag", s, tag)
		}
		if name := ContainerName(s); !containerPattern.MatchString(name) || len(name) > 128 {
			t.Errorf("ContainerName(%q) = %q, not a valid container name", s, name)
		}
	})
}
