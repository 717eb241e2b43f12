package builder

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/filters"
	cerrdefs "github.com/containerd/errdefs"
	bksnapshot "github.com/moby/buildkit/snapshot"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/berth/berth/snapshot"
)

// Stores are berth's own stores, on which BuildKit's worker runs: what a
// build pulls and makes (blobs, snapshots) is berth's content and
// snapshots, kept by leases in berth's lease database and collected by
// berth's one garbage collector.
type Stores struct {
	// Content is berth's content store.
	Content content.Store
	// Snapshotter is berth's snapshotter (overlayfs); BuildKit's
	// snapshots are in it under keys prefixed with "buildkit-".
	Snapshotter snapshots.Snapshotter
	// SnapshotterName names Snapshotter in lease resources
	// ("snapshots/<name>").
	SnapshotterName string
	// Leases is berth's lease manager; Namespace the namespace its
	// leases are in.
	Leases    leases.Manager
	Namespace string
	// GC is berth's garbage collector: it removes the blobs and snapshots
	// that no image, container or lease holds. BuildKit calls it after
	// removing cache records.
	GC func(ctx context.Context) error
}

// snapshotPrefix begins the key of every snapshot BuildKit makes in
// berth's snapshotter: its keys never meet berth's (chain IDs, container
// IDs), and berth's restore leaves them alone.
const snapshotPrefix = snapshot.BuilderKeyPrefix

// holdFunc holds a resource for the lease in ctx, if any, before it is
// made (as containerd's metadata store does on Prepare, View, Commit and
// content writes), so that the collector never sweeps it in between.
type holdFunc func(ctx context.Context, r leases.Resource) error

func newHold(lm leases.Manager) holdFunc {
	return func(ctx context.Context, r leases.Resource) error {
		id, ok := leases.FromContext(ctx)
		if !ok {
			return nil
		}
		if err := lm.AddResource(ctx, leases.Lease{ID: id}, r); err != nil && !cerrdefs.IsAlreadyExists(err) {
			return fmt.Errorf("lease %s: hold %s %s: %w", id, r.Type, r.ID, err)
		}
		return nil
	}
}

// buildSnapshotter is berth's snapshotter as BuildKit's worker sees it:
// only BuildKit's snapshots, under their own names (stored as
// "buildkit-<name>"); what is made under a lease is held by it.
type buildSnapshotter struct {
	sn      snapshots.Snapshotter
	resType string // "snapshots/<name>"
	hold    holdFunc
}

func toBerthKey(k string) string {
	if k == "" {
		return ""
	}
	return snapshotPrefix + k
}

// fromBerthKey is the BuildKit name of berth's snapshot k: its own
// snapshots without the prefix, berth's layers (named by chain ID) by
// BuildKit's name for the layer of that chain ID.
func fromBerthKey(k string) string {
	if name, ok := strings.CutPrefix(k, snapshotPrefix); ok {
		return name
	}
	if d, err := digest.Parse(k); err == nil {
		return bksnapshot.LayerSnapshotID(d)
	}
	return k
}

func fromBerthInfo(info snapshots.Info) snapshots.Info {
	info.Name, info.Parent = fromBerthKey(info.Name), fromBerthKey(info.Parent)
	return info
}

// key is berth's key for BuildKit's snapshot k. BuildKit names the
// snapshot of an image layer after the layer's chain ID
// (snapshot.LayerSnapshotID); when BuildKit has no such snapshot of its
// own but berth holds that layer (a pulled or built image's), the name is
// berth's layer: a FROM image in berth's store is not unpacked a second
// time.
func (s *buildSnapshotter) key(ctx context.Context, k string) string {
	return berthLayerKey(ctx, s.sn, k)
}

func berthLayerKey(ctx context.Context, sn snapshots.Snapshotter, k string) string {
	chainID, ok := bksnapshot.ParseLayerSnapshotID(k)
	if !ok {
		return toBerthKey(k)
	}
	own := toBerthKey(k)
	if _, err := sn.Stat(ctx, own); err == nil {
		return own
	}
	if info, err := sn.Stat(ctx, chainID.String()); err == nil && info.Kind == snapshots.KindCommitted {
		return chainID.String()
	}
	return own
}

