// Package content stores blobs (layers, manifests, configs) by digest.
//
// Layout under the store's root:
//
//	blobs/<algorithm>/<hex>   committed blobs, read-only, never modified
//	ingest/<random>           blobs being written; removed by NewStore
//
// Lifecycle of a blob: a Writer streams bytes into a fresh ingest file while
// hashing them. Commit checks size and digest, fsyncs the file, renames it
// atomically into blobs/ and fsyncs the directory. A crash at any point
// leaves either no blob or a complete, verified one; half-written ingest files
// are never reused and are deleted the next time the store is opened.
// Committed blobs are immutable until Delete.
package content

import (
	"context"
	"io"

	"github.com/opencontainers/go-digest"
)

// Info describes a committed blob.
type Info struct {
	Digest digest.Digest
	Size   int64
}

// ReaderAt gives random access to a committed blob.
type ReaderAt interface {
	io.ReaderAt
	io.Closer
	// Size is the blob's size in bytes.
	Size() int64
}

// Provider opens committed blobs for reading.
type Provider interface {
	// Open returns a reader over the blob's bytes, or an error of class
	// errdefs.ErrNotFound.
	Open(ctx context.Context, d digest.Digest) (io.ReadCloser, error)
	// ReaderAt returns random access to the blob, or an error of class
	// errdefs.ErrNotFound.
	ReaderAt(ctx context.Context, d digest.Digest) (ReaderAt, error)
}

// InfoProvider reports what is stored without reading blobs.
type InfoProvider interface {
	// Info returns the blob's digest and size, or an error of class
	// errdefs.ErrNotFound.
	Info(ctx context.Context, d digest.Digest) (Info, error)
}

// Ingester accepts new blobs.
type Ingester interface {
	// Writer starts a new ingest. expected may be "" when the digest is not
	// known in advance; expectedSize may be -1 when the size is unknown.
	Writer(ctx context.Context, expected digest.Digest, expectedSize int64) (*Writer, error)
}

// Deleter removes blobs.
type Deleter interface {
	// Delete removes the blob, or returns an error of class errdefs.ErrNotFound.
	Delete(ctx context.Context, d digest.Digest) error
}

// Walker enumerates committed blobs.
type Walker interface {
	// Walk calls fn for every committed blob until fn returns an error,
	// which Walk then returns.
	Walk(ctx context.Context, fn func(Info) error) error
}

// Manager is the full set of roles a Store plays.
type Manager interface {
	Provider
	InfoProvider
	Ingester
	Deleter
	Walker
}

var _ Manager = (*Store)(nil)
