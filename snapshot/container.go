package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"github.com/berth/berth/internal/osutil"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Mount describes how to mount a container's root filesystem.
type Mount struct {
	// Type is "overlay", or "bind" for a snapshot with no parent layers.
	Type string
	// Source is the mount source ("overlay", or the directory to bind).
	Source string
	// Options are the mount options, e.g. "lowerdir=...".
	Options []string
	// Dir, when not empty, is the directory that relative paths in Options
	// are resolved against: mount(2) must run with it as working directory.
	// Prepare sets it only when even short absolute paths would not fit the
	// kernel's one-page limit for mount data. Mount.Mount handles it.
	Dir string
}

// pageSize bounds the mount data string (including its NUL terminator).
var pageSize = os.Getpagesize()

// fitsPage reports whether overlay options fit in one page of mount data.
func fitsPage(opts []string) bool { return len(strings.Join(opts, ","))+1 <= pageSize }

// Mount mounts m on target, an existing directory.
func (m Mount) Mount(target string) error {
	if m.Type == "bind" {
		flags := uintptr(unix.MS_BIND)
		if slices.Contains(m.Options, "rbind") {
			flags |= unix.MS_REC
		}
		if err := unix.Mount(m.Source, target, "", flags, ""); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Source, target, err)
		}
		return nil
	}
	data := strings.Join(m.Options, ",")
	if m.Dir == "" {
		if err := unix.Mount(m.Source, target, m.Type, 0, data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Type, target, err)
		}
		return nil
	}
	abs, err := filepath.Abs(target)
	if err != nil {
		return err
	}
	// The working directory is per process, so change it only on a thread
	// that first unshares its filesystem context (CLONE_FS) and is then
	// thrown away: the goroutine exits still locked to it, and the Go
	// runtime terminates the thread instead of reusing it.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare fs: %w", err)
			return
		}
		if err := unix.Chdir(m.Dir); err != nil {
			errc <- err
			return
		}
		if err := unix.Mount(m.Source, abs, m.Type, 0, data); err != nil {
			errc <- fmt.Errorf("mount %s on %s: %w", m.Type, abs, err)
			return
		}
		errc <- nil
	}()
	return <-errc
}

// Unmount unmounts target.
func Unmount(target string) error {
	if err := unix.Unmount(target, 0); err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}

type containerMeta struct {
	// Chain lists the layers' chain IDs from the top (the parent) down.
	Chain []digest.Digest `json:"chain"`
	// Ephemeral snapshots are never synced to disk (PrepareEphemeral).
	Ephemeral bool `json:"ephemeral,omitempty"`
}

var validKey = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

func checkKey(key string) error {
	if !validKey.MatchString(key) {
		return fmt.Errorf("invalid snapshot key %q: %w", key, cerrdefs.ErrInvalidArgument)
	}
	return nil
}

func (s *Store) containerDir(key string) string { return filepath.Join(s.containersDir(), key) }

// Prepare creates the writable snapshot key on top of the layer
// parentChainID ("" for an empty root filesystem) and returns how to mount
// it. The parent and every layer below it must exist (else
// cerrdefs.ErrNotFound); an existing key is cerrdefs.ErrConflict. The mount's
// lowerdirs list the chain from parentChainID down to the base layer.
func (s *Store) Prepare(ctx context.Context, key string, parentChainID digest.Digest) (Mount, error) {
	return s.prepare(ctx, key, parentChainID, true)
}

// PrepareEphemeral is Prepare for a snapshot that need not survive a
// crash (a `run --rm` container's: a restart removes such a container):
// nothing is synced to disk. After a crash the snapshot may be missing,
// partial or left over without its container; RemoveUnused collects
// leftovers.
func (s *Store) PrepareEphemeral(ctx context.Context, key string, parentChainID digest.Digest) (Mount, error) {
	return s.prepare(ctx, key, parentChainID, false)
}

