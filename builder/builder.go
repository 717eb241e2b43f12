// Package builder is berth's image builder: BuildKit embedded as a library,
// as dockerd embeds it. One BuildKit controller (solver, Dockerfile
// frontend, gateway frontend, cache) serves buildx and BuildKit clients
// over POST /grpc and POST /session, and the classic POST /build.
//
// Lifecycle: New opens BuildKit's state under Config.Root and starts the
// controller; ServeGRPC and HandleSession serve one hijacked connection
// each until it ends; Close stops the controller and closes its stores
// (connections still open end with it).
//
// The worker runs on berth's own stores (Config.Stores, see stores.go
// and worker.go): what a build pulls and makes is blobs in berth's content
// store and snapshots in berth's snapshotter (keys "buildkit-<id>"), held
// by BuildKit's leases in berth's lease database, and removed by berth's
// one garbage collector once neither an image, a container nor a lease
// holds them. The worker's own state under Config.Root is only BuildKit's
// bookkeeping: cache records (worker/metadata_v2.db, cache.db), build
// history, content labels, the executor's state.
//
// A build exported with the "moby" exporter (buildx's docker driver and
// docker build) becomes a berth image through Config.Images: the image
// exporter writes manifest and config into berth's content store (the
// layers' blobs are there already), then Images.ImportBuilt records the
// image with its names and unpacks its layers as berth's layers.
//
// FROM images berth holds are used from berth's store (berthImages,
// preferLocal).
//
// RUN steps get their network namespace from berth's network service on
// the default bridge (Config.Sandboxes, see network.go), --network=none
// a namespace with loopback only, --network=host the host's.
package builder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/moby/buildkit/cache/remotecache"
	inlineremotecache "github.com/moby/buildkit/cache/remotecache/inline"
	localremotecache "github.com/moby/buildkit/cache/remotecache/local"
	registryremotecache "github.com/moby/buildkit/cache/remotecache/registry"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/control"
	"github.com/moby/buildkit/frontend"
	dockerfile "github.com/moby/buildkit/frontend/dockerfile/builder"
	"github.com/moby/buildkit/frontend/gateway"
	"github.com/moby/buildkit/frontend/gateway/forwarder"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/solver"
	"github.com/moby/buildkit/solver/bboltcachestorage"
	bkhttp "github.com/moby/buildkit/source/http"
	"github.com/moby/buildkit/util/entitlements"
	"github.com/moby/buildkit/util/grpcerrors"
	"github.com/moby/buildkit/util/tracing"
	bkversion "github.com/moby/buildkit/version"
	"github.com/moby/buildkit/worker"
	"github.com/moby/buildkit/worker/base"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc"
)

// Images is berth's image service as the builder uses it: FROM images
// are looked up in it, and it receives the images builds export.
type Images interface {
	// LocalImage returns the image berth holds under the full reference
	// name ("docker.io/library/alpine:3.18"), its manifest in berth's
	// content store; not found if there is none.
	LocalImage(ctx context.Context, name string) (images.Image, error)
	// LocalImages lists every image berth holds, as LocalImage describes
	// them (without writing anything).
	LocalImages(ctx context.Context) ([]images.Image, error)
	// ImportBuilt makes the image desc names in p a berth image with
	// the given references (none: untagged) and returns its ID; snaps
	// names by chain ID the snapshots (berth's keys) holding its layers
	// as the build made them, for berth to make its layers from, not
	// from the blobs (see image.Service.ImportBuilt).
	ImportBuilt(ctx context.Context, p content.Provider, desc ocispec.Descriptor, names []string, snaps map[digest.Digest]string) (digest.Digest, error)
	// RecordPushed notes that the build's exporter pushed image id to
	// name (a full reference) as the manifest or index pushed.
	RecordPushed(ctx context.Context, name string, pushed, id digest.Digest) error
}

// Config wires a Builder.
type Config struct {
	// Root holds BuildKit's own state: cache records, history, content
	// labels, the executor's state (no blobs, no snapshots).
	Root string
	// Runtime is the OCI runtime binary RUN steps run with (runc).
	Runtime string
	Images  Images
	// Sandboxes give RUN steps their network on berth's default bridge
	// (nil: the host's network).
	Sandboxes Sandboxes
	// Stores are berth's content store, snapshotter, leases and garbage
	// collector, which the worker runs on.
	Stores *Stores
	// RegistryHosts resolves where images are pulled from and pushed to
	// (berth's mirrors and insecure registries).
	RegistryHosts docker.RegistryHosts
	// GC is the build cache's automatic garbage collection policy.
	GC     GCConfig
	Logger *slog.Logger
}

