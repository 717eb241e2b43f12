package builder

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/v2/core/content"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// withBerthBlobs is the worker's content store seen together with berth's:
// what the worker holds first, then, read-only, berth's blobs. A base
// image in berth's store (its manifest, config and layers) is thus
// content BuildKit has, and a FROM of it fetches nothing. Blobs berth
// holds are never written again: a Writer for one answers
// ErrAlreadyExists, as for a blob the worker holds.
//
// Interim (issue 9): the worker keeps its own store for what builds make;
// berth's blobs are not leased by BuildKit, and BuildKit never deletes
// them (its garbage collector only sweeps its own store).
type withBerthBlobs struct {
	content.Store
	berth content.Provider
	info  content.InfoProvider
}

func newWithBerthBlobs(own content.Store, berth interface {
	content.Provider
	content.InfoProvider
}) *withBerthBlobs {
	return &withBerthBlobs{Store: own, berth: berth, info: berth}
}

func (s *withBerthBlobs) Info(ctx context.Context, d digest.Digest) (content.Info, error) {
	info, err := s.Store.Info(ctx, d)
	if cerrdefs.IsNotFound(err) {
		if binfo, berr := s.info.Info(ctx, d); berr == nil {
			return binfo, nil
		}
	}
	return info, err
}

func (s *withBerthBlobs) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	ra, err := s.Store.ReaderAt(ctx, desc)
	if cerrdefs.IsNotFound(err) {
		if bra, berr := s.berth.ReaderAt(ctx, desc); berr == nil {
			return bra, nil
		}
	}
	return ra, err
}

// Update changes labels of the worker's own blobs; berth's blobs keep
// theirs (BuildKit labels blobs with their sources and GC references,
// which concern only its own store).
func (s *withBerthBlobs) Update(ctx context.Context, info content.Info, fieldpaths ...string) (content.Info, error) {
	out, err := s.Store.Update(ctx, info, fieldpaths...)
	if cerrdefs.IsNotFound(err) {
		if binfo, berr := s.info.Info(ctx, info.Digest); berr == nil {
			return binfo, nil
		}
	}
	return out, err
}

func (s *withBerthBlobs) Writer(ctx context.Context, opts ...content.WriterOpt) (content.Writer, error) {
	var wo content.WriterOpts
	for _, o := range opts {
		if err := o(&wo); err != nil {
			return nil, err
		}
	}
	if d := wo.Desc.Digest; d != "" {
		if _, err := s.Store.Info(ctx, d); cerrdefs.IsNotFound(err) {
			if _, berr := s.info.Info(ctx, d); berr == nil {
				return nil, fmt.Errorf("content %s is in berth's store: %w", d, cerrdefs.ErrAlreadyExists)
			}
		}
	}
	return s.Store.Writer(ctx, opts...)
}
