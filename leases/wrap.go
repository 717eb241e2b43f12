package leases

import (
	"context"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/opencontainers/go-digest"
)

// Content returns cs with what containerd's metadata content store does
// for leases: a Writer opened with a lease in ctx holds its ingest ref
// first, and its Commit holds the blob before committing. Without a
// lease in ctx nothing is held (the blob is the collector's unless an
// image names it).
func (s *Store) Content(cs content.Store) content.Store { return &leasedContent{Store: cs, s: s} }

type leasedContent struct {
	content.Store
	s *Store
}

func (c *leasedContent) holdIfLeased(ctx context.Context, rs ...leases.Resource) error {
	if _, ok := leases.FromContext(ctx); !ok {
		return nil
	}
	return c.s.Hold(ctx, rs...)
}

func (c *leasedContent) Writer(ctx context.Context, opts ...content.WriterOpt) (content.Writer, error) {
	var wo content.WriterOpts
	for _, o := range opts {
		if err := o(&wo); err != nil {
			return nil, err
		}
	}
	rs := []leases.Resource{Ingest(wo.Ref)}
	if wo.Desc.Digest != "" {
		rs = append(rs, Content(wo.Desc.Digest))
	}
	if err := c.holdIfLeased(ctx, rs...); err != nil {
		return nil, err
	}
	w, err := c.Store.Writer(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return &leasedWriter{Writer: w, c: c}, nil
}

type leasedWriter struct {
	content.Writer
	c *leasedContent
}

func (w *leasedWriter) Commit(ctx context.Context, size int64, expected digest.Digest, opts ...content.Opt) error {
	d := expected
	if d == "" {
		d = w.Digest()
	}
	if err := w.c.holdIfLeased(ctx, Content(d)); err != nil {
		return err
	}
	return w.Writer.Commit(ctx, size, expected, opts...)
}

// Snapshotter returns sn with what containerd's metadata snapshotter does
// for leases: Prepare and View hold the new key, Commit the new name,
// before the snapshot is made, when ctx has a lease.
func (s *Store) Snapshotter(sn snapshots.Snapshotter) snapshots.Snapshotter {
	return &leasedSnapshotter{Snapshotter: sn, s: s}
}

type leasedSnapshotter struct {
	snapshots.Snapshotter
	s *Store
}

func (l *leasedSnapshotter) hold(ctx context.Context, key string) error {
	if _, ok := leases.FromContext(ctx); !ok {
		return nil
	}
	return l.s.Hold(ctx, Snapshot(key))
}

func (l *leasedSnapshotter) Prepare(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	if err := l.hold(ctx, key); err != nil {
		return nil, err
	}
	return l.Snapshotter.Prepare(ctx, key, parent, opts...)
}

func (l *leasedSnapshotter) View(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	if err := l.hold(ctx, key); err != nil {
		return nil, err
	}
	return l.Snapshotter.View(ctx, key, parent, opts...)
}

func (l *leasedSnapshotter) Commit(ctx context.Context, name, key string, opts ...snapshots.Opt) error {
	if err := l.hold(ctx, name); err != nil {
		return err
	}
	return l.Snapshotter.Commit(ctx, name, key, opts...)
}
