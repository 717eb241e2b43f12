package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/util/entitlements"
	"github.com/moby/moby/api/types/registry"
	"golang.org/x/sync/errgroup"
	grpcmetadata "google.golang.org/grpc/metadata"
)

// RemoteClientSession is BuildOptions.Remote for a build whose context and
// Dockerfile the client serves in its session (docker CLI's BuildKit
// path before buildx: version=2, remote=client-session).
const RemoteClientSession = "client-session"

// BuildOptions is a build of a Dockerfile as POST /build asks for it.
type BuildOptions struct {
	// Context is the build context as a tar (plain or compressed), unless
	// Remote names one.
	Context io.ReadCloser
	// Remote is a context URL (http(s) tar or Dockerfile, git) or
	// RemoteClientSession.
	Remote string
	// SessionID is the client's BuildKit session (POST /session), if any.
	SessionID string
	// Dockerfile is the Dockerfile's path inside the context.
	Dockerfile  string
	Tags        []string
	BuildArgs   map[string]*string
	Labels      map[string]string
	Target      string
	NoCache     bool
	Pull        bool
	Platform    string
	NetworkMode string
	ExtraHosts  []string
	ShmSize     int64
	CacheFrom   []string
	// AuthConfigs are registry credentials for the build's pulls
	// (X-Registry-Config), used when the client has no session.
	AuthConfigs map[string]registry.AuthConfig
}

// StatusFunc receives the build's progress as BuildKit's control API sends
// it. It is called from one goroutine at a time.
type StatusFunc func(*controlapi.StatusResponse) error

// Build runs a Dockerfile build on the embedded BuildKit (the Dockerfile
// frontend, the moby exporter into berth's store) and returns the image ID.
// Progress goes to status until the build ends; Build returns after the
// last status call.
func (b *Builder) Build(ctx context.Context, opts BuildOptions, status StatusFunc) (string, error) {
	attrs := map[string]string{}
	if opts.Target != "" {
		attrs["target"] = opts.Target
	}
	if opts.Dockerfile != "" && opts.Dockerfile != "." {
		attrs["filename"] = opts.Dockerfile
	}
	switch {
	case opts.Remote == RemoteClientSession:
		if opts.SessionID == "" {
			return "", cerrdefs.ErrInvalidArgument.WithMessage("remote=client-session needs a session")
		}
	case opts.Remote != "":
		attrs["context"] = opts.Remote
	case opts.Context != nil:
		url, forget := b.contexts.add(opts.Context)
		defer forget()
		attrs["context"] = url
	default:
		return "", cerrdefs.ErrInvalidArgument.WithMessage("no build context")
	}
	if len(opts.CacheFrom) > 0 {
		attrs["cache-from"] = strings.Join(opts.CacheFrom, ",")
	}
	for k, v := range opts.BuildArgs {
		if v != nil {
			attrs["build-arg:"+k] = *v
		}
	}
	for k, v := range opts.Labels {
		attrs["label:"+k] = v
	}
	if opts.NoCache {
		attrs["no-cache"] = ""
	}
	attrs["image-resolve-mode"] = "default"
	if opts.Pull {
		attrs["image-resolve-mode"] = "pull"
	}
	if opts.Platform != "" {
		if _, err := platforms.Parse(opts.Platform); err != nil {
			return "", cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		attrs["platform"] = opts.Platform
	}
	var ents []string
	switch opts.NetworkMode {
	case "host":
		ents = append(ents, string(entitlements.EntitlementNetworkHost))
		attrs["force-network-mode"] = opts.NetworkMode
	case "none":
		attrs["force-network-mode"] = opts.NetworkMode
	case "", "default":
	default:
		return "", cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("network mode %q not supported by buildkit", opts.NetworkMode))
	}
	if len(opts.ExtraHosts) > 0 {
		hosts := make([]string, 0, len(opts.ExtraHosts))
		for _, h := range opts.ExtraHosts {
			host, ip, ok := strings.Cut(h, ":")
			if !ok || host == "" || ip == "" {
				return "", cerrdefs.ErrInvalidArgument.WithMessage("invalid host " + h)
			}
			hosts = append(hosts, host+"="+ip)
		}
		attrs["add-hosts"] = strings.Join(hosts, ",")
	}
	if opts.ShmSize > 0 {
		attrs["shm-size"] = strconv.FormatInt(opts.ShmSize, 10)
	}
	expAttrs := map[string]string{}
	if len(opts.Tags) > 0 {
		expAttrs["name"] = strings.Join(opts.Tags, ",")
	}
	cache := &controlapi.CacheOptions{}
	if v := opts.BuildArgs["BUILDKIT_INLINE_CACHE"]; v != nil {
		if on, err := strconv.ParseBool(*v); err == nil && on {
			cache.Exports = append(cache.Exports, &controlapi.CacheOptionsEntry{Type: "inline"})
		}
	}
	session := opts.SessionID
	if session == "" && len(opts.AuthConfigs) > 0 {
		id, stop, err := b.credentialSession(ctx, opts.AuthConfigs)
		if err != nil {
			return "", err
		}
		defer stop()
		session = id
	}
	req := &controlapi.SolveRequest{
		Ref:           identity.NewID(),
		Exporters:     []*controlapi.Exporter{{Type: ExporterMoby, Attrs: expAttrs}},
		Frontend:      "dockerfile.v0",
		FrontendAttrs: attrs,
		Session:       session,
		Cache:         cache,
		Entitlements:  ents,
	}

	var imageID string
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		resp, err := b.controller.Solve(ctx, req)
		if err != nil {
			return err
		}
		imageID = resp.ExporterResponse["containerimage.digest"]
		if imageID == "" {
			return errors.New("build: the exporter gave no image ID")
		}
		return nil
	})
	ch := make(chan *controlapi.StatusResponse)
	eg.Go(func() error {
		defer close(ch)
		// Not ctx: a cancelled build still reports how it ended.
		return b.controller.Status(&controlapi.StatusRequest{Ref: req.Ref}, &statusStream{streamProxy: streamProxy{ctx: context.WithoutCancel(ctx)}, ch: ch})
	})
	eg.Go(func() error {
		var err error
		for sr := range ch {
			if err == nil && status != nil {
				err = status(sr)
			}
		}
		return err
	})
	if err := eg.Wait(); err != nil {
		return "", err
	}
	return imageID, nil
}

// streamProxy is the server side of a gRPC stream inside berthd.
type streamProxy struct{ ctx context.Context }

func (s *streamProxy) SetHeader(grpcmetadata.MD) error  { return nil }
func (s *streamProxy) SendHeader(grpcmetadata.MD) error { return nil }
func (s *streamProxy) SetTrailer(grpcmetadata.MD)       {}
func (s *streamProxy) Context() context.Context         { return s.ctx }
func (s *streamProxy) RecvMsg(any) error                { return io.EOF }

type statusStream struct {
	streamProxy
	ch chan<- *controlapi.StatusResponse
}

func (s *statusStream) Send(r *controlapi.StatusResponse) error { return s.SendMsg(r) }
func (s *statusStream) SendMsg(m any) error {
	if r, ok := m.(*controlapi.StatusResponse); ok {
		s.ch <- r
	}
	return nil
}
