package hook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/runner"
	"github.com/quai-ci/quai/store"
)

var testSecret = []byte("quai-test-webhook-secret")

// receivedAt is the handler clock in tests, so stored times can be compared.
var receivedAt = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// Facts of testdata/github/push/branch-created.json.
const (
	fixtureRepo     = "Codertocat/Hello-World"
	fixtureCommit   = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	fixtureCloneURL = "https://github.com/Codertocat/Hello-World.git"
)

// fakeQueue records every request and returns runs numbered from 1, or err.
type fakeQueue struct {
	mu   sync.Mutex
	err  error
	reqs []runner.Request
}

func (q *fakeQueue) Enqueue(req runner.Request) (store.Run, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return store.Run{}, q.err
	}
	q.reqs = append(q.reqs, req)
	return store.Run{ID: uint64(len(q.reqs)), Pipeline: req.Pipeline.Name}, nil
}

func (q *fakeQueue) requests() []runner.Request {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]runner.Request(nil), q.reqs...)
}

// failingSave is the real store with SaveDelivery failing.
type failingSave struct {
	*store.Store
	err error
}

func (f failingSave) SaveDelivery(store.Delivery) error { return f.err }

// testEnv contains a handler wired to a real store in a temporary folder and
// a fake queue. logs receives the handler's log output.
type testEnv struct {
	h     *Handler
	store *store.Store
	queue *fakeQueue
	logs  *bytes.Buffer
}

func newTestEnv(t testing.TB, pipelines ...*pipeline.Pipeline) *testEnv {
	t.Helper()
	env := &testEnv{store: openStore(t), queue: &fakeQueue{}, logs: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := NewHandler(testSecret, env.store, func() []*pipeline.Pipeline { return pipelines }, env.queue, log)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	h.now = func() time.Time { return receivedAt }
	env.h = h
	return env
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "quai.db"))
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("closing store: %v", err)
		}
	})
	return st
}

// parsePipeline parses YAML the way quai loads pipelines.d files.
func parsePipeline(t testing.TB, yaml string) *pipeline.Pipeline {
	t.Helper()
	p, problems := pipeline.Parse("test.yml", []byte(yaml))
	if p == nil {
		t.Fatalf("parsing pipeline: %v", problems)
	}
	return p
}

// masterPipeline matches pushes to master of the fixture repository.
func masterPipeline(t testing.TB) *pipeline.Pipeline {
	return parsePipeline(t, "name: web\nrepo: Codertocat/Hello-World\non:\n  push:\n    branches: [master]\n")
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "github", name))
	if err != nil {
		t.Fatalf("reading fixture: %v", err)
	}
	return data
}

// derivePayload decodes a fixture, applies change to the decoded document and
// encodes the result.
func derivePayload(t testing.TB, fixture string, change func(map[string]any)) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(readFixture(t, fixture), &doc); err != nil {
		t.Fatalf("decoding fixture %s: %v", fixture, err)
	}
	change(doc)
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("encoding payload derived from %s: %v", fixture, err)
	}
	return data
}

func object(t testing.TB, doc map[string]any, key string) map[string]any {
	t.Helper()
	m, ok := doc[key].(map[string]any)
	if !ok {
		t.Fatalf("payload field %q is %T, want an object", key, doc[key])
	}
	return m
}

func hexMAC(newHash func() hash.Hash, secret, body []byte) string {
	mac := hmac.New(newHash, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// sign returns the X-Hub-Signature-256 value GitHub sends for body.
func sign(secret, body []byte) string {
	return "sha256=" + hexMAC(sha256.New, secret, body)
}

// newPush returns a signed JSON webhook request like GitHub sends.
func newPush(event, delivery string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/hooks/github", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Hub-Signature-256", sign(testSecret, body))
	if event != "" {
		r.Header.Set("X-GitHub-Event", event)
	}
	if delivery != "" {
		r.Header.Set("X-GitHub-Delivery", delivery)
	}
	return r
}

func (env *testEnv) serve(r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	env.h.ServeHTTP(rec, r)
	return rec
}

func decodeResponse(t testing.TB, rec *httptest.ResponseRecorder) response {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var resp response
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("decoding response %q: %v", rec.Body.String(), err)
	}
	return resp
}

