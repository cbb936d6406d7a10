package webui

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// DefaultSessionTTL is how long a login lasts when AuthConfig.SessionTTL
// is zero.
const DefaultSessionTTL = 12 * time.Hour

// AuthConfig configures who may use the server.
type AuthConfig struct {
	// Disabled serves every request as deployer "anonymous", for tests of
	// other parts only. New rejects a config that is neither Disabled nor
	// has Accounts and SessionKey.
	Disabled bool
	// Accounts are the users and API tokens; the server only reads them.
	Accounts *Accounts
	// SessionKey signs session cookies; LoadOrCreateSessionKey makes one.
	SessionKey []byte
	// SessionTTL is how long a login lasts; 0 means DefaultSessionTTL.
	SessionTTL time.Duration
	// TrustedProxies are the addresses whose X-Forwarded-Proto and
	// X-Forwarded-For headers are believed. Requests from other addresses
	// have these headers ignored.
	TrustedProxies []netip.Prefix
	// EnvToken, when not empty, is accepted as a deployer API token named
	// "QUAI_API_TOKEN", for automation that cannot edit the config file.
	EnvToken string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// ParsePrefixes parses a comma-separated list of CIDR prefixes or single
// addresses, such as the --trusted-proxies flag.
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			addr, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("invalid trusted proxy %q: want an IP address or CIDR prefix such as 10.0.0.0/8", f)
			}
			out = append(out, netip.PrefixFrom(addr, addr.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("invalid trusted proxy %q: want an IP address or CIDR prefix such as 10.0.0.0/8", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// principal is who made a request.
type principal struct {
	name string
	role Role
	// session is set when the request came with a session cookie rather
	// than a bearer token; only those requests need a CSRF token.
	session *session
}

type principalKey struct{}

// authState is the server's part that authenticates requests.
type authState struct {
	cfg      AuthConfig
	sessions *sessions
	limiter  *loginLimiter
	envHash  string
}

func newAuthState(cfg AuthConfig) (*authState, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	a := &authState{cfg: cfg, limiter: newLoginLimiter(loginFailures, loginWindow)}
	if cfg.Disabled {
		return a, nil
	}
	if cfg.Accounts == nil {
		return nil, errors.New("configuring authentication: no accounts given; set AuthConfig.Accounts or Disabled")
	}
	if len(cfg.SessionKey) < sessionKeySize {
		return nil, fmt.Errorf("configuring authentication: session key has %d bytes, want at least %d", len(cfg.SessionKey), sessionKeySize)
	}
	a.sessions = newSessions(cfg.SessionKey, cfg.SessionTTL)
	if cfg.EnvToken != "" {
		a.envHash = tokenHash(cfg.EnvToken)
	}
	return a, nil
}

// isOpen reports whether a path is served without authentication.
// Browsers fetch /favicon.ico on their own, so it is open to keep those
// requests out of the rejection log.
func isOpen(r *http.Request) bool {
	switch p := r.URL.Path; p {
	case "/hooks/github", "/healthz", "/login", "/favicon.ico":
		return true
	default:
		return strings.HasPrefix(p, "/static/")
	}
}

// authenticate is the one middleware that decides access: it identifies
// the caller, checks the role the method needs and the CSRF token of
// session requests, then passes the request on with the caller in its
// context. Open paths pass without a caller.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.auth.cfg.Disabled {
			p := &principal{name: "anonymous", role: RoleDeployer}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
			return
		}
		p, reason := s.identify(r)
		if p != nil {
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		}
		if isOpen(r) {
			next.ServeHTTP(w, r)
			return
		}
		if p == nil {
			s.rejectUnauthenticated(w, r, reason)
			return
		}

		need := RoleViewer
		safe := r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions
		if !safe && r.URL.Path != "/logout" {
			need = RoleDeployer
		}
		if !p.role.allows(need) {
			s.logRejection(r, p.name, "role "+string(p.role)+" may not "+r.Method)
			http.Error(w, fmt.Sprintf("forbidden: user %q has role %s; this request needs %s", p.name, p.role, need), http.StatusForbidden)
			return
		}
		if !safe && p.session != nil && !s.validCSRF(r, p) {
			s.logRejection(r, p.name, "missing or wrong CSRF token")
			http.Error(w, "forbidden: missing or wrong CSRF token; reload the page and try again", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// identify returns the caller of r from its bearer token or session
// cookie, or nil and why not. A bearer token that does not match is
// rejected even if a valid cookie comes along, so scripts learn of it.
func (s *Server) identify(r *http.Request) (*principal, string) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			return nil, "unsupported Authorization header"
		}
		return s.tokenPrincipal(strings.TrimSpace(token))
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, "no session cookie or bearer token"
	}
	sess, err := s.auth.sessions.verify(c.Value, s.auth.cfg.Now())
	if err != nil {
		return nil, err.Error()
	}
	u, ok := s.auth.cfg.Accounts.user(sess.User)
	if !ok {
		return nil, "session user no longer exists"
	}
	return &principal{name: u.Name, role: u.Role, session: &sess}, ""
}

func (s *Server) tokenPrincipal(token string) (*principal, string) {
	if s.auth.envHash != "" &&
		subtle.ConstantTimeCompare([]byte(tokenHash(token)), []byte(s.auth.envHash)) == 1 {
		return &principal{name: "token QUAI_API_TOKEN", role: RoleDeployer}, ""
	}
	if t, ok := s.auth.cfg.Accounts.token(token); ok {
		return &principal{name: "token " + t.Name, role: t.Role}, ""
	}
	return nil, "unknown bearer token"
}

// rejectUnauthenticated sends pages to the login form and API callers a
// 401.
func (s *Server) rejectUnauthenticated(w http.ResponseWriter, r *http.Request, reason string) {
	s.logRejection(r, "", reason)
	if strings.HasPrefix(r.URL.Path, "/api/") || r.Method != http.MethodGet {
		w.Header().Set("WWW-Authenticate", `Bearer realm="quai"`)
		http.Error(w, "unauthorized: send Authorization: Bearer <token> (create one with quai token create) or log in at /login", http.StatusUnauthorized)
		return
	}
	next := r.URL.Path
	if r.URL.RawQuery != "" {
		next += "?" + r.URL.RawQuery
	}
	http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusSeeOther)
}

