// Command berthd is the berth daemon: it serves the Docker Engine API and
// manages images, containers, networks and volumes. This file only wires
// the services together; each lives in its own package.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/api/server"
	buildrouter "github.com/berth/berth/api/server/router/build"
	containerrouter "github.com/berth/berth/api/server/router/container"
	eventsrouter "github.com/berth/berth/api/server/router/events"
	imagerouter "github.com/berth/berth/api/server/router/image"
	networkrouter "github.com/berth/berth/api/server/router/network"
	pluginrouter "github.com/berth/berth/api/server/router/plugin"
	swarmrouter "github.com/berth/berth/api/server/router/swarm"
	systemrouter "github.com/berth/berth/api/server/router/system"
	volumerouter "github.com/berth/berth/api/server/router/volume"
	"github.com/berth/berth/builder"
	"github.com/berth/berth/container"
	ctrlog "github.com/berth/berth/container/logger"
	"github.com/berth/berth/content"
	"github.com/berth/berth/events"
	"github.com/berth/berth/image"
	"github.com/berth/berth/internal/osutil"
	"github.com/berth/berth/leases"
	"github.com/berth/berth/network"
	"github.com/berth/berth/network/containernet"
	"github.com/berth/berth/snapshot"
	"github.com/berth/berth/system"
	"github.com/berth/berth/version"
	"github.com/berth/berth/volume"
)

// The main thread stays with the main goroutine. Code that enters a
// namespace or changes its working directory on a locked thread and then
// lets its goroutine exit relies on Go ending that thread; Go never ends
// the main thread, it parks it for good, still in that namespace. A locked
// main goroutine means no other goroutine ever runs there.
func init() { runtime.LockOSThread() }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "berthd:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg := defaultConfig()
	var configFile string
	fs := pflag.NewFlagSet("berthd", pflag.ContinueOnError)
	bindFlags(fs, &cfg, &configFile)
	showVersion := fs.BoolP("version", "v", false, "Print version information and quit")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: berthd [OPTIONS]\n\nA container engine serving the Docker Engine API.\n\nOptions:\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	if *showVersion {
		fmt.Printf("berthd version %s\n", version.Version)
		return nil
	}
	if err := loadConfigFile(configFile, fs.Changed("config-file"), fs, &cfg); err != nil {
		return err
	}
	applyFlagIntents(fs, &cfg)
	if err := checkLogConfig(cfg); err != nil {
		return err
	}
	if _, err := cfg.Builder.GC.Rules(cfg.DataRoot); err != nil {
		return fmt.Errorf("builder: %w", err)
	}
	// Descriptors berthd inherited must not leak into every shim and
	// container (a caller's pipe would stay open as long as they run).
	_ = unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	// Processes that runc starts detached (exec with a TTY) are reparented
	// to berthd, which waits for them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become a child subreaper: %w", err)
	}
	logger := newLogger(cfg)
	slog.SetDefault(logger)

	d, err := startDaemon(cfg, logger)
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			d.reload(configFile)
			continue
		}
		logger.Info("shutting down", "signal", sig.String())
		break
	}
	return d.shutdown()
}

func newLogger(cfg Config) *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(cfg.LogLevel) {
	case "debug", "trace":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error", "fatal", "panic":
		level = slog.LevelError
	}
	if cfg.Debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// daemon is the running berthd: its services, listeners and lock.
type daemon struct {
	cfg        Config
	log        *slog.Logger
	lock       *os.File
	images     *image.Service
	snapshots  *snapshot.Store
	leases     *leases.Store
	containers *container.Service
	networks   *network.Service
	builder    *builder.Builder
	server     *server.Server
	servers    []net.Listener
	done       chan error
}