func (env *testEnv) delivery(t testing.TB, id string) store.Delivery {
	t.Helper()
	d, err := env.store.Delivery(id)
	if err != nil {
		t.Fatalf("loading delivery: %v", err)
	}
	return d
}

func (env *testEnv) assertNoDelivery(t testing.TB, id string) {
	t.Helper()
	if _, err := env.store.Delivery(id); !errors.Is(err, store.ErrDeliveryNotFound) {
		t.Errorf("loading delivery %s: error %v, want ErrDeliveryNotFound", id, err)
	}
}

func (env *testEnv) assertNothingQueued(t testing.TB) {
	t.Helper()
	if reqs := env.queue.requests(); len(reqs) != 0 {
		t.Errorf("queued %d run(s), want none: %+v", len(reqs), reqs)
	}
}

func TestNewHandlerEmptySecret(t *testing.T) {
	_, err := NewHandler(nil, openStore(t), nil, &fakeQueue{}, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("NewHandler with an empty secret returned no error")
	}
	if !strings.Contains(err.Error(), "QUAI_WEBHOOK_SECRET") {
		t.Errorf("error %q does not name QUAI_WEBHOOK_SECRET", err)
	}
}

func TestSignature(t *testing.T) {
	body := readFixture(t, "push/branch-created.json")
	expected := hexMAC(sha256.New, testSecret, body)
	other := []byte("another-secret")

	tests := []struct {
		name    string
		headers map[string]string // "" deletes the header
		status  int
		message string // substring of the response message
	}{
		{"valid", nil, http.StatusAccepted, "started 1 run"},
		{"valid uppercase hex", map[string]string{"X-Hub-Signature-256": "sha256=" + strings.ToUpper(expected)}, http.StatusAccepted, "started 1 run"},
		{"missing header", map[string]string{"X-Hub-Signature-256": ""}, http.StatusUnauthorized, "X-Hub-Signature-256"},
		{"empty digest", map[string]string{"X-Hub-Signature-256": "sha256="}, http.StatusUnauthorized, "X-Hub-Signature-256"},
		{"no prefix", map[string]string{"X-Hub-Signature-256": expected}, http.StatusUnauthorized, "sha256="},
		{"wrong digest", map[string]string{"X-Hub-Signature-256": sign(testSecret, []byte("other body"))}, http.StatusUnauthorized, "X-Hub-Signature-256"},
		{"truncated digest", map[string]string{"X-Hub-Signature-256": "sha256=" + expected[:62]}, http.StatusUnauthorized, "X-Hub-Signature-256"},
		{"non-hex digest", map[string]string{"X-Hub-Signature-256": "sha256=" + strings.Repeat("zz", 32)}, http.StatusUnauthorized, "X-Hub-Signature-256"},
		{"other secret", map[string]string{"X-Hub-Signature-256": sign(other, body)}, http.StatusUnauthorized, "secret"},
		{"sha1 header only", map[string]string{
			"X-Hub-Signature-256": "",
			"X-Hub-Signature":     "sha1=" + hexMAC(sha1.New, testSecret, body),
		}, http.StatusUnauthorized, "X-Hub-Signature-256"},
		{"sha1 digest in sha256 header", map[string]string{"X-Hub-Signature-256": "sha1=" + hexMAC(sha1.New, testSecret, body)}, http.StatusUnauthorized, "sha256="},
		{"sha512 digest in sha256 header", map[string]string{"X-Hub-Signature-256": "sha512=" + hexMAC(sha512.New, testSecret, body)}, http.StatusUnauthorized, "sha256="},
		// A signature echoed into the error text must not change the status.
		{"digest mentioning Content-Type", map[string]string{"X-Hub-Signature-256": "sha256=Content-Type"}, http.StatusUnauthorized, "X-Hub-Signature-256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, masterPipeline(t))
			r := newPush("push", "delivery-1", body)
			for k, v := range tt.headers {
				if v == "" {
					r.Header.Del(k)
				} else {
					r.Header.Set(k, v)
				}
			}

			rec := env.serve(r)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			resp := decodeResponse(t, rec)
			if !strings.Contains(resp.Message, tt.message) {
				t.Errorf("message %q does not contain %q", resp.Message, tt.message)
			}
			if strings.Contains(strings.ToLower(rec.Body.String()), expected) {
				t.Errorf("response %s contains the expected digest", rec.Body)
			}
			if bytes.Contains(env.logs.Bytes(), testSecret) {
				t.Errorf("log contains the webhook secret:\n%s", env.logs)
			}
			if tt.status != http.StatusUnauthorized {
				return
			}
			if strings.Contains(strings.ToLower(env.logs.String()), expected) {
				t.Errorf("log contains the expected digest:\n%s", env.logs)
			}
			env.assertNothingQueued(t)
			env.assertNoDelivery(t, "delivery-1")
		})
	}
}

