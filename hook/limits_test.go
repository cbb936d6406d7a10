package hook

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRedeliveryAfterQueueFailure(t *testing.T) {
	env := newTestEnv(t, masterPipeline(t))
	env.queue.err = errors.New("runner stopped")
	body := readFixture(t, "push/branch-created.json")
	if rec := env.serve(newPush("push", "delivery-retry", body)); rec.Code != http.StatusInternalServerError {
		t.Fatalf("first attempt status = %d, want 500", rec.Code)
	}

	env.queue.err = nil
	rec := env.serve(newPush("push", "delivery-retry", body))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("redelivery status = %d, want 202; body %s", rec.Code, rec.Body)
	}
	if n := len(env.queue.requests()); n != 1 {
		t.Errorf("redelivery queued %d runs, want 1", n)
	}
	if rec := env.serve(newPush("push", "delivery-retry", body)); rec.Code != http.StatusOK {
		t.Errorf("a third delivery after success answered %d, want 200 as a duplicate", rec.Code)
	}
}

func TestPushRejectsInvalidCommit(t *testing.T) {
	for _, after := range []string{"xyz", "--upload-pack=touch", strings.ToUpper(fixtureCommit)} {
		env := newTestEnv(t, masterPipeline(t))
		body := derivePayload(t, "push/branch-created.json", func(doc map[string]any) {
			doc["after"] = after
			object(t, doc, "head_commit")["id"] = after
		})
		rec := env.serve(newPush("push", "delivery-bad-commit", body))
		if rec.Code != http.StatusBadRequest {
			t.Errorf("after %q: status = %d, want 400", after, rec.Code)
		}
		if !strings.Contains(decodeResponse(t, rec).Message, "invalid commit") {
			t.Errorf("after %q: message does not say the commit is invalid", after)
		}
		env.assertNothingQueued(t)
	}
}

func TestDeliveryIDTooLong(t *testing.T) {
	env := newTestEnv(t, masterPipeline(t))
	id := strings.Repeat("d", maxDeliveryID+1)
	rec := env.serve(newPush("push", id, readFixture(t, "push/branch-created.json")))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", rec.Code)
	}
	if strings.Contains(env.logs.String(), id) {
		t.Errorf("the log contains the whole oversized delivery id")
	}
	env.assertNothingQueued(t)
}

func TestLongCommitMessageTruncated(t *testing.T) {
	env := newTestEnv(t, masterPipeline(t))
	long := strings.Repeat("é", maxMessage)
	body := derivePayload(t, "push/branch-created.json", func(doc map[string]any) {
		object(t, doc, "head_commit")["message"] = long
	})
	if rec := env.serve(newPush("push", "delivery-long", body)); rec.Code != http.StatusAccepted {
		t.Fatalf("status = %d, want 202", rec.Code)
	}
	reqs := env.queue.requests()
	if len(reqs) != 1 {
		t.Fatalf("queued %d runs, want 1", len(reqs))
	}
	msg := reqs[0].Message
	if len(msg) > maxMessage+len("…") || !utf8.ValidString(msg) || !strings.HasSuffix(msg, "…") {
		t.Errorf("message has %d bytes (valid UTF-8 %v), want at most %d and a marked cut", len(msg), utf8.ValidString(msg), maxMessage)
	}
}
