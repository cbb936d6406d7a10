package webui

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Login rate limit: after loginFailures failed logins within loginWindow
// from one client address or for one user name, further attempts get 429
// until the oldest failure leaves the window.
const (
	loginFailures = 5
	loginWindow   = time.Minute
)

// loginLimiter counts failed logins per key. It is safe for concurrent
// use.
type loginLimiter struct {
	max    int
	window time.Duration

	mu       sync.Mutex
	failures map[string][]time.Time
}

func newLoginLimiter(max int, window time.Duration) *loginLimiter {
	return &loginLimiter{max: max, window: window, failures: map[string][]time.Time{}}
}

// retryAfter returns how long key must wait, 0 when it may try now.
func (l *loginLimiter) retryAfter(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	recent := l.recent(key, now)
	if len(recent) < l.max {
		return 0
	}
	return recent[0].Add(l.window).Sub(now)
}

// fail records a failed login for each key.
func (l *loginLimiter) fail(now time.Time, keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Pruning every key on a failure keeps the map as large as the keys
	// that failed within the window, so failures cannot grow it for ever.
	for k := range l.failures {
		l.recent(k, now)
	}
	for _, k := range keys {
		l.failures[k] = append(l.recent(k, now), now)
	}
}

// recent drops failures older than the window; l.mu must be held.
func (l *loginLimiter) recent(key string, now time.Time) []time.Time {
	times := l.failures[key]
	i := 0
	for i < len(times) && now.Sub(times[i]) >= l.window {
		i++
	}
	times = times[i:]
	if len(times) == 0 {
		delete(l.failures, key)
		return nil
	}
	l.failures[key] = times
	return times
}

// loginPage serves GET /login.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) error {
	next := safeNext(r.URL.Query().Get("next"))
	if p := caller(r); p != nil && p.session != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	return s.renderLogin(w, http.StatusOK, next, "", "")
}

// login serves POST /login: it checks the rate limits, then the password,
// and on success sets the session cookie and redirects to next.
// NOTE: the login form carries no CSRF token because there is no session
// yet; SameSite=Lax cookies keep other sites from using a session, but a
// forged login into an attacker's account remains possible.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		return &httpError{status: http.StatusBadRequest, public: "invalid login form"}
	}
	name := strings.TrimSpace(r.PostFormValue("username"))
	password := r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"))
	if s.auth.cfg.Disabled {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}

	now := s.auth.cfg.Now()
	client := "client " + s.clientIP(r).String()
	user := "user " + name
	wait := max(s.auth.limiter.retryAfter(client, now), s.auth.limiter.retryAfter(user, now))
	if wait > 0 {
		s.logRejection(r, name, "login rate limit reached")
		secs := int(wait.Round(time.Second) / time.Second)
		w.Header().Set("Retry-After", fmt.Sprint(max(secs, 1)))
		msg := fmt.Sprintf("Too many failed logins. Wait %d seconds and try again.", max(secs, 1))
		return s.renderLogin(w, http.StatusTooManyRequests, next, name, msg)
	}

	u, ok := s.auth.cfg.Accounts.authenticate(name, []byte(password))
	if !ok {
		s.auth.limiter.fail(now, client, user)
		s.logRejection(r, name, "wrong user name or password")
		return s.renderLogin(w, http.StatusUnauthorized, next, name, "Wrong user name or password.")
	}
	sess, value, err := s.auth.sessions.create(u.Name, now)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    value,
		Path:     "/",
		Expires:  time.Unix(sess.Expires, 0),
		HttpOnly: true,
		Secure:   s.secureRequest(r),
		SameSite: http.SameSiteLaxMode,
	})
	s.cfg.Log.Info("user logged in", "user", u.Name, "role", string(u.Role), "client", s.clientIP(r).String())
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

// logoutPage serves GET /logout: a form that posts the logout with the
// session's CSRF token, so the header can link to it without a script.
func (s *Server) logoutPage(w http.ResponseWriter, r *http.Request) error {
	user := ""
	if p := caller(r); p != nil {
		user = p.name
	}
	return s.render(w, "logout.html", map[string]any{"CSRF": s.csrf(r), "User": user, "Version": s.cfg.Version})
}

// logout serves POST /logout; the middleware has checked the session and
// its CSRF token.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	if p := caller(r); p != nil && p.session != nil {
		s.auth.sessions.revoke(*p.session, s.auth.cfg.Now())
		s.cfg.Log.Info("user logged out", "user", p.name)
	}
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   s.secureRequest(r),
		SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

func (s *Server) renderLogin(w http.ResponseWriter, status int, next, name, message string) error {
	var buf bytesBuffer
	err := s.pages.ExecuteTemplate(&buf, "login.html", map[string]any{
		"Next":     next,
		"Username": name,
		"Error":    message,
		"Version":  s.cfg.Version,
	})
	if err != nil {
		return fmt.Errorf("rendering login.html: %w", err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err = w.Write(buf.Bytes())
	return err
}

// safeNext returns next when it is a path on this site, else "/". Paths
// starting with "//" or "/\" are rejected because browsers read them as
// another host.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.HasPrefix(next, `/\`) {
		return "/"
	}
	if strings.ContainsAny(next, "\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}