func TestSignatureFormEncoded(t *testing.T) {
	payload := readFixture(t, "push/branch-created.json")
	form := []byte("payload=" + url.QueryEscape(string(payload)))

	tests := []struct {
		name       string
		signedBody []byte
		status     int
	}{
		{"signed over form body", form, http.StatusAccepted},
		// GitHub signs the request body, so a digest of the JSON alone is wrong.
		{"signed over JSON only", payload, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, masterPipeline(t))
			r := newPush("push", "delivery-form", form)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("X-Hub-Signature-256", sign(testSecret, tt.signedBody))

			rec := env.serve(r)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status != http.StatusAccepted {
				env.assertNothingQueued(t)
				return
			}
			reqs := env.queue.requests()
			if len(reqs) != 1 {
				t.Fatalf("queued %d runs, want 1", len(reqs))
			}
			if reqs[0].Commit != fixtureCommit {
				t.Errorf("queued commit %q, want %q", reqs[0].Commit, fixtureCommit)
			}
		})
	}
}

func TestSignatureNonASCIIPayload(t *testing.T) {
	const message = "déploiement 日本語 🚀"
	body := derivePayload(t, "push/branch-created.json", func(doc map[string]any) {
		object(t, doc, "head_commit")["message"] = message
		commits, _ := doc["commits"].([]any)
		for _, c := range commits {
			c.(map[string]any)["message"] = message
		}
	})
	// The signature must cover the UTF-8 bytes, not a \u-escaped form.
	if !bytes.Contains(body, []byte(message)) {
		t.Fatalf("derived payload does not contain %q as raw UTF-8", message)
	}
	env := newTestEnv(t, masterPipeline(t))

	rec := env.serve(newPush("push", "delivery-utf8", body))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, http.StatusAccepted, rec.Body)
	}
	reqs := env.queue.requests()
	if len(reqs) != 1 {
		t.Fatalf("queued %d runs, want 1", len(reqs))
	}
	if reqs[0].Message != message {
		t.Errorf("queued message %q, want %q", reqs[0].Message, message)
	}
	if d := env.delivery(t, "delivery-utf8"); d.Commit != fixtureCommit {
		t.Errorf("stored delivery commit %q, want %q", d.Commit, fixtureCommit)
	}
}

func TestPing(t *testing.T) {
	for _, fixture := range []string{"ping/ping.json", "ping/with-organization.json"} {
		t.Run(fixture, func(t *testing.T) {
			env := newTestEnv(t, masterPipeline(t))

			rec := env.serve(newPush("ping", "delivery-ping", readFixture(t, fixture)))
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, http.StatusOK, rec.Body)
			}
			if resp := decodeResponse(t, rec); resp.Message != "pong" {
				t.Errorf("message %q, want pong", resp.Message)
			}
			env.assertNothingQueued(t)
		})
	}
}

