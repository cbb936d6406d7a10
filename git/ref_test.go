package git

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveRef(t *testing.T) {
	repo := newRepo(t, "main")
	first := repo.commit(map[string]string{"a.txt": "one\n"})
	second := repo.commit(map[string]string{"a.txt": "two\n"})

	gitIn(t, repo.dir, "branch", "feature/login", first)
	gitIn(t, repo.dir, "branch", "login", second)
	gitIn(t, repo.dir, "tag", "light", first)
	gitIn(t, repo.dir, "-c", "user.name=quai test", "-c", "user.email=test@example.com",
		"tag", "--annotate", "--message=release", "v1.0", first)
	tagObject := gitIn(t, repo.dir, "rev-parse", "refs/tags/v1.0")
	if tagObject == first {
		t.Fatal("test setup: the annotated tag is not a tag object")
	}
	// A branch and a tag share the name "both": the branch must win.
	gitIn(t, repo.dir, "branch", "both", second)
	gitIn(t, repo.dir, "tag", "both", first)

	upper := strings.ToUpper(first)
	absent := strings.Repeat("d", 40)
	tests := []struct {
		ref        string
		wantRef    string
		wantCommit string
	}{
		{"main", "refs/heads/main", second},
		{"feature/login", "refs/heads/feature/login", first},
		{"login", "refs/heads/login", second},
		{"light", "refs/tags/light", first},
		{"v1.0", "refs/tags/v1.0", first},
		{"refs/tags/v1.0", "refs/tags/v1.0", first},
		{"refs/heads/feature/login", "refs/heads/feature/login", first},
		{"both", "refs/heads/both", second},
		{"refs/tags/both", "refs/tags/both", first},
		{first, "", first},
		{upper, "", first},
		{absent, "", absent},
	}
	for _, url := range []string{repo.dir, "file://" + repo.dir} {
		for _, tt := range tests {
			got, err := ResolveRef(context.Background(), url, tt.ref, "")
			if err != nil {
				t.Errorf("ResolveRef(%s, %q): %v", url, tt.ref, err)
				continue
			}
			if got.Ref != tt.wantRef {
				t.Errorf("ResolveRef(%s, %q).Ref = %q, want %q", url, tt.ref, got.Ref, tt.wantRef)
			}
			if got.Commit != tt.wantCommit {
				t.Errorf("ResolveRef(%s, %q).Commit = %s, want %s", url, tt.ref, got.Commit, tt.wantCommit)
			}
		}
	}
}

func TestResolveRefNotFound(t *testing.T) {
	repo := newRepo(t, "trunk")
	repo.commit(map[string]string{"a.txt": "one\n"})
	gitIn(t, repo.dir, "branch", "feature/main")
	// ls-remote's pattern "refs/heads/main" also matches this branch, since
	// git compares patterns with the end of each ref name.
	gitIn(t, repo.dir, "branch", "x/refs/heads/main")

	for _, ref := range []string{"nope", "main", "feature", "refs/heads/main", "refs/tags/trunk"} {
		_, err := ResolveRef(context.Background(), repo.dir, ref, "")
		if !errors.Is(err, ErrRefNotFound) {
			t.Errorf("ResolveRef(%q) error = %v, want ErrRefNotFound", ref, err)
			continue
		}
		for _, want := range []string{repo.dir, `"` + ref + `"`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		}
	}

	_, err := ResolveRef(context.Background(), repo.dir, "abc1234", "")
	if !errors.Is(err, ErrRefNotFound) {
		t.Fatalf("ResolveRef of an abbreviated hash: error = %v, want ErrRefNotFound", err)
	}
	if !strings.Contains(err.Error(), "full hash") {
		t.Errorf("error %q does not ask for the full hash", err)
	}
}