func startDaemon(cfg Config, logger *slog.Logger) (_ *daemon, retErr error) {
	// The OCI runtime: there, runnable, and how old (issue 12, item 7).
	rt, err := system.ProbeRuntime(context.Background(), cfg.Runtime)
	if err != nil {
		return nil, err
	}
	for _, w := range rt.Warnings() {
		logger.Warn(strings.TrimPrefix(w, "WARNING: "))
	}
	logger.Info("OCI runtime", "name", rt.Name, "version", rt.Version, "commit", rt.Commit, "path", rt.Path)
	// Nobody but root walks into berthd's state (see osutil.DataRootMode).
	if err := osutil.MkdirPrivate(cfg.DataRoot, osutil.DataRootMode); err != nil {
		return nil, err
	}
	if err := osutil.MkdirPrivate(cfg.ExecRoot, osutil.ExecRootMode); err != nil {
		return nil, err
	}
	lock, err := lockDataRoot(cfg.DataRoot)
	if err != nil {
		return nil, err
	}
	d := &daemon{cfg: cfg, log: logger, lock: lock, done: make(chan error, len(cfg.Hosts))}
	defer func() {
		if retErr != nil {
			d.closeStores()
		}
	}()
	cs, err := content.NewStore(filepath.Join(cfg.DataRoot, "content"), false)
	if err != nil {
		return nil, err
	}
	ss, err := snapshot.NewStore(filepath.Join(cfg.DataRoot, "snapshots"), logger)
	if err != nil {
		return nil, err
	}
	d.snapshots = ss
	if d.leases, err = leases.Open(context.Background(), filepath.Join(cfg.DataRoot, "leases.db")); err != nil {
		return nil, err
	}
	// The services are wired through their constructors (issue 8 item
	// 6): the event bus and the container store (the index the image and
	// network services ask about containers) come first; the container
	// service, which needs the image and network services, fills the
	// store when it is made. Nothing asks the store before that: its
	// users are requests and GC, which begin after New.
	bus := events.New(events.DefaultHistory)
	store := container.NewStore()
	hub, hosts := splitMirrors(cfg.RegistryMirrors, cfg.HostMirrors)
	d.images, err = image.New(image.Config{
		Root:       filepath.Join(cfg.DataRoot, "image"),
		Content:    cs,
		Snapshots:  ss,
		Leases:     d.leases,
		Registry:   image.RegistryConfig{Mirrors: hub, HostMirrors: hosts, Insecure: cfg.InsecureRegistries},
		Version:    version.Version,
		Logger:     logger,
		Containers: store,
		Events:     bus,
	})
	if err != nil {
		return nil, err
	}
	shimPath, err := findHelper("berth-shim")
	if err != nil {
		return nil, err
	}
	vols, err := volume.New(filepath.Join(cfg.DataRoot, "volumes"))
	if err != nil {
		return nil, err
	}
	for _, m := range vols.Damage() {
		logger.Warn(m)
	}
	d.networks, err = network.New(network.Config{
		Root:       filepath.Join(cfg.DataRoot, "network"),
		ExecRoot:   cfg.ExecRoot,
		Prefix:     kernelPrefix(cfg.DataRoot),
		Logger:     logger,
		Containers: containernet.Lookup(store),
		// --ipv6, --fixed-cidr-v6: the default bridge's IPv6.
		DefaultIPv6: cfg.IPv6, DefaultFixedCIDRv6: cfg.FixedCIDRv6,
	})
	if err != nil {
		return nil, err
	}
	d.containers, err = container.New(context.Background(), container.Config{
		Root:      filepath.Join(cfg.DataRoot, "containers"),
		ExecRoot:  cfg.ExecRoot,
		Runtime:   rt.Path,
		ShimPath:  shimPath,
		InitPath:  findInit(),
		Images:    d.images,
		Snapshots: ss,
		Volumes:   vols,
		Network:   containernet.Adapt(d.networks),
		Store:     store,
		Events:    bus,
		Logger:    logger,
		LogDriver: cfg.LogDriver,
		LogOpts:   cfg.LogOpts,
	})
	if err != nil {
		return nil, err
	}
	if err := d.networks.Reconcile(context.Background(), d.containers.Running()); err != nil {
		logger.Warn("reconcile networks", "err", err)
	}
	d.builder, err = builder.New(context.Background(), builder.Config{
		Root:    filepath.Join(cfg.DataRoot, "buildkit"),
		Runtime: rt.Path,
		Images:  d.images,
		// BuildKit's worker on berth's stores: one lease database,
		// one collector.
		Stores: &builder.Stores{
			Content:         cs,
			Snapshotter:     ss.Snapshotter(),
			SnapshotterName: leases.Snapshotter,
			Leases:          d.leases.Manager(nil),
			Namespace:       leases.Namespace,
			GC: func(ctx context.Context) error {
				_, err := d.images.GC(ctx)
				return err
			},
		},
		Sandboxes:     builder.NetworkSandboxes(d.networks),
		RegistryHosts: builder.RegistryHosts(d.images.RegistryConfig),
		GC:            cfg.Builder.GC,
		Logger:        logger,
	})
	if err != nil {
		return nil, err
	}
	// Garbage left by work a stop or crash cut short (issue 8 item 2);
	// not after the image database was found damaged and made anew: its
	// images' layers are kept for them to be pulled again.
	if len(d.images.Damage()) == 0 {
		if _, err := d.images.GC(context.Background()); err != nil {
			logger.Warn("garbage collection at start", "err", err)
		}
	}
	sys := system.New(system.Config{
		Version:        version.Version,
		APIVersion:     server.DefaultVersion,
		MinAPI:         server.MinVersion,
		GitCommit:      version.GitCommit,
		DataRoot:       cfg.DataRoot,
		Runtime:        rt,
		Debug:          cfg.Debug,
		Registry:       d.images.RegistryServiceConfigTyped,
		Images:         d.images,
		Containers:     d.containers,
		CgroupDriver:   "cgroupfs",
		Warnings:       append(apiWarnings(cfg), damageWarnings(d.images.Damage(), vols.Damage(), d.networks.Damage())...),
		WarningSources: []system.WarningSource{d.containers},
		LogDriver:      cfg.LogDriver,
		LogDrivers:     ctrlog.Drivers(),
	})
	d.server = server.New(server.Config{Version: version.Version, Logger: logger},
		systemrouter.New(sys, d.images),
		imagerouter.New(d.images),
		containerrouter.New(d.containers),
		volumerouter.New(vols),
		networkrouter.New(d.networks),
		eventsrouter.New(bus),
		systemrouter.NewDiskUsage(&system.DiskUsage{Images: d.images, Containers: d.containers, Volumes: vols, BuildCache: d.builder}),
		buildrouter.New(d.builder),
		swarmrouter.New(),
		pluginrouter.New(),
	)
	for _, h := range cfg.Hosts {
		l, err := d.listen(h)
		if err != nil {
			for _, l := range d.servers {
				l.Close()
			}
			return nil, err
		}
		d.servers = append(d.servers, l)
	}
	if cfg.Pidfile != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.Pidfile), 0o755); err == nil {
			_ = os.WriteFile(cfg.Pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
		}
	}
	for _, l := range d.servers {
		go func() { d.done <- d.server.Serve(l) }()
	}
	logger.Info("berthd started", "version", version.Version, "hosts", cfg.Hosts, "data-root", cfg.DataRoot)
	return d, nil
}