func TestPushStartsRun(t *testing.T) {
	pl := masterPipeline(t)
	env := newTestEnv(t, pl)

	rec := env.serve(newPush("push", "72d3162e-cc78-11e3-81ab-4c9367dc0958", readFixture(t, "push/branch-created.json")))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, http.StatusAccepted, rec.Body)
	}
	resp := decodeResponse(t, rec)

	reqs := env.queue.requests()
	if len(reqs) != 1 {
		t.Fatalf("queued %d runs, want 1", len(reqs))
	}
	want := runner.Request{
		Pipeline:   pl,
		Trigger:    "push",
		DeliveryID: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		Repo:       fixtureRepo,
		Ref:        "refs/heads/master",
		Commit:     fixtureCommit,
		CloneURL:   fixtureCloneURL,
		Message:    "Initial commit",
		Author:     "Codertocat",
		Before:     zeroCommit,
		// The push created the branch, so its file list is not complete.
		ChangedFiles:  []string{"README.md"},
		FilesComplete: false,
	}
	if !reflect.DeepEqual(reqs[0], want) {
		t.Errorf("queued request\n got %+v\nwant %+v", reqs[0], want)
	}
	if len(resp.Runs) != 1 || resp.Runs[0] != 1 {
		t.Errorf("response runs %v, want [1]", resp.Runs)
	}

	d := env.delivery(t, want.DeliveryID)
	wantDelivery := store.Delivery{
		ID:     want.DeliveryID,
		Event:  "push",
		Repo:   fixtureRepo,
		Ref:    "refs/heads/master",
		Commit: fixtureCommit,
		Result: resp.Message,
		RunIDs: []uint64{1},
	}
	if d.ID != wantDelivery.ID || d.Event != wantDelivery.Event || d.Repo != wantDelivery.Repo ||
		d.Ref != wantDelivery.Ref || d.Commit != wantDelivery.Commit || d.Result != wantDelivery.Result {
		t.Errorf("stored delivery\n got %+v\nwant %+v", d, wantDelivery)
	}
	if len(d.RunIDs) != 1 || d.RunIDs[0] != 1 {
		t.Errorf("stored delivery run IDs %v, want [1]", d.RunIDs)
	}
	if !d.ReceivedAt.Equal(receivedAt) {
		t.Errorf("stored delivery received at %v, want %v", d.ReceivedAt, receivedAt)
	}
}

func TestPushOverHTTP(t *testing.T) {
	env := newTestEnv(t, masterPipeline(t))
	srv := httptest.NewServer(env.h)
	t.Cleanup(srv.Close)
	body := readFixture(t, "push/branch-created.json")

	r, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/hooks/github", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Hub-Signature-256", sign(testSecret, body))
	r.Header.Set("X-GitHub-Event", "push")
	r.Header.Set("X-GitHub-Delivery", "delivery-http")
	resp, err := srv.Client().Do(r)
	if err != nil {
		t.Fatalf("sending webhook: %v", err)
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status = %d, want %d", resp.StatusCode, http.StatusAccepted)
	}
	var got response
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("decoding response: %v", err)
	}
	if len(got.Runs) != 1 {
		t.Errorf("response runs %v, want one run", got.Runs)
	}
	if d := env.delivery(t, "delivery-http"); d.Commit != fixtureCommit {
		t.Errorf("stored delivery commit %q, want %q", d.Commit, fixtureCommit)
	}
}

func TestPushDerivedRefs(t *testing.T) {
	const newCommit = "a10867b14bb761a232cd80139fbd4c0d33264240"
	const unicodeBranch = "feature/café-日本語"
	updated := func(t *testing.T) []byte {
		return derivePayload(t, "push/branch-created.json", func(doc map[string]any) {
			doc["before"] = fixtureCommit
			doc["after"] = newCommit
			doc["created"] = false
			object(t, doc, "head_commit")["id"] = newCommit
		})
	}
	unicode := func(t *testing.T) []byte {
		return derivePayload(t, "push/branch-created.json", func(doc map[string]any) {
			doc["ref"] = "refs/heads/" + unicodeBranch
		})
	}

	tests := []struct {
		name     string
		body     func(t *testing.T) []byte
		branches string
		ref      string // of the queued run; "" when nothing is queued
		commit   string
	}{
		{"existing branch updated", updated, "[master]", "refs/heads/master", newCommit},
		{"slash and non-ASCII branch", unicode, "[\"feature/*\"]", "refs/heads/" + unicodeBranch, fixtureCommit},
		{"non-ASCII branch exact", unicode, "[\"" + unicodeBranch + "\"]", "refs/heads/" + unicodeBranch, fixtureCommit},
		{"non-ASCII branch other pattern", unicode, "[master]", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl := parsePipeline(t, "name: web\nrepo: Codertocat/Hello-World\non:\n  push:\n    branches: "+tt.branches+"\n")
			env := newTestEnv(t, pl)

			rec := env.serve(newPush("push", "delivery-derived", tt.body(t)))
			if rec.Code != http.StatusAccepted {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, http.StatusAccepted, rec.Body)
			}
			reqs := env.queue.requests()
			if tt.ref == "" {
				env.assertNothingQueued(t)
				return
			}
			if len(reqs) != 1 {
				t.Fatalf("queued %d runs, want 1", len(reqs))
			}
			if reqs[0].Ref != tt.ref {
				t.Errorf("queued ref %q, want %q", reqs[0].Ref, tt.ref)
			}
			if reqs[0].Commit != tt.commit {
				t.Errorf("queued commit %q, want %q", reqs[0].Commit, tt.commit)
			}
			if d := env.delivery(t, "delivery-derived"); d.Ref != tt.ref {
				t.Errorf("stored delivery ref %q, want %q", d.Ref, tt.ref)
			}
		})
	}
}

