package pipeline

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Limits on names. Docker sets no maximum for container names. quai caps
// deploy.container at 63 characters so that ContainerName can append
// suffixes within its own maximum of 128.
const (
	maxPipelineNameLength  = 63
	maxContainerNameLength = 63
	// maxImageNameLength is Docker's limit on a repository name including
	// the registry host (distribution/reference NameTotalLengthMax).
	maxImageNameLength = 255
)

var (
	pipelineNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)
	// containerNamePattern is Docker's RestrictedNamePattern (daemon/names),
	// which requires at least two characters.
	containerNamePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
	envNamePattern       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// GitHub user and organization names are at most 39 alphanumerics or
	// hyphens and do not start with a hyphen. Repository names are at most
	// 100 characters.
	repoOwnerPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,38}$`)
	repoNamePattern  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)
	// imagePathComponent follows the Docker reference grammar: lowercase
	// alphanumerics separated by ".", "_", "__" or one or more "-".
	imagePathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	// imageHostComponent is one label of a registry host name.
	imageHostComponent = regexp.MustCompile(`^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$`)
	// approleNamePattern is the role name syntax Vault's AppRole backend
	// accepts (framework.GenericNameRegex: word characters, with "-" and
	// "." inside).
	approleNamePattern = regexp.MustCompile(`^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$`)
)

// pipelineNameRule describes valid pipeline names in messages.
var pipelineNameRule = fmt.Sprintf("at most %d lowercase letters, digits, \"_\", \".\" or \"-\", "+
	"starting with a letter or digit", maxPipelineNameLength)

func validatePipelineName(name string) error {
	if len(name) > maxPipelineNameLength || !pipelineNamePattern.MatchString(name) {
		return fmt.Errorf("invalid pipeline name %q, use %s", name, pipelineNameRule)
	}
	return nil
}

func validateRepo(repo string) error {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || !repoOwnerPattern.MatchString(owner) || !repoNamePattern.MatchString(name) ||
		name == "." || name == ".." {
		return fmt.Errorf("invalid repository %q, expected the GitHub owner/name such as \"acme/hello\"", repo)
	}
	return nil
}

// validateImageName checks a Docker repository name without tag: an
// optional registry host[:port] followed by lowercase path components.
func validateImageName(image string) error {
	if image == "" {
		return fmt.Errorf("image name is empty")
	}
	if len(image) > maxImageNameLength {
		return fmt.Errorf("invalid image name, longer than %d characters", maxImageNameLength)
	}
	if strings.Contains(image, "@") {
		return fmt.Errorf("invalid image name %q, remove the digest because quai tags each build itself", image)
	}
	components := strings.Split(image, "/")
	// Docker reads the first component as a registry host when it contains
	// "." or ":" or is "localhost".
	if len(components) > 1 {
		first := components[0]
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			if err := validateRegistryHost(first); err != nil {
				return fmt.Errorf("invalid image name %q, %w", image, err)
			}
			components = components[1:]
		}
	}
	last := components[len(components)-1]
	if i := strings.LastIndex(last, ":"); i >= 0 {
		return fmt.Errorf("invalid image name %q, remove the tag %q because quai tags each build with its commit",
			image, last[i:])
	}
	for _, c := range components {
		if imagePathComponent.MatchString(c) {
			continue
		}
		if strings.ToLower(c) != c {
			return fmt.Errorf("invalid image name %q, Docker repository names must be lowercase", image)
		}
		return fmt.Errorf("invalid image name %q, path component %q must be lowercase letters and digits "+
			"separated by \".\", \"_\" or \"-\"", image, c)
	}
	return nil
}

func validateRegistryHost(hostPort string) error {
	host, port, hasPort := strings.Cut(hostPort, ":")
	if hasPort {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("registry port %q is not a number from 1 to 65535", port)
		}
	}
	for label := range strings.SplitSeq(host, ".") {
		if !imageHostComponent.MatchString(label) {
			return fmt.Errorf("registry host %q is not a valid host name", host)
		}
	}
	return nil
}

func validateContainerName(name string) error {
	if len(name) > maxContainerNameLength || !containerNamePattern.MatchString(name) {
		return fmt.Errorf("invalid container name %q, use 2 to %d letters, digits, "+
			"\"_\", \".\" or \"-\", starting with a letter or digit", name, maxContainerNameLength)
	}
	return nil
}

func validateEnvName(name string) error {
	if !envNamePattern.MatchString(name) {
		return fmt.Errorf("invalid variable name %q, use letters, digits and \"_\", not starting with a digit", name)
	}
	return nil
}

// validatePort checks a TCP port number.
func validatePort(port int) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("port %d is out of range, use 1 to 65535", port)
	}
	return nil
}

// validatePublish checks a host "IP:port". A host name is rejected because
// Docker binds published ports to addresses, not names.
func validatePublish(publish string) error {
	host, port, err := net.SplitHostPort(publish)
	if err != nil {
		return fmt.Errorf("invalid address %q, expected IP:port such as 127.0.0.1:8080 or [::1]:8080", publish)
	}
	if addr, err := netip.ParseAddr(host); err != nil || addr.Zone() != "" {
		return fmt.Errorf("invalid address %q, %q is not an IP address (host names are not allowed)",
			publish, host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("invalid address %q, port %q is not a number from 1 to 65535", publish, port)
	}
	return nil
}

// validateGlob checks a branch or tag pattern with both path.Match and
// doublestar, because matching uses doublestar and users know path.Match.
func validateGlob(pattern string) error {
	if pattern == "" {
		return fmt.Errorf("empty pattern, remove it or write a branch name")
	}
	return validatePattern(pattern)
}

// validatePathGlob checks a pattern over changed file paths, which are
// relative to the repository root.
func validatePathGlob(pattern string) error {
	switch {
	case pattern == "":
		return fmt.Errorf("empty pattern, remove it or write a path such as src/**")
	case strings.HasPrefix(pattern, "/"):
		return fmt.Errorf("invalid pattern %q, changed paths are relative to the repository root, "+
			"remove the leading /", pattern)
	}
	return validatePattern(pattern)
}

func validatePattern(pattern string) error {
	if strings.HasPrefix(pattern, "!") {
		return fmt.Errorf("invalid pattern %q, negated patterns are not supported, "+
			"use the matching _ignore key", pattern)
	}
	if _, err := path.Match(pattern, ""); err != nil || !doublestar.ValidatePattern(pattern) {
		return fmt.Errorf("invalid pattern %q, check that every [ and { is closed and \\ escapes a character",
			pattern)
	}
	return nil
}

// validateRelativePath checks a path inside the repository.
func validateRelativePath(p string) error {
	clean := path.Clean(p)
	if path.IsAbs(p) || clean == ".." || strings.HasPrefix(clean, "../") {
		return fmt.Errorf("path %q must be relative and stay inside the repository", p)
	}
	return nil
}

// validateCloneURL accepts the forms git clone accepts from a pipeline
// author: a URL, scp-like "user@host:path" or an absolute local path.
func validateCloneURL(s string) error {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return fmt.Errorf("invalid clone URL %q: %w", s, err)
		}
		switch u.Scheme {
		case "https":
			if u.Host == "" {
				return fmt.Errorf("invalid clone URL %q, the host is missing", s)
			}
			// Credentials in the URL would be stored with every run and
			// shown by the API.
			if u.User != nil {
				return fmt.Errorf("invalid clone URL %q, remove the credentials and set QUAI_GITHUB_TOKEN instead", u.Redacted())
			}
		case "file":
			if u.Path == "" {
				return fmt.Errorf("invalid clone URL %q, the path is missing", s)
			}
		default:
			return fmt.Errorf("invalid clone URL %q, quai checks out over https://, file:// or a local path", s)
		}
		return nil
	}
	if path.IsAbs(s) {
		return nil
	}
	return fmt.Errorf("invalid clone URL %q, quai checks out over https://, file:// or an absolute local path", s)
}

func validateVaultAddress(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid Vault address %q, expected a URL such as https://vault.example:8200", s)
	}
	return nil
}

func validateAppRoleName(name string) error {
	if !approleNamePattern.MatchString(name) {
		return fmt.Errorf("invalid AppRole name %q, use letters, digits, \"_\", \".\" and \"-\", "+
			"starting and ending with a letter, digit or \"_\"", name)
	}
	return nil
}

func validateHealthPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("invalid path %q, it must start with \"/\"", p)
	}
	if _, err := url.ParseRequestURI(p); err != nil || strings.ContainsAny(p, " \t\r\n") {
		return fmt.Errorf("invalid path %q, expected a URL path such as /healthz", p)
	}
	return nil
}

// haproxyName is the character set HAProxy accepts in proxy and server
// names.
var haproxyName = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

func validateHAProxyName(name string) error {
	if !haproxyName.MatchString(name) {
		return fmt.Errorf("invalid HAProxy name %q, use letters, digits, \"_\", \".\", \":\" or \"-\"", name)
	}
	return nil
}

func validateAbsolutePath(p string) error {
	if !path.IsAbs(p) {
		return fmt.Errorf("invalid path %q, use an absolute path such as /run/haproxy/admin.sock", p)
	}
	return nil
}