// lockDataRoot takes an exclusive lock so two daemons never share a data root.
func lockDataRoot(root string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(root, "berthd.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data root %s is in use by another berthd (lock %s): %w", root, f.Name(), err)
	}
	return f, nil
}

func (d *daemon) listen(host string) (net.Listener, error) {
	proto, addr, ok := strings.Cut(host, "://")
	if !ok {
		return nil, fmt.Errorf("invalid host %q: want unix:///path or tcp://host:port", host)
	}
	switch proto {
	case "unix":
		if err := os.MkdirAll(filepath.Dir(addr), 0o755); err != nil {
			return nil, err
		}
		if err := os.Remove(addr); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		l, err := net.Listen("unix", addr)
		if err != nil {
			return nil, err
		}
		if err := os.Chmod(addr, 0o660); err != nil {
			l.Close()
			return nil, err
		}
		if g, err := user.LookupGroup(d.cfg.Group); err == nil {
			if gid, err := strconv.Atoi(g.Gid); err == nil {
				_ = os.Chown(addr, 0, gid)
			}
		}
		return l, nil
	case "tcp":
		if !d.cfg.TLS && !d.cfg.TLSVerify {
			return nil, fmt.Errorf("refusing to listen on %s without TLS: an unprotected TCP socket gives root on this host to anyone who reaches it; pass --tlsverify --tlscacert --tlscert --tlskey", host)
		}
		if !d.cfg.TLSVerify && !d.cfg.NoClientVerify {
			return nil, fmt.Errorf("refusing to listen on %s with --tls but without --tlsverify: with no client certificate to check, anyone who reaches the port gets root on this host; pass --tlsverify --tlscacert (clients then need a certificate from that CA), or --tlsverify=false to serve it unauthenticated on purpose", host)
		}
		tcfg, err := d.tlsConfig()
		if err != nil {
			return nil, err
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		if !d.cfg.TLSVerify {
			d.log.Warn("!!! the API on this address checks no client certificate (--tlsverify=false): anyone who can reach it, a script in a browser on this host included, has root on this machine", "host", host)
		}
		return tls.NewListener(l, tcfg), nil
	}
	return nil, fmt.Errorf("invalid host %q: unsupported protocol %q", host, proto)
}

// apiWarnings are /info's warnings about the TCP sockets berthd serves,
// in dockerd's words: a socket without client verification gives root
// on this host to whoever reaches it. (Plain TCP is never served.)
func apiWarnings(cfg Config) []string {
	const why = `
         Access to the remote API is equivalent to root access on the host. Refer
         to the 'Docker daemon attack surface' section in the documentation for
         more information: https://docs.docker.com/go/attack-surface/`
	var out []string
	for _, h := range cfg.Hosts {
		if addr, ok := strings.CutPrefix(h, "tcp://"); ok && !cfg.TLSVerify {
			out = append(out, "WARNING: API is accessible on https://"+addr+" without TLS client verification."+why)
		}
	}
	return out
}

// damageWarnings are /info's warnings about the damaged records the
// services found at start (issue 13 item 9): each names its file and says
// what became of it.
func damageWarnings(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, m := range l {
			out = append(out, "WARNING: "+m)
		}
	}
	return out
}

