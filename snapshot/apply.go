package snapshot

import (
	"bufio"
	"context"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/core/snapshots/storage"
	"github.com/containerd/continuity/fs"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/archive"
)

// copyBufPool holds the 1 MiB buffers used to drain layer streams.
var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// readerPool holds the buffered readers that sit under the tar reader, so
// that tar's 512-byte header reads don't each become a read on the source.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

// Apply unpacks the uncompressed layer tar stream r as a new layer with the
// given diff ID on top of parent (a chain ID, or "" for a base layer) and
// returns it. The parent layer need not exist yet: Apply unpacks into a
// snapshot of its own and, once done, waits for the parent to be committed
// (by a parallel Apply) before committing on top of it, so layers can be
// unpacked in any order and in parallel; cancel ctx to stop the wait.
//
// Apply reads r to EOF and checks that its digest equals diffID; if not, or if
// the stream is truncated or corrupt, or ctx is cancelled, it returns an error
// and leaves nothing behind (a mismatch is of class cerrdefs.ErrInvalidArgument).
// If the layer already exists, Apply drains r, checks its digest and returns
// the existing layer. Concurrent Applys of the same layer unpack it once.
//
// Cancellation is checked between tar entries and between chunks of a file's
// contents; a Read blocked in r is not interrupted (cancel the source too).
func (s *Store) Apply(ctx context.Context, parent, diffID digest.Digest, r io.Reader) (Layer, error) {
	if err := validDigest(diffID, "diff ID"); err != nil {
		return Layer{}, err
	}
	return s.apply(ctx, parent, diffID, r)
}

// ApplyNew is Apply for a layer whose diff ID is not known in advance (a
// commit's): the diff ID is the digest of the stream. If the layer
// turns out to exist already, the new copy is dropped and the existing
// layer returned.
func (s *Store) ApplyNew(ctx context.Context, parent digest.Digest, r io.Reader) (Layer, error) {
	return s.apply(ctx, parent, "", r)
}

func (s *Store) apply(ctx context.Context, parent, diffID digest.Digest, r io.Reader) (Layer, error) {
	if parent != "" {
		if err := validDigest(parent, "parent chain ID"); err != nil {
			return Layer{}, err
		}
	}
	bufp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bufp)
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	defer func() { br.Reset(nil); readerPool.Put(br) }()
	alg := digest.Canonical
	if diffID != "" {
		alg = diffID.Algorithm()
	}
	hr := &hashingReader{r: br, h: alg.Hash()}

	var chainID digest.Digest
	if diffID != "" {
		chainID = ChainID(parent, diffID)
		unlock, err := s.locks.lock(ctx, chainID.String())
		if err != nil {
			return Layer{}, err
		}
		defer unlock()
		if l, err := s.Get(ctx, chainID); err == nil {
			if err := hr.drain(*bufp); err != nil {
				return Layer{}, err
			}
			if err := hr.verify(diffID); err != nil {
				return Layer{}, err
			}
			return l, nil
		} else if !cerrdefs.IsNotFound(err) {
			return Layer{}, err
		}
	}

	dir, err := os.MkdirTemp(s.tmpDir(), applyPrefix)
	if err != nil {
		return Layer{}, err
	}
	committed := false
	defer func() {
		if !committed {
			_ = os.RemoveAll(dir)
		}
	}()
	diffDir := filepath.Join(dir, "fs")
	if err := os.Mkdir(diffDir, 0o755); err != nil {
		return Layer{}, err
	}
	if err := os.Chmod(diffDir, 0o755); err != nil { // whatever the umask
		return Layer{}, err
	}
	size, err := archive.UnpackLayer(ctx, diffDir, hr)
	if err != nil {
		return Layer{}, fmt.Errorf("apply layer %s: %w", diffID, err)
	}
	if err := hr.drain(*bufp); err != nil {
		return Layer{}, fmt.Errorf("apply layer %s: %w", diffID, err)
	}
	if diffID == "" {
		diffID = digest.NewDigest(alg, hr.h)
		chainID = ChainID(parent, diffID)
		unlock, err := s.locks.lock(ctx, chainID.String())
		if err != nil {
			return Layer{}, err
		}
		defer unlock()
		if l, err := s.Get(ctx, chainID); err == nil {
			return l, nil // the deferred RemoveAll drops this copy
		}
	} else if err := hr.verify(diffID); err != nil {
		return Layer{}, err
	}
	if err := s.commitLayerDir(ctx, "apply", dir, chainID, parent, diffID, size); err != nil {
		return Layer{}, err
	}
	committed = true
	s.notifyCommitted()
	return s.Get(ctx, chainID)
}

