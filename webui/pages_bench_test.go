package webui

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/store"
)

// benchRuns is how many runs the page benchmarks put in the store.
const benchRuns = 100_000

// BenchmarkPagesWith100kRuns measures the dashboard and a pipeline page
// with 100,000 runs in the store, and reports the median time and the
// page size besides Go's mean.
func BenchmarkPagesWith100kRuns(b *testing.B) {
	st, err := store.Open(filepath.Join(b.TempDir(), "quai.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })

	names := []string{"landing-page", "admin", "api", "worker", "docs"}
	var pipelines []*pipeline.Pipeline
	for _, n := range names {
		pipelines = append(pipelines, &pipeline.Pipeline{Name: n, Repo: "acme/" + n,
			On:    pipeline.Triggers{Push: &pipeline.PushTrigger{Branches: []string{"main"}}},
			Build: &pipeline.Build{Image: "acme/" + n}, Deploy: &pipeline.Deploy{Container: n}})
	}
	start := time.Now().Add(-benchRuns * time.Minute)
	const batch = 5000
	for i := 0; i < benchRuns; i += batch {
		list := make([]*store.Run, 0, batch)
		for j := i; j < i+batch; j++ {
			list = append(list, &store.Run{
				Pipeline: names[j%len(names)], Status: store.StatusSuccess, Trigger: "push",
				Repo: "acme/" + names[j%len(names)], Ref: "refs/heads/main",
				Commit:    fmt.Sprintf("%040x", j),
				Message:   fmt.Sprintf("Change number %d of the app", j),
				Author:    "Dev Eloper",
				CreatedAt: start.Add(time.Duration(j) * time.Minute),
				StartedAt: start.Add(time.Duration(j) * time.Minute), FinishedAt: start.Add(time.Duration(j)*time.Minute + 90*time.Second),
			})
		}
		if err := st.CreateRuns(list); err != nil {
			b.Fatal(err)
		}
	}
	for _, n := range names {
		if err := st.SaveDeployment(&store.Deployment{Pipeline: n, Image: "acme/" + n + ":abc", Commit: strings.Repeat("a", 40)}); err != nil {
			b.Fatal(err)
		}
	}
	s, err := New(Config{
		Runs: st, Deliveries: st, Deployments: st, Deploys: &fakeDeploys{st: st},
		Pipelines: func() []*pipeline.Pipeline { return pipelines },
		Webhook:   http.NotFoundHandler(), Log: slog.New(slog.DiscardHandler),
		Auth: AuthConfig{Disabled: true}, Version: "bench",
	})
	if err != nil {
		b.Fatal(err)
	}

	for _, page := range []struct{ name, path string }{{"dashboard", "/"}, {"pipeline", "/pipelines/admin"}} {
		path := page.path
		b.Run(page.name, func(b *testing.B) {
			var times []time.Duration
			var size int
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				w := httptest.NewRecorder()
				t0 := time.Now()
				s.ServeHTTP(w, req)
				times = append(times, time.Since(t0))
				if w.Code != http.StatusOK {
					b.Fatalf("GET %s answered %d: %s", path, w.Code, w.Body.String())
				}
				size = w.Body.Len()
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(size)/1024, "page-KB")
		})
	}
}
