// Package server serves the Docker Engine API over HTTP. It decodes the
// version prefix, routes requests to the routers' handlers, adds the headers
// every response carries and turns handler errors into Docker's JSON error
// bodies with the status chosen by httpstatus.
package server

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth/berth/api/server/httpstatus"
	"github.com/berth/berth/api/server/httputils"
	"github.com/berth/berth/api/server/router"
)

// API versions berth speaks.
const (
	DefaultVersion = "1.50"
	MinVersion     = "1.24"
)

// Config is what the server needs to know about the daemon it fronts.
type Config struct {
	Version string // berth's own version, for the Server header
	Logger  *slog.Logger
	// IdleTimeout closes a keep-alive connection that carries no request
	// for that long (DefaultIdleTimeout if zero), so that clients that
	// never close their idle connections cannot pile them up to the
	// daemon's file limit. A request in progress, a stream (logs -f,
	// events) and a hijacked connection (attach, exec) are not idle.
	IdleTimeout time.Duration
	// BodyTimeout and BodyPace: a request body must deliver BodyPace
	// bytes every BodyTimeout, or end (httputils.PaceBody); defaults
	// httputils.PaceTimeout and PaceBytes.
	BodyTimeout time.Duration
	BodyPace    int64
}

// DefaultIdleTimeout is shorter than the idle timeout of Go's and Python's
// HTTP clients (90 s in Go's DefaultTransport): the server closes first, and
// the clients see it before they reuse the connection.
const DefaultIdleTimeout = 60 * time.Second

// Server routes Engine API requests to handlers.
type Server struct {
	cfg    Config
	routes map[string][]compiled
	srv    *http.Server
}

type compiled struct {
	segs    []string
	handler router.HandlerFunc
}

// New returns a server with the given routers' routes.
func New(cfg Config, routers ...router.Router) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.BodyTimeout == 0 {
		cfg.BodyTimeout = httputils.PaceTimeout
	}
	if cfg.BodyPace == 0 {
		cfg.BodyPace = httputils.PaceBytes
	}
	s := &Server{cfg: cfg, routes: map[string][]compiled{}}
	for _, rt := range routers {
		for _, r := range rt.Routes() {
			s.routes[r.Method] = append(s.routes[r.Method], compiled{segs: splitPath(r.Path), handler: r.Handler})
		}
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: cfg.IdleTimeout}
	return s
}

// Serve accepts connections on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	err := s.srv.Serve(l)
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}

// Close closes every connection at once.
func (s *Server) Close() error { return s.srv.Close() }

// Shutdown stops accepting and waits for ordinary requests to end, until
// ctx is done. Hijacked connections are not waited for.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// match reports whether path segments fit pattern segments, filling vars.
func match(pat, path []string, vars map[string]string) bool {
	if len(pat) == 0 {
		return len(path) == 0
	}
	p := pat[0]
	if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
		name := p[1 : len(p)-1]
		if n, ok := strings.CutSuffix(name, ":.*"); ok {
			// Greedy: take as few segments as possible for the rest to match.
			for i := 1; i <= len(path); i++ {
				if match(pat[1:], path[i:], vars) {
					vars[n] = strings.Join(path[:i], "/")
					return true
				}
			}
			return false
		}
		if len(path) == 0 || path[0] == "" {
			return false
		}
		if match(pat[1:], path[1:], vars) {
			vars[name] = path[0]
			return true
		}
		return false
	}
	if len(path) == 0 || path[0] != p {
		return false
	}
	return match(pat[1:], path[1:], vars)
}

// ParseVersion splits "/v1.41/containers/json" into "1.41" and the rest.
func ParseVersion(path string) (version, rest string) {
	if !strings.HasPrefix(path, "/v") {
		return "", path
	}
	end := strings.IndexByte(path[1:], '/')
	var v string
	if end < 0 {
		v, rest = path[2:], "/"
	} else {
		v, rest = path[2:end+1], path[end+1:]
	}
	if _, err := strconv.ParseFloat(v, 64); err != nil || !strings.Contains(v, ".") {
		return "", path
	}
	return v, rest
}

// CompareVersions compares dotted versions a and b: -1, 0 or 1.
func CompareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func (s *Server) setCommonHeaders(h http.Header) {
	h.Set("Api-Version", DefaultVersion)
	h.Set("Docker-Experimental", "false")
	h.Set("Ostype", "linux")
	h.Set("Server", "Berth/"+s.cfg.Version+" (linux)")
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.setCommonHeaders(w.Header())
	httputils.PaceBody(w, r, s.cfg.BodyTimeout, s.cfg.BodyPace)
	// Routing works on the escaped path, one unescaped segment at a time:
	// a "%2F" inside a name stays in its segment.
	version, rest := ParseVersion(r.URL.EscapedPath())
	tw := &trackingWriter{ResponseWriter: w}
	err := s.dispatch(tw, r, version, rest)
	if err != nil {
		s.writeError(tw, r, err)
	}
	s.cfg.Logger.Debug("api request", "method", r.Method, "path", r.URL.Path, "dur", time.Since(start), "err", err)
}

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, version, path string) error {
	if version != "" {
		if CompareVersions(version, DefaultVersion) > 0 {
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("client version %s is too new. Maximum supported API version is %s", version, DefaultVersion))
		}
		if CompareVersions(version, MinVersion) < 0 {
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", version, MinVersion))
		}
	} else {
		version = DefaultVersion
	}
	segs := splitPath(path)
	for i, seg := range segs {
		u, err := url.PathUnescape(seg)
		if err != nil {
			return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid path %q: %v", path, err))
		}
		segs[i] = u
	}
	method := r.Method
	if method == http.MethodHead && path != "/_ping" {
		method = http.MethodGet
	}
	for _, c := range s.routes[method] {
		vars := map[string]string{}
		if match(c.segs, segs, vars) {
			if err := r.ParseForm(); err != nil {
				return cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
			}
			ctx := httputils.WithVersion(r.Context(), version)
			return c.handler(ctx, w, r, vars)
		}
	}
	if err := unsupportedError(method, segs); err != nil {
		return err
	}
	// Docker answers unknown paths with 404 and this text.
	return cerrdefs.ErrNotFound.WithMessage("page not found")
}

// trackingWriter remembers whether a handler has sent its headers, so that
// an error returned after that is logged instead of written into a body the
// client already reads as something else. It passes Flush and Hijack on.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) {
	t.wrote = true
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}

func (t *trackingWriter) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (t *trackingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := t.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("connection cannot be hijacked")
	}
	t.wrote = true
	return h.Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := httpstatus.FromError(err)
	if status >= 500 {
		s.cfg.Logger.Error("api error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if tw, ok := w.(*trackingWriter); ok && tw.wrote {
		return
	}
	_ = httputils.WriteJSON(w, status, map[string]string{"message": err.Error()})
}
