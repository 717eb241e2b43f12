package image

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/moby/api/types/registry"

	cerrdefs "github.com/containerd/errdefs"
)

// A regSession is one operation's access to one registry (a push, a
// login): HTTP through the daemon's transport, with the credentials
// attached to a request only when it goes to the registry itself — the
// same host and port, over https or, for a registry configured insecure,
// plain http. A redirect or a Location header pointing elsewhere (blob
// storage, another registry) gets no credentials. Bearer tokens come from
// the token service the registry's challenge names, through
// go-containerregistry's token exchange, and are kept in the Service's
// tokenCache until they expire, shared by later operations with the same
// credentials and scopes. A 401 from the registry refreshes the token once
// and repeats the request; a second 401 is the caller's to report.
//
// A regSession is safe for concurrent use (layers upload in parallel).
type regSession struct {
	reg      name.Registry
	host     string // host[:port], as in image references
	insecure bool   // plain http allowed
	scheme   string // what the registry answered on: "https" or "http"
	auth     *registry.AuthConfig
	base     http.RoundTripper
	tokens   *tokenCache
	ua       string

	challenge challenge // from GET /v2/

	// Lock order: fetchMu, then mu.
	fetchMu sync.Mutex // held while a token is fetched
	mu      sync.Mutex
	scopes  []string // the scopes tokens are asked for
	token   string   // the current bearer token

	client *http.Client
}

// challenge is a parsed WWW-Authenticate header.
type challenge struct {
	scheme string            // "basic", "bearer" or "" (none)
	params map[string]string // realm, service, scope ...
}

// parseChallenges parses the WWW-Authenticate headers of resp (RFC 7235:
// `Bearer realm="...",service="...",scope="a b"`).
func parseChallenges(h http.Header) []challenge {
	var out []challenge
	for _, v := range h.Values("WWW-Authenticate") {
		out = append(out, parseChallenge(v))
	}
	return out
}

func parseChallenge(v string) challenge {
	v = strings.TrimSpace(v)
	scheme, rest, _ := strings.Cut(v, " ")
	c := challenge{scheme: strings.ToLower(scheme), params: map[string]string{}}
	for rest = strings.TrimSpace(rest); rest != ""; {
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		key = strings.ToLower(strings.TrimSpace(key))
		after = strings.TrimLeft(after, " ")
		var val string
		if strings.HasPrefix(after, `"`) {
			// A quoted string: backslash escapes, ends at the next bare quote.
			var b strings.Builder
			i := 1
			for ; i < len(after); i++ {
				ch := after[i]
				if ch == '\\' && i+1 < len(after) {
					i++
					b.WriteByte(after[i])
					continue
				}
				if ch == '"' {
					break
				}
				b.WriteByte(ch)
			}
			val = b.String()
			if i < len(after) {
				i++
			}
			after = after[i:]
		} else {
			val, after, _ = strings.Cut(after, ",")
			val = strings.TrimSpace(val)
			after = "," + after
		}
		c.params[key] = val
		_, rest, _ = strings.Cut(after, ",")
		rest = strings.TrimSpace(rest)
	}
	return c
}

// pick chooses the challenge to answer: Bearer over Basic, as Docker does.
func pickChallenge(cs []challenge) challenge {
	for _, want := range []string{"bearer", "basic"} {
		for _, c := range cs {
			if c.scheme == want {
				return c
			}
		}
	}
	if len(cs) > 0 {
		return cs[0]
	}
	return challenge{}
}

// tokenCache keeps bearer tokens until they expire. A key names the token
// service, the scopes and a digest of the credentials (never the
// credentials themselves).
type tokenCache struct {
	mu sync.Mutex
	m  map[string]cachedToken
}

type cachedToken struct {
	token   string
	expires time.Time
}

// maxCachedTokens bounds the cache; expired entries go first.
const maxCachedTokens = 256

func (c *tokenCache) get(key string, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[key]
	if !ok || !now.Before(t.expires) {
		return "", false
	}
	return t.token, true
}

