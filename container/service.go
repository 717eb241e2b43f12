package container

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	volumetypes "github.com/moby/moby/api/types/volume"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/container/logger"
	"github.com/berth/berth/image"
	"github.com/berth/berth/internal/osutil"
	"github.com/berth/berth/runtime"
	"github.com/berth/berth/runtime/shim"
	rtspec "github.com/berth/berth/runtime/spec"
	"github.com/berth/berth/snapshot"
)

// Images is what the container service needs from the image service.
type Images interface {
	Resolve(ctx context.Context, nameOrID string) (*image.Record, error)
	Config(ctx context.Context, r *image.Record) (*image.ImageConfig, error)
	// Descendants: the images given and every image built on them.
	Descendants(ids []digest.Digest) (map[digest.Digest]bool, error)
	// ReleaseLayer: a removed container no longer stands on layer chain
	// (collects the layers of an image removed while it was in use).
	ReleaseLayer(ctx context.Context, chain digest.Digest)
	// Commit stores a container's layer as a new image (docker commit).
	Commit(ctx context.Context, req image.CommitRequest) (digest.Digest, error)
}

// Config wires a Service.
type Config struct {
	Root     string // persistent: records, logs, hosts files
	ExecRoot string // runtime: bundles, shim sockets, rootfs mounts
	Runtime  string // runc binary
	ShimPath string // berth-shim binary
	// TaskRuntime runs the containers' tasks; nil: berth-shims at
	// ShimPath running Runtime.
	TaskRuntime runtime.Runtime
	InitPath    string // for --init
	Images      Images
	Snapshots   *snapshot.Store
	Volumes     Volumes
	Network     Network // nil: containers get an isolated namespace with loopback only
	// Store is the index New fills with the restored containers; nil:
	// a new one. Services made before this one hold it (see Store).
	Store *Store
	// Events receives the service's events; nil: none are published.
	Events      EventPublisher
	Logger      *slog.Logger
	CgroupV2    bool
	CgroupRoots map[string]string // v1 controller → mount point; v2: "" → /sys/fs/cgroup
	// LogDriver and LogOpts are the daemon's default log configuration
	// (daemon.json log-driver, log-opts); "" is json-file.
	LogDriver string
	LogOpts   map[string]string
}

// Volumes is what the container service needs from the volume service.
// A container holds its volumes from create (Acquire) to remove (Release);
// Unmount at stop lets tmpfs-backed volumes go while keeping the hold.
type Volumes interface {
	Create(ctx context.Context, name, driver string, labels, opts map[string]string) (*volumetypes.Volume, error)
	Acquire(ctx context.Context, name, containerID string) (string, error)
	Unmount(ctx context.Context, name, containerID string) error
	Release(ctx context.Context, name, containerID string) error
	Remove(ctx context.Context, name string, force bool) error
	CopyUp(ctx context.Context, name, srcDir string) error
	Reconcile(ctx context.Context, state func(containerID string) (exists, running bool), holders map[string][]string) error
}

// Service manages containers.
type Service struct {
	cfg Config
	log *slog.Logger

	// Lock order (issue 8 item 6); a lock is only ever taken while
	// holding those above it, never the other way:
	//
	//  1. rootfsLocks (HoldRootfs, lockRootfs): a start, cp, export or
	//     commit holds its container's for the whole operation.
	//  2. Service.mu (Store.mu): the name and ID maps, corrupt, Links.
	//  3. Container.mu, one container's at a time: never hold one
	//     container's while taking another's (generateSpec looks its
	//     --network/--pid/--ipc donors up before taking c.mu).
	//  4. network.Service.mu (Setup and Teardown run under c.mu; the
	//     network service looks containers up before taking its lock).
	//  5. Leaves, taken under any of the above and holding nothing:
	//     execStore.mu, Exec.mu, background.mu, rootfsLocks.mu,
	//     cgroupParents, the shim client (s.task, runtime calls).
	//
	// Counts, Running, ImageUsage and List take 2 then 3 for each
	// container; so nothing may wait for 2 while holding 3.
	*Store // holds mu, the service lock (2. above), and the maps

	execs   *execStore
	network Network
	events  EventPublisher
	// rt runs the containers' tasks (under their shims); rtClose ends
	// what it keeps (a spare shim).
	rt      runtime.Runtime
	rtClose func()

	rootfsLocks rootfsLocks

	// cgroupParents: container ID → --cgroup-parent, for cgroupsPath.
	// A leaf: read under any lock.
	cgroupParents sync.Map

	// corrupt holds the containers whose records are unreadable, by ID,
	// with the reason (see corrupt.go). Guarded by mu.
	corrupt map[string]error
	// rebuilt says which damaged records restore rebuilt (corrupt.go).
	rebuilt []string

	// ctx ends at Close: monitors stop watching their shims, leaving the
	// containers running for the next berthd.
	ctx    context.Context
	cancel context.CancelFunc
	// bg counts the service's own goroutines and timers (monitors,
	// health monitors, restart timers, auto-removals: see background.go);
	// Close waits for them.
	bg         sync.WaitGroup
	background background

	// specHook (tests) runs in generateSpec with c.mu held.
	specHook func(c *Container)
}

