package hook

import (
	"sync"
	"time"
)

// maxRejections is how many rejected requests the handler remembers. The
// list is in memory only, so unauthenticated senders cannot fill the disk,
// and bounded, so they cannot fill memory either.
const maxRejections = 100

// maxRejectedDeliveryID bounds the X-GitHub-Delivery and X-GitHub-Event
// kept for a rejected request. GitHub sends UUIDs of 36 characters, so a
// real delivery ID stays whole.
const maxRejectedDeliveryID = 40

// maxRejectedReason bounds the reason kept for a rejected request.
const maxRejectedReason = 300

// Rejection describes one webhook request that the handler answered with a
// 4xx status without recording a delivery: a bad or missing signature, a
// body too large, an unsupported content type, a malformed header or a
// payload that could not be decoded.
type Rejection struct {
	Time time.Time `json:"time"`
	// RemoteAddr is the connection's peer address, which is the proxy's
	// address when quai runs behind one.
	RemoteAddr string `json:"remote_addr"`
	Event      string `json:"event,omitempty"`
	// Event is the X-GitHub-Event header and DeliveryID the
	// X-GitHub-Delivery header, both cut to 40 bytes.
	DeliveryID string `json:"delivery_id,omitempty"`
	// Reason is the message the sender received, cut to 300 bytes.
	Reason string `json:"reason"`
}

// rejections is a ring of the latest Rejection values. Its zero value is
// ready to use and it is safe for concurrent use.
type rejections struct {
	mu   sync.Mutex
	ring [maxRejections]Rejection
	next int // index the next entry goes to
	full bool
}

func (l *rejections) add(r Rejection) {
	if len(r.DeliveryID) > maxRejectedDeliveryID {
		r.DeliveryID = r.DeliveryID[:maxRejectedDeliveryID]
	}
	if len(r.Event) > maxRejectedDeliveryID {
		r.Event = r.Event[:maxRejectedDeliveryID]
	}
	// A reason may quote a header the sender chose, such as Content-Type.
	if len(r.Reason) > maxRejectedReason {
		r.Reason = r.Reason[:maxRejectedReason] + "…"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ring[l.next] = r
	l.next = (l.next + 1) % maxRejections
	if l.next == 0 {
		l.full = true
	}
}

// list returns the entries, newest first.
func (l *rejections) list() []Rejection {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.next
	if l.full {
		n = maxRejections
	}
	out := make([]Rejection, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, l.ring[(l.next-i+maxRejections)%maxRejections])
	}
	return out
}

// Rejected returns the latest rejected requests (at most 100), newest
// first. It is safe to call concurrently with ServeHTTP.
func (h *Handler) Rejected() []Rejection {
	return h.rejected.list()
}
