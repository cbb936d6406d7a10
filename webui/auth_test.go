package webui

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quai-ci/quai/pipeline"
	"github.com/quai-ci/quai/runner"
	"github.com/quai-ci/quai/store"
)

const (
	viewerPassword   = "viewer-password-1"
	deployerPassword = "deployer-password-1"
	envToken         = "env-token-for-tests"
)

// fakeCanceler records Cancel calls and returns err.
type fakeCanceler struct {
	mu      sync.Mutex
	reasons []string
	err     error
}

func (f *fakeCanceler) Cancel(runID uint64, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reasons = append(f.reasons, reason)
	return f.err
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type authFixture struct {
	s        *Server
	st       *store.Store
	clock    *clock
	cancels  *fakeCanceler
	logs     *bytes.Buffer
	tokens   map[Role]string
	runID    uint64
	accounts *Accounts
}

// newAuthServer builds a server with real accounts: alice is a viewer,
// dora a deployer, and one API token of each role.
func newAuthServer(t *testing.T) *authFixture {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "quai.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	run := store.Run{Pipeline: "hello", Status: store.StatusRunning}
	if err := st.CreateRun(&run); err != nil {
		t.Fatal(err)
	}

	accounts := &Accounts{}
	if _, err := accounts.AddUser("alice", RoleViewer, []byte(viewerPassword)); err != nil {
		t.Fatal(err)
	}
	if _, err := accounts.AddUser("dora", RoleDeployer, []byte(deployerPassword)); err != nil {
		t.Fatal(err)
	}
	tokens := map[Role]string{}
	for _, role := range []Role{RoleViewer, RoleDeployer} {
		tok, err := accounts.AddToken("ci-"+string(role), role, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		tokens[role] = tok
	}
	proxies, err := ParsePrefixes("127.0.0.1/32,::1/128")
	if err != nil {
		t.Fatal(err)
	}

	f := &authFixture{
		st: st, clock: &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		cancels: &fakeCanceler{}, logs: &bytes.Buffer{}, tokens: tokens, runID: run.ID, accounts: accounts,
	}
	hello := &pipeline.Pipeline{Name: "hello", Repo: "acme/hello", Deploy: &pipeline.Deploy{Container: "hello"}}
	f.s, err = New(Config{
		Runs:        st,
		Pipelines:   func() []*pipeline.Pipeline { return []*pipeline.Pipeline{hello} },
		Deployments: st,
		Deploys:     &fakeDeploys{st: st},
		Cancels:     f.cancels,
		Webhook:     http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }),
		Auth: AuthConfig{
			Accounts:       accounts,
			SessionKey:     bytes.Repeat([]byte{7}, sessionKeySize),
			TrustedProxies: proxies,
			EnvToken:       envToken,
			Now:            f.clock.Now,
		},
		Log:     slog.New(slog.NewTextHandler(f.logs, nil)),
		Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// request describes one request to the server under test.
type request struct {
	method, path string
	form         url.Values
	remote       string
	header       map[string]string
	cookie       *http.Cookie
	tls          bool
}

func (f *authFixture) do(t *testing.T, rq request) *httptest.ResponseRecorder {
	t.Helper()
	var body *strings.Reader
	if rq.form != nil {
		body = strings.NewReader(rq.form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(rq.method, rq.path, body)
	if rq.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if rq.remote != "" {
		req.RemoteAddr = rq.remote
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	if rq.cookie != nil {
		req.AddCookie(rq.cookie)
	}
	if rq.tls {
		req.TLS = &tls.ConnectionState{}
	}
	w := httptest.NewRecorder()
	f.s.ServeHTTP(w, req)
	return w
}

// login posts the login form and returns the response and its session
// cookie, nil when none was set.
func (f *authFixture) login(t *testing.T, user, password string, rq request) (*httptest.ResponseRecorder, *http.Cookie) {
	t.Helper()
	rq.method, rq.path = http.MethodPost, "/login"
	rq.form = url.Values{"username": {user}, "password": {password}, "next": {"/runs/1"}}
	w := f.do(t, rq)
	for _, c := range w.Result().Cookies() {
		if c.Name == sessionCookie && c.Value != "" {
			return w, c
		}
	}
	return w, nil
}

// session logs user in and returns the cookie and its CSRF token.
func (f *authFixture) session(t *testing.T, user, password string) (*http.Cookie, string) {
	t.Helper()
	w, c := f.login(t, user, password, request{})
	if c == nil {
		t.Fatalf("login of %s returned %d without a session cookie: %s", user, w.Code, w.Body)
	}
	sess, err := f.s.auth.sessions.verify(c.Value, f.clock.Now())
	if err != nil {
		t.Fatalf("session cookie of %s does not verify: %v", user, err)
	}
	return c, f.s.auth.sessions.csrfToken(sess)
}

func TestLogin(t *testing.T) {
	tests := []struct {
		name       string
		user, pass string
		wantStatus int
		wantCookie bool
	}{
		{"viewer right password", "alice", viewerPassword, http.StatusSeeOther, true},
		{"deployer right password", "dora", deployerPassword, http.StatusSeeOther, true},
		{"wrong password", "alice", deployerPassword, http.StatusUnauthorized, false},
		{"empty password", "alice", "", http.StatusUnauthorized, false},
		{"unknown user", "mallory", viewerPassword, http.StatusUnauthorized, false},
		{"name case differs", "Alice", viewerPassword, http.StatusUnauthorized, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAuthServer(t)
			w, c := f.login(t, tt.user, tt.pass, request{})
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			if (c != nil) != tt.wantCookie {
				t.Errorf("session cookie set = %v, want %v", c != nil, tt.wantCookie)
			}
			if tt.wantCookie {
				if loc := w.Header().Get("Location"); loc != "/runs/1" {
					t.Errorf("redirect to %q, want /runs/1", loc)
				}
			} else if !strings.Contains(w.Body.String(), "Wrong user name or password") {
				t.Errorf("login page does not say the login failed: %s", w.Body)
			}
			if strings.Contains(f.logs.String(), tt.pass) && tt.pass != "" {
				t.Errorf("log contains the password:\n%s", f.logs)
			}
		})
	}
}

func TestLoginPageRendersForm(t *testing.T) {
	f := newAuthServer(t)
	w := f.do(t, request{method: http.MethodGet, path: "/login?next=%2Fruns%2F1"})
	if w.Code != http.StatusOK {
		t.Fatalf("GET /login = %d, want 200", w.Code)
	}
	body := w.Body.String()
	for _, want := range []string{`name="username"`, `type="password"`, `name="next" value="/runs/1"`} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %s:\n%s", want, body)
		}
	}
}

func TestLoginRateLimit(t *testing.T) {
	tests := []struct {
		name string
		// failAs returns the user and client of the i-th failed attempt.
		failAs func(i int) (string, string)
		// then is the attempt with the right password after the failures.
		user, remote string
	}{
		{"per client address", func(i int) (string, string) { return fmt.Sprintf("nobody%d", i), "203.0.113.7:1000" },
			"dora", "203.0.113.7:2000"},
		{"per user name", func(i int) (string, string) { return "dora", fmt.Sprintf("203.0.113.%d:1000", 10+i) },
			"dora", "198.51.100.1:1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAuthServer(t)
			for i := range loginFailures {
				user, remote := tt.failAs(i)
				if w, _ := f.login(t, user, "wrong-password", request{remote: remote}); w.Code != http.StatusUnauthorized {
					t.Fatalf("failure %d returned %d, want 401", i+1, w.Code)
				}
			}
			w, c := f.login(t, tt.user, deployerPassword, request{remote: tt.remote})
			if w.Code != http.StatusTooManyRequests {
				t.Errorf("attempt after %d failures returned %d, want 429", loginFailures, w.Code)
			}
			if c != nil {
				t.Error("a rate-limited login set a session cookie")
			}
			if !strings.Contains(w.Body.String(), "Too many failed logins") {
				t.Errorf("429 page does not explain the limit: %s", w.Body)
			}
			if w.Header().Get("Retry-After") == "" {
				t.Error("429 has no Retry-After header")
			}

			f.clock.Advance(loginWindow)
			if w, c := f.login(t, tt.user, deployerPassword, request{remote: tt.remote}); c == nil {
				t.Errorf("login after the window returned %d without a cookie", w.Code)
			}
		})
	}
}

func TestLoginRateLimitUsesForwardedClient(t *testing.T) {
	f := newAuthServer(t)
	proxied := func(client string) request {
		return request{remote: "127.0.0.1:5000", header: map[string]string{"X-Forwarded-For": client}}
	}
	for i := range loginFailures {
		f.login(t, fmt.Sprintf("nobody%d", i), "wrong-password", proxied("203.0.113.7"))
	}
	if w, _ := f.login(t, "dora", deployerPassword, proxied("203.0.113.7")); w.Code != http.StatusTooManyRequests {
		t.Errorf("same client behind the proxy returned %d, want 429", w.Code)
	}
	if w, c := f.login(t, "dora", deployerPassword, proxied("198.51.100.1")); c == nil {
		t.Errorf("another client behind the same proxy returned %d, want a login", w.Code)
	}
}

func TestSessionCookieFlags(t *testing.T) {
	tests := []struct {
		name       string
		rq         request
		wantSecure bool
	}{
		{"plain HTTP", request{remote: "192.0.2.1:4000"}, false},
		{"direct TLS", request{remote: "192.0.2.1:4000", tls: true}, true},
		{"trusted proxy https", request{remote: "127.0.0.1:4000", header: map[string]string{"X-Forwarded-Proto": "https"}}, true},
		{"trusted IPv6 proxy https", request{remote: "[::1]:4000", header: map[string]string{"X-Forwarded-Proto": "https"}}, true},
		{"trusted proxy http", request{remote: "127.0.0.1:4000", header: map[string]string{"X-Forwarded-Proto": "http"}}, false},
		{"untrusted sender of the header", request{remote: "192.0.2.1:4000", header: map[string]string{"X-Forwarded-Proto": "https"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAuthServer(t)
			w, c := f.login(t, "alice", viewerPassword, tt.rq)
			if c == nil {
				t.Fatalf("login returned %d without a cookie", w.Code)
			}
			if c.Secure != tt.wantSecure {
				t.Errorf("Secure = %v, want %v", c.Secure, tt.wantSecure)
			}
			if !c.HttpOnly {
				t.Error("cookie is not HttpOnly")
			}
			if c.SameSite != http.SameSiteLaxMode {
				t.Errorf("SameSite = %v, want Lax", c.SameSite)
			}
			if c.Path != "/" {
				t.Errorf("Path = %q, want /", c.Path)
			}
		})
	}
}

func TestSessionExpiry(t *testing.T) {
	f := newAuthServer(t)
	c, _ := f.session(t, "alice", viewerPassword)
	if w := f.do(t, request{method: http.MethodGet, path: "/api/runs", cookie: c}); w.Code != http.StatusOK {
		t.Fatalf("fresh session: GET /api/runs = %d, want 200", w.Code)
	}
	f.clock.Advance(DefaultSessionTTL - time.Second)
	if w := f.do(t, request{method: http.MethodGet, path: "/api/runs", cookie: c}); w.Code != http.StatusOK {
		t.Errorf("session 1s before expiry: GET /api/runs = %d, want 200", w.Code)
	}
	f.clock.Advance(time.Second)
	if w := f.do(t, request{method: http.MethodGet, path: "/api/runs", cookie: c}); w.Code != http.StatusUnauthorized {
		t.Errorf("expired session: GET /api/runs = %d, want 401", w.Code)
	}
	if !strings.Contains(f.logs.String(), "session expired") {
		t.Errorf("log does not record the expired session:\n%s", f.logs)
	}
}

func TestSessionTampered(t *testing.T) {
	f := newAuthServer(t)
	c, _ := f.session(t, "alice", viewerPassword)
	payload, sig, _ := strings.Cut(c.Value, ".")
	forged := *c
	forged.Value = payload + "x." + sig
	if w := f.do(t, request{method: http.MethodGet, path: "/api/runs", cookie: &forged}); w.Code != http.StatusUnauthorized {
		t.Errorf("tampered cookie: GET /api/runs = %d, want 401", w.Code)
	}
}

func TestLogout(t *testing.T) {
	f := newAuthServer(t)
	c, csrf := f.session(t, "alice", viewerPassword)
	page := f.do(t, request{method: http.MethodGet, path: "/logout", cookie: c})
	if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), `value="`+csrf+`"`) {
		t.Errorf("GET /logout = %d without the session's CSRF token in its form:\n%s", page.Code, page.Body)
	}
	w := f.do(t, request{method: http.MethodPost, path: "/logout", cookie: c, form: url.Values{"csrf_token": {csrf}}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("POST /logout = %d, want 303; body %s", w.Code, w.Body)
	}
	cleared := false
	for _, rc := range w.Result().Cookies() {
		if rc.Name == sessionCookie && rc.MaxAge < 0 {
			cleared = true
		}
	}
	if !cleared {
		t.Error("logout did not clear the session cookie")
	}
	if w := f.do(t, request{method: http.MethodGet, path: "/api/runs", cookie: c}); w.Code != http.StatusUnauthorized {
		t.Errorf("cookie after logout: GET /api/runs = %d, want 401", w.Code)
	}
}

func TestCSRF(t *testing.T) {
	tests := []struct {
		name   string
		form   url.Values
		header string
		want   int
	}{
		{"missing", url.Values{}, "", http.StatusForbidden},
		{"wrong form field", url.Values{"csrf_token": {"00ff"}}, "", http.StatusForbidden},
		{"wrong header", nil, "00ff", http.StatusForbidden},
		{"right form field", url.Values{"csrf_token": {"RIGHT"}}, "", http.StatusAccepted},
		{"right header", nil, "RIGHT", http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAuthServer(t)
			c, csrf := f.session(t, "dora", deployerPassword)
			rq := request{method: http.MethodPost, path: fmt.Sprintf("/api/runs/%d/cancel", f.runID), cookie: c}
			if tt.form != nil {
				rq.form = url.Values{}
				for k, v := range tt.form {
					rq.form[k] = []string{strings.ReplaceAll(v[0], "RIGHT", csrf)}
				}
			}
			if tt.header != "" {
				rq.header = map[string]string{"X-CSRF-Token": strings.ReplaceAll(tt.header, "RIGHT", csrf)}
			}
			w := f.do(t, rq)
			if w.Code != tt.want {
				t.Errorf("status = %d, want %d; body %s", w.Code, tt.want, w.Body)
			}
			canceled := len(f.cancels.reasons) > 0
			if canceled != (tt.want == http.StatusAccepted) {
				t.Errorf("cancel called = %v, want %v", canceled, tt.want == http.StatusAccepted)
			}
		})
	}
}

func TestCSRFTokenOfOtherSessionRejected(t *testing.T) {
	f := newAuthServer(t)
	c, _ := f.session(t, "dora", deployerPassword)
	_, otherCSRF := f.session(t, "dora", deployerPassword)
	w := f.do(t, request{method: http.MethodPost, path: fmt.Sprintf("/api/runs/%d/cancel", f.runID), cookie: c,
		header: map[string]string{"X-CSRF-Token": otherCSRF}})
	if w.Code != http.StatusForbidden {
		t.Errorf("CSRF token of another session: status = %d, want 403", w.Code)
	}
}

func TestAccessRules(t *testing.T) {
	f := newAuthServer(t)
	viewer, viewerCSRF := f.session(t, "alice", viewerPassword)
	deployer, deployerCSRF := f.session(t, "dora", deployerPassword)
	cancel := fmt.Sprintf("/api/runs/%d/cancel", f.runID)
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

	tests := []struct {
		name string
		rq   request
		want int
	}{
		{"health open", request{method: http.MethodGet, path: "/healthz"}, http.StatusOK},
		{"webhook open", request{method: http.MethodPost, path: "/hooks/github"}, http.StatusAccepted},
		{"login open", request{method: http.MethodGet, path: "/login"}, http.StatusOK},
		{"page without session", request{method: http.MethodGet, path: "/runs/1"}, http.StatusSeeOther},
		{"API without session", request{method: http.MethodGet, path: "/api/runs"}, http.StatusUnauthorized},
		{"POST without session", request{method: http.MethodPost, path: cancel}, http.StatusUnauthorized},
		{"viewer reads API", request{method: http.MethodGet, path: "/api/runs", cookie: viewer}, http.StatusOK},
		{"viewer cancels", request{method: http.MethodPost, path: cancel, cookie: viewer,
			header: map[string]string{"X-CSRF-Token": viewerCSRF}}, http.StatusForbidden},
		{"deployer cancels", request{method: http.MethodPost, path: cancel, cookie: deployer,
			header: map[string]string{"X-CSRF-Token": deployerCSRF}}, http.StatusAccepted},
		{"viewer token reads", request{method: http.MethodGet, path: "/api/runs", header: bearer(f.tokens[RoleViewer])}, http.StatusOK},
		{"viewer token cancels", request{method: http.MethodPost, path: cancel, header: bearer(f.tokens[RoleViewer])}, http.StatusForbidden},
		{"deployer token cancels without CSRF", request{method: http.MethodPost, path: cancel, header: bearer(f.tokens[RoleDeployer])}, http.StatusAccepted},
		{"env token cancels", request{method: http.MethodPost, path: cancel, header: bearer(envToken)}, http.StatusAccepted},
		{"wrong token", request{method: http.MethodGet, path: "/api/runs", header: bearer("quai_wrong")}, http.StatusUnauthorized},
		{"wrong token beside a session", request{method: http.MethodGet, path: "/api/runs", cookie: viewer, header: bearer("quai_wrong")}, http.StatusUnauthorized},
		{"basic auth", request{method: http.MethodGet, path: "/api/runs", header: map[string]string{"Authorization": "Basic YTpi"}}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.logs.Reset()
			w := f.do(t, tt.rq)
			if w.Code != tt.want {
				t.Errorf("%s %s = %d, want %d; body %s", tt.rq.method, tt.rq.path, w.Code, tt.want, w.Body)
			}
			lines := strings.Count(f.logs.String(), "request rejected")
			if rejected := w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden ||
				(w.Code == http.StatusSeeOther && tt.rq.cookie == nil); rejected != (lines == 1) {
				t.Errorf("rejected = %v but %d rejection log lines:\n%s", rejected, lines, f.logs)
			}
			for _, tok := range f.tokens {
				if strings.Contains(f.logs.String(), tok) {
					t.Errorf("log contains an API token:\n%s", f.logs)
				}
			}
		})
	}
}