func (s *Store) prepare(ctx context.Context, key string, parentChainID digest.Digest, durable bool) (Mount, error) {
	if err := checkKey(key); err != nil {
		return Mount{}, err
	}
	s.refMu.Lock()
	defer s.refMu.Unlock()

	var chain []digest.Digest
	for id := parentChainID; id != ""; {
		l, err := s.Get(ctx, id)
		if err != nil {
			return Mount{}, fmt.Errorf("prepare %s: layer %s: %w", key, id, err)
		}
		chain = append(chain, id)
		id = l.Parent
	}
	if _, err := os.Lstat(s.containerDir(key)); err == nil {
		return Mount{}, fmt.Errorf("snapshot %s already exists: %w", key, cerrdefs.ErrConflict)
	}

	tmp, err := os.MkdirTemp(s.tmpDir(), "prepare-")
	if err != nil {
		return Mount{}, err
	}
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(tmp)
		}
	}()
	for _, d := range []string{"upper", "work"} {
		// The upper dir's mode becomes the container root's: umask must not matter.
		if err := mkdirMode(filepath.Join(tmp, d), 0o755); err != nil {
			return Mount{}, err
		}
	}
	meta, err := json.Marshal(containerMeta{Chain: chain, Ephemeral: !durable})
	if err != nil {
		return Mount{}, err
	}
	if err := writeFile(filepath.Join(tmp, "container.json"), meta, durable); err != nil {
		return Mount{}, err
	}
	if durable {
		if err := osutil.SyncDir(tmp); err != nil {
			return Mount{}, err
		}
	}
	if err := os.Rename(tmp, s.containerDir(key)); err != nil {
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			return Mount{}, fmt.Errorf("snapshot %s already exists: %w", key, cerrdefs.ErrConflict)
		}
		return Mount{}, err
	}
	committed = true
	if durable {
		if err := osutil.SyncDir(s.containersDir()); err != nil {
			return Mount{}, err
		}
	}
	return s.mount(key, chain)
}

// Mounts returns how to mount the snapshot key again.
func (s *Store) Mounts(ctx context.Context, key string) (Mount, error) {
	meta, err := s.readContainer(ctx, key)
	if err != nil {
		return Mount{}, err
	}
	return s.mount(key, meta.Chain)
}

// RemoveContainer deletes the snapshot key and its writable layer. Unmount
// it first.
func (s *Store) RemoveContainer(ctx context.Context, key string) error {
	meta, err := s.readContainer(ctx, key)
	if err != nil {
		return err
	}
	// Out of the way first (tmp/ is emptied at start-up), then deleted.
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	trash := filepath.Join(s.tmpDir(), "remove-"+key+"-"+hex.EncodeToString(rnd[:]))
	s.refMu.Lock()
	err = os.Rename(s.containerDir(key), trash)
	s.refMu.Unlock()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("snapshot %s: %w", key, cerrdefs.ErrNotFound)
		}
		return err
	}
	if !meta.Ephemeral {
		osutil.SyncDir(s.containersDir())
	}
	return os.RemoveAll(trash)
}

