package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/quai-ci/quai/pipeline"
)

// validate loads every pipeline file and prints each problem as
// file:line:column: message. It fails when any problem is an error.
func validate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	online := fs.Bool("online", false, "also check through each HAProxy admin socket that the backends and slots exist")
	source := fs.String("source", "", "a local checkout to check each pipeline's Dockerfile in (default: the pipeline's clone_url when it is a local path)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: quai validate [--online] [--source DIR] [DIR]\n\nChecks every *.yml and *.yaml file in DIR (default ./pipelines.d), and the\nDockerfiles it can find locally for syntax the classic builder does not support.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir := "pipelines.d"
	if fs.NArg() > 1 {
		fs.Usage()
		return exitError(2)
	}
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}

	pipelines, problems, err := pipeline.LoadDir(dir)
	if err != nil {
		return err
	}
	for _, p := range pipelines {
		problems = append(problems, dockerfileProblems(p, *source)...)
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, p.String())
	}
	if pipeline.HasErrors(problems) {
		return exitError(1)
	}
	if *online {
		findings := checkHAProxy(ctx, pipelines, slog.New(slog.DiscardHandler))
		for _, f := range findings {
			fmt.Fprintln(stderr, f)
		}
		if len(findings) > 0 {
			return exitError(1)
		}
	}
	for _, p := range pipelines {
		fmt.Fprintf(stdout, "%s: pipeline %q is valid\n", p.File, p.Name)
	}
	if len(pipelines) == 0 {
		fmt.Fprintf(stdout, "%s: no pipeline files (*.yml, *.yaml)\n", dir)
	}
	return nil
}

// dockerfileProblems checks the Dockerfile of p in a local checkout: source
// when given, else p's clone_url when it is a local path. A Dockerfile that
// is not there locally is checked after checkout, in the run log.
func dockerfileProblems(p *pipeline.Pipeline, source string) []pipeline.Problem {
	if p.Build == nil {
		return nil
	}
	root := source
	if root == "" {
		root = strings.TrimPrefix(p.CloneURL, "file://")
		if root == "" || strings.Contains(root, "://") || strings.Contains(root, "@") {
			return nil
		}
	}
	path := filepath.Join(root, p.Build.Context, p.Build.Dockerfile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return pipeline.CheckDockerfile(path, data)
}
