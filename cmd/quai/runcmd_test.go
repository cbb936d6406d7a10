package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quai-ci/quai/internal/testenv"
)

func TestRunCommandRunsStepsLocally(t *testing.T) {
	base := testenv.BusyboxImage(t)
	requireCommand(t, "git")
	repo := newApp(t, "local")
	repo.commit(t, "first")
	pipelines := t.TempDir()
	writeFile(t, filepath.Join(pipelines, "ci.yml"), fmt.Sprintf(`
repo: acme/ci
steps:
  - name: list
    image: %[1]s
    commands:
      - cat www/index.html
      - echo "branch $QUAI_BRANCH"
  - name: check
    image: %[1]s
    commands:
      - test -f missing-file
`, base))

	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"run", "--pipelines", pipelines, "--source", repo.dir, "ci"}, &stdout, &stderr, os.Getenv)
	var exit exitError
	if !errors.As(err, &exit) || exit != 1 {
		t.Fatalf("quai run returned %v, want exit status 1 from the failing check step\n%s%s", err, stdout.String(), stderr.String())
	}
	for _, want := range []string{"[list] <p>hello from quai, local</p>", "[list] branch main", `step "check" exited with code 1`, "run failure"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}

	stdout.Reset()
	err = run(context.Background(), []string{"run", "--pipelines", pipelines, "nope"}, &stdout, &stderr, os.Getenv)
	if err == nil || !strings.Contains(err.Error(), `pipeline "nope" not found`) {
		t.Errorf("running an unknown pipeline returned %v, want a not-found error", err)
	}
}