func TestDuplicateDelivery(t *testing.T) {
	tests := []struct {
		event string
		body  []byte
	}{
		{"push", readFixture(t, "push/branch-created.json")},
		{"create", readFixture(t, "push/branch-created.json")},
	}
	for _, tt := range tests {
		t.Run(tt.event, func(t *testing.T) {
			env := newTestEnv(t, masterPipeline(t))

			first := env.serve(newPush(tt.event, "delivery-dup", tt.body))
			if first.Code != http.StatusAccepted {
				t.Fatalf("first status = %d, want %d; body %s", first.Code, http.StatusAccepted, first.Body)
			}
			queued := len(env.queue.requests())

			second := env.serve(newPush(tt.event, "delivery-dup", tt.body))
			if second.Code != http.StatusOK {
				t.Fatalf("second status = %d, want %d; body %s", second.Code, http.StatusOK, second.Body)
			}
			if resp := decodeResponse(t, second); !strings.Contains(resp.Message, "delivery-dup") {
				t.Errorf("message %q does not name the delivery", resp.Message)
			}
			if n := len(env.queue.requests()); n != queued {
				t.Errorf("queued %d runs after the redelivery, want %d", n, queued)
			}
		})
	}
}

func TestPushTagDeleted(t *testing.T) {
	// This pipeline would match the tag if the push had not deleted it.
	pl := parsePipeline(t, "name: web\nrepo: Codertocat/Hello-World\non:\n  push:\n    branches: [\"**\"]\n    tags: [\"**\"]\n")
	env := newTestEnv(t, pl)

	rec := env.serve(newPush("push", "delivery-deleted", readFixture(t, "push/tag-deleted.json")))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, http.StatusAccepted, rec.Body)
	}
	env.assertNothingQueued(t)
	d := env.delivery(t, "delivery-deleted")
	if !strings.Contains(d.Result, "deleted") {
		t.Errorf("stored delivery result %q does not say deleted", d.Result)
	}
	if d.Ref != "refs/tags/simple-tag" {
		t.Errorf("stored delivery ref %q, want refs/tags/simple-tag", d.Ref)
	}
	if d.Commit != "" {
		t.Errorf("stored delivery commit %q, want none for a deleted ref", d.Commit)
	}
}

