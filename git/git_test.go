package git

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/quai-ci/quai/internal/testenv"
)

const testToken = "ghs_quaiTestToken0123456789abcdef"

func requireGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		testenv.Skip(t, "git", err.Error())
	}
}

// gitIn runs git in dir for test setup and returns its trimmed stdout.
func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = baseEnv()
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("git %v in %s: %v: %s", args, dir, err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// testRepo is a repository made for one test.
type testRepo struct {
	t   *testing.T
	dir string
}

// newRepo creates a repository whose HEAD is branch.
func newRepo(t *testing.T, branch string, extraInit ...string) *testRepo {
	t.Helper()
	requireGit(t)
	dir := filepath.Join(t.TempDir(), "origin")
	args := append([]string{"init", "--quiet", "--initial-branch=" + branch}, extraInit...)
	gitIn(t, filepath.Dir(dir), append(args, dir)...)
	return &testRepo{t: t, dir: dir}
}

// commit writes files (path to content; empty content deletes the file),
// commits them and returns the commit hash.
func (r *testRepo) commit(files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.dir, name)
		if content == "" {
			if err := os.Remove(p); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	gitIn(r.t, r.dir, "add", "--all")
	gitIn(r.t, r.dir, "-c", "user.name=quai test", "-c", "user.email=test@example.com",
		"-c", "commit.gpgsign=false", "commit", "--quiet", "--allow-empty", "-m", "test commit")
	return gitIn(r.t, r.dir, "rev-parse", "HEAD")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// setGlobalConfig points git at a global configuration file with content.
func setGlobalConfig(t *testing.T, content string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gitconfig")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_CONFIG_GLOBAL", p)
}

func TestCheckoutOlderCommit(t *testing.T) {
	repo := newRepo(t, "main")
	older := repo.commit(map[string]string{"a.txt": "one\n"})
	repo.commit(map[string]string{"a.txt": "two\n", "b.txt": "new\n"})

	tests := []struct {
		name         string
		url          string
		gitconfig    string
		wantFallback bool
	}{
		{"local path", repo.dir, "", false},
		{"file URL", "file://" + repo.dir, "", false},
		// Over protocol v0 a local repository rejects a request for a
		// commit that no branch points to.
		{"protocol v0 full fetch", "file://" + repo.dir, "[protocol]\n\tversion = 0\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setGlobalConfig(t, tt.gitconfig)
			dir := filepath.Join(t.TempDir(), "checkout")
			var out bytes.Buffer

			if err := Checkout(context.Background(), tt.url, older, dir, "", &out); err != nil {
				t.Fatalf("Checkout: %v\noutput:\n%s", err, out.String())
			}

			if head := gitIn(t, dir, "rev-parse", "HEAD"); head != older {
				t.Errorf("HEAD = %s, want %s", head, older)
			}
			if got := readFile(t, filepath.Join(dir, "a.txt")); got != "one\n" {
				t.Errorf("a.txt = %q, want the older commit's %q", got, "one\n")
			}
			if _, err := os.Stat(filepath.Join(dir, "b.txt")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("b.txt from the newer commit exists (stat error %v)", err)
			}
			if status := gitIn(t, dir, "status", "--porcelain"); status != "" {
				t.Errorf("work tree not clean:\n%s", status)
			}
			fellBack := strings.Contains(out.String(), "fetching all branches and tags")
			if fellBack != tt.wantFallback {
				t.Errorf("full fetch used = %v, want %v; output:\n%s", fellBack, tt.wantFallback, out.String())
			}
			wantShallow := strconv.FormatBool(!tt.wantFallback)
			if got := gitIn(t, dir, "rev-parse", "--is-shallow-repository"); got != wantShallow {
				t.Errorf("shallow repository = %s, want %s", got, wantShallow)
			}
		})
	}
}

