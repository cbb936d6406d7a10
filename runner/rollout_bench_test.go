package runner

import (
	"fmt"
	"testing"
	"time"

	"github.com/quai-ci/quai/store"
)

// BenchmarkRollout measures one rollout through HAProxy under load and
// reports how long each step took, from the step times in the rollout
// record, and how many requests failed.
func BenchmarkRollout(b *testing.B) {
	e := newRolloutEnv(b, rolloutOptions{watch: time.Second})
	l := startLoad(e.frontend(""), []string{"/", "/slow"}, 4)

	sums := map[string]time.Duration{}
	b.ResetTimer()
	for i := range b.N {
		run := e.deploy(e.release(fmt.Sprintf("version %d", i+1), nil))
		if run.Status != store.StatusSuccess {
			b.Fatalf("rollout %d ended %s: %s", i+1, run.Status, run.Error)
		}
		rec, err := e.store.Rollout(run.ID)
		if err != nil {
			b.Fatal(err)
		}
		for name, d := range stepDurations(rec, run.FinishedAt) {
			sums[name] += d
		}
	}
	b.StopTimer()
	_, failed := l.Stop()
	for _, name := range []string{"start", "health", "precheck", "switch", "drain", "watch", "stop", "persist"} {
		b.ReportMetric(float64(sums[name].Milliseconds())/float64(b.N), name+"-ms/op")
	}
	b.ReportMetric(float64(failed), "failed-requests")
}

// stepDurations returns how long each recorded step lasted: until the next
// step started, or until end for the last one.
func stepDurations(rec store.Rollout, end time.Time) map[string]time.Duration {
	out := map[string]time.Duration{}
	for i, s := range rec.Steps {
		next := end
		if i+1 < len(rec.Steps) {
			next = rec.Steps[i+1].At
		}
		out[s.Name] += next.Sub(s.At)
	}
	return out
}
