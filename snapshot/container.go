package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
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

var validKey = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

func checkKey(key string) error {
	if !validKey.MatchString(key) {
		return fmt.Errorf("invalid snapshot key %q: %w", key, cerrdefs.ErrInvalidArgument)
	}
	return nil
}

// Prepare creates the writable snapshot key on top of the layer
// parentChainID ("" for an empty root filesystem) and returns how to mount
// it. The parent must exist (else cerrdefs.ErrNotFound); an existing key is
// cerrdefs.ErrConflict. The mount's lowerdirs list the chain from
// parentChainID down to the base layer.
func (s *Store) Prepare(ctx context.Context, key string, parentChainID digest.Digest) (Mount, error) {
	return s.prepare(ctx, key, parentChainID, nil)
}

// PrepareEphemeral is Prepare for a snapshot that need not survive a
// crash (a `run --rm` container's: a restart removes such a container).
// RemoveUnused collects leftovers.
func (s *Store) PrepareEphemeral(ctx context.Context, key string, parentChainID digest.Digest) (Mount, error) {
	return s.prepare(ctx, key, parentChainID, map[string]string{labelEphemeral: "true"})
}

func (s *Store) prepare(ctx context.Context, key string, parentChainID digest.Digest, labels map[string]string) (Mount, error) {
	if err := checkKey(key); err != nil {
		return Mount{}, err
	}
	var parent string
	if parentChainID != "" {
		if err := validDigest(parentChainID, "chain ID"); err != nil {
			return Mount{}, err
		}
		if _, err := s.Get(ctx, parentChainID); err != nil {
			return Mount{}, fmt.Errorf("prepare %s: layer %s: %w", key, parentChainID, err)
		}
		parent = parentChainID.String()
	}
	var opts []snapshots.Opt
	if labels != nil {
		opts = append(opts, snapshots.WithLabels(labels))
	}
	ms, err := s.sn.Prepare(ctx, key, parent, opts...)
	if err != nil {
		if cerrdefs.IsAlreadyExists(err) {
			return Mount{}, fmt.Errorf("snapshot %s already exists: %w", key, cerrdefs.ErrConflict)
		}
		return Mount{}, mapErr(err)
	}
	m, err := s.convert(key, ms)
	if err != nil {
		_ = s.sn.Remove(context.WithoutCancel(ctx), key)
		return Mount{}, err
	}
	// The upper dir's mode becomes the container root's: umask must not matter.
	if err := os.Chmod(m.upper(), 0o755); err != nil {
		_ = s.sn.Remove(context.WithoutCancel(ctx), key)
		return Mount{}, err
	}
	return m, nil
}

// active returns the info of the container snapshot key, or an error of
// class cerrdefs.ErrNotFound.
func (s *Store) active(ctx context.Context, key string) (snapshots.Info, error) {
	if err := ctx.Err(); err != nil {
		return snapshots.Info{}, err
	}
	if err := checkKey(key); err != nil {
		return snapshots.Info{}, err
	}
	info, err := s.sn.Stat(ctx, key)
	if err == nil && info.Kind != snapshots.KindActive {
		err = cerrdefs.ErrNotFound
	}
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return snapshots.Info{}, fmt.Errorf("snapshot %s: %w", key, cerrdefs.ErrNotFound)
		}
		return snapshots.Info{}, err
	}
	return info, nil
}

// Mounts returns how to mount the snapshot key again.
func (s *Store) Mounts(ctx context.Context, key string) (Mount, error) {
	if _, err := s.active(ctx, key); err != nil {
		return Mount{}, err
	}
	ms, err := s.sn.Mounts(ctx, key)
	if err != nil {
		return Mount{}, err
	}
	return s.convert(key, ms)
}

// RemoveContainer deletes the snapshot key and its writable layer. Unmount
// it first.
func (s *Store) RemoveContainer(ctx context.Context, key string) error {
	if _, err := s.active(ctx, key); err != nil {
		return err
	}
	if err := s.sn.Remove(ctx, key); err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("snapshot %s: %w", key, cerrdefs.ErrNotFound)
		}
		return err
	}
	return nil
}

// RemoveUnused removes every container snapshot whose key keep rejects:
// the leftovers of a crash between Prepare and the container's record, or
// of an ephemeral snapshot. The builder's snapshots are not containers'.
// Call it before any other use of the store.
func (s *Store) RemoveUnused(ctx context.Context, keep func(key string) bool) error {
	var keys []string
	err := s.walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		if info.Kind == snapshots.KindActive && checkKey(info.Name) == nil && !strings.HasPrefix(info.Name, applyPrefix) &&
			!strings.HasPrefix(info.Name, BuilderKeyPrefix) && !keep(info.Name) {
			keys = append(keys, info.Name)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, k := range keys {
		if err := s.RemoveContainer(ctx, k); err != nil && !errors.Is(err, cerrdefs.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type inode struct{ dev, ino uint64 }

// Usage returns the bytes of regular file content in the snapshot's
// writable layer, counting each hardlinked file once.
func (s *Store) Usage(ctx context.Context, key string) (int64, error) {
	m, err := s.Mounts(ctx, key)
	if err != nil {
		return 0, err
	}
	var total int64
	seen := make(map[inode]bool)
	err = filepath.WalkDir(m.upper(), func(p string, d fs.DirEntry, err error) error {
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

// upper returns the absolute path of m's writable directory.
func (m Mount) upper() string {
	if m.Type == "bind" {
		return m.Source
	}
	return m.option("upperdir")
}

// option returns the value of option k ("upperdir", "workdir"), made
// absolute when the mount's paths are relative to m.Dir.
func (m Mount) option(k string) string {
	for _, o := range m.Options {
		if v, ok := strings.CutPrefix(o, k+"="); ok {
			if !filepath.IsAbs(v) && m.Dir != "" {
				return filepath.Join(m.Dir, v)
			}
			return v
		}
	}
	return ""
}

// convert turns the snapshotter's mounts for key into one Mount. The
// overlay mount data must fit in one page; when the full paths are too
// long, the paths are made relative to the snapshots directory, which
// Mount.Mount makes the working directory (as containerd's mount package
// does for long lowerdirs).
func (s *Store) convert(key string, ms []mount.Mount) (Mount, error) {
	if len(ms) != 1 {
		return Mount{}, fmt.Errorf("snapshot %s: %d mounts: %w", key, len(ms), cerrdefs.ErrInternal)
	}
	cm := ms[0]
	m := Mount{Type: cm.Type, Source: cm.Source, Options: cm.Options}
	if m.Type == "bind" || fitsPage(m.Options) {
		return m, nil
	}
	base := s.snapshotsDir() + "/"
	rel := func(p string) string { return strings.TrimPrefix(p, base) }
	opts := make([]string, len(m.Options))
	for i, o := range m.Options {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			parts := strings.Split(v, ":")
			for j := range parts {
				parts[j] = rel(parts[j])
			}
			o = k + "=" + strings.Join(parts, ":")
		case "upperdir", "workdir":
			o = k + "=" + rel(v)
		}
		opts[i] = o
	}
	if !fitsPage(opts) {
		return Mount{}, fmt.Errorf("snapshot %s: its layers do not fit in one overlay mount: %w", key, cerrdefs.ErrInvalidArgument)
	}
	m.Options, m.Dir = opts, s.snapshotsDir()
	return m, nil
}