// commitLayerDir makes dir, whose layer files (fs/) are written, the
// committed layer chainID on parent; op names the caller in errors.
// Durability: rather than fsync every file (one journal commit each, which
// dominates the cost of unpacking many small files), it flushes the whole
// filesystem once with syncfs(2). That writes back every file of the
// layer; only then is the snapshot committed, in a bbolt transaction that
// is itself synced. After a crash a layer is therefore either absent (its
// directory under unpack/ is removed at start) or complete. syncfs also
// flushes unrelated dirty data on the same filesystem, which costs time but
// not correctness; since Linux 5.8 it reports writeback errors. The
// snapshot's disk usage (a walk of the layer, CPU while syncfs waits for
// the disk) is measured meanwhile.
func (s *Store) commitLayerDir(ctx context.Context, op, dir string, chainID, parent, diffID digest.Digest, size int64) error {
	diffDir := filepath.Join(dir, "fs")
	var usage fs.Usage
	var usageErr error
	walked := make(chan struct{})
	go func() {
		defer close(walked)
		usage, usageErr = fs.DiskUsage(ctx, diffDir)
	}()
	syncErr := syncFS(diffDir)
	<-walked
	if syncErr != nil {
		return fmt.Errorf("%s layer %s: sync: %w", op, diffID, syncErr)
	}
	if usageErr != nil {
		return fmt.Errorf("%s layer %s: %w", op, diffID, usageErr)
	}
	if parent != "" {
		if err := s.waitLayer(ctx, parent); err != nil {
			return fmt.Errorf("%s layer %s: %w", op, diffID, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	labels := map[string]string{labelDiffID: diffID.String(), labelSize: strconv.FormatInt(size, 10)}
	if err := s.commitDir(ctx, dir, chainID, parent, snapshots.Usage(usage), labels); err != nil {
		return mapErr(fmt.Errorf("%s layer %s: %w", op, diffID, err))
	}
	return nil
}

// commitDir makes dir (holding the layer's files in fs/) the committed
// snapshot chainID on top of parent, in one write transaction: the
// snapshot is recorded (as active, which gives it its ID), dir is renamed
// to snapshots/<id> and the snapshot committed. This is what containerd's
// Prepare and Commit do in two synced transactions (and the directory
// layout its overlay snapshotter reads); one is enough for a snapshot
// whose content is complete before it is recorded. If the transaction
// fails after the rename, the directory is moved back to dir, for the
// caller to remove; after a crash there, containerd's Cleanup removes the
// unrecorded snapshots/<id> at start.
func (s *Store) commitDir(ctx context.Context, dir string, chainID, parent digest.Digest, usage snapshots.Usage, labels map[string]string) error {
	key := randomKey(applyPrefix)
	var moved string
	err := s.ms.WithTransaction(ctx, true, func(ctx context.Context) error {
		sn, err := storage.CreateSnapshot(ctx, snapshots.KindActive, key, parent.String())
		if err != nil {
			return err
		}
		target := filepath.Join(s.snapshotsDir(), sn.ID)
		if err := os.Rename(dir, target); err != nil {
			return err
		}
		moved = target
		_, err = storage.CommitActive(ctx, key, chainID.String(), usage, snapshots.WithLabels(labels))
		return err
	})
	if err != nil && moved != "" {
		if rerr := os.Rename(moved, dir); rerr != nil {
			_ = os.RemoveAll(moved)
		}
	}
	return err
}

func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// hashingReader hashes everything read through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	return n, err
}

// drain reads the rest of the stream (tar padding, trailing zero blocks) so
// the digest covers all of it.
func (h *hashingReader) drain(buf []byte) error {
	_, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{h}, buf)
	return err
}

func (h *hashingReader) verify(want digest.Digest) error {
	got := digest.NewDigest(want.Algorithm(), h.h)
	if got != want {
		return fmt.Errorf("layer digest mismatch: expected %s, got %s: %w", want, got, cerrdefs.ErrInvalidArgument)
	}
	return nil
}