func (c *tokenCache) put(key, token string, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cachedToken{}
	}
	if len(c.m) >= maxCachedTokens {
		now := time.Now()
		for k, t := range c.m {
			if !now.Before(t.expires) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < maxCachedTokens {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = cachedToken{token: token, expires: expires}
}

func (c *tokenCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}

// defaultTokenLifetime is what the token specification says to assume
// when a token service gives no expires_in.
const defaultTokenLifetime = 60 * time.Second

// registryHost names the registry a reference's domain is served by.
func registryHost(domain string) string {
	if domain == "docker.io" || domain == "index.docker.io" {
		return name.DefaultRegistry
	}
	return domain
}

// openSession pings host's /v2/ (https first; plain http only for an
// insecure registry) and returns a session ready for requests with the
// given token scopes. Errors are the registry's: unreachable, or not a
// registry.
func (s *Service) openSession(ctx context.Context, host string, auth *registry.AuthConfig, scopes []string) (*regSession, error) {
	insecure := s.registryConfig().isInsecure(host)
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	rs := &regSession{
		reg:      reg,
		host:     host,
		insecure: insecure,
		auth:     auth,
		base:     s.transport,
		tokens:   &s.tokens,
		ua:       "berth/" + s.version,
		scopes:   append([]string(nil), scopes...),
	}
	rs.client = &http.Client{Transport: rs, CheckRedirect: rs.checkRedirect}
	if err := rs.ping(ctx); err != nil {
		return nil, err
	}
	return rs, nil
}

// ping learns the registry's scheme and challenge from GET /v2/, as
// Docker does: https first, then (insecure registries only) http.
func (rs *regSession) ping(ctx context.Context) error {
	schemes := []string{"https"}
	if rs.insecure {
		schemes = append(schemes, "http")
	}
	var lastErr error
	for _, scheme := range schemes {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+rs.host+"/v2/", nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", rs.ua)
		resp, err := (&http.Client{Transport: rs.base, CheckRedirect: rs.checkRedirect}).Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			rs.scheme = resp.Request.URL.Scheme
			return nil
		case http.StatusUnauthorized:
			rs.scheme = resp.Request.URL.Scheme
			rs.challenge = pickChallenge(parseChallenges(resp.Header))
			return nil
		default:
			lastErr = fmt.Errorf("GET %s: unexpected status: %s", req.URL, resp.Status)
		}
	}
	return lastErr
}

// url returns the registry URL of path ("/v2/...").
func (rs *regSession) url(path string) string {
	return rs.scheme + "://" + rs.host + path
}

// owns reports whether a request to u may carry this registry's
// credentials: the registry's own host and port, over https or (for an
// insecure registry) http.
func (rs *regSession) owns(u *url.URL) bool {
	switch u.Scheme {
	case "https":
	case "http":
		if !rs.insecure {
			return false
		}
	default:
		return false
	}
	return canonicalHostPort(u.Host, u.Scheme) == canonicalHostPort(rs.host, u.Scheme)
}

func canonicalHostPort(host, scheme string) string {
	h, p, err := net.SplitHostPort(host)
	if err != nil {
		h = strings.Trim(host, "[]")
		p = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return net.JoinHostPort(strings.ToLower(h), p)
}

// allowedTarget refuses to follow a registry to a private or loopback
// address other than its own (a redirect or an upload Location aimed at a
// service on the daemon's host or network), unless the registry itself
// lives on such an address.
func (rs *regSession) allowedTarget(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("registry %s sent berth to %q: only http and https are followed", rs.host, u.Redacted())
	}
	if rs.owns(u) || isLocalAddress(hostOnly(rs.host)) {
		return nil
	}
	if isLocalAddress(u.Hostname()) {
		return fmt.Errorf("registry %s sent berth to %s, a private or loopback address: refused", rs.host, u.Host)
	}
	return nil
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// isLocalAddress reports whether host is an IP literal in a loopback,
// private, link-local or unspecified range, or "localhost".
func isLocalAddress(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return false
	}
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified()
}

func (rs *regSession) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return rs.allowedTarget(req.URL)
}