// Close stops watching containers. They keep running under their shims.
func (s *Service) Close() {
	s.cancel()
	s.closeBackground()
	s.rtClose()
	s.waitBackground(15 * time.Second)
}

// New loads every container record and reconnects to the shims of the
// running ones.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// Containers' records, runc's state and the containers' mounted root
	// filesystems (<exec-root>/c/<id>/rootfs): root's only.
	if err := osutil.MkdirPrivate(cfg.ExecRoot, osutil.ExecRootMode); err != nil {
		return nil, err
	}
	for _, d := range []string{cfg.Root, filepath.Join(cfg.ExecRoot, "runc"), filepath.Join(cfg.ExecRoot, "c")} {
		if err := osutil.MkdirPrivate(d, osutil.PrivateMode); err != nil {
			return nil, err
		}
	}
	st := cfg.Store
	if st == nil {
		st = NewStore()
	}
	s := &Service{cfg: cfg, log: cfg.Logger, Store: st, execs: newExecStore(), events: cfg.Events}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if cfg.TaskRuntime != nil {
		s.rt, s.rtClose = cfg.TaskRuntime, func() {}
	} else {
		r := shim.NewRuntime(cfg.ShimPath, cfg.Runtime, s.runcRoot())
		s.rt, s.rtClose = r, r.Close
	}
	s.network = cfg.Network
	s.removeViewLeftovers()
	removals, monitors, err := s.restore(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	for _, c := range s.byID {
		s.noteCgroupParent(c)
	}
	if cfg.Volumes != nil {
		// Volumes know which containers hold them; forget the holds of
		// containers that are gone, and find again those a damaged volume
		// record lost (the containers' records name their volumes).
		states := map[string]bool{}
		holders := map[string][]string{}
		for id, c := range s.byID {
			states[id] = c.State.Running
			for _, m := range c.Mounts {
				if m.Type == mount.TypeVolume && m.Name != "" {
					holders[m.Name] = append(holders[m.Name], id)
				}
			}
		}
		if err := cfg.Volumes.Reconcile(ctx, func(id string) (bool, bool) {
			running, ok := states[id]
			return ok, running
		}, holders); err != nil {
			s.log.Warn("reconcile volumes", "err", err)
		}
	}
	for _, f := range removals {
		f()
	}
	// Exec processes run on under the shims: know them again.
	for _, c := range s.byID {
		if c.State.Running {
			s.restoreExecs(ctx, c)
		}
	}
	for _, f := range monitors {
		s.goBG(f)
	}
	return s, nil
}

func (s *Service) dir(id string) string { return filepath.Join(s.cfg.Root, id) }

// stagingPrefix names the directories Create makes before the record is
// complete (stagingDir); restore removes any a crash left.
const stagingPrefix = ".create-"

// trashPrefix names the directories Remove sets aside to delete.
const trashPrefix = ".remove-"

func (s *Service) stagingDir(id string) string { return filepath.Join(s.cfg.Root, stagingPrefix+id) }

// stateDir is short on purpose: unix socket paths are limited to 108 bytes.
func (s *Service) stateDir(id string) string { return filepath.Join(s.cfg.ExecRoot, "c", id[:16]) }
func (s *Service) rootfs(id string) string   { return filepath.Join(s.stateDir(id), "rootfs") }
func (s *Service) runcRoot() string          { return filepath.Join(s.cfg.ExecRoot, "runc") }