func (d *daemon) tlsConfig() (*tls.Config, error) {
	if d.cfg.TLSCert == "" || d.cfg.TLSKey == "" {
		return nil, errors.New("TLS needs --tlscert and --tlskey")
	}
	cert, err := tls.LoadX509KeyPair(d.cfg.TLSCert, d.cfg.TLSKey)
	if err != nil {
		return nil, err
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if d.cfg.TLSVerify {
		if d.cfg.TLSCACert == "" {
			return nil, errors.New("--tlsverify needs --tlscacert")
		}
		pem, err := os.ReadFile(d.cfg.TLSCACert)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificates in %s", d.cfg.TLSCACert)
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// reload re-reads the registry settings from the config file (SIGHUP).
func (d *daemon) reload(configFile string) {
	c := defaultConfig()
	c.RegistryMirrors, c.InsecureRegistries = d.cfg.RegistryMirrors, d.cfg.InsecureRegistries
	if err := loadConfigFile(configFile, false, nil, &c); err != nil {
		d.log.Error("reload failed; keeping the old configuration", "err", err)
		return
	}
	hub, hosts := splitMirrors(c.RegistryMirrors, c.HostMirrors)
	d.images.SetRegistryConfig(image.RegistryConfig{Mirrors: hub, HostMirrors: hosts, Insecure: c.InsecureRegistries})
	d.log.Info("reloaded registry configuration", "mirrors", hub, "insecure", c.InsecureRegistries)
}

func (d *daemon) shutdown() error {
	// Ordinary requests get a moment to finish; long ones (wait, logs -f,
	// events) are cut: their containers keep running under their shims.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := d.server.Shutdown(ctx); err != nil {
		_ = d.server.Close()
	}
	for _, h := range d.cfg.Hosts {
		if p, ok := strings.CutPrefix(h, "unix://"); ok {
			_ = os.Remove(p)
		}
	}
	if d.cfg.Pidfile != "" {
		_ = os.Remove(d.cfg.Pidfile)
	}
	d.closeStores()
	d.log.Info("berthd stopped")
	return nil
}

func (d *daemon) closeStores() {
	if d.builder != nil {
		if err := d.builder.Close(); err != nil {
			d.log.Warn("close the builder", "err", err)
		}
	}
	if d.containers != nil {
		d.containers.Close()
	}
	if d.networks != nil {
		if d.containers != nil && len(runningOnly(d.containers.Running())) == 0 {
			_ = d.networks.CloseIdle()
		} else {
			_ = d.networks.Close()
		}
	}
	if d.images != nil {
		_ = d.images.Close()
	}
	if d.snapshots != nil {
		_ = d.snapshots.Close()
	}
	if d.leases != nil {
		_ = d.leases.Close()
	}
	if d.lock != nil {
		_ = d.lock.Close()
	}
}

// findHelper finds a berth binary that ships beside berthd (berth-shim),
// falling back to $PATH.
func findHelper(name string) (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found beside berthd or in $PATH: %w", name, err)
	}
	return p, nil
}

// findInit finds the init for --init: Debian's tini, if installed.
func findInit() string {
	for _, p := range []string{"/usr/bin/tini-static", "/usr/bin/tini", "/usr/bin/docker-init"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// kernelPrefix names the kernel objects (bridges, nftables table) of the
// daemon on dataRoot: "berth" for the default data root, and a prefix of
// its own for any other, so daemons side by side never share a bridge.
func kernelPrefix(dataRoot string) string {
	abs, err := filepath.Abs(dataRoot)
	if err != nil {
		abs = dataRoot
	}
	if abs == "/var/lib/berth" {
		return "berth"
	}
	sum := sha256.Sum256([]byte(abs))
	return "b" + hex.EncodeToString(sum[:])[:7]
}

func runningOnly(m map[string]bool) []string {
	var out []string
	for id, running := range m {
		if running {
			out = append(out, id)
		}
	}
	return out
}