// isBerthLayer: berth key k is one of berth's layers, not a builder
// snapshot: BuildKit neither changes nor removes it (berth's collector
// removes it once nothing, BuildKit's leases included, holds it).
func isBerthLayer(k string) bool { return k != "" && !strings.HasPrefix(k, snapshotPrefix) }

func (s *buildSnapshotter) holdKey(ctx context.Context, key string) error {
	return s.hold(ctx, leases.Resource{ID: s.key(ctx, key), Type: s.resType})
}

func (s *buildSnapshotter) Stat(ctx context.Context, key string) (snapshots.Info, error) {
	info, err := s.sn.Stat(ctx, s.key(ctx, key))
	return fromBerthInfo(info), err
}

func (s *buildSnapshotter) Update(ctx context.Context, info snapshots.Info, fieldpaths ...string) (snapshots.Info, error) {
	k := s.key(ctx, info.Name)
	if isBerthLayer(k) {
		cur, err := s.sn.Stat(ctx, k)
		return fromBerthInfo(cur), err
	}
	info.Name, info.Parent = k, s.key(ctx, info.Parent)
	out, err := s.sn.Update(ctx, info, fieldpaths...)
	return fromBerthInfo(out), err
}

func (s *buildSnapshotter) Usage(ctx context.Context, key string) (snapshots.Usage, error) {
	return s.sn.Usage(ctx, s.key(ctx, key))
}

func (s *buildSnapshotter) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	return forBuildKit(s.sn.Mounts(ctx, s.key(ctx, key)))
}

func (s *buildSnapshotter) Prepare(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	if err := s.holdKey(ctx, key); err != nil {
		return nil, err
	}
	return forBuildKit(s.sn.Prepare(ctx, s.key(ctx, key), s.key(ctx, parent), opts...))
}

func (s *buildSnapshotter) View(ctx context.Context, key, parent string, opts ...snapshots.Opt) ([]mount.Mount, error) {
	if err := s.holdKey(ctx, key); err != nil {
		return nil, err
	}
	return forBuildKit(s.sn.View(ctx, s.key(ctx, key), s.key(ctx, parent), opts...))
}

// metacopyParam is where the overlay module says whether it makes
// metadata-only copy-ups by default.
var metacopyParam = "/sys/module/overlay/parameters/metacopy"

// forBuildKit drops "metacopy=off" from overlay mounts when it is the
// kernel's default anyway. BuildKit computes a layer's blob from the
// snapshot's upper directory only when it knows every option of the
// mount (util/overlay.GetOverlayLayers); an option it does not know,
// as metacopy=off, sends it to the walking differ, which compares the
// whole root filesystem below and above the step (seconds for a python
// base image, against milliseconds). Where metacopy is on by default the
// option stays (and builds take the walking differ): the upper
// directories must stay plain diffs.
func forBuildKit(ms []mount.Mount, err error) ([]mount.Mount, error) {
	if err != nil {
		return ms, err
	}
	if b, rerr := os.ReadFile(metacopyParam); rerr != nil || strings.TrimSpace(string(b)) != "N" {
		return ms, nil
	}
	for i, m := range ms {
		if m.Type != "overlay" || !slices.Contains(m.Options, "metacopy=off") {
			continue
		}
		m.Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "metacopy=off" })
		ms[i] = m
	}
	return ms, nil
}

func (s *buildSnapshotter) Commit(ctx context.Context, name, key string, opts ...snapshots.Opt) error {
	if err := s.holdKey(ctx, name); err != nil {
		return err
	}
	return s.sn.Commit(ctx, s.key(ctx, name), s.key(ctx, key), opts...)
}

func (s *buildSnapshotter) Remove(ctx context.Context, key string) error {
	k := s.key(ctx, key)
	if isBerthLayer(k) {
		return nil
	}
	return s.sn.Remove(ctx, k)
}

