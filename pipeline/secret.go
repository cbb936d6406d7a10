package pipeline

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// mountPattern is a Vault mount path: "/"-separated names of letters,
// digits, "_", "." and "-".
var mountPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*$`)

// ParseSecretRef reads a secret reference as a pipeline file writes it:
// "path#key" for the "secret" mount, or "mount:path#key". A ":" before the
// "#" always ends the mount, so a path cannot contain one. The returned
// Mount is never empty. The error quotes s and says what is wrong: a
// missing or empty key or path, an empty or malformed mount, empty, "."
// or ".." parts in the path, a second "#", or white space.
func ParseSecretRef(s string) (SecretRef, error) {
	if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return SecretRef{}, fmt.Errorf("invalid secret reference %q, it contains white space", s)
	}
	location, key, ok := strings.Cut(s, "#")
	switch {
	case !ok || key == "":
		return SecretRef{}, fmt.Errorf("invalid secret reference %q, add the key after \"#\", "+
			"as in \"app/db#password\"", s)
	case strings.Contains(key, "#"):
		return SecretRef{}, fmt.Errorf("invalid secret reference %q, it contains more than one \"#\"", s)
	}

	r := SecretRef{Mount: DefaultSecretMount, Path: location, Key: key}
	if mount, p, hasMount := strings.Cut(location, ":"); hasMount {
		if mount == "" {
			return SecretRef{}, fmt.Errorf("invalid secret reference %q, the mount before \":\" is empty, "+
				"remove \":\" to read from the %s mount", s, DefaultSecretMount)
		}
		if !mountPattern.MatchString(mount) {
			return SecretRef{}, fmt.Errorf("invalid secret reference %q, mount %q must be names of letters, "+
				"digits, \"_\", \".\" or \"-\" separated by \"/\"", s, mount)
		}
		r.Mount, r.Path = mount, p
	}
	if r.Path == "" {
		return SecretRef{}, fmt.Errorf("invalid secret reference %q, the path before \"#\" is empty", s)
	}
	for part := range strings.SplitSeq(r.Path, "/") {
		if part == "" || part == "." || part == ".." {
			return SecretRef{}, fmt.Errorf("invalid secret reference %q, path %q must be names separated "+
				"by single \"/\", without \".\" or \"..\" and without a \"/\" at either end", s, r.Path)
		}
	}
	return r, nil
}

// MarshalText writes the reference as String does, so JSON and YAML show
// the form a pipeline file uses.
func (r SecretRef) MarshalText() ([]byte, error) {
	return []byte(r.String()), nil
}

// UnmarshalText reads the form ParseSecretRef accepts.
func (r *SecretRef) UnmarshalText(text []byte) error {
	parsed, err := ParseSecretRef(string(text))
	if err != nil {
		return err
	}
	*r = parsed
	return nil
}

// secretMap decodes a mapping of environment variable names to secret
// references.
func (d *decoder) secretMap(path string, n *yaml.Node, validName func(string) error) map[string]SecretRef {
	out, _, _ := decodeMap(d, path, n, validName, d.secretRef)
	return out
}

// secretRef decodes one secret reference. It warns about a path that
// repeats the default mount or the "data/" segment of the KV version 2
// API, which quai adds itself.
func (d *decoder) secretRef(path string, n *yaml.Node) (SecretRef, bool) {
	s, ok := d.str(path, n)
	if !ok {
		return SecretRef{}, false
	}
	r, err := ParseSecretRef(s)
	if err != nil {
		d.errorf(deref(n), "%s: %v", path, err)
		return r, false
	}
	switch {
	case r.Mount == DefaultSecretMount && strings.HasPrefix(r.Path, DefaultSecretMount+"/"):
		d.warnf(deref(n), "%s: the path %q starts with the mount name, but \"path#key\" reads from the %s "+
			"mount already, so write %q", path, r.Path, DefaultSecretMount,
			strings.TrimPrefix(s, DefaultSecretMount+"/"))
	case strings.HasPrefix(r.Path, "data/"):
		d.warnf(deref(n), "%s: the path %q starts with \"data/\", which quai adds itself on a KV version 2 "+
			"mount, so remove it unless the secret's path really starts with a data folder", path, r.Path)
	}
	return r, true
}

// conflictingNames reports, at its key in e, each secret whose name other
// also sets. e is the zero entry when the secrets key is absent.
func (d *decoder) conflictingNames(path string, e entry, secrets map[string]SecretRef,
	other map[string]string, otherPath string,
) {
	if e.value == nil {
		return
	}
	for name := range secrets {
		if _, dup := other[name]; !dup {
			continue
		}
		if k := findKey(e.value, name); k != nil {
			d.errorf(k, "%s.%s: also set in %s, remove one of them", path, name, otherPath)
		}
	}
}