func TestCheckoutSHA256(t *testing.T) {
	repo := newRepo(t, "main", "--object-format=sha256")
	commit := repo.commit(map[string]string{"a.txt": "sha256\n"})
	if len(commit) != 64 {
		t.Fatalf("test repository commit %s is not a SHA-256 hash", commit)
	}
	dir := filepath.Join(t.TempDir(), "checkout")

	if err := Checkout(context.Background(), repo.dir, commit, dir, "", nil); err != nil {
		t.Fatalf("Checkout: %v", err)
	}
	if head := gitIn(t, dir, "rev-parse", "HEAD"); head != commit {
		t.Errorf("HEAD = %s, want %s", head, commit)
	}
}

func TestCheckoutUnknownCommit(t *testing.T) {
	repo := newRepo(t, "main")
	repo.commit(map[string]string{"a.txt": "one\n"})
	unknown := strings.Repeat("0123456789", 4)
	dir := filepath.Join(t.TempDir(), "checkout")

	err := Checkout(context.Background(), repo.dir, unknown, dir, "", nil)
	if !errors.Is(err, ErrCommitNotFound) {
		t.Fatalf("error = %v, want ErrCommitNotFound", err)
	}
	for _, want := range []string{unknown, repo.dir} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestCheckoutInvalidCommit(t *testing.T) {
	for _, commit := range []string{
		"",
		"main",
		"HEAD~1",
		"abc123",
		"--upload-pack=touch /tmp/quai-test-pwned",
		strings.Repeat("a", 39),
		strings.Repeat("a", 41),
		strings.Repeat("g", 40),
		strings.Repeat("a", 40) + "\n",
	} {
		dir := filepath.Join(t.TempDir(), "checkout")
		err := Checkout(context.Background(), "/nonexistent/repo", commit, dir, "", nil)
		if err == nil || !strings.Contains(err.Error(), "invalid commit") {
			t.Errorf("Checkout(commit %q) error = %v, want an invalid commit error", commit, err)
		}
		if _, statErr := os.Stat(dir); !errors.Is(statErr, os.ErrNotExist) {
			t.Errorf("Checkout(commit %q) created %s before validating", commit, dir)
		}
	}
}

func TestCheckoutRejects(t *testing.T) {
	requireGit(t)
	commit := strings.Repeat("a", 40)
	nonEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(nonEmpty, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, url, dir, wantErr string
	}{
		{"empty URL", "", "", "empty repository URL"},
		{"option-like URL", "-uhttps://x", "", "starts with '-'"},
		{"ssh URL", "ssh://git@example.com/a/b.git", "", "unsupported repository URL"},
		{"scp-like URL", "git@example.com:a/b.git", "", "unsupported repository URL"},
		{"transport helper", "ext::sh -c touch% /tmp/x", "", "unsupported repository URL"},
		{"credentials in URL", "https://user:pw@example.com/a/b.git", "", "contains credentials"},
		{"non-empty directory", "/nonexistent/repo", nonEmpty, "is not empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.dir
			if dir == "" {
				dir = filepath.Join(t.TempDir(), "checkout")
			}
			err := Checkout(context.Background(), tt.url, commit, dir, "", nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "pw@") {
				t.Errorf("error %q shows the URL's password", err)
			}
		})
	}
}

func TestDefaultBranch(t *testing.T) {
	repo := newRepo(t, "trunk")
	repo.commit(map[string]string{"a.txt": "one\n"})

	for _, url := range []string{repo.dir, "file://" + repo.dir} {
		got, err := DefaultBranch(context.Background(), url, "")
		if err != nil {
			t.Errorf("DefaultBranch(%s): %v", url, err)
			continue
		}
		if got != "trunk" {
			t.Errorf("DefaultBranch(%s) = %q, want trunk", url, got)
		}
	}

	if _, err := DefaultBranch(context.Background(), filepath.Join(t.TempDir(), "none"), ""); err == nil {
		t.Error("DefaultBranch of a missing repository succeeded")
	}
}