func (s *buildSnapshotter) Walk(ctx context.Context, fn snapshots.WalkFunc, fs ...string) error {
	return s.sn.Walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		if !strings.HasPrefix(info.Name, snapshotPrefix) {
			return nil
		}
		return fn(ctx, fromBerthInfo(info))
	}, fs...)
}

// Close does nothing: berthd closes its snapshotter.
func (s *buildSnapshotter) Close() error { return nil }

// buildLeases is berth's lease manager as BuildKit sees it: snapshot
// resources name BuildKit's snapshots by their own keys.
type buildLeases struct {
	leases.Manager
	resType string
	// sn is berth's snapshotter, where a layer's snapshot may be berth's
	// (see buildSnapshotter.key).
	sn snapshots.Snapshotter
}

func (l *buildLeases) toBerth(ctx context.Context, r leases.Resource) leases.Resource {
	if r.Type == l.resType {
		if l.sn != nil {
			r.ID = berthLayerKey(ctx, l.sn, r.ID)
		} else {
			r.ID = toBerthKey(r.ID)
		}
	}
	return r
}

func (l *buildLeases) AddResource(ctx context.Context, lease leases.Lease, r leases.Resource) error {
	return l.Manager.AddResource(ctx, lease, l.toBerth(ctx, r))
}

func (l *buildLeases) DeleteResource(ctx context.Context, lease leases.Lease, r leases.Resource) error {
	return l.Manager.DeleteResource(ctx, lease, l.toBerth(ctx, r))
}

func (l *buildLeases) ListResources(ctx context.Context, lease leases.Lease) ([]leases.Resource, error) {
	rs, err := l.Manager.ListResources(ctx, lease)
	for i := range rs {
		if rs[i].Type == l.resType {
			rs[i].ID = fromBerthKey(rs[i].ID)
		}
	}
	return rs, err
}

// buildContent is berth's content store as BuildKit's worker sees it:
// with the labels BuildKit puts on blobs (uncompressed digests,
// compression variants, distribution sources) kept in the builder's own
// label database, as berth's store keeps none; blobs written under a
// lease are held by it before they are committed. Delete removes
// nothing: berth's collector removes what nothing holds.
type buildContent struct {
	content.Store
	labels *labelStore
	hold   holdFunc
}

func (c *buildContent) Info(ctx context.Context, d digest.Digest) (content.Info, error) {
	info, err := c.Store.Info(ctx, d)
	if err != nil {
		return info, err
	}
	info.Labels, err = c.labels.get(d)
	return info, err
}

// Update changes the labels of blob info.Digest (fieldpaths "labels" or
// "labels.<key>"; none: all of them); other fields are the store's.
func (c *buildContent) Update(ctx context.Context, info content.Info, fieldpaths ...string) (content.Info, error) {
	cur, err := c.Store.Info(ctx, info.Digest)
	if err != nil {
		return content.Info{}, err
	}
	cur.Labels, err = c.labels.update(info.Digest, info.Labels, fieldpaths)
	return cur, err
}

func (c *buildContent) Walk(ctx context.Context, fn content.WalkFunc, fs ...string) error {
	filter, err := filters.ParseAll(fs...)
	if err != nil {
		return fmt.Errorf("%w: %w", cerrdefs.ErrInvalidArgument, err)
	}
	return c.Store.Walk(ctx, func(info content.Info) error {
		var err error
		if info.Labels, err = c.labels.get(info.Digest); err != nil {
			return err
		}
		if !filter.Match(content.AdaptInfo(info)) {
			return nil
		}
		return fn(info)
	})
}

func (c *buildContent) Delete(ctx context.Context, d digest.Digest) error {
	_, err := c.Store.Info(ctx, d)
	return err
}