func TestUnauthenticatedPageRedirectsToLogin(t *testing.T) {
	f := newAuthServer(t)
	w := f.do(t, request{method: http.MethodGet, path: "/runs/1?tail=1"})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("status = %d, want 303", w.Code)
	}
	if loc, want := w.Header().Get("Location"), "/login?next="+url.QueryEscape("/runs/1?tail=1"); loc != want {
		t.Errorf("Location = %q, want %q", loc, want)
	}
}

func TestCancelRecordsUser(t *testing.T) {
	f := newAuthServer(t)
	w := f.do(t, request{method: http.MethodPost, path: fmt.Sprintf("/api/runs/%d/cancel", f.runID),
		header: map[string]string{"Authorization": "Bearer " + f.tokens[RoleDeployer]}})
	if w.Code != http.StatusAccepted {
		t.Fatalf("cancel = %d, want 202; body %s", w.Code, w.Body)
	}
	if want := "canceled by token ci-deployer"; len(f.cancels.reasons) != 1 || f.cancels.reasons[0] != want {
		t.Errorf("cancel reasons = %q, want [%q]", f.cancels.reasons, want)
	}
}

func TestCancelErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		path string
		want int
		text string
	}{
		{"deploying", runner.ErrDeploying, "", http.StatusConflict, "deploy finishes first"},
		{"finished", runner.ErrRunFinished, "", http.StatusConflict, "already finished"},
		{"not found in runner", store.ErrRunNotFound, "", http.StatusNotFound, "not found"},
		{"unknown run", nil, "/api/runs/999/cancel", http.StatusNotFound, "run 999 not found"},
		{"bad id", nil, "/api/runs/abc/cancel", http.StatusBadRequest, "invalid run id"},
		{"other error", errors.New("disk on fire"), "", http.StatusInternalServerError, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAuthServer(t)
			f.cancels.err = tt.err
			path := tt.path
			if path == "" {
				path = fmt.Sprintf("/api/runs/%d/cancel", f.runID)
			}
			w := f.do(t, request{method: http.MethodPost, path: path, header: map[string]string{"Authorization": "Bearer " + envToken}})
			if w.Code != tt.want {
				t.Errorf("status = %d, want %d; body %s", w.Code, tt.want, w.Body)
			}
			if !strings.Contains(w.Body.String(), tt.text) {
				t.Errorf("body %q does not contain %q", w.Body, tt.text)
			}
		})
	}
}