func TestChangedFiles(t *testing.T) {
	repo := newRepo(t, "main")
	first := repo.commit(map[string]string{
		"README.md": "readme\n", "src/main.go": "package main\n", "old.txt": "old\n",
	})
	repo.commit(map[string]string{"src/main.go": "package main\n\nfunc main() {}\n"})
	repo.commit(map[string]string{"old.txt": "", "docs/new name.md": "new\n"})
	last := gitIn(t, repo.dir, "rev-parse", "HEAD")

	tests := []struct {
		name          string
		before, after string
		want          []string
	}{
		{"two commits apart", first, last, []string{"docs/new name.md", "old.txt", "src/main.go"}},
		{"same commit", last, last, nil},
	}
	for _, tt := range tests {
		got, err := ChangedFiles(context.Background(), repo.dir, tt.before, tt.after)
		if err != nil {
			t.Fatalf("%s: ChangedFiles: %v", tt.name, err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: ChangedFiles = %q, want %q", tt.name, got, tt.want)
		}
	}

	unknown := strings.Repeat("ab", 20)
	_, err := ChangedFiles(context.Background(), repo.dir, unknown, last)
	if !errors.Is(err, ErrCommitNotFound) || !strings.Contains(err.Error(), unknown) {
		t.Errorf("unknown before: error = %v, want ErrCommitNotFound naming %s", err, unknown)
	}
	if _, err := ChangedFiles(context.Background(), repo.dir, "HEAD~2", last); err == nil ||
		!strings.Contains(err.Error(), "invalid commit") {
		t.Errorf("revision expression as before: error = %v, want an invalid commit error", err)
	}
}

func TestChangedFilesShallowCheckout(t *testing.T) {
	repo := newRepo(t, "main")
	first := repo.commit(map[string]string{"a.txt": "one\n"})
	second := repo.commit(map[string]string{"a.txt": "two\n"})
	dir := filepath.Join(t.TempDir(), "checkout")
	if err := Checkout(context.Background(), repo.dir, second, dir, "", nil); err != nil {
		t.Fatalf("Checkout: %v", err)
	}

	_, err := ChangedFiles(context.Background(), dir, first, second)
	if !errors.Is(err, ErrCommitNotFound) {
		t.Errorf("error = %v, want ErrCommitNotFound for a commit outside the shallow checkout", err)
	}
}

// closedPortURL returns an https URL on 127.0.0.1 where nothing listens.
func closedPortURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "https://" + addr + "/owner/repo.git"
}

// assertNoToken fails when text shows the token in any form git could send.
func assertNoToken(t *testing.T, what, text string) {
	t.Helper()
	header := authHeader(testToken)
	encoded := strings.TrimPrefix(header, "Basic ")
	for _, secret := range []string{testToken, header, encoded} {
		if strings.Contains(text, secret) {
			t.Errorf("%s shows the token: %q", what, text)
		}
	}
}

func TestTokenNotInErrors(t *testing.T) {
	requireGit(t)
	url := closedPortURL(t)
	commit := strings.Repeat("c", 40)
	var out bytes.Buffer

	err := Checkout(context.Background(), url, commit, filepath.Join(t.TempDir(), "c"), testToken, &out)
	if err == nil {
		t.Fatal("Checkout from a closed port succeeded")
	}
	for _, want := range []string{url, commit} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	assertNoToken(t, "Checkout error", err.Error())
	assertNoToken(t, "Checkout output", out.String())

	_, err = DefaultBranch(context.Background(), url, testToken)
	if err == nil {
		t.Fatal("DefaultBranch from a closed port succeeded")
	}
	assertNoToken(t, "DefaultBranch error", err.Error())
}

// installGitRecorder puts a git wrapper first in PATH that logs each
// command line and the value of GIT_CONFIG_VALUE_0, then runs the real git.
// It returns the log path.
func installGitRecorder(t *testing.T) string {
	t.Helper()
	realGit, err := exec.LookPath("git")
	if err != nil {
		testenv.Skip(t, "git", err.Error())
	}
	bin := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "git.log")
	script := "#!/bin/sh\n" +
		"printf 'argv: %s\\n' \"$*\" >> '" + logPath + "'\n" +
		"printf 'config value: %s\\n' \"$GIT_CONFIG_VALUE_0\" >> '" + logPath + "'\n" +
		"exec '" + realGit + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "git"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return logPath
}