func (c *buildContent) Writer(ctx context.Context, opts ...content.WriterOpt) (content.Writer, error) {
	var wo content.WriterOpts
	for _, o := range opts {
		if err := o(&wo); err != nil {
			return nil, err
		}
	}
	if wo.Ref != "" {
		if err := c.hold(ctx, leases.Resource{ID: wo.Ref, Type: "ingests"}); err != nil {
			return nil, err
		}
	}
	if d := wo.Desc.Digest; d != "" {
		// A blob berth holds already is the writer's result: held too.
		if err := c.hold(ctx, leases.Resource{ID: d.String(), Type: "content"}); err != nil {
			return nil, err
		}
	}
	w, err := c.Store.Writer(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return &buildWriter{Writer: w, c: c, expected: wo.Desc.Digest}, nil
}

type buildWriter struct {
	content.Writer
	c        *buildContent
	expected digest.Digest
}

// Commit holds the blob, commits it and sets the labels given.
func (w *buildWriter) Commit(ctx context.Context, size int64, expected digest.Digest, opts ...content.Opt) error {
	d := expected
	if d == "" {
		d = w.expected
	}
	if d == "" {
		d = w.Writer.Digest()
	}
	if err := w.c.hold(ctx, leases.Resource{ID: d.String(), Type: "content"}); err != nil {
		w.Writer.Close()
		return err
	}
	err := w.Writer.Commit(ctx, size, expected, opts...)
	if err != nil && !cerrdefs.IsAlreadyExists(err) {
		return err
	}
	var info content.Info
	for _, o := range opts {
		if oerr := o(&info); oerr != nil {
			return oerr
		}
	}
	if len(info.Labels) > 0 {
		if _, lerr := w.c.labels.update(d, info.Labels, nil); lerr != nil {
			return lerr
		}
	}
	return err
}

// labelStore keeps labels of blobs by digest in a bbolt file. Labels of
// a blob the collector removed stay until the blob is written again
// (content-addressed, they still describe it) or the builder's state is
// reset.
type labelStore struct {
	db *bolt.DB
}

var labelsBucket = []byte("labels")

func openLabelStore(path string) (*labelStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("builder: content labels: %w", err)
	}
	return &labelStore{db: db}, nil
}

func (s *labelStore) Close() error { return s.db.Close() }

func (s *labelStore) get(d digest.Digest) (map[string]string, error) {
	var out map[string]string
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(labelsBucket)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(d))
		if v == nil {
			return nil
		}
		return json.Unmarshal(v, &out)
	})
	return out, err
}

// update applies labels to d's: with fieldpaths "labels" (or none) they
// replace all of them, with "labels.<key>" that key is set from labels
// (removed when absent or empty); with nil fieldpaths labels are merged
// (a commit's labels).
func (s *labelStore) update(d digest.Digest, labels map[string]string, fieldpaths []string) (map[string]string, error) {
	var out map[string]string
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(labelsBucket)
		if err != nil {
			return err
		}
		cur := map[string]string{}
		if v := b.Get([]byte(d)); v != nil {
			if err := json.Unmarshal(v, &cur); err != nil {
				return err
			}
		}
		switch {
		case fieldpaths == nil:
			maps.Copy(cur, labels)
		case len(fieldpaths) == 0:
			cur = maps.Clone(labels)
		default:
			for _, p := range fieldpaths {
				switch {
				case p == "labels":
					cur = maps.Clone(labels)
				case strings.HasPrefix(p, "labels."):
					k := strings.TrimPrefix(p, "labels.")
					if v := labels[k]; v != "" {
						cur[k] = v
					} else {
						delete(cur, k)
					}
				}
			}
		}
		for k, v := range cur {
			if v == "" {
				delete(cur, k)
			}
		}
		if len(cur) == 0 {
			return b.Delete([]byte(d))
		}
		raw, err := json.Marshal(cur)
		if err != nil {
			return err
		}
		out = cur
		return b.Put([]byte(d), raw)
	})
	return out, err
}

// The wrappers are the containerd interfaces BuildKit takes.
var (
	_ content.Store         = (*buildContent)(nil)
	_ snapshots.Snapshotter = (*buildSnapshotter)(nil)
	_ leases.Manager        = (*buildLeases)(nil)
)
