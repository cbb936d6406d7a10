package webui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"
)

// sessionCookie is the name of the cookie that carries a signed session.
const sessionCookie = "quai_session"

// sessionKeySize is the HMAC-SHA256 key length: RFC 2104 recommends at
// least the hash's output size, 32 bytes.
const sessionKeySize = 32

// LoadOrCreateSessionKey reads the session signing key from path, or
// generates one there with mode 0600 when the file does not exist. Keeping
// the key on disk keeps sessions valid across restarts; deleting the file
// logs everyone out on the next start.
func LoadOrCreateSessionKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) < sessionKeySize {
			return nil, fmt.Errorf("reading session key %s: want %d hex-encoded bytes; delete the file to generate a new key", path, sessionKeySize)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading session key %s: %w", path, err)
	}
	key := make([]byte, sessionKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generating session key: %w", err)
	}
	if err := writeFileAtomic(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("writing session key: %w", err)
	}
	return key, nil
}

// session is the signed content of the session cookie. The role is not in
// it: it is read from the accounts on each request, so a changed role
// applies at the next restart without a new login.
type session struct {
	ID      string `json:"id"`
	User    string `json:"user"`
	Expires int64  `json:"exp"`
}

// sessions signs and verifies session cookies and remembers the sessions
// ended by logout until they expire. It is safe for concurrent use.
type sessions struct {
	key []byte
	ttl time.Duration

	mu      sync.Mutex
	revoked map[string]time.Time // session ID -> expiry
}

func newSessions(key []byte, ttl time.Duration) *sessions {
	return &sessions{key: key, ttl: ttl, revoked: map[string]time.Time{}}
}

// create starts a session for user that ends after the TTL.
func (ss *sessions) create(user string, now time.Time) (session, string, error) {
	buf := make([]byte, 16)
	if _, err := rand.Read(buf); err != nil {
		return session{}, "", fmt.Errorf("generating session id: %w", err)
	}
	sess := session{ID: hex.EncodeToString(buf), User: user, Expires: now.Add(ss.ttl).Unix()}
	payload, err := json.Marshal(sess)
	if err != nil {
		return session{}, "", fmt.Errorf("encoding session: %w", err)
	}
	p := base64.RawURLEncoding.EncodeToString(payload)
	return sess, p + "." + base64.RawURLEncoding.EncodeToString(ss.sign([]byte(p))), nil
}

// verify returns the session in a cookie value whose signature is valid,
// that has not expired and was not ended by logout.
func (ss *sessions) verify(value string, now time.Time) (session, error) {
	p, sig, ok := strings.Cut(value, ".")
	if !ok {
		return session{}, errors.New("malformed session cookie")
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, ss.sign([]byte(p))) {
		return session{}, errors.New("invalid session signature")
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return session{}, errors.New("malformed session payload")
	}
	var sess session
	if err := json.Unmarshal(payload, &sess); err != nil {
		return session{}, errors.New("malformed session payload")
	}
	if now.Unix() >= sess.Expires {
		return session{}, errors.New("session expired")
	}
	ss.mu.Lock()
	_, revoked := ss.revoked[sess.ID]
	ss.mu.Unlock()
	if revoked {
		return session{}, errors.New("session logged out")
	}
	return sess, nil
}

// revoke ends sess before its expiry.
// NOTE: the list lives in memory, so a cookie copied before logout is
// valid again after a restart until it expires.
func (ss *sessions) revoke(sess session, now time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, exp := range ss.revoked {
		if now.Unix() >= exp.Unix() {
			delete(ss.revoked, id)
		}
	}
	ss.revoked[sess.ID] = time.Unix(sess.Expires, 0)
}

// csrfToken derives the session's CSRF token, so it needs no storage and
// changes with every login.
func (ss *sessions) csrfToken(sess session) string {
	return hex.EncodeToString(ss.sign([]byte("csrf:" + sess.ID)))
}

func (ss *sessions) sign(b []byte) []byte {
	m := hmac.New(sha256.New, ss.key)
	m.Write(b)
	return m.Sum(nil)
}
