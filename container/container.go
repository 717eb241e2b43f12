// Package container is berth's container service: the lifecycle of
// containers (create, start, stop, kill, wait, restart, remove), their
// records on disk, attach, exec and logs. Each running container has a
// berth-shim (package runtime/shim) that outlives berthd; this service
// talks to it and reconnects after a restart.
//
// Lifecycle of a container:
//
//	create  → record written (State "created"), writable layer prepared
//	start   → rootfs mounted, OCI bundle written, shim spawned, attachers
//	          connected, runc run; State "running"
//	exit    → the shim's wait answers; rootfs unmounted; State "exited";
//	          restart policy or auto-remove applied
//	remove  → (stopped) writable layer, logs and record deleted
package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/opencontainers/go-digest"

	"github.com/berth/berth/internal/osutil"
)

// State is a container's run state, persisted with it.
type State struct {
	Status       container.ContainerState
	Running      bool
	Paused       bool
	Restarting   bool
	OOMKilled    bool
	Dead         bool
	Pid          int
	ExitCode     int
	Error        string
	StartedAt    time.Time
	FinishedAt   time.Time
	RemovalReady bool `json:",omitempty"`
	// Health: the healthcheck's state (see health.go), kept across
	// restarts of the container and of berthd.
	Health *container.Health `json:",omitempty"`
}

// Container is one container's record. Fields are guarded by mu; the
// record on disk is rewritten atomically on every change.
type Container struct {
	mu sync.Mutex
	// task is the runtime's handle on the container's task, from its last
	// start or restore (Service.task); read without mu.
	task atomic.Pointer[taskBox]

	ID         string
	Name       string // with Docker's leading slash
	Created    time.Time
	Path       string
	Args       []string
	Config     *container.Config
	HostConfig *container.HostConfig
	// DefaultNetworkMode: the create request named no network mode (or
	// "default"); HostConfig says "bridge", which it means.
	DefaultNetworkMode bool                      `json:",omitempty"`
	NetworkConfig      *network.NetworkingConfig `json:",omitempty"`
	Image              digest.Digest
	ImageName          string
	TopChain           digest.Digest
	State              State
	RestartCount       int
	HasBeenStarted     bool
	ManuallyStopped    bool
	LogPath            string
	Mounts             []container.MountPoint
	// NamedFrom: the destinations of the named volumes taken from another
	// container with --volumes-from (kept by rm -v, as named volumes are).
	NamedFrom []string `json:",omitempty"`
	// Links are the legacy links this container holds (links.go). They
	// are guarded by the service's mu, written with mu held too.
	Links []LegacyLink `json:",omitempty"`
	// EtcFrom: the container whose network namespace this one joined
	// (--network container:X) at its last start; its /etc/hosts,
	// /etc/hostname and /etc/resolv.conf are this one's, as in dockerd.
	EtcFrom string   `json:",omitempty"`
	ExecIDs []string `json:"-"`
	// linkHosts are the /etc/hosts lines of the links, found at start
	// (generateSpec) for writeEtcFiles.
	linkHosts string
	// CommitPaused: a commit froze the container (see commitpause.go);
	// commitPauses counts the commits sharing that pause.
	CommitPaused bool `json:",omitempty"`
	// RemoveVolumes: a removal under way (State.Status "removing") takes
	// the anonymous volumes too (rm -v); a restart finishes it so.
	RemoveVolumes bool `json:",omitempty"`
	commitPauses  int
	// exits counts the exits seen (handleExit), lastExitCode is the
	// last one's code: waits tell an exit the restart policy followed
	// with a new start.
	exits        int
	lastExitCode int
	// restartBackoff is the restart policy's last delay: doubled at each
	// restart, back to the first after a run of 10 s or more, and not
	// kept across berthd's restarts (dockerd's restart manager).
	restartBackoff time.Duration

	// changed is closed and replaced on every state change: waiters block
	// on it instead of polling.
	changed chan struct{}
	removed bool
	// starting: a start is under way (beginStart to its end); removing: a
	// removal is under way and no start may begin. Remove and Stop wait
	// out a start under way, so that none completes behind them (a rm -f
	// racing a restart by policy deleted the directories a start was
	// writing into and left its shim running).
	starting bool
	removing bool
	// attachers wait for the container to start.
	pending []*pendingAttach
	// health is the running health monitor, if any (health.go).
	health *healthMonitor
	// copyPath is the copy of the record in the state directory (see
	// corrupt.go), once a start made one: save refreshes it, so that a
	// record rebuilt from it has the exit, a stop, a rename, an update.
	copyPath string
}

func newContainer() *Container {
	return &Container{changed: make(chan struct{})}
}

// notifyLocked wakes everyone waiting for a change. Call with mu held.
func (c *Container) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// ShortID is the 12-character form.
func (c *Container) ShortID() string { return c.ID[:12] }

const recordName = "config.v2.json"

// save writes the record atomically, then refreshes its copy in the
// state directory if there is one. Call with mu held.
func (c *Container) save(dir string) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if c.HostConfig != nil && c.HostConfig.AutoRemove {
		// A --rm container does not outlive a crash (restore removes it):
		// its record is never worth an fsync.
		err = osutil.ReplaceFile(filepath.Join(dir, recordName), b)
	} else {
		err = osutil.WriteFileAtomic(filepath.Join(dir, recordName), b)
	}
	if err == nil && c.copyPath != "" {
		// A copy that cannot be refreshed goes: no rebuild is better
		// than one that brings back an old state.
		if osutil.ReplaceFile(c.copyPath, b) != nil {
			_ = os.Remove(c.copyPath)
			c.copyPath = ""
		}
	}
	return err
}

func loadContainer(dir string) (*Container, error) {
	b, err := os.ReadFile(filepath.Join(dir, recordName))
	if err != nil {
		return nil, err
	}
	c := newContainer()
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return c, nil
}