// credentialKey is a digest of the credentials, for the token cache.
func credentialKey(ac *registry.AuthConfig) string {
	if ac == nil {
		return "anonymous"
	}
	b, _ := json.Marshal([]string{ac.Username, ac.Password, ac.Auth, ac.IdentityToken, ac.RegistryToken})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (rs *regSession) tokenKey(scopes []string) string {
	sorted := slices.Clone(scopes)
	slices.Sort(sorted)
	return strings.Join([]string{rs.challenge.params["realm"], rs.challenge.params["service"], strings.Join(sorted, " "), credentialKey(rs.auth)}, "\x00")
}

// bearerToken returns a token for the session's scopes: the session's
// own, the cached one, or a new one from the token service. stale, when
// set, is a token the registry refused: it is not used again.
func (rs *regSession) bearerToken(ctx context.Context, stale string) (string, error) {
	if rs.auth != nil && rs.auth.RegistryToken != "" {
		return rs.auth.RegistryToken, nil
	}
	rs.mu.Lock()
	current := rs.token
	rs.mu.Unlock()
	if current != "" && current != stale {
		return current, nil
	}
	// One exchange at a time: parallel uploads wait for it and share it.
	rs.fetchMu.Lock()
	defer rs.fetchMu.Unlock()
	rs.mu.Lock()
	current = rs.token
	scopes := slices.Clone(rs.scopes)
	rs.mu.Unlock()
	if current != "" && current != stale {
		return current, nil // another request got one meanwhile
	}
	key := rs.tokenKey(scopes)
	if tok, ok := rs.tokens.get(key, time.Now()); ok && tok != stale {
		rs.mu.Lock()
		rs.token = tok
		rs.mu.Unlock()
		return tok, nil
	}
	rs.tokens.drop(key)
	start := time.Now()
	tok, err := rs.fetchToken(ctx, scopes, false)
	if err != nil {
		return "", err
	}
	t := tok.token()
	life := defaultTokenLifetime
	if tok.ExpiresIn > 0 {
		life = time.Duration(tok.ExpiresIn) * time.Second
	}
	// Renew a little early: a token must not expire in flight.
	rs.tokens.put(key, t, start.Add(life-life/10))
	rs.mu.Lock()
	rs.token = t
	rs.mu.Unlock()
	return t, nil
}

// addScope asks for scope in the next token (a registry's 401 named it).
func (rs *regSession) addScope(scope string) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	added := false
	for _, sc := range strings.Fields(scope) {
		if !slices.Contains(rs.scopes, sc) {
			rs.scopes = append(rs.scopes, sc)
			added = true
		}
	}
	if added {
		rs.token = ""
	}
	return added
}

// authorize sets req's Authorization header if req goes to the registry,
// and returns the bearer token used.
func (rs *regSession) authorize(req *http.Request, stale string) (string, error) {
	req.Header.Del("Authorization")
	if !rs.owns(req.URL) {
		return "", nil
	}
	switch rs.challenge.scheme {
	case "bearer":
		tok, err := rs.bearerToken(req.Context(), stale)
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		return tok, nil
	case "basic":
		if hdr := basicHeader(rs.auth); hdr != "" {
			req.Header.Set("Authorization", hdr)
		}
	}
	return "", nil
}

