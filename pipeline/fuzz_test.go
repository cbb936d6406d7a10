package pipeline

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, problems := Parse("fuzz.yml", data)
		if (p == nil) != HasErrors(problems) {
			t.Fatalf("pipeline %v returned with problems %q", p, problems)
		}
		for _, pr := range problems {
			if pr.File != "fuzz.yml" || pr.Line < 1 || pr.Column < 0 || pr.Message == "" {
				t.Errorf("malformed problem %+v", pr)
			}
		}
		if p != nil {
			if validatePipelineName(p.Name) != nil || validateRepo(p.Repo) != nil {
				t.Errorf("accepted pipeline with name %q and repo %q", p.Name, p.Repo)
			}
			if p.Deploy != nil && p.Build == nil {
				t.Errorf("accepted a deploy without a build")
			}
			checkAccepted(t, p)
		}
		CheckDockerfile("Dockerfile", data)
	})
}

// checkAccepted checks the invariants of a pipeline that Parse accepted.
func checkAccepted(t *testing.T, p *Pipeline) {
	t.Helper()
	if p.Timeout <= 0 || p.Concurrency.Limit < 1 {
		t.Errorf("accepted timeout %v and limit %d", p.Timeout, p.Concurrency.Limit)
	}
	names := map[string]bool{}
	for _, s := range p.Steps {
		if s.Name == "" || names[s.Name] || len(s.Commands) == 0 {
			t.Errorf("accepted step %+v (names so far %v)", s, names)
		}
		names[s.Name] = true
		if s.Image == BuildImage && p.Build == nil {
			t.Errorf("accepted step %q on the built image without a build", s.Name)
		}
		checkSecrets(t, s.Secrets)
	}
	for _, s := range p.On.Schedule {
		if _, err := s.Spec(); err != nil {
			t.Errorf("accepted schedule %+v: %v", s, err)
		}
	}
	if pr := p.On.PullRequest; pr != nil && len(pr.Types) == 0 {
		t.Errorf("accepted a pull request trigger without types")
	}
	if p.Build != nil {
		checkSecrets(t, p.Build.Secrets)
	}
	if p.Deploy != nil {
		checkSecrets(t, p.Deploy.Secrets)
	}
}

func checkSecrets(t *testing.T, secrets map[string]SecretRef) {
	t.Helper()
	for name, ref := range secrets {
		if again, err := ParseSecretRef(ref.String()); err != nil || again != ref {
			t.Errorf("accepted secret %s = %+v, which reads back as %+v, %v", name, ref, again, err)
		}
	}
}