// CreateRequest is what POST /containers/create carries.
type CreateRequest struct {
	Name          string
	Config        *container.Config
	HostConfig    *container.HostConfig
	NetworkConfig *network.NetworkingConfig
	// MacAddress is Config.MacAddress of clients before API 1.44.
	MacAddress string
	// Platform is the ?platform= of API 1.41 and later: the image must
	// be of it.
	Platform *ocispec.Platform
}

// requestedMAC is the MAC address the request asks for on its network.
func (r CreateRequest) requestedMAC() string {
	if r.MacAddress != "" {
		return r.MacAddress
	}
	if r.NetworkConfig != nil {
		for _, ep := range r.NetworkConfig.EndpointsConfig {
			if ep != nil && len(ep.MacAddress) > 0 {
				return ep.MacAddress.String()
			}
		}
	}
	return ""
}

// Create makes a container record and its writable layer.
func (s *Service) Create(ctx context.Context, req CreateRequest) (string, []string, error) {
	if req.Config == nil {
		req.Config = &container.Config{}
	}
	if req.HostConfig == nil {
		req.HostConfig = &container.HostConfig{}
	}
	if req.Config.Image == "" {
		return "", nil, cerrdefs.ErrInvalidArgument.WithMessage("config cannot be empty in order to create a container")
	}
	if err := validateNetMode(req.Config, req.HostConfig, req.requestedMAC()); err != nil {
		return "", nil, err
	}
	if err := validateHealthcheck(req.Config.Healthcheck); err != nil {
		return "", nil, err
	}
	if rt := req.HostConfig.Runtime; rt != "" && rt != "runc" {
		return "", nil, invalidf("Unknown runtime specified %s", rt)
	}
	if err := validateHostConfig(req.HostConfig); err != nil {
		return "", nil, err
	}
	// The daemon's default fills in the log configuration, which is
	// then checked, as dockerd does; inspect shows the result.
	lc := &req.HostConfig.LogConfig
	lc.Type, lc.Config = logger.MergeDefaults(lc.Type, lc.Config, s.cfg.LogDriver, s.cfg.LogOpts)
	if err := logger.Validate(lc.Type, lc.Config); err != nil {
		return "", nil, cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	defaultNet := req.HostConfig.NetworkMode == "" || req.HostConfig.NetworkMode == "default"
	if defaultNet {
		req.HostConfig.NetworkMode = "bridge"
	}
	// Docker records the containers whose namespaces are shared by ID (so
	// a rename keeps them); one not found is reported at start.
	hc := req.HostConfig
	if hc.NetworkMode.IsContainer() {
		if other, err := s.Get(hc.NetworkMode.ConnectedContainer()); err == nil {
			hc.NetworkMode = container.NetworkMode("container:" + other.ID)
		}
	}
	// A PID or IPC donor must exist now (dockerd: 400).
	if hc.IpcMode.IsContainer() {
		other, err := s.Get(hc.IpcMode.Container())
		if err != nil {
			return "", nil, cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		hc.IpcMode = container.IpcMode("container:" + other.ID)
	}
	if hc.PidMode.IsContainer() {
		other, err := s.Get(hc.PidMode.Container())
		if err != nil {
			return "", nil, cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		hc.PidMode = container.PidMode("container:" + other.ID)
	}
	if nc := req.NetworkConfig; nc != nil {
		// The docker CLI names the default network "default".
		if ep, ok := nc.EndpointsConfig["default"]; ok {
			delete(nc.EndpointsConfig, "default")
			if _, dup := nc.EndpointsConfig["bridge"]; !dup {
				nc.EndpointsConfig["bridge"] = ep
			}
		}
	}
	if mac := req.MacAddress; mac != "" {
		// The config's MAC (API < 1.44) is the endpoint's on the
		// container's network, as dockerd 25+ moves it.
		hw, err := net.ParseMAC(mac)
		if err != nil {
			return "", nil, invalidf("%s is not a valid mac address", mac)
		}
		name := string(req.HostConfig.NetworkMode)
		if req.NetworkConfig == nil {
			req.NetworkConfig = &network.NetworkingConfig{}
		}
		if req.NetworkConfig.EndpointsConfig == nil {
			req.NetworkConfig.EndpointsConfig = map[string]*network.EndpointSettings{}
		}
		ep := req.NetworkConfig.EndpointsConfig[name]
		if ep == nil {
			ep = &network.EndpointSettings{}
			req.NetworkConfig.EndpointsConfig[name] = ep
		}
		if len(ep.MacAddress) == 0 {
			ep.MacAddress = network.HardwareAddr(hw)
		}
	}
	if s.network != nil {
		// An unknown network is found out at start, as in Docker (a 404
		// here would make the docker CLI pull the image).
		if err := s.network.Validate(ctx, NetworkRequest{Name: strings.TrimPrefix(req.Name, "/"), Config: req.Config, HostConfig: req.HostConfig, Networking: req.NetworkConfig}); err != nil && !cerrdefs.IsNotFound(err) {
			return "", nil, err
		}
	}
	img, err := s.cfg.Images.Resolve(ctx, req.Config.Image)
	if err != nil {
		return "", nil, err
	}
	imgCfg, err := s.cfg.Images.Config(ctx, img)
	if err != nil {
		return "", nil, err
	}
	if err := matchPlatform(req.Config.Image, req.Platform, imgCfg); err != nil {
		return "", nil, err
	}
	links, err := s.resolveLinks(req.HostConfig)
	if err != nil {
		return "", nil, err
	}
	merged, err := rtspec.MergeConfig(req.Config, &imgCfg.Config)
	if err != nil {
		return "", nil, err
	}
	merged.Image = req.Config.Image
	// Everything the spec would reject at start (capabilities, ulimits,
	// devices, sysctls...) is rejected now, as Docker does at create.
	// The namespaces of other containers are looked up at start.
	dryNetNS, dryNS := "", map[specs.LinuxNamespaceType]string{}
	if req.HostConfig.NetworkMode.IsContainer() {
		dryNetNS = "/proc/self/ns/net"
	}
	if req.HostConfig.PidMode.IsContainer() {
		dryNS[specs.PIDNamespace] = "/proc/self/ns/pid"
	}
	if req.HostConfig.IpcMode.IsContainer() {
		dryNS[specs.IPCNamespace] = "/proc/self/ns/ipc"
	}
	if _, err := rtspec.Generate(rtspec.Input{
		ID: newID(), Config: merged, HostConfig: req.HostConfig, DryRun: true, NetNSPath: dryNetNS, NSPaths: dryNS,
		CgroupsPath: "/berth/validate", InitPath: s.cfg.InitPath,
	}); err != nil {
		return "", nil, err
	}
	warnings := rtspec.CreateDefaults(req.HostConfig, nil)
	path, args := commandLine(merged)
	c := newContainer()
	c.ID = newID()
	c.Created = time.Now().UTC()
	c.Config = merged
	c.HostConfig = req.HostConfig
	if c.HostConfig.Runtime == "" {
		c.HostConfig.Runtime = "runc"
	}
	c.DefaultNetworkMode = defaultNet
	c.NetworkConfig = req.NetworkConfig
	c.Image = img.ID
	c.ImageName = req.Config.Image
	c.TopChain = img.TopChain
	c.Path, c.Args = path, args
	c.State.Status = container.StateCreated
	for _, l := range links {
		c.Links = append(c.Links, LegacyLink{ChildID: l.child.ID, Alias: l.alias})
	}
	if c.Config.Hostname == "" {
		if c.HostConfig.NetworkMode.IsHost() {
			// The host's network, the host's name, as in Docker.
			c.Config.Hostname, _ = os.Hostname()
		} else {
			c.Config.Hostname = c.ID[:12]
		}
	}

	s.mu.Lock()
	name, err := s.reserveNameLocked(req.Name, c.ID)
	s.mu.Unlock()
	if err != nil {
		return "", nil, err
	}
	c.Name = name
	// The container's directory is made under a staging name and renamed
	// into place with its record: a crash never leaves a directory
	// without one (restore removes staging directories).
	staged := s.stagingDir(c.ID)
	ok := false
	defer func() {
		if !ok {
			s.mu.Lock()
			delete(s.byName, name)
			s.mu.Unlock()
			_ = s.cfg.Snapshots.RemoveContainer(context.WithoutCancel(ctx), c.ID)
			_ = os.RemoveAll(staged)
			_ = os.RemoveAll(s.dir(c.ID))
		}
	}()
	prepare := s.cfg.Snapshots.Prepare
	if c.HostConfig.AutoRemove {
		prepare = s.cfg.Snapshots.PrepareEphemeral
	}
	if _, err := prepare(ctx, c.ID, img.TopChain); err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(staged, 0o700); err != nil {
		return "", nil, err
	}
	if c.HostConfig.LogConfig.Type == logger.JSONFile {
		// Only json-file's path is shown (dockerd's LogPath): the other
		// drivers' files are theirs (see logFile).
		c.LogPath = filepath.Join(s.dir(c.ID), c.ID+"-json.log")
	}
	if err := s.setupMounts(ctx, c, imgCfg); err != nil {
		return "", nil, err
	}
	c.mu.Lock()
	err = c.save(staged)
	c.mu.Unlock()
	if err != nil {
		return "", nil, err
	}
	if err := os.Rename(staged, s.dir(c.ID)); err != nil {
		return "", nil, err
	}
	if !c.HostConfig.AutoRemove {
		if err := osutil.SyncDir(s.cfg.Root); err != nil {
			return "", nil, err
		}
	}
	s.noteCgroupParent(c)
	s.mu.Lock()
	s.byID[c.ID] = c
	s.mu.Unlock()
	ok = true
	s.emit(c, "create", nil)
	if warnings == nil {
		warnings = []string{}
	}
	return c.ID, warnings, nil
}

func (s *Service) reserveNameLocked(name, id string) (string, error) {
	if name == "" {
		for i := 0; ; i++ {
			n := "/" + randomName(i)
			if _, taken := s.byName[n]; !taken {
				s.byName[n] = id
				return n, nil
			}
		}
	}
	if !validName.MatchString(name) {
		return "", cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name))
	}
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	if other, taken := s.byName[name]; taken {
		return "", cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", name, other))
	}
	s.byName[name] = id
	return name, nil
}

// commandLine is the merged config's entrypoint and cmd as one command.
func commandLine(c *container.Config) (string, []string) {
	all := append(append([]string{}, c.Entrypoint...), c.Cmd...)
	if len(all) == 0 {
		return "", nil
	}
	return all[0], all[1:]
}

// waitChange returns the channel closed at c's next state change.
func (c *Container) waitChange() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// signalByName parses a signal name or number ("SIGTERM", "TERM", "15").
func signalByName(s string) (syscall.Signal, error) {
	if s == "" {
		return syscall.SIGTERM, nil
	}
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && fmt.Sprint(n) == s {
		if n <= 0 || n > 64 {
			return 0, cerrdefs.ErrInvalidArgument.WithMessage("Invalid signal: " + s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(strings.TrimPrefix(strings.ToUpper(s), "SIG"))
	if sig, ok := signals[name]; ok {
		return sig, nil
	}
	return 0, cerrdefs.ErrInvalidArgument.WithMessage("Invalid signal: " + s)
}

var signals = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "BUS": syscall.SIGBUS, "CHLD": syscall.SIGCHLD,
	"CONT": syscall.SIGCONT, "FPE": syscall.SIGFPE, "HUP": syscall.SIGHUP, "ILL": syscall.SIGILL,
	"INT": syscall.SIGINT, "IO": syscall.SIGIO, "KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE,
	"PROF": syscall.SIGPROF, "PWR": syscall.SIGPWR, "QUIT": syscall.SIGQUIT, "SEGV": syscall.SIGSEGV,
	"STOP": syscall.SIGSTOP, "SYS": syscall.SIGSYS, "TERM": syscall.SIGTERM, "TRAP": syscall.SIGTRAP,
	"TSTP": syscall.SIGTSTP, "TTIN": syscall.SIGTTIN, "TTOU": syscall.SIGTTOU, "URG": syscall.SIGURG,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "VTALRM": syscall.SIGVTALRM, "WINCH": syscall.SIGWINCH,
	"XCPU": syscall.SIGXCPU, "XFSZ": syscall.SIGXFSZ,
}

// task returns c's runtime.Task: the one of its last start (or found
// again by restore). It takes no lock: callers may hold c.mu.
func (s *Service) task(c *Container) runtime.Task {
	if b := c.task.Load(); b != nil {
		return b.t
	}
	return noTask{id: c.ID}
}
