package engine

import (
	"context"
	"errors"
	"testing"
)

func TestRemoveImage(t *testing.T) {
	e := newTestEngine(t)
	ctx := context.Background()
	ref := buildAppImage(t, e)

	name, err := runTest(t, e, RunOptions{Image: ref, Network: "host", Env: []string{"QUAI_TEST_CMD=sleep 60"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.RemoveImage(ctx, ref); !errors.Is(err, ErrImageInUse) {
		t.Errorf("removing an image a container uses returned %v, want ErrImageInUse", err)
	}

	if err := e.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := e.RemoveImage(ctx, ref); err != nil {
		t.Fatalf("removing an unused image: %v", err)
	}
	if ok, err := e.ImageExists(ctx, ref); err != nil || ok {
		t.Errorf("ImageExists after removal = %v, %v; want false", ok, err)
	}
	if err := e.RemoveImage(ctx, ref); err != nil {
		t.Errorf("removing a missing image returned %v, want nil", err)
	}
}

func TestContainerState(t *testing.T) {
	e := newTestEngine(t)
	ctx := context.Background()
	ref := buildAppImage(t, e)
	id, err := runTest(t, e, RunOptions{Image: ref, Network: "host", Env: []string{"QUAI_TEST_CMD=sleep 60"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.ContainerState(ctx, id); err != nil || got != "running" {
		t.Errorf("state of a running container = %q, %v; want running", got, err)
	}
	if err := e.Stop(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := e.ContainerState(ctx, id); err != nil || got != "exited (code 137)" {
		t.Errorf("state of a killed container = %q, %v; want exited (code 137)", got, err)
	}
	if err := e.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got, err := e.ContainerState(ctx, id); err != nil || got != "missing" {
		t.Errorf("state of a removed container = %q, %v; want missing", got, err)
	}
}
