package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pipelineNamesFrom returns the names GET /api/pipelines lists.
func (d *daemon) pipelineNames(t *testing.T) string {
	t.Helper()
	var list []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte(get(t, d.url+"/api/pipelines")), &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list {
		names = append(names, p.Name)
	}
	return strings.Join(names, ",")
}

// waitFor polls until check returns true or 10 seconds pass.
func waitFor(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPipelinesReloadWhenFilesChange(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "one.yml"), "repo: acme/one\n")
	d := startDaemon(t, dir, nil)
	if got := d.pipelineNames(t); got != "one" {
		t.Fatalf("pipelines at start = %q, want one", got)
	}

	writeFile(t, filepath.Join(dir, "two.yml"), "repo: acme/two\n")
	waitFor(t, "pipeline two to load", func() bool { return d.pipelineNames(t) == "one,two" })

	// A file with an error keeps the last valid set and logs the error
	// with its position.
	writeFile(t, filepath.Join(dir, "three.yml"), "repo: acme/three\nbuld: {}\n")
	waitFor(t, "the reload error in the log", func() bool {
		return strings.Contains(d.logs.String(), "three.yml:2:1")
	})
	if got := d.pipelineNames(t); got != "one,two" {
		t.Errorf("pipelines after a broken file = %q, want the last valid set one,two", got)
	}

	writeFile(t, filepath.Join(dir, "three.yml"), "repo: acme/three\n")
	waitFor(t, "pipeline three to load", func() bool { return d.pipelineNames(t) == "one,three,two" })
}
