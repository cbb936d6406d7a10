// Package hook receives GitHub webhooks: it verifies the signature, records
// the delivery, matches pipelines and queues their runs.
package hook

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/runner"
	"github.com/quai-ci/quai/store"
)

// MaxBodyBytes is GitHub's cap on webhook payloads (25 MB): GitHub does not
// deliver larger ones, so anything bigger is not from GitHub.
const MaxBodyBytes = 25 << 20

// zeroCommit is the "after" of a push that deleted its ref.
const zeroCommit = "0000000000000000000000000000000000000000"

// Deliveries records webhook deliveries.
type Deliveries interface {
	SaveDelivery(d store.Delivery) error
	UpdateDelivery(id string, fn func(*store.Delivery) error) error
	Delivery(id string) (store.Delivery, error)
}

// maxDeliveryID bounds the X-GitHub-Delivery header: GitHub sends a UUID,
// and the store keys deliveries by it.
const maxDeliveryID = 200

// maxBodiesInFlight bounds how many request bodies are read at once. Each
// may take 25 MB before its signature can be checked, so without a bound
// unauthenticated senders could make quai hold gigabytes.
const maxBodiesInFlight = 4

// queueFailedPrefix starts the result of a delivery whose runs could not
// be queued; a redelivery of it is processed again.
const queueFailedPrefix = "queueing runs failed"

// Queue starts runs.
type Queue interface {
	Enqueue(req runner.Request) (store.Run, error)
}

// Handler serves POST /hooks/github. It is safe for concurrent use.
type Handler struct {
	secret     []byte
	deliveries Deliveries
	pipelines  func() []*pipeline.Pipeline
	queue      Queue
	log        *slog.Logger
	now        func() time.Time
	bodies     chan struct{}
	rejected   rejections
}

// NewHandler returns a webhook handler. secret must not be empty: an
// unsigned webhook endpoint would let anyone start a deploy. pipelines is
// called once per delivery and returns the pipelines loaded now.
func NewHandler(secret []byte, d Deliveries, pipelines func() []*pipeline.Pipeline, q Queue, log *slog.Logger) (*Handler, error) {
	if len(secret) == 0 {
		return nil, errors.New("creating webhook handler: the webhook secret is empty; set QUAI_WEBHOOK_SECRET or let quai generate one")
	}
	return &Handler{
		secret: secret, deliveries: d, pipelines: pipelines, queue: q, log: log, now: time.Now,
		bodies: make(chan struct{}, maxBodiesInFlight),
	}, nil
}