func TestTokenSentOnlyAsHeader(t *testing.T) {
	var mu sync.Mutex
	var authHeaders []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		authHeaders = append(authHeaders, r.Header.Get("Authorization"))
		mu.Unlock()
		http.NotFound(w, r)
	}))
	defer srv.Close()

	// git must trust the test server's certificate and reach it directly.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, cert, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_SSL_CAINFO", caFile)
	t.Setenv("NO_PROXY", "127.0.0.1")
	t.Setenv("no_proxy", "127.0.0.1")
	logPath := installGitRecorder(t)

	url := srv.URL + "/owner/repo.git"
	commit := strings.Repeat("d", 40)
	var out bytes.Buffer
	checkoutErr := Checkout(context.Background(), url, commit, filepath.Join(t.TempDir(), "c"), testToken, &out)
	_, branchErr := DefaultBranch(context.Background(), url, testToken)

	for what, err := range map[string]error{"Checkout": checkoutErr, "DefaultBranch": branchErr} {
		if err == nil {
			t.Errorf("%s from a server without the repository succeeded", what)
			continue
		}
		assertNoToken(t, what+" error", err.Error())
	}
	assertNoToken(t, "Checkout output", out.String())

	mu.Lock()
	defer mu.Unlock()
	if len(authHeaders) == 0 {
		t.Fatal("git sent no request to the test server")
	}
	for _, h := range authHeaders {
		if h != authHeader(testToken) {
			t.Errorf("Authorization header = %q, want %q", h, authHeader(testToken))
		}
	}

	log := readFile(t, logPath)
	var sawHeader bool
	for _, line := range strings.Split(log, "\n") {
		if argv, ok := strings.CutPrefix(line, "argv: "); ok {
			assertNoToken(t, "git command line", argv)
		}
		if line == "config value: Authorization: "+authHeader(testToken) {
			sawHeader = true
		}
	}
	if !sawHeader {
		t.Errorf("no git command got the header through GIT_CONFIG_VALUE_0; log:\n%s", log)
	}
}

func TestTokenNotSentToLocalRepository(t *testing.T) {
	repo := newRepo(t, "main")
	commit := repo.commit(map[string]string{"a.txt": "one\n"})
	logPath := installGitRecorder(t)

	for _, url := range []string{repo.dir, "file://" + repo.dir} {
		dir := filepath.Join(t.TempDir(), "checkout")
		if err := Checkout(context.Background(), url, commit, dir, testToken, nil); err != nil {
			t.Fatalf("Checkout(%s): %v", url, err)
		}
		if _, err := DefaultBranch(context.Background(), url, testToken); err != nil {
			t.Fatalf("DefaultBranch(%s): %v", url, err)
		}
	}
	log := readFile(t, logPath)
	if !strings.Contains(log, "argv: fetch") {
		t.Fatalf("the git recorder saw no fetch; log:\n%s", log)
	}
	assertNoToken(t, "git commands for a local repository", log)
}

func TestParseRemote(t *testing.T) {
	abs, err := filepath.Abs("relative/repo")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		raw       string
		wantURL   string
		wantHTTPS bool
	}{
		{"https://github.com/owner/repo.git", "https://github.com/owner/repo.git", true},
		{"HTTPS://github.com/owner/repo", "HTTPS://github.com/owner/repo", true},
		{"file:///srv/git/repo.git", "file:///srv/git/repo.git", false},
		{"/srv/git/repo.git", "/srv/git/repo.git", false},
		{"relative/repo", abs, false},
	}
	for _, tt := range tests {
		got, err := parseRemote(tt.raw)
		if err != nil {
			t.Errorf("parseRemote(%q): %v", tt.raw, err)
			continue
		}
		if got.url != tt.wantURL || got.https != tt.wantHTTPS {
			t.Errorf("parseRemote(%q) = %+v, want url %q https %v", tt.raw, got, tt.wantURL, tt.wantHTTPS)
		}
	}
}
