package content

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/berth/berth/errdefs"
	"github.com/opencontainers/go-digest"
)

// Store is a content store on the local filesystem. It is safe for
// concurrent use. Only one Store may be open on a root at a time: NewStore
// deletes ingest files, including those of another live Store.
type Store struct {
	root string
}

// NewStore opens (creating if needed) the store at root and removes ingest
// files left behind by a crash.
func NewStore(root string) (*Store, error) {
	s := &Store{root: root}
	if err := os.MkdirAll(filepath.Join(root, "blobs", string(digest.SHA256)), 0o755); err != nil {
		return nil, fmt.Errorf("content store: %w", err)
	}
	// Leftover ingests are partial writes of unknown integrity: never reuse.
	if err := os.RemoveAll(s.ingestDir()); err != nil {
		return nil, fmt.Errorf("content store: clean ingest: %w", err)
	}
	if err := os.MkdirAll(s.ingestDir(), 0o700); err != nil {
		return nil, fmt.Errorf("content store: %w", err)
	}
	return s, nil
}

// Root returns the directory the store lives in.
func (s *Store) Root() string { return s.root }

func (s *Store) ingestDir() string { return filepath.Join(s.root, "ingest") }

// blobPath validates d (so a crafted digest cannot name a path outside the
// store) and returns where its blob lives.
func (s *Store) blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("invalid digest %q: %w", d, errdefs.ErrInvalidParameter)
	}
	return filepath.Join(s.root, "blobs", string(d.Algorithm()), d.Encoded()), nil
}

func notFound(d digest.Digest) error {
	return fmt.Errorf("content %s: %w", d, errdefs.ErrNotFound)
}

// Open returns a reader over the blob d. The caller must Close it.
func (s *Store) Open(ctx context.Context, d digest.Digest) (io.ReadCloser, error) {
	return s.open(ctx, d)
}

// ReaderAt returns random access to the blob d. The caller must Close it.
func (s *Store) ReaderAt(ctx context.Context, d digest.Digest) (ReaderAt, error) {
	f, err := s.open(ctx, d)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &fileReaderAt{File: f, size: fi.Size()}, nil
}

type fileReaderAt struct {
	*os.File
	size int64
}

func (r *fileReaderAt) Size() int64 { return r.size }

func (s *Store) open(ctx context.Context, d digest.Digest) (*os.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := s.blobPath(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFound(d)
	}
	return f, err
}

// Info returns the size of blob d.
func (s *Store) Info(ctx context.Context, d digest.Digest) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	p, err := s.blobPath(d)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, notFound(d)
	}
	if err != nil {
		return Info{}, err
	}
	return Info{Digest: d, Size: fi.Size()}, nil
}

// Has reports whether blob d is committed. Errors other than "not found"
// (an invalid digest, an I/O error) are returned.
func (s *Store) Has(ctx context.Context, d digest.Digest) (bool, error) {
	_, err := s.Info(ctx, d)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// Delete removes blob d. Readers that already opened it keep reading the
// old bytes.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.blobPath(d)
	if err != nil {
		return err
	}
	err = os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return notFound(d)
	}
	return err
}