// response is the JSON body of every webhook answer, so GitHub's delivery
// page shows what quai did with the request.
type response struct {
	Message string   `json:"message"`
	Runs    []uint64 `json:"runs,omitempty"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(w, http.StatusMethodNotAllowed, response{Message: "webhooks are POST requests"})
		return
	}
	status, resp := h.handle(r)
	if status >= 400 && status < 500 {
		h.rejected.add(Rejection{Time: h.now(), RemoteAddr: r.RemoteAddr, Event: github.WebHookType(r),
			DeliveryID: github.DeliveryID(r), Reason: resp.Message})
	}
	reply(w, status, resp)
}

func (h *Handler) handle(r *http.Request) (int, response) {
	event := github.WebHookType(r)
	id := github.DeliveryID(r)
	log := h.log.With("delivery", id, "event", event)

	if len(id) > maxDeliveryID {
		log = h.log.With("event", event)
		log.Warn("webhook rejected", "error", "X-GitHub-Delivery too long")
		return http.StatusBadRequest, response{Message: fmt.Sprintf("X-GitHub-Delivery has %d characters, more than %d: GitHub sends a UUID", len(id), maxDeliveryID)}
	}
	select {
	case h.bodies <- struct{}{}:
		defer func() { <-h.bodies }()
	case <-r.Context().Done():
		return http.StatusServiceUnavailable, response{Message: "request canceled while waiting"}
	case <-time.After(10 * time.Second):
		log.Warn("webhook rejected", "remote", r.RemoteAddr, "error", "too many webhook bodies being read")
		return http.StatusServiceUnavailable, response{Message: "too many webhooks are being received at once; redeliver this one from GitHub"}
	}
	payload, status, err := h.verify(r)
	if err != nil {
		log.Warn("webhook rejected", "remote", r.RemoteAddr, "error", err)
		return status, response{Message: err.Error()}
	}
	if event == "" {
		log.Warn("webhook rejected", "error", "missing X-GitHub-Event header")
		return http.StatusBadRequest, response{Message: "missing X-GitHub-Event header"}
	}
	if event == "ping" {
		log.Info("webhook ping answered")
		return http.StatusOK, response{Message: "pong"}
	}
	if id == "" {
		log.Warn("webhook rejected", "error", "missing X-GitHub-Delivery header")
		return http.StatusBadRequest, response{Message: "missing X-GitHub-Delivery header"}
	}

	switch event {
	case "push":
		return h.push(log, id, payload)
	case "pull_request":
		return h.pullRequest(log, id, payload)
	case "create":
		return h.create(log, id, payload)
	default:
		d := store.Delivery{ID: id, Event: event, ReceivedAt: h.now(), Result: "event not handled"}
		return h.record(log, d, http.StatusAccepted, response{Message: fmt.Sprintf("event %q is not handled; nothing started", event)})
	}
}

// verify reads the body within GitHub's size cap and checks its
// X-Hub-Signature-256. The error text is safe to send back: it never
// contains the expected digest.
func (h *Handler) verify(r *http.Request) ([]byte, int, error) {
	if r.ContentLength > MaxBodyBytes {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body of %d bytes is over GitHub's 25 MB webhook limit", r.ContentLength)
	}
	sig := r.Header.Get(github.SHA256SignatureHeader)
	if sig == "" {
		return nil, http.StatusUnauthorized, errors.New("missing X-Hub-Signature-256 header: set a secret on the GitHub webhook (the same as quai's webhook secret)")
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mediaType != "application/json" && mediaType != "application/x-www-form-urlencoded") {
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("unsupported Content-Type %q: want application/json or application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
	}
	// go-github v60 also accepts "sha1=" and "sha512=" digests. GitHub sends
	// only "sha256=" in X-Hub-Signature-256, so any other prefix is rejected.
	if !strings.HasPrefix(sig, "sha256=") {
		return nil, http.StatusUnauthorized, errors.New("invalid X-Hub-Signature-256: the value must start with \"sha256=\"")
	}
	body := http.MaxBytesReader(nil, r.Body, MaxBodyBytes)
	payload, err := github.ValidatePayloadFromBody(mediaType, body, sig, h.secret)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, http.StatusRequestEntityTooLarge, errors.New("body is over GitHub's 25 MB webhook limit")
	case err != nil:
		// go-github's error quotes the sender's signature back; the fixed
		// text keeps answers and logs free of anything the sender chose.
		return nil, http.StatusUnauthorized, errors.New("invalid X-Hub-Signature-256: the signature does not match the body; check that the GitHub webhook's secret matches quai's webhook secret")
	}
	return payload, 0, nil
}

// deliver records delivery d, calls start to queue its runs and stores
// start's answer on the delivery.
func (h *Handler) deliver(log *slog.Logger, d store.Delivery, start func() (int, response)) (int, response) {
	if err := h.deliveries.SaveDelivery(d); err != nil && !h.retryable(d.ID, err) {
		return h.saveFailed(log, d, err)
	}
	status, resp := start()
	err := h.deliveries.UpdateDelivery(d.ID, func(d *store.Delivery) error {
		d.Result = resp.Message
		d.RunIDs = resp.Runs
		return nil
	})
	if err != nil {
		log.Error("recording webhook result failed", "error", err)
	}
	return status, resp
}

// enqueue queues reqs and returns the webhook's answer. noMatch is the
// answer's start when reqs is empty.
func (h *Handler) enqueue(log *slog.Logger, reqs []runner.Request, noMatch string) (int, response) {
	var runs []uint64
	var failed []string
	for _, req := range reqs {
		run, err := h.queue.Enqueue(req)
		if err != nil {
			log.Error("queueing run failed", "pipeline", req.Pipeline.Name, "error", err)
			failed = append(failed, req.Pipeline.Name)
			continue
		}
		runs = append(runs, run.ID)
	}

	switch {
	case len(failed) > 0:
		return http.StatusInternalServerError, response{Message: fmt.Sprintf("%s for pipelines %s; see quai's log, then redeliver the webhook", queueFailedPrefix, strings.Join(failed, ", ")), Runs: runs}
	case len(runs) == 0:
		log.Info("webhook accepted", "result", "no matching pipeline")
		return http.StatusAccepted, response{Message: noMatch + "; nothing started"}
	default:
		log.Info("webhook accepted", "runs", runs)
		return http.StatusAccepted, response{Message: fmt.Sprintf("started %d run(s)", len(runs)), Runs: runs}
	}
}

func (h *Handler) record(log *slog.Logger, d store.Delivery, status int, resp response) (int, response) {
	if err := h.deliveries.SaveDelivery(d); err != nil {
		return h.saveFailed(log, d, err)
	}
	log.Info("webhook accepted", "result", d.Result)
	return status, resp
}

// retryable reports whether a delivery seen before may be processed
// again: its runs could not be queued the first time, so GitHub's
// redeliver button must not be answered as a duplicate.
func (h *Handler) retryable(id string, err error) bool {
	if !errors.Is(err, store.ErrDeliveryExists) {
		return false
	}
	earlier, err := h.deliveries.Delivery(id)
	return err == nil && strings.HasPrefix(earlier.Result, queueFailedPrefix)
}

func (h *Handler) saveFailed(log *slog.Logger, d store.Delivery, err error) (int, response) {
	if errors.Is(err, store.ErrDeliveryExists) {
		log.Info("webhook accepted", "result", "duplicate delivery")
		return http.StatusOK, response{Message: fmt.Sprintf("delivery %s was received before; nothing started again", d.ID)}
	}
	log.Error("recording webhook delivery failed", "error", err)
	return http.StatusInternalServerError, response{Message: "recording the delivery failed; see quai's log"}
}

func reply(w http.ResponseWriter, status int, resp response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(resp)
}
