package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestValidateCloneURL(t *testing.T) {
	tests := []struct {
		url     string
		wantErr string
	}{
		{"https://github.com/acme/hello.git", ""},
		{"file:///srv/git/hello", ""},
		{"/srv/git/hello", ""},
		{"https://deploy:hunter2@github.com/acme/x.git", "remove the credentials"},
		{"git@github.com:acme/hello.git", "https://, file:// or an absolute local path"},
		{"ssh://git@github.com/acme/hello.git", "https://, file:// or a local path"},
		{"git://github.com/acme/hello.git", "https://, file:// or a local path"},
		{"relative/path", "absolute local path"},
	}
	for _, tt := range tests {
		err := validateCloneURL(tt.url)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("validateCloneURL(%q) = %v, want nil", tt.url, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("validateCloneURL(%q) = %v, want an error containing %q", tt.url, err, tt.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error for %q shows the password", tt.url)
		}
	}
}

func TestLoadDirRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.yml"), 0o600); err != nil {
		t.Skipf("cannot make a FIFO here: %v", err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.yml")); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("# padding line\n", MaxFileSize/15+1)
	if err := os.WriteFile(filepath.Join(dir, "big.yml"), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	_, problems, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range problems {
		got[filepath.Base(p.File)] = p.Message
	}
	for file, want := range map[string]string{"fifo.yml": "not a regular file", "zero.yml": "not a regular file", "big.yml": "more than"} {
		if !strings.Contains(got[file], want) {
			t.Errorf("problem for %s = %q, want one containing %q", file, got[file], want)
		}
	}
}

func TestLoadDirSharedDeployTargets(t *testing.T) {
	dir := t.TempDir()
	app := func(name, container, publish string) string {
		return "name: " + name + "\nrepo: acme/" + name + "\nbuild:\n  image: acme/" + name +
			"\ndeploy:\n  container: " + container + "\n  port: 80\n  publish: " + publish + "\n  health:\n    path: /\n"
	}
	files := map[string]string{
		"a.yml": app("a", "shared", "127.0.0.1:9001"),
		"b.yml": app("b", "shared", "127.0.0.1:9002"),
		"c.yml": app("c", "app-c", "127.0.0.1:9003"),
		"d.yml": app("d", "app-d", "127.0.0.1:9003"),
		"e.yml": app("e", "app-e", "127.0.0.1:9004"),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pipelines, problems, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(pipelines) != 1 || pipelines[0].Name != "e" {
		t.Errorf("loaded %d pipelines, want only e", len(pipelines))
	}
	var messages []string
	for _, p := range problems {
		messages = append(messages, p.String())
	}
	all := strings.Join(messages, "\n")
	for _, want := range []string{
		`a.yml: deploy.container "shared" is also used by pipeline "b"`,
		`b.yml: deploy.container "shared" is also used by pipeline "a"`,
		`c.yml: deploy.publish "127.0.0.1:9003" is also used by pipeline "d"`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
}