// Builder is the embedded BuildKit.
type Builder struct {
	log        *slog.Logger
	sessions   *session.Manager
	controller *control.Controller
	worker     *berthWorker
	grpc       *grpc.Server
	closers    []func() error
	// contexts serves POST /build's uploaded contexts to the worker's
	// HTTP source.
	contexts *contextBodies

	// conns are the hijacked /grpc connections being served; Close
	// closes them and waits for their handlers.
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// BuildKitVersion is the version of the embedded BuildKit module.
func BuildKitVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/moby/buildkit" {
				if m.Replace != nil {
					return m.Replace.Version
				}
				return m.Version
			}
		}
	}
	return bkversion.Version
}

// New opens BuildKit's state under cfg.Root and starts its controller.
func New(ctx context.Context, cfg Config) (_ *Builder, retErr error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return nil, fmt.Errorf("builder: %w", err)
	}
	// buildx and `docker buildx ls` show this as the builder's version.
	if v := BuildKitVersion(); v != "" && bkversion.Version == "v0.0.0+unknown" {
		bkversion.Version = v
	}
	b := &Builder{log: cfg.Logger, conns: map[net.Conn]struct{}{}, contexts: newContextBodies(tracing.DefaultTransport)}
	defer func() {
		if retErr != nil {
			b.closeAll()
		}
	}()
	sm, err := session.NewManager()
	if err != nil {
		return nil, err
	}
	b.sessions = sm

	if cfg.Stores == nil {
		return nil, errors.New("builder: no stores")
	}
	removed, err := removeOldWorker(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("builder: remove the old worker's stores: %w", err)
	}
	if removed {
		b.log.Info("builder: removed the build cache of the worker that had stores of its own", "dir", filepath.Join(cfg.Root, oldWorkerDir))
	}
	wo, err := workerOpt(cfg, cfg.Stores)
	if err != nil {
		return nil, fmt.Errorf("builder: worker: %w", err)
	}
	b.closers = append(b.closers, func() error { return closeWorkerOpt(wo) })
	wo.RegistryHosts = cfg.RegistryHosts
	if wo.GCPolicy, err = cfg.GC.Rules(cfg.Root); err != nil {
		return nil, err
	}
	wo.ImageStore = berthImages{images: cfg.Images}
	wo.BuildkitVersion = client.BuildkitVersion{Package: "github.com/moby/buildkit", Version: bkversion.Version, Revision: bkversion.Revision}
	bw, err := base.NewWorker(ctx, wo)
	if err != nil {
		return nil, fmt.Errorf("builder: worker: %w", err)
	}
	// FROM an image berth holds uses it, as dockerd's builder does.
	bw.SourceManager.Register(preferLocal{Source: bw.ImageSource})
	// The HTTP source again, with a transport that also serves the
	// contexts POST /build uploads (builder/context.go).
	hs, err := bkhttp.NewSource(bkhttp.Opt{CacheAccessor: bw.CacheMgr, Transport: b.contexts})
	if err != nil {
		return nil, fmt.Errorf("builder: worker: %w", err)
	}
	bw.SourceManager.Register(hs)
	bw.HTTPSource = hs
	b.worker = &berthWorker{Worker: bw, images: cfg.Images, sn: cfg.Stores.Snapshotter, log: cfg.Logger}
	wc := &worker.Controller{}
	if err := wc.Add(b.worker); err != nil {
		return nil, err
	}
	// The worker controller closes the worker's stores from now on.
	b.closers = []func() error{wc.Close}

	gwf, err := gateway.NewGatewayFrontend(wc.Infos(), nil)
	if err != nil {
		return nil, err
	}
	frontends := map[string]frontend.Frontend{
		"dockerfile.v0": forwarder.NewGatewayForwarder(wc.Infos(), dockerfile.Build),
		"gateway.v0":    gwf,
	}
	cacheStorage, err := bboltcachestorage.NewStore(filepath.Join(cfg.Root, "cache.db"))
	if err != nil {
		return nil, fmt.Errorf("builder: cache: %w", err)
	}
	b.closers = append(b.closers, cacheStorage.Close)
	historyDB, err := bolt.Open(filepath.Join(cfg.Root, "history.db"), 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("builder: history: %w", err)
	}
	b.closers = append(b.closers, historyDB.Close)

	ctl, err := control.NewController(control.Opt{
		SessionManager:   sm,
		WorkerController: wc,
		Frontends:        frontends,
		CacheManager:     solver.NewCacheManager(ctx, "local", cacheStorage, worker.NewCacheResultStorage(wc)),
		CacheStore:       cacheStorage,
		ResolveCacheImporterFuncs: map[string]remotecache.ResolveCacheImporterFunc{
			"local":    localremotecache.ResolveCacheImporterFunc(sm),
			"registry": registryremotecache.ResolveCacheImporterFunc(sm, wo.ContentStore, cfg.RegistryHosts),
		},
		ResolveCacheExporterFuncs: map[string]remotecache.ResolveCacheExporterFunc{
			"inline":   inlineremotecache.ResolveCacheExporterFunc(),
			"local":    localremotecache.ResolveCacheExporterFunc(sm),
			"registry": registryremotecache.ResolveCacheExporterFunc(sm, cfg.RegistryHosts),
		},
		// As dockerd: RUN --network=host is allowed by default.
		Entitlements:   []string{string(entitlements.EntitlementNetworkHost)},
		HistoryDB:      historyDB,
		LeaseManager:   wo.LeaseManager,
		ContentStore:   wo.ContentStore,
		GarbageCollect: b.worker.GarbageCollect,
	})
	if err != nil {
		return nil, fmt.Errorf("builder: controller: %w", err)
	}
	// The controller closes the worker, cache and history from now on.
	b.controller, b.closers = ctl, nil
	// Errors cross with their details (the Dockerfile source an error
	// points at, exit codes, gRPC codes), as buildkitd and dockerd serve.
	b.grpc = grpc.NewServer(grpc.ChainUnaryInterceptor(grpcerrors.UnaryServerInterceptor, multiPlatformLoad),
		grpc.StreamInterceptor(grpcerrors.StreamServerInterceptor))
	ctl.Register(b.grpc)
	return b, nil
}