func TestPushCommitResolution(t *testing.T) {
	const headID = "b9d5e7c1a2f3049586d7e8f9a0b1c2d3e4f5a6b7"
	tests := []struct {
		name    string
		body    func(t *testing.T) []byte
		commit  string
		message string
	}{
		{"tag created with empty commits", func(t *testing.T) []byte {
			return readFixture(t, "push/tag-created-ghes-35.json")
		}, fixtureCommit, "Adding a .gitignore file"},
		{"after without head_commit", func(t *testing.T) []byte {
			return derivePayload(t, "push/tag-created-ghes-35.json", func(doc map[string]any) {
				doc["head_commit"] = nil
			})
		}, fixtureCommit, ""},
		// For an annotated tag, after is the tag object and head_commit
		// the commit it points to.
		{"annotated tag builds head_commit", func(t *testing.T) []byte {
			return derivePayload(t, "push/tag-created-ghes-35.json", func(doc map[string]any) {
				object(t, doc, "head_commit")["id"] = headID
			})
		}, headID, "Adding a .gitignore file"},
		{"head_commit when after is missing", func(t *testing.T) []byte {
			return derivePayload(t, "push/tag-created-ghes-35.json", func(doc map[string]any) {
				delete(doc, "after")
				object(t, doc, "head_commit")["id"] = headID
			})
		}, headID, "Adding a .gitignore file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl := parsePipeline(t, "name: release\nrepo: Codertocat/Hello-World\non:\n  push:\n    tags: [\"simple-*\"]\n")
			env := newTestEnv(t, pl)

			rec := env.serve(newPush("push", "delivery-tag", tt.body(t)))
			if rec.Code != http.StatusAccepted {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, http.StatusAccepted, rec.Body)
			}
			reqs := env.queue.requests()
			if len(reqs) != 1 {
				t.Fatalf("queued %d runs, want 1", len(reqs))
			}
			if reqs[0].Ref != "refs/tags/simple-tag" {
				t.Errorf("queued ref %q, want refs/tags/simple-tag", reqs[0].Ref)
			}
			if reqs[0].Commit != tt.commit {
				t.Errorf("queued commit %q, want %q", reqs[0].Commit, tt.commit)
			}
			if reqs[0].Message != tt.message {
				t.Errorf("queued message %q, want %q", reqs[0].Message, tt.message)
			}
			if d := env.delivery(t, "delivery-tag"); d.Commit != tt.commit {
				t.Errorf("stored delivery commit %q, want %q", d.Commit, tt.commit)
			}
		})
	}
}

func TestPushNoMatchingPipeline(t *testing.T) {
	tests := []struct {
		name string
		yaml string
	}{
		{"other repo", "name: web\nrepo: acme/hello\non:\n  push:\n    branches: [master]\n"},
		{"other branch", "name: web\nrepo: Codertocat/Hello-World\non:\n  push:\n    branches: [main]\n"},
		{"tags only", "name: web\nrepo: Codertocat/Hello-World\non:\n  push:\n    tags: [\"*\"]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, parsePipeline(t, tt.yaml))

			rec := env.serve(newPush("push", "delivery-nomatch", readFixture(t, "push/branch-created.json")))
			if rec.Code != http.StatusAccepted {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, http.StatusAccepted, rec.Body)
			}
			resp := decodeResponse(t, rec)
			if !strings.Contains(resp.Message, "no pipeline matches") {
				t.Errorf("message %q does not say that no pipeline matches", resp.Message)
			}
			env.assertNothingQueued(t)
			if d := env.delivery(t, "delivery-nomatch"); d.Result != resp.Message {
				t.Errorf("stored delivery result %q, want %q", d.Result, resp.Message)
			}
		})
	}
}

// limitedReader returns zeros up to size bytes and fails the test when more
// than max bytes are read.
type limitedReader struct {
	t    *testing.T
	size int64
	max  int64
	read int64
}

func (r *limitedReader) Read(p []byte) (int, error) {
	if r.read >= r.size {
		return 0, io.EOF
	}
	n := int64(len(p))
	if n > r.size-r.read {
		n = r.size - r.read
	}
	clear(p[:n])
	r.read += n
	if r.read > r.max {
		r.t.Errorf("handler read %d bytes of the body, want at most %d", r.read, r.max)
		return int(n), errors.New("read past the allowed limit")
	}
	return int(n), nil
}

