// Package snapshot keeps unpacked image layers and container root
// filesystems on overlayfs, behind containerd's core/snapshots interface.
//
// The snapshotter is containerd's own overlay snapshotter
// (plugins/snapshots/overlay), whose metadata (kinds, parents, labels) lives
// in a bbolt file; package snapshot adds what berth's image and container
// services need on top of it: layers named by their OCI chain ID, unpacking
// a layer tar in parallel with its siblings, mount data that fits the
// kernel's one-page limit, volatile mounts for `run --rm`.
//
// Layout under the store's root:
//
//	metadata.db               the snapshotter's metadata (bbolt)
//	snapshots/<n>/fs          a snapshot's files (a layer's diff, or a
//	                          container's upper dir), in overlayfs format
//	snapshots/<n>/work        an active snapshot's overlay work dir
//	unpack/apply-<random>/fs  a layer being unpacked (emptied at start)
//
// Naming: a committed layer is the snapshot named by its chain ID
// ("sha256:..."), with labels holding its diff ID and its size; a
// container's writable layer is the active snapshot keyed by the
// container's ID.
//
// Lifecycle of a layer: Apply unpacks the tar stream into a directory under
// unpack/ (no metadata, no transaction), verifies the stream's digest, flushes
// the filesystem, waits for the parent layer's commit if it is being
// unpacked in parallel, and then, in one metadata transaction, records the
// snapshot, moves the directory to snapshots/<id> and commits it under the
// chain ID: a committed layer exists only once complete, and a crash leaves
// at most a directory under unpack/ (or an unrecorded snapshots/<id>, which
// containerd's Cleanup removes at start). Earlier versions unpacked into an
// active snapshot keyed "apply-<random>", which NewStore still removes.
// Remove refuses (cerrdefs.ErrConflict) a layer another snapshot stands on.
//
// Lifecycle of a container snapshot: Prepare creates an active snapshot
// over a layer and returns the overlay Mount; the caller mounts it
// (Mount.Mount), runs the container, unmounts, and finally calls
// RemoveContainer.
//
// Earlier berth versions kept layers in layers/<chainID hex>/diff and
// containers in containers/<key>/{upper,work}; NewStore moves such a store
// into this layout once, by renames (see migrate.go).
package snapshot

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth/berth/internal/mountutil"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/core/snapshots/storage"
	"github.com/containerd/containerd/v2/plugins/snapshots/overlay"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// Labels berth puts on committed layers.
const (
	labelDiffID    = "berth.layer/diffid"
	labelSize      = "berth.layer/size"
	labelEphemeral = "berth.snapshot/ephemeral"
)

// Layer is an unpacked layer.
type Layer struct {
	// ChainID identifies the layer together with all layers below it.
	ChainID digest.Digest `json:"chainID"`
	// DiffID is the digest of the layer's uncompressed tar stream.
	DiffID digest.Digest `json:"diffID"`
	// Parent is the chain ID of the layer below, "" for a base layer.
	Parent digest.Digest `json:"parent,omitempty"`
	// Size is the number of bytes of regular file content in the layer.
	Size int64 `json:"size"`
	// Dir is the path of the layer's diff directory.
	Dir string `json:"-"`
}

// ChainID returns the OCI chain ID of a layer with the given diff ID on top
// of the layer whose chain ID is parent ("" for a base layer).
func ChainID(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return digest.NewDigestFromBytes(digest.SHA256, sha256sum(string(parent)+" "+string(diffID)))
}

func sha256sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// Store holds layers and container snapshots under one directory. It is safe
// for concurrent use; only one Store may be open on a root at a time.
type Store struct {
	root string
	sn   *snapshotter
	ms   *storage.MetaStore // sn's metadata, read for snapshot IDs
	// locks serializes Apply and Remove of one chain ID.
	locks keyLocks

	// commitMu guards committed, a channel closed (and replaced) whenever
	// a layer is committed: Apply waits on it for a parent being
	// unpacked in parallel.
	commitMu  sync.Mutex
	committed chan struct{}
}

// NewStore opens (creating if needed) the store at root, moves a store of
// berth's earlier layout into containerd's (logging what it moved to log,
// which may be nil), and removes the leftovers of Applys a crash cut short.
func NewStore(root string, log *slog.Logger) (*Store, error) {
	return newStore(root, log, mountOptions)
}

// mountOptions keep upper dirs plain diffs that TarDir can export (no
// redirect xattrs for renamed dirs, no data-less metacopy files), whatever
// the module defaults are. As under Docker on Debian, renaming a directory
// of a lower layer is then EXDEV (mv copies instead).
var mountOptions = []string{"redirect_dir=off", "metacopy=off"}

