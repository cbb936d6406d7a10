package hook

import (
	"net/http"
	"testing"
)

func TestTagCreateAndPushStartOneRun(t *testing.T) {
	pl := parsePipeline(t, "name: release\nrepo: Codertocat/Hello-World\non:\n  push:\n    tags: [\"simple-*\"]\n")
	env := newTestEnv(t, pl)

	// GitHub sends both events for one new tag.
	for _, d := range []struct{ event, id, fixture string }{
		{"create", "delivery-create", "create/tag.json"},
		{"push", "delivery-push", "push/tag-created-ghes-35.json"},
	} {
		rec := env.serve(newPush(d.event, d.id, readFixture(t, d.fixture)))
		if rec.Code != http.StatusAccepted {
			t.Fatalf("%s: status = %d, want %d; body %s", d.event, rec.Code, http.StatusAccepted, rec.Body)
		}
	}

	reqs := env.queue.requests()
	if len(reqs) != 1 {
		t.Fatalf("queued %d runs, want 1", len(reqs))
	}
	if reqs[0].Ref != "refs/tags/simple-tag" || reqs[0].Commit != fixtureCommit {
		t.Errorf("queued %s at %s, want refs/tags/simple-tag at %s", reqs[0].Ref, reqs[0].Commit, fixtureCommit)
	}
	created := env.delivery(t, "delivery-create")
	if want := "tag creation is handled by its push event"; created.Result != want {
		t.Errorf("create delivery result %q, want %q", created.Result, want)
	}
	if created.Ref != "refs/tags/simple-tag" || created.Repo != fixtureRepo {
		t.Errorf("create delivery names %s of %s, want refs/tags/simple-tag of %s", created.Ref, created.Repo, fixtureRepo)
	}
	if len(created.RunIDs) != 0 {
		t.Errorf("create delivery started runs %v", created.RunIDs)
	}
	if pushed := env.delivery(t, "delivery-push"); len(pushed.RunIDs) != 1 {
		t.Errorf("push delivery started runs %v, want one", pushed.RunIDs)
	}
}

func TestCreateInvalidPayload(t *testing.T) {
	env := newTestEnv(t, masterPipeline(t))
	rec := env.serve(newPush("create", "delivery-bad", []byte(`{"ref_type": 7}`)))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, http.StatusBadRequest, rec.Body)
	}
	env.assertNoDelivery(t, "delivery-bad")
}
