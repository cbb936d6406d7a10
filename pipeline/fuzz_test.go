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
		}
		CheckDockerfile("Dockerfile", data)
	})
}