func newStore(root string, log *slog.Logger, mountOpts []string) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	ms, err := storage.NewMetaStore(filepath.Join(abs, "metadata.db"), func(o *bolt.Options) error {
		o.Timeout = 5 * time.Second
		o.NoFreelistSync = true
		o.FreelistType = bolt.FreelistMapType
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	osn, err := overlay.NewSnapshotter(abs,
		overlay.WithMetaStore(ms),
		overlay.WithMountOptions(mountOpts))
	if err != nil {
		ms.Close()
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	sn := &snapshotter{Snapshotter: osn, cleaner: osn.(snapshots.Cleaner), ms: ms, root: abs}
	s := &Store{root: abs, sn: sn, ms: ms, committed: make(chan struct{})}
	// Unfinished unpacks of an earlier run (see Apply).
	if err := mountutil.RemoveAll(s.tmpDir()); err != nil {
		sn.Close()
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	if err := os.Mkdir(s.tmpDir(), 0o700); err != nil {
		sn.Close()
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	markTopDir(s.snapshotsDir())
	markTopDir(s.tmpDir())
	ctx := context.Background()
	if err := s.migrate(ctx, log); err != nil {
		sn.Close()
		return nil, fmt.Errorf("snapshot store: migrate %s: %w", abs, err)
	}
	if err := s.removeApplyLeftovers(ctx); err != nil {
		sn.Close()
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	// Directories of snapshots whose removal a crash cut short (the
	// metadata went first).
	{
		if err := sn.Cleanup(ctx); err != nil {
			if !cerrdefs.IsNotFound(err) {
				sn.Close()
				return nil, fmt.Errorf("snapshot store: %w", err)
			}
			// NotFound: no snapshot was ever recorded, so containerd's
			// Cleanup looked at nothing. A crash during the very first
			// Prepare can still have left its directory (renamed to the ID
			// the uncommitted transaction took), and the next Prepare would
			// take the same ID and fail on it: every entry is unowned.
			if err := removeUnrecorded(filepath.Join(abs, "snapshots")); err != nil {
				sn.Close()
				return nil, fmt.Errorf("snapshot store: %w", err)
			}
		}
	}
	return s, nil
}

// removeUnrecorded removes every entry of dir (the snapshotter's
// snapshots/ while its metadata records none), never across a mount.
func removeUnrecorded(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		if err := mountutil.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the store's metadata.
func (s *Store) Close() error { return s.sn.Close() }

// Root returns the store's directory.
func (s *Store) Root() string { return s.root }

// Snapshotter returns the store as containerd's snapshots.Snapshotter (for
// BuildKit and other clients of containerd's interfaces). Layers are the
// committed snapshots named by chain ID, containers the active snapshots
// keyed by container ID: leave those to Store's own methods.
func (s *Store) Snapshotter() snapshots.Snapshotter { return s.sn }

func (s *Store) snapshotsDir() string { return filepath.Join(s.root, "snapshots") }

// tmpDir holds Apply's unpacks in progress, on the snapshots' filesystem.
func (s *Store) tmpDir() string { return filepath.Join(s.root, "unpack") }

func validDigest(d digest.Digest, what string) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("invalid %s %q: %w", what, d, cerrdefs.ErrInvalidArgument)
	}
	return nil
}

// Get returns the layer with the given chain ID, or an error of class
// cerrdefs.ErrNotFound.
func (s *Store) Get(ctx context.Context, chainID digest.Digest) (Layer, error) {
	if err := ctx.Err(); err != nil {
		return Layer{}, err
	}
	if err := validDigest(chainID, "chain ID"); err != nil {
		return Layer{}, err
	}
	info, err := s.sn.Stat(ctx, chainID.String())
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return Layer{}, fmt.Errorf("layer %s: %w", chainID.Encoded(), cerrdefs.ErrNotFound)
		}
		return Layer{}, err
	}
	if info.Kind != snapshots.KindCommitted {
		return Layer{}, fmt.Errorf("layer %s: %w", chainID.Encoded(), cerrdefs.ErrNotFound)
	}
	l, err := layerOf(info)
	if err != nil {
		return Layer{}, err
	}
	l.Dir, err = s.dir(ctx, info.Name)
	return l, err
}

// dir returns the fs directory of snapshot key.
func (s *Store) dir(ctx context.Context, key string) (string, error) {
	var id string
	err := s.ms.WithTransaction(ctx, false, func(ctx context.Context) error {
		var err error
		id, _, _, err = storage.GetInfo(ctx, key)
		return err
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(s.snapshotsDir(), id, "fs"), nil
}

func layerOf(info snapshots.Info) (Layer, error) {
	l := Layer{ChainID: digest.Digest(info.Name), Parent: digest.Digest(info.Parent)}
	l.DiffID = digest.Digest(info.Labels[labelDiffID])
	if info.Labels[labelSize] != "" {
		n, err := strconv.ParseInt(info.Labels[labelSize], 10, 64)
		if err != nil {
			return Layer{}, fmt.Errorf("layer %s: size label %q: %w", info.Name, info.Labels[labelSize], cerrdefs.ErrInternal)
		}
		l.Size = n
	}
	return l, nil
}

// List returns all layers, sorted by chain ID.
func (s *Store) List(ctx context.Context) ([]Layer, error) {
	var out []Layer
	err := s.walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		if info.Kind != snapshots.KindCommitted {
			return nil
		}
		if _, err := digest.Parse(info.Name); err != nil {
			return nil // not one of berth's layers
		}
		l, err := layerOf(info)
		if err != nil {
			return err
		}
		if l.Dir, err = s.dir(ctx, info.Name); err != nil {
			return err
		}
		out = append(out, l)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ChainID < out[j].ChainID })
	return out, err
}

// Remove deletes the layer with the given chain ID. It fails with
// cerrdefs.ErrNotFound if there is no such layer and with
// cerrdefs.ErrConflict if another layer or a container snapshot stands on
// it.
func (s *Store) Remove(ctx context.Context, chainID digest.Digest) error {
	if err := validDigest(chainID, "chain ID"); err != nil {
		return err
	}
	unlock, err := s.locks.lock(ctx, chainID.String())
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := s.Get(ctx, chainID); err != nil {
		return err
	}
	if err := s.sn.Remove(ctx, chainID.String()); err != nil {
		return mapErr(fmt.Errorf("remove layer %s: %w", chainID, err))
	}
	return nil
}

// mapErr gives containerd's snapshot errors berth's classes: a snapshot
// something stands on (FailedPrecondition) or a key taken (AlreadyExists)
// is a Conflict.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case cerrdefs.IsFailedPrecondition(err), cerrdefs.IsAlreadyExists(err):
		return fmt.Errorf("%w: %w", err, cerrdefs.ErrConflict)
	}
	return err
}