func TestBodyTooLarge(t *testing.T) {
	tests := []struct {
		name          string
		contentLength int64
		size          int64
		max           int64 // bytes the handler may read
	}{
		// Content-Length alone decides, so the handler must not read the body.
		{"declared length", 26 << 20, 26 << 20, 512},
		// A chunked body is read up to the limit and no further.
		{"chunked", -1, 100 << 20, MaxBodyBytes + 1<<20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, masterPipeline(t))
			body := &limitedReader{t: t, size: tt.size, max: tt.max}
			r := newPush("push", "delivery-large", nil)
			r.Body = io.NopCloser(body)
			r.ContentLength = tt.contentLength

			rec := env.serve(r)
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, http.StatusRequestEntityTooLarge, rec.Body)
			}
			if resp := decodeResponse(t, rec); !strings.Contains(resp.Message, "25 MB") {
				t.Errorf("message %q does not name the 25 MB limit", resp.Message)
			}
			env.assertNothingQueued(t)
			env.assertNoDelivery(t, "delivery-large")
		})
	}
}

func TestBodyAtLimit(t *testing.T) {
	// Pad a real push with spaces, which JSON ignores, to exactly the limit.
	body := readFixture(t, "push/branch-created.json")
	body = append(body, bytes.Repeat([]byte(" "), MaxBodyBytes-len(body))...)
	env := newTestEnv(t, masterPipeline(t))

	rec := env.serve(newPush("push", "delivery-limit", body))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, http.StatusAccepted, rec.Body)
	}
	if n := len(env.queue.requests()); n != 1 {
		t.Errorf("queued %d runs, want 1", n)
	}
}

func TestRequestRejected(t *testing.T) {
	body := readFixture(t, "push/branch-created.json")
	tests := []struct {
		name   string
		build  func() *http.Request
		status int
		text   string // substring of the response message
	}{
		{"missing event header", func() *http.Request {
			return newPush("", "delivery-1", body)
		}, http.StatusBadRequest, "X-GitHub-Event"},
		{"missing delivery header", func() *http.Request {
			return newPush("push", "", body)
		}, http.StatusBadRequest, "X-GitHub-Delivery"},
		{"GET", func() *http.Request {
			return httptest.NewRequest(http.MethodGet, "/hooks/github", nil)
		}, http.StatusMethodNotAllowed, "POST"},
		{"text/plain", func() *http.Request {
			r := newPush("push", "delivery-1", body)
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, http.StatusUnsupportedMediaType, "text/plain"},
		{"missing content type", func() *http.Request {
			r := newPush("push", "delivery-1", body)
			r.Header.Del("Content-Type")
			return r
		}, http.StatusUnsupportedMediaType, "application/json"},
		{"invalid JSON", func() *http.Request {
			return newPush("push", "delivery-1", []byte(`{"ref": 42}`))
		}, http.StatusBadRequest, "invalid push payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, masterPipeline(t))

			rec := env.serve(tt.build())
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if resp := decodeResponse(t, rec); !strings.Contains(resp.Message, tt.text) {
				t.Errorf("message %q does not contain %q", resp.Message, tt.text)
			}
			if tt.status == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != http.MethodPost {
				t.Errorf("Allow = %q, want POST", rec.Header().Get("Allow"))
			}
			env.assertNothingQueued(t)
			env.assertNoDelivery(t, "delivery-1")
		})
	}
}

func TestContentTypeWithCharset(t *testing.T) {
	env := newTestEnv(t, masterPipeline(t))
	r := newPush("push", "delivery-charset", readFixture(t, "push/branch-created.json"))
	r.Header.Set("Content-Type", "application/json; charset=utf-8")

	rec := env.serve(r)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, http.StatusAccepted, rec.Body)
	}
}

func TestEnqueueFailure(t *testing.T) {
	env := newTestEnv(t, masterPipeline(t))
	env.queue.err = errors.New("runner stopped")

	rec := env.serve(newPush("push", "delivery-fail", readFixture(t, "push/branch-created.json")))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, http.StatusInternalServerError, rec.Body)
	}
	resp := decodeResponse(t, rec)
	if !strings.Contains(resp.Message, "see quai's log") {
		t.Errorf("message %q does not point to quai's log", resp.Message)
	}
	if !strings.Contains(resp.Message, "web") {
		t.Errorf("message %q does not name the pipeline", resp.Message)
	}
	if !strings.Contains(env.logs.String(), "runner stopped") {
		t.Errorf("log does not contain the queue error:\n%s", env.logs)
	}
	if d := env.delivery(t, "delivery-fail"); d.Result != resp.Message {
		t.Errorf("stored delivery result %q, want %q", d.Result, resp.Message)
	}
}