// ServeGRPC serves BuildKit's control API on a connection upgraded to
// h2c (POST /grpc) until the client closes it or the builder closes.
func (b *Builder) ServeGRPC(conn net.Conn) {
	b.mu.Lock()
	if b.conns == nil {
		b.mu.Unlock()
		conn.Close()
		return
	}
	b.conns[conn] = struct{}{}
	b.wg.Add(1)
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.conns, conn)
		b.mu.Unlock()
		b.wg.Done()
	}()
	// HTTP/2 with prior knowledge on this one connection: the server
	// stops when the connection closes.
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	l := &oneConnListener{conn: conn, done: make(chan struct{})}
	srv := &http.Server{Handler: b.grpc, Protocols: &protos, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed || st == http.StateHijacked {
			l.Close()
		}
	}}
	_ = srv.Serve(l)
}

// oneConnListener hands out one connection, then blocks until closed.
type oneConnListener struct {
	mu   sync.Mutex
	conn net.Conn
	done chan struct{}
	once sync.Once
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	c := l.conn
	l.conn = nil
	l.mu.Unlock()
	if c != nil {
		return c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return dummyAddr{} }

type dummyAddr struct{}

func (dummyAddr) Network() string { return "h2c" }
func (dummyAddr) String() string  { return "grpc" }

// HandleSession serves a client's session (POST /session): the client
// side of file sync, secrets, SSH and credentials for its builds.
func (b *Builder) HandleSession(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	return b.sessions.HandleHTTPRequest(ctx, w, r)
}

// Close stops the controller, ends the connections it serves and closes
// BuildKit's stores.
func (b *Builder) Close() error {
	b.mu.Lock()
	conns := b.conns
	b.conns = nil
	b.mu.Unlock()
	for c := range conns {
		c.Close()
	}
	b.wg.Wait()
	return b.closeAll()
}

func (b *Builder) closeAll() error {
	var errs []error
	if b.grpc != nil {
		b.grpc.Stop()
	}
	if b.controller != nil {
		errs = append(errs, b.controller.Close())
	}
	for i := len(b.closers) - 1; i >= 0; i-- {
		errs = append(errs, b.closers[i]())
	}
	b.closers = nil
	return errors.Join(errs...)
}