// removeApplyLeftovers removes the active snapshots of Applys a crash cut
// short.
func (s *Store) removeApplyLeftovers(ctx context.Context) error {
	var keys []string
	err := s.walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		if info.Kind != snapshots.KindCommitted && strings.HasPrefix(info.Name, applyPrefix) {
			keys = append(keys, info.Name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, k := range keys {
		if err := s.sn.Remove(ctx, k); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

const applyPrefix = "apply-"

func randomKey(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// notifyCommitted wakes every Apply waiting for a parent.
func (s *Store) notifyCommitted() {
	s.commitMu.Lock()
	close(s.committed)
	s.committed = make(chan struct{})
	s.commitMu.Unlock()
}

// waitLayer waits until layer chainID is committed or ctx is done.
func (s *Store) waitLayer(ctx context.Context, chainID digest.Digest) error {
	for {
		s.commitMu.Lock()
		ch := s.committed
		s.commitMu.Unlock()
		_, err := s.Get(ctx, chainID)
		if err == nil || !cerrdefs.IsNotFound(err) {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for parent layer %s: %w", chainID, ctx.Err())
		}
	}
}

// keyLocks is a set of mutexes by key, created on demand and dropped when
// unused. Waiting for a lock honours context cancellation.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	ch      chan struct{} // holds a token while locked
	waiters int
}

func (k *keyLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = make(map[string]*keyLock)
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.waiters++
	k.mu.Unlock()

	release := func() {
		k.mu.Lock()
		l.waiters--
		if l.waiters == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// walk is the snapshotter's Walk, with a store that never held a snapshot
// (whose metadata has no buckets yet) walked as empty.
func (s *Store) walk(ctx context.Context, fn snapshots.WalkFunc) error {
	err := s.sn.Walk(ctx, fn)
	if cerrdefs.IsNotFound(err) {
		var found bool
		_ = s.sn.Walk(ctx, func(context.Context, snapshots.Info) error { found = true; return nil })
		if !found {
			return nil
		}
	}
	return err
}