// validCSRF checks the form field csrf_token or the X-CSRF-Token header
// against the session's token.
func (s *Server) validCSRF(r *http.Request, p *principal) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		// ParseMultipartForm also parses URL-encoded bodies; the body limit
		// keeps a large upload from being read only to be rejected.
		r.Body = http.MaxBytesReader(nil, r.Body, maxFormBody)
		if err := r.ParseMultipartForm(maxFormBody); err != nil && !errors.Is(err, http.ErrNotMultipart) {
			return false
		}
		got = r.PostFormValue("csrf_token")
	}
	want := s.auth.sessions.csrfToken(*p.session)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// maxFormBody bounds form bodies read for the CSRF check and login.
const maxFormBody = 64 << 10

// csrf returns the CSRF token of the request's session for templates to
// put in forms, or "" without a session.
func (s *Server) csrf(r *http.Request) string {
	p := caller(r)
	if p == nil || p.session == nil || s.auth.sessions == nil {
		return ""
	}
	return s.auth.sessions.csrfToken(*p.session)
}

// caller returns who made r, or nil on an open path without a session.
func caller(r *http.Request) *principal {
	p, _ := r.Context().Value(principalKey{}).(*principal)
	return p
}

// callerName names who made r for run records and logs: the user name or
// "token NAME", or the remote address on an open path without a session.
func callerName(r *http.Request) string {
	if p := caller(r); p != nil {
		return p.name
	}
	return "anonymous from " + r.RemoteAddr
}

// logRejection writes the one log line of a rejected request. It never
// includes credentials, the query or the body.
func (s *Server) logRejection(r *http.Request, user, reason string) {
	s.cfg.Log.Warn("request rejected", "method", r.Method, "path", r.URL.Path,
		"client", s.clientIP(r).String(), "user", user, "reason", reason)
}

// fromTrustedProxy reports whether the direct peer of r is a trusted proxy.
func (s *Server) fromTrustedProxy(r *http.Request) bool {
	return s.trusted(remoteAddr(r))
}

func (s *Server) trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range s.auth.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP returns the address of the client: the peer, or behind trusted
// proxies the right-most X-Forwarded-For address that is not a trusted
// proxy. Left-hand entries are ignored because the client can forge them.
func (s *Server) clientIP(r *http.Request) netip.Addr {
	peer := remoteAddr(r)
	if !s.trusted(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer
		}
		if !s.trusted(a) {
			return a.Unmap()
		}
	}
	return peer
}

// secureRequest reports whether the client reached us over TLS, directly
// or through a trusted proxy that sets X-Forwarded-Proto: https.
func (s *Server) secureRequest(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if !s.fromTrustedProxy(r) {
		return false
	}
	// A chain of proxies appends; the last value is the nearest proxy's.
	values := strings.Split(strings.Join(r.Header.Values("X-Forwarded-Proto"), ","), ",")
	return strings.EqualFold(strings.TrimSpace(values[len(values)-1]), "https")
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
