// Package snapshot keeps unpacked image layers and container root
// filesystems on overlayfs.
//
// Layout under the store's root:
//
//	layers/<chainID hex>/diff/        the layer's files, in overlayfs format
//	layers/<chainID hex>/layer.json   chainID, diffID, parent chainID, size
//	containers/<key>/{upper,work}/    a container's writable layer
//	containers/<key>/container.json   the container's parent chainID
//	l/<short id>                      short symlinks to layers' diff dirs, for
//	                                  mount option strings that must fit a page
//	tmp/                              work in progress; emptied by NewStore
//
// Lifecycle of a layer: Apply unpacks a tar stream into a fresh directory under
// tmp/, verifies the stream's digest, writes layer.json, flushes the
// filesystem and renames the directory into layers/. A layer directory
// therefore exists only once complete; a crash leaves at most junk under tmp/,
// which the next NewStore deletes. Layers are immutable until Remove, which
// renames the directory back under tmp/ before deleting it, so a crash never
// leaves a half-removed layer visible. Each layer's diff dir holds only that
// layer's changes: layers can be applied in any order and in parallel.
//
// Lifecycle of a container snapshot: Prepare creates an upper and work dir
// over a chain of layers and returns the overlay Mount; the caller mounts
// it (Mount.Mount), runs the container, unmounts, and finally calls
// RemoveContainer. Layers used by a container snapshot cannot be removed.
package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/berth/berth/internal/osutil"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
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
	// Dir is the path of the layer's diff directory (not stored).
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
	root  string
	locks keyLocks
	// refMu orders Prepare against layer Remove, so a layer in use by a new
	// container snapshot is never removed under it.
	refMu sync.Mutex
}

// NewStore opens (creating if needed) the store at root and deletes
// leftovers of interrupted work under root/tmp.
func NewStore(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	s := &Store{root: abs}
	if err := os.RemoveAll(s.tmpDir()); err != nil {
		return nil, fmt.Errorf("snapshot store: clean tmp: %w", err)
	}
	for _, d := range []string{s.tmpDir(), s.layersDir(), s.containersDir(), s.linksDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("snapshot store: %w", err)
		}
	}
	return s, nil
}

// Root returns the store's directory.
func (s *Store) Root() string { return s.root }

func (s *Store) tmpDir() string        { return filepath.Join(s.root, "tmp") }
func (s *Store) layersDir() string     { return filepath.Join(s.root, "layers") }
func (s *Store) containersDir() string { return filepath.Join(s.root, "containers") }
func (s *Store) linksDir() string      { return filepath.Join(s.root, "l") }

func (s *Store) layerDir(chainID digest.Digest) string {
	return filepath.Join(s.layersDir(), chainID.Encoded())
}

const metadataFile = "layer.json"

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
	return s.readLayer(s.layerDir(chainID))
}

func (s *Store) readLayer(dir string) (Layer, error) {
	b, err := os.ReadFile(filepath.Join(dir, metadataFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Layer{}, fmt.Errorf("layer %s: %w", filepath.Base(dir), cerrdefs.ErrNotFound)
	}
	if err != nil {
		return Layer{}, err
	}
	var l Layer
	if err := json.Unmarshal(b, &l); err != nil {
		return Layer{}, fmt.Errorf("layer %s: corrupt metadata: %v: %w", filepath.Base(dir), err, cerrdefs.ErrInternal)
	}
	l.Dir = filepath.Join(dir, "diff")
	return l, nil
}

// List returns all layers, sorted by chain ID.
func (s *Store) List(ctx context.Context) ([]Layer, error) {
	entries, err := os.ReadDir(s.layersDir())
	if err != nil {
		return nil, err
	}
	var out []Layer
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		l, err := s.readLayer(filepath.Join(s.layersDir(), e.Name()))
		if cerrdefs.IsNotFound(err) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ChainID < out[j].ChainID })
	return out, nil
}

// Remove deletes the layer with the given chain ID. It fails with
// cerrdefs.ErrNotFound if there is no such layer and with cerrdefs.ErrConflict
// if a container snapshot uses it. Layers stacked on top of it are not
// affected (each holds only its own files). Remove renames the layer out of
// layers/ first, so a crash mid-way leaves no partial layer visible.
func (s *Store) Remove(ctx context.Context, chainID digest.Digest) error {
	if err := validDigest(chainID, "chain ID"); err != nil {
		return err
	}
	unlock, err := s.locks.lock(ctx, chainID.String())
	if err != nil {
		return err
	}
	defer unlock()

	s.refMu.Lock()
	if _, err := s.Get(ctx, chainID); err != nil {
		s.refMu.Unlock()
		return err
	}
	if key, err := s.containerUsing(chainID); err != nil || key != "" {
		s.refMu.Unlock()
		if err != nil {
			return err
		}
		return fmt.Errorf("layer %s is in use by container snapshot %s: %w", chainID, key, cerrdefs.ErrConflict)
	}
	os.Remove(filepath.Join(s.linksDir(), shortID(chainID)))
	trash, err := os.MkdirTemp(s.tmpDir(), "remove-")
	if err != nil {
		s.refMu.Unlock()
		return err
	}
	err = os.Rename(s.layerDir(chainID), filepath.Join(trash, "layer"))
	s.refMu.Unlock()
	if err != nil {
		os.Remove(trash)
		return fmt.Errorf("remove layer %s: %w", chainID, err)
	}
	osutil.SyncDir(s.layersDir())
	return os.RemoveAll(trash)
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
