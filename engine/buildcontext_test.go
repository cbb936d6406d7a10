package engine

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeTree creates files (slash-separated path to content) below dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tarEntries returns the names of the entries in a tar stream and the
// content of its regular files.
func tarEntries(t *testing.T, r io.Reader) ([]string, map[string]string) {
	t.Helper()
	var names []string
	contents := map[string]string{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, contents
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		names = append(names, hdr.Name)
		if hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "" {
			t.Errorf("%s owned by %d:%d (%q:%q), want 0:0 without names",
				hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname)
		}
		if hdr.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			contents[hdr.Name] = string(b)
		}
	}
}

func TestWriteContext(t *testing.T) {
	tests := []struct {
		name       string
		files      map[string]string
		dockerfile string
		want       []string // entry names, sorted
	}{
		{
			name:       "no dockerignore",
			files:      map[string]string{"Dockerfile": "FROM x", "src/main.go": "package main"},
			dockerfile: "Dockerfile",
			want:       []string{"Dockerfile", "src/", "src/main.go"},
		},
		{
			name: "excluded file and directory",
			files: map[string]string{
				"Dockerfile": "FROM x", ".dockerignore": "# comment\n.env\n/build\n",
				".env": "TOKEN=x", "build/out.bin": "x", "build.go": "package main",
			},
			dockerfile: "Dockerfile",
			want:       []string{".dockerignore", "Dockerfile", "build.go"},
		},
		{
			name: "exception inside excluded directory",
			files: map[string]string{
				"Dockerfile": "FROM x", ".dockerignore": "docs\n!docs/README.md\n",
				"docs/README.md": "readme", "docs/guide.md": "guide", "docs/img/a.png": "png",
			},
			dockerfile: "Dockerfile",
			want:       []string{".dockerignore", "Dockerfile", "docs/README.md"},
		},
		{
			name: "double star pattern with exception",
			files: map[string]string{
				"Dockerfile": "FROM x", ".dockerignore": "**/*.log\n!keep/important.log\n",
				"a.log": "", "sub/b.log": "", "keep/important.log": "", "keep/other.log": "",
			},
			dockerfile: "Dockerfile",
			want:       []string{".dockerignore", "Dockerfile", "keep/", "keep/important.log", "sub/"},
		},
		{
			name: "excluded Dockerfile and dockerignore are still sent",
			files: map[string]string{
				"Dockerfile": "FROM x", ".dockerignore": "Dockerfile\n.dockerignore\n", "app": "x",
			},
			dockerfile: "Dockerfile",
			want:       []string{".dockerignore", "Dockerfile", "app"},
		},
		{
			name: "Dockerfile inside excluded directory",
			files: map[string]string{
				".dockerignore": "deploy\n", "deploy/Dockerfile": "FROM x",
				"deploy/secret.pem": "key", "main.go": "package main",
			},
			dockerfile: "deploy/Dockerfile",
			want:       []string{".dockerignore", "deploy/Dockerfile", "main.go"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tt.files)

			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(writeContext(pw, dir, tt.dockerfile)) }()
			names, contents := tarEntries(t, pr)

			slices.Sort(names)
			if !slices.Equal(names, tt.want) {
				t.Errorf("entries = %v, want %v", names, tt.want)
			}
			for name, content := range contents {
				if content != tt.files[name] {
					t.Errorf("%s content = %q, want %q", name, content, tt.files[name])
				}
			}
		})
	}
}

func TestWriteContextTestdata(t *testing.T) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeContext(pw, "testdata/dockerignore", "Dockerfile")) }()
	names, _ := tarEntries(t, pr)

	slices.Sort(names)
	want := []string{".dockerignore", "Dockerfile", "keep.txt", "reports/final.txt"}
	if !slices.Equal(names, want) {
		t.Errorf("entries = %v, want %v", names, want)
	}
}

func TestWriteContextSymlink(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM x", "real.txt": "x"})
	if err := os.Symlink("real.txt", filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeContext(pw, dir, "Dockerfile")) }()
	tr := tar.NewReader(pr)
	found := false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name == "link.txt" {
			found = true
			if hdr.Typeflag != tar.TypeSymlink || hdr.Linkname != "real.txt" {
				t.Errorf("link.txt: type %c target %q, want symlink to real.txt", hdr.Typeflag, hdr.Linkname)
			}
		}
	}
	if !found {
		t.Error("link.txt missing from the context")
	}
}

func TestDockerfilePath(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM x", "deploy/web.Dockerfile": "FROM x"})
	outside := filepath.Join(t.TempDir(), "Dockerfile")
	writeTree(t, filepath.Dir(outside), map[string]string{"Dockerfile": "FROM x"})
	if err := os.Symlink(outside, filepath.Join(dir, "linked.Dockerfile")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		dockerfile string
		want       string
		wantErr    string // substring of the error; empty for success
	}{
		{"", "Dockerfile", ""},
		{"Dockerfile", "Dockerfile", ""},
		{"deploy/../deploy/web.Dockerfile", "deploy/web.Dockerfile", ""},
		{"../Dockerfile", "", `"../Dockerfile" escapes the build context`},
		{"/etc/passwd", "", `"/etc/passwd" escapes the build context`},
		{"linked.Dockerfile", "", "outside the build context"},
		{"missing.Dockerfile", "", "missing.Dockerfile"},
	}
	for _, tt := range tests {
		got, err := dockerfilePath(dir, tt.dockerfile)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("dockerfilePath(%q) error = %v, want one containing %q", tt.dockerfile, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("dockerfilePath(%q): %v", tt.dockerfile, err)
			continue
		}
		if got != tt.want {
			t.Errorf("dockerfilePath(%q) = %q, want %q", tt.dockerfile, got, tt.want)
		}
	}

	if _, err := dockerfilePath(filepath.Join(dir, "nope"), ""); err == nil {
		t.Error("dockerfilePath accepted a missing context directory")
	}
}
