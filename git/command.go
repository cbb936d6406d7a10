// Package git fetches commits and inspects repositories by running the git
// binary. An access token never appears in a command line, a URL or an
// error.
package git

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrCommitNotFound is returned, wrapped, when a commit is not in the
// repository or checkout that was searched.
var ErrCommitNotFound = errors.New("commit not found")

// waitDelay bounds how long a cancelled git command may keep its output
// pipes open before Wait gives up on them.
const waitDelay = 5 * time.Second

// maxErrorOutput is how much of the end of a failed command's output an
// error carries.
const maxErrorOutput = 2048

var commitPattern = regexp.MustCompile(`^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$`)

// validateCommit returns commit in lower case when it is a full SHA-1 (40
// hex characters) or SHA-256 (64) object name. Anything else is rejected, so
// a commit can never be read as an option or a revision expression.
func validateCommit(commit string) (string, error) {
	if !commitPattern.MatchString(commit) {
		return "", fmt.Errorf("invalid commit %q: want a full commit hash of 40 or 64 "+
			"hexadecimal characters", commit)
	}
	return strings.ToLower(commit), nil
}

// remote is a validated repository location.
type remote struct {
	url   string // as passed to git, with local paths made absolute
	https bool
}

// parseRemote accepts an https:// URL, a file:// URL or a local path.
// Credentials in the URL are rejected because git would print them in its
// messages.
func parseRemote(raw string) (remote, error) {
	if raw == "" {
		return remote{}, errors.New("empty repository URL")
	}
	if strings.HasPrefix(raw, "-") {
		return remote{}, fmt.Errorf("invalid repository URL %q: it starts with '-'", raw)
	}

	if scheme, _, ok := strings.Cut(raw, "://"); ok {
		u, err := url.Parse(raw)
		if err != nil {
			return remote{}, fmt.Errorf("invalid repository URL %q: %w", raw, err)
		}
		switch strings.ToLower(scheme) {
		case "https":
			if u.User != nil {
				return remote{}, fmt.Errorf("repository URL %s contains credentials: "+
					"pass the token separately", u.Redacted())
			}
			if u.Host == "" {
				return remote{}, fmt.Errorf("invalid repository URL %q: no host", raw)
			}
			return remote{url: raw, https: true}, nil
		case "file":
			return remote{url: raw}, nil
		}
		return remote{}, fmt.Errorf("unsupported repository URL %q: use https://, file:// "+
			"or a local path", raw)
	}

	// git reads "host:path" with no slash before the colon as an ssh
	// location, which is not supported here.
	if i := strings.IndexByte(raw, ':'); i >= 0 && !strings.Contains(raw[:i], "/") {
		return remote{}, fmt.Errorf("unsupported repository URL %q: use https://, file:// "+
			"or a local path", raw)
	}
	abs, err := filepath.Abs(raw)
	if err != nil {
		return remote{}, fmt.Errorf("resolving repository path %q: %w", raw, err)
	}
	return remote{url: abs}, nil
}

// authHeader returns the Authorization header value for token. GitHub's
// documentation for app installation tokens gives the token as the HTTP
// password with the user name "x-access-token".
func authHeader(token string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+token))
}

// command runs git. The token, when set, reaches git only through the
// environment, and is scrubbed from the output kept for errors.
type command struct {
	dir   string
	env   []string
	out   io.Writer // receives stdout and stderr when not nil
	token string
}

// newCommand prepares git commands for r. The token is sent only to https
// remotes.
func newCommand(dir string, r remote, token string, out io.Writer) *command {
	c := &command{dir: dir, env: baseEnv(), out: out}
	if r.https && token != "" {
		c.token = token
		c.env = append(c.env,
			"GIT_CONFIG_COUNT=1",
			"GIT_CONFIG_KEY_0=http.extraHeader",
			"GIT_CONFIG_VALUE_0=Authorization: "+authHeader(token),
		)
	}
	return c
}

// baseEnv returns the process environment without the variables that would
// point git at another repository or inject configuration, with terminal
// prompts off and messages in English.
func baseEnv() []string {
	dropped := []string{
		"GIT_DIR=", "GIT_WORK_TREE=", "GIT_INDEX_FILE=", "GIT_OBJECT_DIRECTORY=",
		"GIT_ALTERNATE_OBJECT_DIRECTORIES=", "GIT_CONFIG_PARAMETERS=", "GIT_CONFIG_COUNT=",
		"GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_", "GIT_TERMINAL_PROMPT=", "LC_ALL=",
	}
	var env []string
	for _, kv := range os.Environ() {
		keep := true
		for _, prefix := range dropped {
			if strings.HasPrefix(kv, prefix) {
				keep = false
				break
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	// Without a terminal prompt, a server asking for a password fails the
	// command at once instead of blocking it.
	return append(env, "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
}

// run runs git with args and returns its stdout. A failure's error carries
// the end of git's output.
func (c *command) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = c.dir
	cmd.Env = c.env
	// git fetch starts helpers such as git-remote-https, so the command gets
	// its own process group and cancellation kills them too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay

	var stdout, combined bytes.Buffer
	out := c.out
	if out == nil {
		out = io.Discard
	}
	// exec copies stdout and stderr in two goroutines, so the writer both
	// share needs a lock.
	shared := &lockedWriter{w: io.MultiWriter(&combined, out)}
	cmd.Stdout = io.MultiWriter(&stdout, shared)
	cmd.Stderr = shared

	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return "", fmt.Errorf("git %s: %w", args[0], ctxErr)
		}
		return "", fmt.Errorf("git %s: %w: %s", args[0], err, c.scrub(tail(combined.String())))
	}
	return stdout.String(), nil
}

// scrub removes the token from text that goes into an error. git does not
// print it, but a trace setting such as GIT_TRACE_CURL with
// GIT_TRACE_REDACT=0 would.
func (c *command) scrub(text string) string {
	if c.token == "" {
		return text
	}
	text = strings.ReplaceAll(text, authHeader(c.token), "[redacted]")
	return strings.ReplaceAll(text, c.token, "[redacted]")
}

// tail returns the last maxErrorOutput bytes of output, trimmed and on one
// line.
func tail(output string) string {
	output = strings.TrimSpace(output)
	if len(output) > maxErrorOutput {
		output = "…" + output[len(output)-maxErrorOutput:]
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(output, "\n", " | ")), " ")
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (lw *lockedWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Write(p)
}
