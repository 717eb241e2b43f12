package container

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"
	volumetypes "github.com/moby/moby/api/types/volume"
	"github.com/opencontainers/go-digest"

	"github.com/berth/berth/image"
	"github.com/berth/berth/internal/osutil"
	"github.com/berth/berth/runtime"
	"github.com/berth/berth/runtime/shim"
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
	s.removeStrayStateDirs(ctx)
	// Exec processes run on under the shims: know them again.
	// A shim that is slow to answer is waited for a while; one that lives
	// but stays deaf keeps only its container, not its exec records.
	for _, c := range s.byID {
		if c.State.Running {
			ectx, cancel := context.WithTimeout(ctx, 20*time.Second)
			s.restoreExecs(ectx, c)
			cancel()
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
