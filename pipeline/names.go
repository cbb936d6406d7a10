package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// hashLength is the number of hex digits of the SHA-256 of the original
// string that ImageTag and ContainerName append when they change it.
const hashLength = 12

// hashSuffixPattern matches names that end like a changed name. A name that
// already ends this way is hashed too, so it cannot equal the result for a
// different input.
var hashSuffixPattern = regexp.MustCompile(`(^|-)[0-9a-f]{12}$`)

// nameRules describes a Docker name syntax: allowed characters, allowed
// first characters and length bounds.
type nameRules struct {
	allowed    func(c rune) bool
	firstOK    func(c byte) bool
	minLength  int
	maxLength  int
	trimPrefix string // characters stripped from the start
}

var imageTagRules = nameRules{
	allowed:    func(c rune) bool { return isAlphanumeric(c) || c == '_' || c == '.' || c == '-' },
	firstOK:    func(c byte) bool { return isAlphanumeric(rune(c)) || c == '_' },
	minLength:  1,
	maxLength:  128,
	trimPrefix: ".-",
}

// containerNameRules follow Docker's RestrictedNamePattern. Docker sets no
// maximum length, so the 128 characters are quai's own bound to keep names
// readable in "docker ps".
var containerNameRules = nameRules{
	allowed:    func(c rune) bool { return isAlphanumeric(c) || c == '_' || c == '.' || c == '-' },
	firstOK:    func(c byte) bool { return isAlphanumeric(rune(c)) },
	minLength:  2,
	maxLength:  128,
	trimPrefix: "_.-",
}

// ImageTag returns a valid Docker tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}) for
// any string, such as a branch name. It is deterministic and never empty. A
// valid tag is returned unchanged. Otherwise each run of invalid characters
// becomes "-", leading "." and "-" are removed, and the result is truncated
// and followed by "-" and 12 hex digits of the SHA-256 of s, so
// "feature/été" becomes "feature-t-" and the digits. Two different inputs map
// to the same tag only if their hashes collide in those 48 bits.
func ImageTag(s string) string {
	return sanitizeName(s, imageTagRules)
}

// ContainerName returns a valid Docker container name
// ([a-zA-Z0-9][a-zA-Z0-9_.-]+, at most 128 characters) for parts joined with
// "-", such as ContainerName(app, "blue"). Like ImageTag it returns a valid
// joined name unchanged and otherwise replaces invalid characters and
// appends a hash of the joined name. Parts are joined before hashing, so
// ("a-b", "c") and ("a", "b-c") give the same name.
func ContainerName(parts ...string) string {
	return sanitizeName(strings.Join(parts, "-"), containerNameRules)
}

func sanitizeName(s string, rules nameRules) string {
	var b strings.Builder
	replaced := false
	for _, c := range s {
		if rules.allowed(c) {
			b.WriteRune(c)
			replaced = false
			continue
		}
		// Invalid UTF-8 arrives here as utf8.RuneError and is replaced too.
		if !replaced {
			b.WriteByte('-')
			replaced = true
		}
	}
	clean := strings.TrimLeft(b.String(), rules.trimPrefix)

	valid := clean == s && len(s) >= rules.minLength && len(s) <= rules.maxLength &&
		rules.firstOK(s[0]) && !hashSuffixPattern.MatchString(s)
	if valid {
		return s
	}

	sum := sha256.Sum256([]byte(s))
	hash := hex.EncodeToString(sum[:])[:hashLength]
	// clean is ASCII after the replacement, so byte slicing is safe.
	if maxPrefix := rules.maxLength - 1 - hashLength; len(clean) > maxPrefix {
		clean = clean[:maxPrefix]
	}
	clean = strings.TrimRight(clean, "-")
	if clean == "" {
		// hashLength hex digits satisfy both first-character rules and
		// minimum lengths.
		return hash
	}
	return clean + "-" + hash
}

func isAlphanumeric(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
