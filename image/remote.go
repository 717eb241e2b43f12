package image

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/moby/moby/api/types/registry"
)

// RegistryConfig is the daemon's registry settings. It can be replaced at
// run time (SIGHUP reload) through Service.SetRegistryConfig, under regMu.
type RegistryConfig struct {
	// Mirrors for Docker Hub, tried in order before Docker Hub itself.
	Mirrors []string
	// HostMirrors are mirrors for other registries: host → mirror URLs.
	// Docker can only mirror Docker Hub; berth can mirror any registry.
	HostMirrors map[string][]string
	// Insecure lists registries (host[:port] or CIDR) reached over plain
	// http. 127.0.0.0/8 is always insecure, as in Docker.
	Insecure []string
}

// IndexConfigs describes the registries for /info, as Docker does.
func (c RegistryConfig) ServiceConfig() *registry.ServiceConfig {
	sc := &registry.ServiceConfig{
		IndexConfigs: map[string]*registry.IndexInfo{},
		Mirrors:      []string{},
	}
	for _, m := range c.Mirrors {
		sc.Mirrors = append(sc.Mirrors, normalizeMirror(m))
	}
	sc.IndexConfigs["docker.io"] = &registry.IndexInfo{Name: "docker.io", Mirrors: sc.Mirrors, Secure: true, Official: true}
	sc.InsecureRegistryCIDRs = append(sc.InsecureRegistryCIDRs, mustPrefix("127.0.0.0/8"))
	for _, in := range c.Insecure {
		if _, n, err := net.ParseCIDR(in); err == nil {
			sc.InsecureRegistryCIDRs = append(sc.InsecureRegistryCIDRs, mustPrefix(n.String()))
			continue
		}
		sc.IndexConfigs[in] = &registry.IndexInfo{Name: in, Mirrors: []string{}, Secure: false}
	}
	return sc
}

func normalizeMirror(m string) string {
	if !strings.Contains(m, "://") {
		m = "https://" + m
	}
	if !strings.HasSuffix(m, "/") {
		m += "/"
	}
	return m
}

// isInsecure reports whether host is reached over plain http.
func (c RegistryConfig) isInsecure(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	if ip != nil && ip.IsLoopback() {
		return true
	}
	for _, in := range c.Insecure {
		if in == host || in == h {
			return true
		}
		if _, n, err := net.ParseCIDR(in); err == nil && ip != nil && n.Contains(ip) {
			return true
		}
	}
	return false
}

// endpoint is one place to fetch a repository from.
type endpoint struct {
	repo   name.Repository
	mirror bool
}

// endpoints lists where to look for ref's repository: mirrors first.
func (s *Service) endpoints(ref reference.Named) ([]endpoint, error) {
	cfg := s.registryConfig()
	domain := reference.Domain(ref)
	path := reference.Path(ref)
	var mirrors []string
	if domain == "docker.io" {
		mirrors = cfg.Mirrors
	} else {
		mirrors = cfg.HostMirrors[domain]
	}
	var out []endpoint
	for _, m := range mirrors {
		u, err := url.Parse(normalizeMirror(m))
		if err != nil || u.Host == "" {
			continue
		}
		var opts []name.Option
		if u.Scheme == "http" {
			opts = append(opts, name.Insecure)
		}
		prefix := strings.Trim(u.Path, "/")
		p := path
		if prefix != "" {
			p = prefix + "/" + path
		}
		repo, err := name.NewRepository(u.Host+"/"+p, opts...)
		if err != nil {
			continue
		}
		out = append(out, endpoint{repo: repo, mirror: true})
	}
	host := domain
	if host == "docker.io" {
		host = name.DefaultRegistry
	}
	var opts []name.Option
	if cfg.isInsecure(domain) {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(host+"/"+path, opts...)
	if err != nil {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	return append(out, endpoint{repo: repo}), nil
}

// DecodeAuth decodes an X-Registry-Auth header: base64 (URL-safe or
// standard, padded or not) of a JSON AuthConfig. Empty means anonymous.
func DecodeAuth(h string) (*registry.AuthConfig, error) {
	if h == "" {
		return nil, nil
	}
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.StdEncoding, base64.RawURLEncoding, base64.RawStdEncoding} {
		if raw, err = enc.DecodeString(h); err == nil {
			break
		}
	}
	if err != nil {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("invalid X-Registry-Auth header: " + err.Error())
	}
	var ac registry.AuthConfig
	if err := json.Unmarshal(raw, &ac); err != nil {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("invalid X-Registry-Auth header: " + err.Error())
	}
	if ac == (registry.AuthConfig{}) {
		return nil, nil
	}
	return &ac, nil
}

func authenticator(ac *registry.AuthConfig) authn.Authenticator {
	if ac == nil {
		return authn.Anonymous
	}
	cfg := authn.AuthConfig{
		Username:      ac.Username,
		Password:      ac.Password,
		Auth:          ac.Auth,
		IdentityToken: ac.IdentityToken,
		RegistryToken: ac.RegistryToken,
	}
	if cfg.Username == "" && cfg.Password == "" && cfg.Auth != "" {
		if b, err := base64.StdEncoding.DecodeString(cfg.Auth); err == nil {
			if u, p, ok := strings.Cut(string(b), ":"); ok {
				cfg.Username, cfg.Password, cfg.Auth = u, p, ""
			}
		}
	}
	return authn.FromConfig(cfg)
}

// remoteOptions are the options every registry call to reg uses.
func (s *Service) remoteOptions(ctx context.Context, reg name.Registry, auth authn.Authenticator) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(auth),
		remote.WithTransport(credentialGuard{inner: manifestLimit{s.transport}, registry: reg.RegistryStr(), insecure: reg.Scheme() == "http"}),
		remote.WithUserAgent("berth/" + s.version),
		remote.WithRetryBackoff(remote.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 2}),
	}
}