// RemoveUnused removes every container snapshot whose key keep rejects:
// the leftovers of a crash between Prepare and the container's record, or
// of an ephemeral snapshot. Call it before any other use of the store.
func (s *Store) RemoveUnused(ctx context.Context, keep func(key string) bool) error {
	entries, err := os.ReadDir(s.containersDir())
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if keep(e.Name()) {
			continue
		}
		if err := s.RemoveContainer(ctx, e.Name()); err != nil && !errors.Is(err, cerrdefs.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type inode struct{ dev, ino uint64 }

// Usage returns the bytes of regular file content in the snapshot's
// writable layer, counting each hardlinked file once.
func (s *Store) Usage(ctx context.Context, key string) (int64, error) {
	if _, err := s.readContainer(ctx, key); err != nil {
		return 0, err
	}
	var total int64
	seen := make(map[inode]bool)
	err := filepath.WalkDir(filepath.Join(s.containerDir(key), "upper"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // deleted while walking
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return nil
		}
		if st.Nlink > 1 {
			k := inode{dev: st.Dev, ino: st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		total += st.Size
		return nil
	})
	return total, err
}

func (s *Store) readContainer(ctx context.Context, key string) (containerMeta, error) {
	if err := ctx.Err(); err != nil {
		return containerMeta{}, err
	}
	if err := checkKey(key); err != nil {
		return containerMeta{}, err
	}
	b, err := os.ReadFile(filepath.Join(s.containerDir(key), "container.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return containerMeta{}, fmt.Errorf("snapshot %s: %w", key, cerrdefs.ErrNotFound)
	}
	if err != nil {
		return containerMeta{}, err
	}
	var m containerMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return containerMeta{}, fmt.Errorf("snapshot %s: corrupt metadata: %v: %w", key, err, cerrdefs.ErrInternal)
	}
	return m, nil
}

// containerUsing returns the key of a container snapshot whose chain
// includes chainID, or "". The caller holds refMu.
func (s *Store) containerUsing(chainID digest.Digest) (string, error) {
	entries, err := os.ReadDir(s.containersDir())
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		m, err := s.readContainer(context.Background(), e.Name())
		if err != nil {
			continue // not a complete snapshot
		}
		if slices.Contains(m.Chain, chainID) {
			return e.Name(), nil
		}
	}
	return "", nil
}

// mount builds the Mount for snapshot key over chain (top layer first). The
// overlay mount data must fit in one page; when the layers' full paths are
// too long, it uses the short links under l/ (like Docker's overlay2), and
// when even those are too long, paths relative to the store's root.
func (s *Store) mount(key string, chain []digest.Digest) (Mount, error) {
	cdir := s.containerDir(key)
	if len(chain) == 0 {
		return Mount{Type: "bind", Source: filepath.Join(cdir, "upper"), Options: []string{"rbind", "rw"}}, nil
	}
	build := func(lower func(digest.Digest) string, base string) []string {
		lowers := make([]string, len(chain))
		for i, id := range chain {
			lowers[i] = lower(id)
		}
		return []string{
			"lowerdir=" + strings.Join(lowers, ":"),
			"upperdir=" + filepath.Join(base, "upper"),
			"workdir=" + filepath.Join(base, "work"),
			// Layers are shared between mounts; overlayfs' inode index
			// would tie a layer to the first upper that used it.
			"index=off",
			// Keep the upper dir a plain diff that TarDir can export
			// (no redirect xattrs for renamed dirs, no data-less
			// metacopy files), whatever the module defaults are.
			"redirect_dir=off",
			"metacopy=off",
		}
	}

	opts := build(func(id digest.Digest) string { return filepath.Join(s.layerDir(id), "diff") }, cdir)
	if fitsPage(opts) {
		return Mount{Type: "overlay", Source: "overlay", Options: opts}, nil
	}
	for _, id := range chain {
		if err := s.ensureLink(id); err != nil {
			return Mount{}, err
		}
	}
	opts = build(func(id digest.Digest) string { return filepath.Join(s.linksDir(), shortID(id)) }, cdir)
	if fitsPage(opts) {
		return Mount{Type: "overlay", Source: "overlay", Options: opts}, nil
	}
	opts = build(func(id digest.Digest) string { return "l/" + shortID(id) }, filepath.Join("containers", key))
	if !fitsPage(opts) {
		return Mount{}, fmt.Errorf("snapshot %s: %d layers do not fit in one overlay mount: %w", key, len(chain), cerrdefs.ErrInvalidArgument)
	}
	return Mount{Type: "overlay", Source: "overlay", Options: opts, Dir: s.root}, nil
}

// shortID names a layer's link under l/: 26 base32 characters (130 bits)
// of its chain ID, short enough to put over a hundred layers in one mount.
func shortID(chainID digest.Digest) string {
	raw, err := hex.DecodeString(chainID.Encoded())
	if err != nil || len(raw) < 17 {
		return chainID.Encoded()
	}
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)[:26]
}

// ensureLink creates l/<shortID> → ../layers/<hex>/diff if missing.
func (s *Store) ensureLink(chainID digest.Digest) error {
	link := filepath.Join(s.linksDir(), shortID(chainID))
	target := filepath.Join("..", "layers", chainID.Encoded(), "diff")
	err := os.Symlink(target, link)
	if errors.Is(err, fs.ErrExist) {
		if got, rerr := os.Readlink(link); rerr == nil && got == target {
			return nil
		}
		return fmt.Errorf("layer link %s exists with another target: %w", link, cerrdefs.ErrConflict)
	}
	return err
}

// writeFile creates name with data, synced to disk when durable.
func writeFile(name string, data []byte, durable bool) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
