package snapshot

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/berth/berth/internal/osutil"
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
// returns it. The parent layer need not exist: each layer's directory holds
// only its own files, so layers can be applied in any order and in parallel.
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
	if parent != "" {
		if err := validDigest(parent, "parent chain ID"); err != nil {
			return Layer{}, err
		}
	}
	chainID := ChainID(parent, diffID)
	unlock, err := s.locks.lock(ctx, chainID.String())
	if err != nil {
		return Layer{}, err
	}
	defer unlock()

	bufp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bufp)
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	defer func() { br.Reset(nil); readerPool.Put(br) }()
	hr := &hashingReader{r: br, h: diffID.Algorithm().Hash()}

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

	tmp, err := os.MkdirTemp(s.tmpDir(), "apply-")
	if err != nil {
		return Layer{}, err
	}
	committed := false
	defer func() {
		// Runs whatever the context says: cleanup must survive cancellation.
		if !committed {
			os.RemoveAll(tmp)
		}
	}()
	diffDir := filepath.Join(tmp, "diff")
	if err := mkdirMode(diffDir, 0o755); err != nil {
		return Layer{}, err
	}
	size, err := archive.UnpackLayer(ctx, diffDir, hr)
	if err != nil {
		return Layer{}, fmt.Errorf("apply layer %s: %w", diffID, err)
	}
	if err := hr.drain(*bufp); err != nil {
		return Layer{}, fmt.Errorf("apply layer %s: %w", diffID, err)
	}
	if err := hr.verify(diffID); err != nil {
		return Layer{}, err
	}

	l := Layer{ChainID: chainID, DiffID: diffID, Parent: parent, Size: size}
	meta, err := json.Marshal(l)
	if err != nil {
		return Layer{}, err
	}
	if err := os.WriteFile(filepath.Join(tmp, metadataFile), meta, 0o600); err != nil {
		return Layer{}, err
	}
	// Durability: rather than fsync every unpacked file (one journal commit
	// each, which dominates the cost of unpacking many small files), flush
	// the whole filesystem once with syncfs(2). That writes back every file
	// of the layer and layer.json together; only then is the directory
	// renamed into layers/, and the rename itself is made durable by
	// fsyncing layers/. After a crash a layer is therefore either absent or
	// complete. syncfs also flushes unrelated dirty data on the same
	// filesystem, which costs time but not correctness; since Linux 5.8 it
	// reports writeback errors.
	if err := syncFS(tmp); err != nil {
		return Layer{}, fmt.Errorf("apply layer %s: sync: %w", diffID, err)
	}
	if err := ctx.Err(); err != nil {
		return Layer{}, err
	}
	if err := os.Rename(tmp, s.layerDir(chainID)); err != nil {
		return Layer{}, fmt.Errorf("apply layer %s: %w", diffID, err)
	}
	committed = true
	if err := osutil.SyncDir(s.layersDir()); err != nil {
		return Layer{}, err
	}
	l.Dir = filepath.Join(s.layerDir(chainID), "diff")
	return l, nil
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

// mkdirMode creates dir with exactly mode, whatever the process umask.
func mkdirMode(dir string, mode os.FileMode) error {
	if err := os.Mkdir(dir, mode); err != nil {
		return err
	}
	return os.Chmod(dir, mode)
}