func basicHeader(ac *registry.AuthConfig) string {
	if ac == nil {
		return ""
	}
	user, pass := ac.Username, ac.Password
	if user == "" && pass == "" && ac.Auth != "" {
		if b, err := base64.StdEncoding.DecodeString(ac.Auth); err == nil {
			user, pass, _ = strings.Cut(string(b), ":")
		}
	}
	if user == "" && pass == "" {
		return ""
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// RoundTrip sends req with the registry's credentials where they belong;
// on a 401 from the registry it gets a new token once and sends req again
// when its body can be replayed.
func (rs *regSession) RoundTrip(in *http.Request) (*http.Response, error) {
	req := in.Clone(in.Context())
	req.Header.Set("User-Agent", rs.ua)
	used, err := rs.authorize(req, "")
	if err != nil {
		return nil, err
	}
	resp, err := rs.base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !rs.owns(req.URL) {
		return resp, err
	}
	if used == "" || (rs.auth != nil && rs.auth.RegistryToken != "") {
		return resp, nil
	}
	if in.Body != nil && in.Body != http.NoBody && in.GetBody == nil {
		return resp, nil
	}
	c := pickChallenge(parseChallenges(resp.Header))
	if sc := c.params["scope"]; sc != "" {
		rs.addScope(sc)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	retry := in.Clone(in.Context())
	if in.GetBody != nil {
		body, err := in.GetBody()
		if err != nil {
			return nil, err
		}
		retry.Body = body
	}
	retry.Header.Set("User-Agent", rs.ua)
	if _, err := rs.authorize(retry, used); err != nil {
		return nil, err
	}
	return rs.base.RoundTrip(retry)
}

// do sends req through the session's client (credentials, redirects).
func (rs *regSession) do(req *http.Request) (*http.Response, error) {
	return rs.client.Do(req)
}

// tokenResponse is a token service's answer (Docker's token
// authentication specification, and its OAuth2 variant).
type tokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
}

func (t *tokenResponse) token() string {
	if t.AccessToken != "" {
		return t.AccessToken
	}
	return t.Token
}

// maxTokenResponse bounds what is read from a token service.
const maxTokenResponse = 1 << 20

// tokenRealmAllowed says whether the session's credentials may go to a
// token service at realm (see the package-level tokenRealmAllowed).
func (rs *regSession) tokenRealmAllowed(realm *url.URL) error {
	return tokenRealmAllowed(rs.host, rs.insecure, realm)
}

// tokenRealmAllowed is berth's one policy for credentials and token
// services (push and login through regSession, pull through
// credentialGuard): credentials for registry (host:port) go to a token
// service at realm over https, or over plain http only to the registry's
// own host (an insecure registry serving its tokens itself). Anything
// else would hand a password to another machine in the clear. dockerd
// follows any realm the registry names; berth does not, on purpose.
func tokenRealmAllowed(registry string, insecure bool, realm *url.URL) error {
	switch realm.Scheme {
	case "https":
		return nil
	case "http":
		if insecure && strings.EqualFold(realm.Hostname(), hostOnly(registry)) {
			return nil
		}
		return fmt.Errorf("refusing to send credentials to the token service %s over plain http: it is not registry %s's own host", realm.Redacted(), registry)
	}
	return fmt.Errorf("token service %q: only https (or http on an insecure registry's own host) is used", realm.Redacted())
}

// fetchToken asks the token service named by the registry's challenge for
// a token with scopes. login asks, as docker login does, for an offline
// token (a refresh token that stands in for the password afterwards).
// Failures are worded as Docker words them ("unauthorized: incorrect
// username or password").
func (rs *regSession) fetchToken(ctx context.Context, scopes []string, login bool) (*tokenResponse, error) {
	realm, err := url.Parse(rs.challenge.params["realm"])
	if err != nil || realm.Host == "" {
		return nil, fmt.Errorf("registry %s: bad token realm %q", rs.host, rs.challenge.params["realm"])
	}
	ac := rs.auth
	hasCreds := ac != nil && (basicHeader(ac) != "" || ac.IdentityToken != "")
	if hasCreds {
		if err := rs.tokenRealmAllowed(realm); err != nil {
			return nil, cerrdefs.ErrPermissionDenied.WithMessage(err.Error())
		}
	}
	client := &http.Client{Transport: rs.base, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		if hasCreds && !strings.EqualFold(req.URL.Host, realm.Host) {
			return fmt.Errorf("token service %s redirected to another host (%s): not following with credentials", realm.Host, req.URL.Host)
		}
		return nil
	}}
	var req *http.Request
	if ac != nil && ac.IdentityToken != "" {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ac.IdentityToken}, "client_id": {"berth"}}
		if svc := rs.challenge.params["service"]; svc != "" {
			form.Set("service", svc)
		}
		if len(scopes) > 0 {
			form.Set("scope", strings.Join(scopes, " "))
		}
		if login {
			form.Set("access_type", "offline")
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, realm.String(), strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		q := realm.Query()
		if svc := rs.challenge.params["service"]; svc != "" {
			q.Set("service", svc)
		}
		for _, sc := range scopes {
			q.Add("scope", sc)
		}
		if ac != nil && ac.Username != "" {
			q.Set("account", ac.Username)
		}
		if login {
			q.Set("client_id", "berth")
			q.Set("offline_token", "true")
		}
		u := *realm
		u.RawQuery = q.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, err
		}
		if hdr := basicHeader(ac); hdr != "" {
			req.Header.Set("Authorization", hdr)
		}
	}
	req.Header.Set("User-Agent", rs.ua)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, tokenError(resp.StatusCode, body)
	}
	var tok tokenResponse
	if err := json.Unmarshal(body, &tok); err != nil {
		return nil, fmt.Errorf("token service %s: %w", realm.Host, err)
	}
	if tok.token() == "" {
		return nil, fmt.Errorf("token service %s answered without a token", realm.Host)
	}
	return &tok, nil
}

// tokenError words a token service's refusal as Docker does: a "details"
// field (Docker Hub's), else the registry error codes, else the status.
func tokenError(status int, body []byte) error {
	class := statusClass(status)
	var e struct {
		Details string `json:"details"`
		Errors  []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	_ = json.Unmarshal(body, &e)
	switch {
	case e.Details != "" && status == http.StatusUnauthorized:
		return &registryStatusError{status: status, msg: "unauthorized: " + e.Details, class: class}
	case e.Details != "":
		return &registryStatusError{status: status, msg: e.Details, class: class}
	case len(e.Errors) > 0:
		var msgs []string
		for _, x := range e.Errors {
			msgs = append(msgs, strings.ToLower(strings.ReplaceAll(x.Code, "_", " "))+": "+x.Message)
		}
		return &registryStatusError{status: status, msg: strings.Join(msgs, "; "), class: class}
	case status == http.StatusUnauthorized:
		return &registryStatusError{status: status, msg: "unauthorized: authentication required", class: class}
	}
	return &registryStatusError{status: status, msg: fmt.Sprintf("token service answered %d %s", status, http.StatusText(status)), class: class}
}
