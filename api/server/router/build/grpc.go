// Package build serves the builder's endpoints: POST /grpc (BuildKit's
// control API over h2c, for buildx's docker driver), POST /session (a
// client's BuildKit session), POST /build (the classic build endpoint,
// version 1 and 2, on the same embedded BuildKit) and POST /build/prune.
package build

import (
	"context"
	"net"
	"net/http"
	"sync"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth/berth/api/server/router"
	"github.com/berth/berth/builder"
)

// Backend is the embedded BuildKit.
type Backend interface {
	// ServeGRPC serves BuildKit's gRPC API on an upgraded connection
	// until it ends.
	ServeGRPC(conn net.Conn)
	// HandleSession upgrades the request to a BuildKit session and
	// serves it until it ends.
	HandleSession(ctx context.Context, w http.ResponseWriter, r *http.Request) error
	// Build runs a Dockerfile build and returns the image ID.
	Build(ctx context.Context, opts builder.BuildOptions, status builder.StatusFunc) (string, error)
	// Prune removes build cache; it returns the bytes and IDs removed.
	Prune(ctx context.Context, opts builder.PruneOptions) (int64, []string, error)
}

type buildRouter struct {
	b Backend

	// builds are the POST /build requests under way that named a
	// buildid, so that POST /build/cancel can end them.
	mu     sync.Mutex
	builds map[string]context.CancelFunc
}

// New returns the builder's routes.
func New(b Backend) router.Router {
	return &buildRouter{b: b, builds: map[string]context.CancelFunc{}}
}

func (br *buildRouter) Routes() []router.Route {
	return []router.Route{
		{Method: http.MethodPost, Path: "/grpc", Handler: br.grpc},
		{Method: http.MethodPost, Path: "/session", Handler: br.session},
		{Method: http.MethodPost, Path: "/build", Handler: br.build},
		{Method: http.MethodPost, Path: "/build/prune", Handler: br.prune},
		{Method: http.MethodPost, Path: "/build/cancel", Handler: br.cancel},
	}
}

// grpc upgrades the connection to h2c, as dockerd's /grpc: a 101 answer,
// then HTTP/2 with BuildKit's gRPC services on the raw connection.
func (br *buildRouter) grpc(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	proto := r.Header.Get("Upgrade")
	if proto == "" {
		return cerrdefs.ErrInvalidArgument.WithMessage("no upgrade proto in request")
	}
	if proto != "h2c" {
		return cerrdefs.ErrInvalidArgument.WithMessage("protocol " + proto + " not supported")
	}
	h, ok := w.(http.Hijacker)
	if !ok {
		return cerrdefs.ErrInvalidArgument.WithMessage("connection cannot be hijacked")
	}
	conn, rw, err := h.Hijack()
	if err != nil {
		return err
	}
	resp := &http.Response{StatusCode: http.StatusSwitchingProtocols, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}}
	resp.Header.Set("Connection", "Upgrade")
	resp.Header.Set("Upgrade", proto)
	if err := resp.Write(conn); err != nil {
		conn.Close()
		return nil
	}
	br.b.ServeGRPC(&bufferedConn{Conn: conn, r: rw.Reader})
	return nil
}

func (br *buildRouter) session(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := br.b.HandleSession(ctx, w, r); err != nil {
		return cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	return nil
}

// bufferedConn reads first what the HTTP server had already buffered.
type bufferedConn struct {
	net.Conn
	r interface{ Read([]byte) (int, error) }
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