func TestSaveDeliveryFailure(t *testing.T) {
	env := newTestEnv(t, masterPipeline(t))
	env.h.deliveries = failingSave{Store: env.store, err: errors.New("disk quota exceeded")}

	rec := env.serve(newPush("push", "delivery-nosave", readFixture(t, "push/branch-created.json")))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, http.StatusInternalServerError, rec.Body)
	}
	resp := decodeResponse(t, rec)
	if !strings.Contains(resp.Message, "see quai's log") {
		t.Errorf("message %q does not point to quai's log", resp.Message)
	}
	if strings.Contains(resp.Message, "disk quota") {
		t.Errorf("message %q exposes the internal error", resp.Message)
	}
	if !strings.Contains(env.logs.String(), "disk quota exceeded") {
		t.Errorf("log does not contain the store error:\n%s", env.logs)
	}
	env.assertNothingQueued(t)
}

func FuzzPushPayload(f *testing.F) {
	for _, dir := range []string{"push", "ping"} {
		files, err := filepath.Glob(filepath.Join("testdata", "github", dir, "*.json"))
		if err != nil || len(files) == 0 {
			f.Fatalf("listing fixtures in %s: %v (found %d)", dir, err, len(files))
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte(`null`))
	f.Add([]byte(`{"after": "0000000000000000000000000000000000000000", "head_commit": {}}`))

	pl := parsePipeline(f, "name: web\nrepo: Codertocat/Hello-World\non:\n  push:\n    branches: [\"**\"]\n    tags: [\"**\"]\n")
	env := newTestEnv(f, pl)
	env.h.log = slog.New(slog.DiscardHandler)
	var deliveries int
	f.Fuzz(func(t *testing.T, body []byte) {
		deliveries++
		id := fmt.Sprintf("fuzz-%d", deliveries)
		rec := env.serve(newPush("push", id, body))

		if rec.Code != http.StatusAccepted && rec.Code != http.StatusBadRequest {
			t.Fatalf("status = %d, want 202 or 400; body %s", rec.Code, rec.Body)
		}
		decodeResponse(t, rec)
	})
}

// countingQueue only counts requests, so the benchmark measures the handler
// and the store.
type countingQueue struct{ n atomic.Uint64 }

func (q *countingQueue) Enqueue(runner.Request) (store.Run, error) {
	return store.Run{ID: q.n.Add(1)}, nil
}

// BenchmarkWebhookPush measures signed pushes accepted, stored in a real
// bbolt file and queued. Each push is two write transactions (save and
// result), each synced to disk, so the disk's sync latency dominates.
func BenchmarkWebhookPush(b *testing.B) {
	body := readFixture(b, "push/branch-created.json")
	signature := sign(testSecret, body)
	st := openStore(b)
	queue := &countingQueue{}
	pipelines := []*pipeline.Pipeline{masterPipeline(b)}
	h, err := NewHandler(testSecret, st, func() []*pipeline.Pipeline { return pipelines }, queue, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}

	b.ReportAllocs()
	var pushes int
	for b.Loop() {
		pushes++
		r := httptest.NewRequest(http.MethodPost, "/hooks/github", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Hub-Signature-256", signature)
		r.Header.Set("X-GitHub-Event", "push")
		r.Header.Set("X-GitHub-Delivery", "bench-"+strconv.Itoa(pushes))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("push %d: status = %d, want %d; body %s", pushes, rec.Code, http.StatusAccepted, rec.Body)
		}
	}
	b.ReportMetric(float64(pushes)/b.Elapsed().Seconds(), "pushes/s")

	if got := queue.n.Load(); got != uint64(pushes) {
		b.Errorf("queued %d runs, want %d", got, pushes)
	}
	last, err := st.Delivery("bench-" + strconv.Itoa(pushes))
	if err != nil {
		b.Fatalf("loading the last delivery: %v", err)
	}
	if len(last.RunIDs) != 1 || last.RunIDs[0] != uint64(pushes) {
		b.Errorf("last delivery run IDs %v, want [%d]", last.RunIDs, pushes)
	}
}