// credentialGuard holds go-containerregistry's requests for registry to
// berth's token policy (tokenRealmAllowed): one that would carry
// credentials (an Authorization header, or an OAuth form with a password
// or refresh token) to another host is refused unless the policy allows
// it. go-containerregistry itself sends them over plain http to any public
// realm an insecure registry names.
type credentialGuard struct {
	inner    http.RoundTripper
	registry string // host:port
	insecure bool
}

func (g credentialGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.EqualFold(req.URL.Host, g.registry) && carriesCredentials(req) {
		if err := tokenRealmAllowed(g.registry, g.insecure, req.URL); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
	}
	return g.inner.RoundTrip(req)
}

func carriesCredentials(req *http.Request) bool {
	if req.Header.Get("Authorization") != "" {
		return true
	}
	ct, _, _ := strings.Cut(req.Header.Get("Content-Type"), ";")
	return req.Method == http.MethodPost && strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded")
}

// newTransport is the HTTP transport to registries: bounded dial and
// handshake times, so an unreachable registry fails in bounded time.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
}

// classifyRegistryError gives a registry error its class and Docker's
// wording where Docker has one.
func classifyRegistryError(ref reference.Named, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusNotFound:
			for _, d := range terr.Errors {
				if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
					return cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("manifest for %s not found: manifest unknown: %s", reference.FamiliarString(ref), d.Message))
				}
			}
			return cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("manifest for %s not found: manifest unknown: manifest unknown", reference.FamiliarString(ref)))
		case http.StatusUnauthorized, http.StatusForbidden:
			// Not a 401 to the client: the docker CLI would take it as
			// its own login failing and prompt for credentials.
			return fmt.Errorf("pull access denied for %s, repository does not exist or may require 'docker login': %w", reference.FamiliarName(ref), err)
		}
	}
	return err
}

// Login checks credentials against a registry, as POST /auth does: the
// registry's /v2/ challenge, then Basic credentials on /v2/ itself, or the
// token service's verdict on them (an offline token asked for, as docker
// login asks). Errors carry Docker's wording: "login attempt to
// http://host/v2/ failed with status: 401 Unauthorized" (Basic) or `Get
// "https://host/v2/": unauthorized: incorrect username or password`
// (token). A refresh token the service hands out comes back as the
// IdentityToken, which the CLI stores instead of the password.
func (s *Service) Login(ctx context.Context, ac registry.AuthConfig) (registry.AuthResponse, error) {
	server := ac.ServerAddress
	server = strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	server = strings.TrimSuffix(server, "/")
	if server == "" || strings.HasPrefix(server, "index.docker.io") || server == "docker.io" || server == "registry-1.docker.io" {
		server = name.DefaultRegistry
	}
	server = strings.TrimSuffix(strings.TrimSuffix(server, "/v1"), "/v2")
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	rs, err := s.openSession(ctx, server, &ac, nil)
	if err != nil {
		return registry.AuthResponse{}, err
	}
	v2 := rs.url("/v2/")
	var identity string
	if rs.challenge.scheme == "bearer" && ac.RegistryToken == "" {
		tok, err := rs.fetchToken(ctx, nil, true)
		if err != nil {
			return registry.AuthResponse{}, cerrdefs.ErrUnauthenticated.WithMessage(fmt.Sprintf("Get %q: %s", v2, err))
		}
		identity = tok.RefreshToken
		rs.mu.Lock()
		rs.token = tok.token()
		rs.mu.Unlock()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v2, nil)
	if err != nil {
		return registry.AuthResponse{}, err
	}
	resp, err := rs.do(req)
	if err != nil {
		return registry.AuthResponse{}, err
	}
	drain(resp)
	if resp.StatusCode != http.StatusOK {
		msg := fmt.Sprintf("login attempt to %s failed with status: %d %s", v2, resp.StatusCode, http.StatusText(resp.StatusCode))
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return registry.AuthResponse{}, cerrdefs.ErrUnauthenticated.WithMessage(msg)
		}
		return registry.AuthResponse{}, errors.New(msg)
	}
	return registry.AuthResponse{Status: "Login Succeeded", IdentityToken: identity}, nil
}

// isUnauthorized reports whether a registry refused for lack of credentials.
func isUnauthorized(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusUnauthorized
}
