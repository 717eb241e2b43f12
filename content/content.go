// Package content is berth's blob store: containerd's own local content
// store (plugins/content/local) on berth's layout, behind containerd's
// core/content interfaces. berth's services use it directly (no
// containerd metadata layer: it keeps no labels and no namespaces); what
// is in flight is held by leases (package leases) and berth's own
// collector (image.Service.GC) removes what nothing needs.
//
// Layout under the store's root:
//
//	blobs/<algorithm>/<hex>   committed blobs, read-only, never modified
//	ingest/<hash of ref>/     one resumable write in progress: data, ref,
//	                          startedat, updatedat, total
//
// Lifecycle of a blob: a Writer (opened with a ref, the name of the
// ingest) streams bytes into ingest/<hash>/data while hashing them. A second
// Writer on the same ref fails with ErrUnavailable while the first is open;
// once it is closed without committing, a new Writer on the ref resumes
// where it stopped. Commit checks size and digest, fsyncs the data, renames
// it atomically into blobs/ and fsyncs that directory: a crash leaves either
// no blob or a complete, verified one. Ingests no lease holds (idle for a
// minute) are aborted by the garbage collector (image.Service.GC), which
// also deletes blobs no image, container or lease references.
//
// This is the layout berth always had for blobs/; earlier versions kept
// ingests as plain files under ingest/, which NewStore removes.
package content

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/plugins/content/local"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/osutil"
)

// NewStore opens (creating if needed) the content store at root. Ingest
// files left by an earlier berth (plain files under ingest/, never
// resumable) are removed. With keepIngests false every ingest is removed
// (nothing else would collect them); with true, ingests in the current
// layout are kept for their owners to resume or for the garbage collector.
func NewStore(root string, keepIngests bool) (content.Store, error) {
	// Blobs are private images' content: root's only (issue 12, item 1).
	if err := osutil.MkdirPrivate(root, osutil.PrivateMode); err != nil {
		return nil, fmt.Errorf("content store: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "blobs", string(digest.SHA256)), 0o700); err != nil {
		return nil, fmt.Errorf("content store: %w", err)
	}
	if err := removeIngests(filepath.Join(root, "ingest"), keepIngests); err != nil {
		return nil, fmt.Errorf("content store: %w", err)
	}
	return local.NewStore(root)
}

func removeIngests(dir string, keepCurrent bool) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && keepCurrent {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// ReadBlob returns the whole blob d; meant for small blobs such as
// manifests and configs.
func ReadBlob(ctx context.Context, p content.Provider, d digest.Digest) ([]byte, error) {
	return content.ReadBlob(ctx, p, ocispec.Descriptor{Digest: d})
}

// WriteBlob stores data under its sha256 digest and returns that digest.
// Writing a blob that already exists succeeds.
func WriteBlob(ctx context.Context, cs content.Ingester, data []byte, opts ...content.Opt) (digest.Digest, error) {
	d := digest.FromBytes(data)
	desc := ocispec.Descriptor{Digest: d, Size: int64(len(data))}
	if err := content.WriteBlob(ctx, cs, "blob-"+d.String(), bytes.NewReader(data), desc, opts...); err != nil {
		return "", err
	}
	return d, nil
}

// Has reports whether blob d is committed. Errors other than "not found"
// are returned.
func Has(ctx context.Context, p content.InfoProvider, d digest.Digest) (bool, error) {
	_, err := p.Info(ctx, d)
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// Reader returns a reader over blob d, read from the start. The caller must
// Close it.
func Reader(ctx context.Context, p content.Provider, d digest.Digest) (io.ReadCloser, error) {
	ra, err := p.ReaderAt(ctx, ocispec.Descriptor{Digest: d})
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{content.NewReader(ra), ra}, nil
}
