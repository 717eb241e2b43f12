package e2e

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Registries a test starts for itself: Debian's docker-registry in a
// temporary directory, on a free port of 127.0.0.1, stopped and removed
// when the test ends. Push tests write only to these, never to the
// shared registries of test/registry/start.sh.

const registryBin = "/usr/bin/docker-registry"

// testRegistry is a running docker-registry, maybe behind a front (an
// in-process proxy that adds a token service or redirects).
type testRegistry struct {
	Host    string // what clients use: 127.0.0.1:port
	backend string // the docker-registry itself: 127.0.0.1:port
	dir     string
	cmd     *exec.Cmd
	exited  chan struct{} // closed once docker-registry has exited
}

// stop stops the registry before the test ends (a registry gone away).
func (r *testRegistry) stop() {
	_ = r.cmd.Process.Kill()
	<-r.exited
}

// registryOpts says what kind of registry to start.
type registryOpts struct {
	htpasswd bool // Basic auth, user authUser / authPassword
	token    *tokenService
	extra    string // more YAML for the config
}

// freePort returns a port nobody listens on right now on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRegistry starts a docker-registry for this test.
func startRegistry(t *testing.T, o registryOpts) *testRegistry {
	t.Helper()
	requireEnv(t)
	if _, err := os.Stat(registryBin); err != nil {
		t.Skipf("%s is missing (apt-get install docker-registry)", registryBin)
	}
	dir := t.TempDir()
	port := freePort(t)
	r := &testRegistry{dir: dir, backend: fmt.Sprintf("127.0.0.1:%d", port)}
	r.Host = r.backend
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
  formatter: text
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: berth-e2e-not-secret
`, filepath.Join(dir, "data"), r.backend)
	if o.htpasswd {
		line, err := exec.Command("htpasswd", "-Bbn", authUser, authPassword).Output()
		if err != nil {
			t.Fatalf("htpasswd: %v", err)
		}
		pw := writeFile(t, dir, "htpasswd", bytes.TrimSpace(line))
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: basic-realm\n    path: %s\n", pw)
	}
	if o.token != nil {
		cfg += o.token.registryConfig(t, dir)
	}
	cfg += o.extra
	conf := writeFile(t, dir, "config.yml", []byte(cfg))
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(registryBin, "serve", conf)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	r.exited = exited
	go func() { _ = r.cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Logf("registry %s log:\n%s", r.backend, tail(string(b), 30))
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + r.backend + "/v2/")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("docker-registry exited:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry on %s did not answer: %v", r.backend, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r
}

// serve runs h on a new listener on addr ("127.0.0.1:0") for the test.
func serve(t *testing.T, addr string, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { _ = srv.Serve(l); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return l.Addr().String()
}

// proxyTo forwards requests to a registry at backend, keeping the Host
// header the client sent (the registry builds its Location URLs from it).
func proxyTo(backend string) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = backend
			pr.Out.Host = pr.In.Host
		},
		FlushInterval: -1,
	}
}

// registryCatalog reads what a registry holds: repository → tags.
func registryTags(t *testing.T, host, repo, basic string) []string {
	t.Helper()
	_, body, err := registryGet("GET", host, "/v2/"+repo+"/tags/list", basic)
	if err != nil {
		return nil
	}
	var tl struct {
		Tags []string `json:"tags"`
	}
	_ = json.Unmarshal(body, &tl)
	return tl.Tags
}

// ----- a token service (Docker's token authentication, JWTs signed with a
// key the registry trusts through a test-made certificate)

type tokenService struct {
	key     *rsa.PrivateKey
	certDER []byte
	service string
	issuer  string
	Realm   string // set once the front runs

	mu        sync.Mutex
	requests  []tokenRequest
	expiresIn int // seconds; 0 means 300
}

type tokenRequest struct {
	Account string
	Scopes  []string
	Auth    bool // credentials were sent
	OK      bool
}

func newTokenService(t *testing.T) *tokenService {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "berth-e2e-token-issuer"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tokenService{key: key, certDER: der, service: "berth-e2e-registry", issuer: "berth-e2e-token-issuer"}
}

func (ts *tokenService) registryConfig(t *testing.T, dir string) string {
	bundle := writeFile(t, dir, "token-ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.certDER}))
	return fmt.Sprintf("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
		ts.Realm, ts.service, ts.issuer, bundle)
}

// ServeHTTP answers GET /token as Docker's token service does: Basic
// credentials (authUser/authPassword) or none (anonymous pull only), the
// requested scopes granted (push and pull on any repository to the user).
// POST /token is Docker's OAuth2 form (grant_type=password with username,
// password and space-separated scope), what containerd's resolver (so
// BuildKit) sends when it has credentials; other grants are refused.
func (ts *tokenService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	user, pass, hasAuth := r.BasicAuth()
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "password" {
			http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
			return
		}
		q = url.Values{"account": {r.PostForm.Get("username")}, "scope": r.PostForm["scope"]}
		user, pass, hasAuth = r.PostForm.Get("username"), r.PostForm.Get("password"), true
	}
	rec := tokenRequest{Account: q.Get("account"), Scopes: q["scope"], Auth: hasAuth}
	defer func() {
		ts.mu.Lock()
		ts.requests = append(ts.requests, rec)
		ts.mu.Unlock()
	}()
	if hasAuth && (user != authUser || pass != authPassword) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"details":"incorrect username or password"}`)
		return
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	var grants []access
	for _, sc := range q["scope"] {
		for _, one := range strings.Fields(sc) {
			parts := strings.Split(one, ":")
			if len(parts) < 3 || parts[0] != "repository" {
				continue
			}
			name := strings.Join(parts[1:len(parts)-1], ":")
			var actions []string
			for _, a := range strings.Split(parts[len(parts)-1], ",") {
				if a == "pull" || hasAuth {
					actions = append(actions, a)
				}
			}
			grants = append(grants, access{Type: "repository", Name: name, Actions: actions})
		}
	}
	ts.mu.Lock()
	exp := ts.expiresIn
	ts.mu.Unlock()
	if exp == 0 {
		exp = 300
	}
	now := time.Now()
	sub := ""
	if hasAuth {
		sub = user
	}
	claims := map[string]any{
		"iss": ts.issuer, "sub": sub, "aud": ts.service,
		"exp": now.Add(time.Duration(exp) * time.Second).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": fmt.Sprintf("%d", now.UnixNano()), "access": grants,
	}
	header := map[string]any{"typ": "JWT", "alg": "RS256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)}}
	tok, err := ts.sign(header, claims)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	rec.OK = true
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": exp, "issued_at": now.UTC().Format(time.RFC3339)})
}