func TestResolveRefInvalid(t *testing.T) {
	repo := newRepo(t, "main")
	repo.commit(map[string]string{"a.txt": "one\n"})

	for _, ref := range []string{
		"", "@", "-main", "--upload-pack=touch x", "main~2", "main^{}", "a..b", "a b", "ma*n",
		"ma?n", "[a]", "a:b", `a\b`, "/main", "main/", "a//b", "main.", ".hidden", "a/.b",
		"main.lock", "a@{1}", "refs/pull/1/head", "refs/heads/", "refs/tags/a..b",
		"a\x00b", "a\tb",
	} {
		got, err := ResolveRef(context.Background(), repo.dir, ref, "")
		if !errors.Is(err, ErrInvalidRef) {
			t.Errorf("ResolveRef(%q) = %+v, %v; want ErrInvalidRef", ref, got, err)
		}
	}
}

func TestResolveRefRemoteErrors(t *testing.T) {
	requireGit(t)
	url := closedPortURL(t)
	_, err := ResolveRef(context.Background(), url, "main", testToken)
	if err == nil {
		t.Fatal("ResolveRef from a closed port succeeded")
	}
	if errors.Is(err, ErrRefNotFound) {
		t.Errorf("error %v wraps ErrRefNotFound for an unreachable repository", err)
	}
	for _, want := range []string{url, `"main"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	assertNoToken(t, "ResolveRef error", err.Error())

	for _, url := range []string{
		"https://user:pw@example.com/o/r.git",
		"file://user:pw@localhost" + filepath.Join(t.TempDir(), "missing"),
	} {
		_, err = ResolveRef(context.Background(), url, "main", "")
		if err == nil {
			t.Fatalf("ResolveRef(%s) succeeded", url)
		}
		if strings.Contains(err.Error(), "pw@") {
			t.Errorf("error %q shows the URL's password", err)
		}
	}
}

func TestResolveRefSHA256Repository(t *testing.T) {
	repo := newRepo(t, "main", "--object-format=sha256")
	commit := repo.commit(map[string]string{"a.txt": "one\n"})
	got, err := ResolveRef(context.Background(), repo.dir, "main", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(commit) != 64 {
		t.Fatalf("test setup: commit %s is not a SHA-256 hash", commit)
	}
	if got.Commit != commit {
		t.Errorf("Commit = %s, want %s", got.Commit, commit)
	}
}

func TestFetchThenChangedFiles(t *testing.T) {
	repo := newRepo(t, "main")
	first := repo.commit(map[string]string{"a.txt": "one\n"})
	second := repo.commit(map[string]string{"b/c.txt": "two\n"})

	dir := filepath.Join(t.TempDir(), "checkout")
	ctx := context.Background()
	if err := Checkout(ctx, repo.dir, second, dir, "", io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := Fetch(ctx, repo.dir, first, dir, ""); err != nil {
		t.Fatal(err)
	}
	files, err := ChangedFiles(ctx, dir, first, second)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(files, ",") != "b/c.txt" {
		t.Errorf("changed files = %v, want [b/c.txt]", files)
	}
	missing := strings.Repeat("1", 40)
	if err := Fetch(ctx, repo.dir, missing, dir, ""); !errors.Is(err, ErrCommitNotFound) {
		t.Errorf("fetching a missing commit returned %v, want ErrCommitNotFound", err)
	}
}

func TestCheckoutAnnotatedTagObject(t *testing.T) {
	repo := newRepo(t, "main")
	commit := repo.commit(map[string]string{"a.txt": "one\n"})
	gitIn(t, repo.dir, "-c", "user.name=t", "-c", "user.email=t@example.com", "tag", "-a", "v1", "-m", "release")
	tagObject := gitIn(t, repo.dir, "rev-parse", "v1")
	if tagObject == commit {
		t.Fatal("the tag object equals the commit: the tag is not annotated")
	}
	dir := filepath.Join(t.TempDir(), "checkout")
	if err := Checkout(context.Background(), repo.dir, tagObject, dir, "", io.Discard); err != nil {
		t.Fatalf("checking out the annotated tag object: %v", err)
	}
	if head := gitIn(t, dir, "rev-parse", "HEAD"); head != commit {
		t.Errorf("HEAD = %s, want the tagged commit %s", head, commit)
	}
}