func TestSafeNext(t *testing.T) {
	tests := []struct {
		next, want string
	}{
		{"", "/"},
		{"/", "/"},
		{"/runs/7", "/runs/7"},
		{"/runs/7?tail=1#end", "/runs/7?tail=1#end"},
		{"//evil.example", "/"},
		{"//evil.example/path", "/"},
		{`/\evil.example`, "/"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"/\r\nSet-Cookie: x=1", "/"},
	}
	for _, tt := range tests {
		if got := safeNext(tt.next); got != tt.want {
			t.Errorf("safeNext(%q) = %q, want %q", tt.next, got, tt.want)
		}
	}
}

func TestLoginRedirectsOnlyLocally(t *testing.T) {
	f := newAuthServer(t)
	form := url.Values{"username": {"alice"}, "password": {viewerPassword}, "next": {"//evil.example/x"}}
	w := f.do(t, request{method: http.MethodPost, path: "/login", form: form})
	if loc := w.Header().Get("Location"); loc != "/" {
		t.Errorf("login with next=//evil.example/x redirected to %q, want /", loc)
	}
}

func TestNewRejectsIncompleteAuth(t *testing.T) {
	tests := []struct {
		name string
		auth AuthConfig
	}{
		{"nothing", AuthConfig{}},
		{"no key", AuthConfig{Accounts: &Accounts{}}},
		{"short key", AuthConfig{Accounts: &Accounts{}, SessionKey: []byte("short")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(Config{Auth: tt.auth, Log: slog.New(slog.DiscardHandler)}); err == nil {
				t.Error("New accepted an incomplete AuthConfig")
			}
		})
	}
}