// Walk calls fn for each committed blob, in directory order per algorithm.
// Files whose names are not valid digests are skipped.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	blobs := filepath.Join(s.root, "blobs")
	algs, err := os.ReadDir(blobs)
	if err != nil {
		return err
	}
	for _, alg := range algs {
		if !alg.IsDir() {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(blobs, alg.Name()))
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			d := digest.NewDigestFromEncoded(digest.Algorithm(alg.Name()), e.Name())
			if d.Validate() != nil || !e.Type().IsRegular() {
				continue
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted while walking
			}
			if err != nil {
				return err
			}
			if err := fn(Info{Digest: d, Size: fi.Size()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// ReadBlob returns the whole blob d; meant for small blobs such as manifests
// and configs.
func (s *Store) ReadBlob(ctx context.Context, d digest.Digest) ([]byte, error) {
	f, err := s.open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// WriteBlob stores data under its sha256 digest and returns that digest.
// Writing a blob that already exists succeeds.
func (s *Store) WriteBlob(ctx context.Context, data []byte) (digest.Digest, error) {
	d := digest.FromBytes(data)
	w, err := s.Writer(ctx, d, int64(len(data)))
	if err != nil {
		return "", err
	}
	defer w.Close()
	if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
		return "", err
	}
	if err := w.Commit(ctx); err != nil {
		return "", err
	}
	return d, nil
}

// Writer starts writing a new blob. expected is the digest the bytes must
// hash to ("" if unknown: the blob is then stored under its sha256);
// expectedSize is the exact size, or -1 if unknown. Several writers for the
// same digest may run at once; each has its own ingest file.
func (s *Store) Writer(ctx context.Context, expected digest.Digest, expectedSize int64) (*Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	alg := digest.Canonical
	if expected != "" {
		if err := expected.Validate(); err != nil {
			return nil, fmt.Errorf("invalid digest %q: %w", expected, errdefs.ErrInvalidParameter)
		}
		alg = expected.Algorithm()
	}
	if expectedSize < -1 {
		return nil, fmt.Errorf("invalid expected size %d: %w", expectedSize, errdefs.ErrInvalidParameter)
	}
	var rnd [16]byte
	rand.Read(rnd[:])
	name := filepath.Join(s.ingestDir(), hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return nil, fmt.Errorf("content ingest: %w", err)
	}
	return &Writer{
		s:            s,
		f:            f,
		path:         name,
		digester:     alg.Digester(),
		expected:     expected,
		expectedSize: expectedSize,
	}, nil
}

// Writer writes one blob into the store. Lifecycle: Write any number of
// times, then Commit to make the blob visible; Close always (it aborts and
// removes the ingest unless Commit succeeded). A Writer is not safe for
// concurrent use.
type Writer struct {
	s            *Store
	f            *os.File
	path         string
	digester     digest.Digester
	expected     digest.Digest
	expectedSize int64
	n            int64
	done         bool // committed or closed
}

// Write appends p to the blob being written. Writing past the expected size
// fails at once.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("content writer: write after commit or close: %w", errdefs.ErrInvalidParameter)
	}
	if w.expectedSize >= 0 && w.n+int64(len(p)) > w.expectedSize {
		return 0, fmt.Errorf("size mismatch: expected %d bytes, got more: %w", w.expectedSize, errdefs.ErrInvalidParameter)
	}
	n, err := w.f.Write(p)
	w.digester.Hash().Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Size returns the number of bytes written so far.
func (w *Writer) Size() int64 { return w.n }

// Digest returns the digest of the bytes written so far.
func (w *Writer) Digest() digest.Digest { return w.digester.Digest() }

// Commit verifies size and digest and, if they match, makes the blob
// durable and visible. On a mismatch nothing is committed and the error is
// of class errdefs.ErrInvalidParameter. If the blob already exists, the
// ingest is dropped and Commit succeeds. After Commit (successful or not) the
// Writer is finished; Close is still safe to call.
func (w *Writer) Commit(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("content writer: already committed or closed: %w", errdefs.ErrInvalidParameter)
	}
	defer w.Close() // on any failure below, remove the ingest
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.expectedSize >= 0 && w.n != w.expectedSize {
		return fmt.Errorf("size mismatch: expected %d bytes, got %d: %w", w.expectedSize, w.n, errdefs.ErrInvalidParameter)
	}
	got := w.digester.Digest()
	if w.expected != "" && got != w.expected {
		return fmt.Errorf("digest mismatch: expected %s, got %s: %w", w.expected, got, errdefs.ErrInvalidParameter)
	}
	target, err := w.s.blobPath(got)
	if err != nil {
		return err
	}
	if _, err := os.Stat(target); err == nil {
		return nil // already there; the deferred Close drops the ingest
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("content commit %s: %w", got, err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("content commit %s: %w", got, err)
	}
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Two writers of the same blob may both get here; the later rename
	// atomically replaces identical bytes, which is harmless.
	if err := os.Rename(w.path, target); err != nil {
		return fmt.Errorf("content commit %s: %w", got, err)
	}
	w.done = true
	return syncDir(dir)
}

// Close aborts the write and removes the ingest file unless Commit
// succeeded. It is safe to call more than once.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	if err := os.Remove(w.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// syncDir makes a rename into dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