func (ts *tokenService) sign(header, claims map[string]any) (string, error) {
	enc := func(v any) (string, error) {
		b, err := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b), err
	}
	h, err := enc(header)
	if err != nil {
		return "", err
	}
	c, err := enc(claims)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(h + "." + c))
	sig, err := rsa.SignPKCS1v15(rand.Reader, ts.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return h + "." + c + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

func (ts *tokenService) log() []tokenRequest {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]tokenRequest(nil), ts.requests...)
}

// startTokenRegistry starts a registry that trusts ts's tokens, behind a
// front on its own port that serves ts at /token (the token service on
// the registry's own host, as Harbor serves it) and the registry
// everywhere else.
func startTokenRegistry(t *testing.T, ts *tokenService) *testRegistry {
	t.Helper()
	front := make(chan http.Handler, 1)
	addr := serve(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := <-front
		front <- h
		h.ServeHTTP(w, r)
	}))
	ts.Realm = "http://" + addr + "/token"
	r := startRegistry(t, registryOpts{token: ts})
	mux := http.NewServeMux()
	mux.Handle("/token", ts)
	mux.Handle("/", proxyTo(r.backend))
	front <- mux
	r.Host = addr
	return r
}

// ----- a registry whose blobs live "elsewhere": uploads and downloads are
// sent to another loopback host (localhost:port instead of 127.0.0.1:port),
// as a registry with cloud blob storage does. The front requires Basic
// credentials; the storage host records any Authorization it receives.

type redirectRegistry struct {
	*testRegistry
	Storage string // localhost:port

	mu         sync.Mutex
	leaked     []string // requests to the storage host that carried credentials
	storageHit int
	redirected int
}

func startRedirectRegistry(t *testing.T) *redirectRegistry {
	t.Helper()
	reg := startRegistry(t, registryOpts{})
	rr := &redirectRegistry{testRegistry: reg}
	backend := proxyTo(reg.backend)
	storageAddr := serve(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rr.mu.Lock()
		rr.storageHit++
		if a := r.Header.Get("Authorization"); a != "" {
			rr.leaked = append(rr.leaked, r.Method+" "+r.URL.Path+": "+a)
		}
		rr.mu.Unlock()
		backend.ServeHTTP(w, r)
	}))
	_, port, _ := net.SplitHostPort(storageAddr)
	rr.Storage = "localhost:" + port
	front := serve(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != authUser || p != authPassword {
			w.Header().Set("WWW-Authenticate", `Basic realm="basic-realm"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}`)
			return
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			rr.mu.Lock()
			rr.redirected++
			rr.mu.Unlock()
			http.Redirect(w, r, "http://"+rr.Storage+r.URL.RequestURI(), http.StatusTemporaryRedirect)
			return
		}
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/blobs/uploads/") && r.URL.Query().Get("mount") == "" {
			rec := &locationRewriter{ResponseWriter: w, host: rr.Storage}
			backend.ServeHTTP(rec, r)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	rr.Host = front
	return rr
}

func (rr *redirectRegistry) stats() (hits, redirected int, leaked []string) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.storageHit, rr.redirected, append([]string(nil), rr.leaked...)
}

// locationRewriter sends an upload's Location to another host.
type locationRewriter struct {
	http.ResponseWriter
	host string
}

func (l *locationRewriter) WriteHeader(code int) {
	if loc := l.Header().Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil {
			u.Scheme, u.Host = "http", l.host
			l.Header().Set("Location", u.String())
		}
	}
	l.ResponseWriter.WriteHeader(code)
}

func (l *locationRewriter) Flush() {
	if f, ok := l.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
