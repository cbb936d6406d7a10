package hook

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestRejectedRecordsBadRequests(t *testing.T) {
	env := newTestEnv(t, masterPipeline(t))
	body := readFixture(t, "push/branch-created.json")

	badSig := newPush("push", "bad-sig", body)
	badSig.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
	badType := newPush("push", "bad-type", body)
	badType.Header.Set("Content-Type", "text/plain")
	longID := newPush("push", strings.Repeat("d", 300), body)

	for _, r := range []*http.Request{badSig, badType, longID} {
		if rec := env.serve(r); rec.Code < 400 || rec.Code >= 500 {
			t.Fatalf("request %q answered %d, want a 4xx", r.Header.Get("X-GitHub-Delivery"), rec.Code)
		}
	}
	if rec := env.serve(newPush("push", "good", body)); rec.Code != http.StatusAccepted {
		t.Fatalf("signed push answered %d, want 202", rec.Code)
	}

	got := env.h.Rejected()
	if len(got) != 3 {
		t.Fatalf("Rejected() has %d entries, want 3: %+v", len(got), got)
	}
	if got[0].DeliveryID != strings.Repeat("d", maxRejectedDeliveryID) {
		t.Errorf("newest entry delivery %q, want the long ID cut to %d bytes", got[0].DeliveryID, maxRejectedDeliveryID)
	}
	if got[1].DeliveryID != "bad-type" || !strings.Contains(got[1].Reason, "Content-Type") {
		t.Errorf("second entry %+v, want bad-type with a Content-Type reason", got[1])
	}
	if got[2].DeliveryID != "bad-sig" || !strings.Contains(got[2].Reason, "signature does not match") {
		t.Errorf("oldest entry %+v, want bad-sig with a signature reason", got[2])
	}
	if got[2].Event != "push" || got[2].RemoteAddr == "" || !got[2].Time.Equal(receivedAt) {
		t.Errorf("oldest entry %+v lacks event, remote address or time", got[2])
	}
	env.assertNoDelivery(t, "bad-sig")
	env.assertNoDelivery(t, "bad-type")
}

func TestRejectedBounded(t *testing.T) {
	var l rejections
	total := maxRejections + 25
	for i := range total {
		l.add(Rejection{DeliveryID: fmt.Sprint(i), Reason: strings.Repeat("r", 1000)})
	}
	got := l.list()
	if len(got) != maxRejections {
		t.Fatalf("list has %d entries, want %d", len(got), maxRejections)
	}
	if got[0].DeliveryID != fmt.Sprint(total-1) {
		t.Errorf("newest entry %q, want %d", got[0].DeliveryID, total-1)
	}
	if last := got[len(got)-1].DeliveryID; last != fmt.Sprint(total-maxRejections) {
		t.Errorf("oldest entry %q, want %d", last, total-maxRejections)
	}
	if n := len(got[0].Reason); n > maxRejectedReason+len("…") {
		t.Errorf("reason kept %d bytes, want at most %d", n, maxRejectedReason)
	}
}

func TestRejectedEmpty(t *testing.T) {
	var l rejections
	if got := l.list(); len(got) != 0 {
		t.Errorf("empty list returned %d entries", len(got))
	}
}
