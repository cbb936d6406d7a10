package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// recordingTB records whether Skip or Fatal was called. Unlike the real
// methods, its methods return, so the test can inspect the outcome.
type recordingTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skip(args ...any) {
	r.skipped = true
	r.msg = args[0].(string)
}

func (r *recordingTB) Fatal(args ...any) {
	r.failed = true
	r.msg = args[0].(string)
}

func TestSkip(t *testing.T) {
	tests := []struct {
		env         string
		wantSkipped bool
		wantFailed  bool
	}{
		{"", true, false},
		{"0", true, false},
		{"1", false, true},
	}
	for _, tt := range tests {
		t.Setenv("QUAI_REQUIRE_INTEGRATION", tt.env)
		rec := &recordingTB{}
		Skip(rec, "vault", "VAULT_ADDR is not set")

		if rec.skipped != tt.wantSkipped || rec.failed != tt.wantFailed {
			t.Errorf("QUAI_REQUIRE_INTEGRATION=%q: skipped=%v failed=%v, want skipped=%v failed=%v",
				tt.env, rec.skipped, rec.failed, tt.wantSkipped, tt.wantFailed)
		}
		if want := "vault is not available: VAULT_ADDR is not set"; len(rec.msg) < len(want) ||
			rec.msg[:len(want)] != want {
			t.Errorf("message = %q, want it to start with %q", rec.msg, want)
		}
	}
}

func TestBusyboxImage(t *testing.T) {
	ref := BusyboxImage(t)
	if again := BusyboxImage(t); again != ref {
		t.Errorf("second call returned %q, first %q", again, ref)
	}

	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	img, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatalf("inspecting %s: %v", ref, err)
	}
	// One layer holds the busybox binary, one the applet links.
	if len(img.RootFS.Layers) != 2 {
		t.Errorf("image has %d layers, want 2", len(img.RootFS.Layers))
	}
	if img.Os != "linux" {
		t.Errorf("image OS = %q, want linux", img.Os)
	}
}