func TestParsePrefixes(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"127.0.0.1/32,::1/128", "[127.0.0.1/32 ::1/128]", false},
		{" 10.1.2.3 , 192.168.0.0/16", "[10.1.2.3/32 192.168.0.0/16]", false},
		{"10.1.2.3/8", "[10.0.0.0/8]", false},
		{"", "[]", false},
		{"localhost", "", true},
		{"10.0.0.0/33", "", true},
	}
	for _, tt := range tests {
		got, err := ParsePrefixes(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParsePrefixes(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && fmt.Sprint(got) != tt.want {
			t.Errorf("ParsePrefixes(%q) = %v, want %s", tt.in, got, tt.want)
		}
	}
}

func TestLoginRateLimitIgnoresForgedForwardedFor(t *testing.T) {
	f := newAuthServer(t)
	for i := range loginFailures {
		rq := request{remote: "203.0.113.7:1000", header: map[string]string{"X-Forwarded-For": fmt.Sprintf("198.51.100.%d", i)}}
		f.login(t, fmt.Sprintf("nobody%d", i), "wrong-password", rq)
	}
	rq := request{remote: "203.0.113.7:1000", header: map[string]string{"X-Forwarded-For": "198.51.100.200"}}
	if w, _ := f.login(t, "dora", deployerPassword, rq); w.Code != http.StatusTooManyRequests {
		t.Errorf("untrusted peer with a new X-Forwarded-For returned %d, want 429", w.Code)
	}
}
