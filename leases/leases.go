// Package leases keeps what is in flight (a pull, a commit, a load, a
// build) from berth's garbage collector, through containerd's
// core/leases.Manager.
//
// The leases live in <data-root>/leases.db, a bbolt file in containerd's
// metadata schema (core/metadata: v1/<namespace>/leases/<id>/...), written
// by containerd's own lease manager (metadata.NewLeaseManager). Only the
// leases of that database are used: berth's blobs and layers are NOT
// registered in it, and containerd's metadata.GarbageCollect must never run
// on it (it would delete every blob and snapshot the database does not
// list; the DB is opened with no content store so such a call panics
// instead). berth's collector (image.Service.GC) takes its roots from
// berth's own records (images.db, the containers' layers) and from the
// resources held here.
//
// Resources: "content" (a blob digest), "ingests" (a content writer's
// ref) and "snapshots/overlayfs" (a snapshot key: a layer's chain ID, a
// container's ID). A lease labelled LabelProcess lives only as long as the
// berthd that made it: Open deletes such leases, so what a killed pull
// held is collected at the next start. Leases without it (BuildKit's) stay
// until deleted or expired (containerd.io/gc.expire).
//
// Ordering with the collector: Create and AddResource wait while a
// collection runs (Store.Collect), and a collection reads the leases
// after it has taken that lock. So an operation that holds a resource
// BEFORE it looks for or creates the object is safe: either the collection
// ran entirely before the hold (and the operation then sees what is left),
// or it sees the hold. Something whose name is known only once it exists
// (a commit's layer) is created inside Guard.
package leases

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/metadata"
	"github.com/containerd/containerd/v2/core/metadata/boltutil"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

const (
	// Namespace is the containerd namespace of berth's leases (a context
	// without one gets it).
	Namespace = "berth"
	// Snapshotter is the snapshotter name of berth's snapshot store in
	// snapshot resources ("snapshots/overlayfs").
	Snapshotter = "overlayfs"
	// LabelProcess marks a lease that lives no longer than the berthd that
	// created it: Open deletes every such lease.
	LabelProcess = "berth.lease/process"
	// labelExpire is containerd's expiry label (leases.WithExpiration).
	labelExpire = "containerd.io/gc.expire"

	// Resource types.
	TypeContent   = "content"
	TypeIngest    = "ingests"
	TypeSnapshots = "snapshots/" + Snapshotter
)

// Content, Ingest and Snapshot name resources for AddResource.
func Content(d digest.Digest) leases.Resource {
	return leases.Resource{ID: d.String(), Type: TypeContent}
}
func Ingest(ref string) leases.Resource { return leases.Resource{ID: ref, Type: TypeIngest} }
func Snapshot(key string) leases.Resource {
	return leases.Resource{ID: key, Type: TypeSnapshots}
}

// Store holds the lease database.
type Store struct {
	bdb *bolt.DB
	db  *metadata.DB
	lm  leases.Manager
	// gcMu: a collection holds it exclusively; Create, AddResource and
	// Guard share it. Lock order: image.Service.opMu > gcMu > the
	// stores' own locks.
	gcMu sync.RWMutex
}

// Open opens (creating if needed) the lease database at path and deletes
// the leases of an earlier berthd (LabelProcess).
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open lease database %s: %w", path, err)
	}
	// No content store and no snapshotters: this DB only holds leases.
	db := metadata.NewDB(bdb, nil, nil)
	if err := db.Init(ctx); err != nil {
		bdb.Close()
		return nil, fmt.Errorf("lease database %s: %w", path, err)
	}
	s := &Store{bdb: bdb, db: db, lm: metadata.NewLeaseManager(db)}
	if err := s.deleteProcessLeases(ctx); err != nil {
		bdb.Close()
		return nil, fmt.Errorf("lease database %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func withNS(ctx context.Context) context.Context {
	if _, ok := namespaces.Namespace(ctx); ok {
		return ctx
	}
	return namespaces.WithNamespace(ctx, Namespace)
}

func (s *Store) namespaces(ctx context.Context) ([]string, error) {
	var out []string
	err := s.bdb.View(func(tx *bolt.Tx) error {
		var err error
		out, err = metadata.NewNamespaceStore(tx).List(ctx)
		return err
	})
	return out, err
}

func (s *Store) deleteProcessLeases(ctx context.Context) error {
	nss, err := s.namespaces(ctx)
	if err != nil {
		return err
	}
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		ls, err := s.lm.List(nctx)
		if err != nil {
			return err
		}
		for _, l := range ls {
			if _, ok := l.Labels[LabelProcess]; !ok {
				continue
			}
			if err := s.lm.Delete(nctx, l); err != nil && !cerrdefs.IsNotFound(err) {
				return err
			}
		}
	}
	return nil
}

// Manager returns containerd's lease manager on this database: the
// namespace is Namespace unless ctx names one; Create and AddResource wait
// for a collection under way. A Delete with leases.SynchronousDelete runs
// onSyncDelete (the collector) when set.
func (s *Store) Manager(onSyncDelete func(context.Context) error) leases.Manager {
	return &manager{s: s, onSync: onSyncDelete}
}

type manager struct {
	s      *Store
	onSync func(context.Context) error
}

func (m *manager) Create(ctx context.Context, opts ...leases.Opt) (leases.Lease, error) {
	m.s.gcMu.RLock()
	defer m.s.gcMu.RUnlock()
	return m.s.lm.Create(withNS(ctx), opts...)
}

func (m *manager) Delete(ctx context.Context, l leases.Lease, opts ...leases.DeleteOpt) error {
	var do leases.DeleteOptions
	for _, o := range opts {
		if err := o(ctx, &do); err != nil {
			return err
		}
	}
	if err := m.s.lm.Delete(withNS(ctx), l); err != nil {
		return err
	}
	if do.Synchronous && m.onSync != nil {
		return m.onSync(ctx)
	}
	return nil
}

func (m *manager) List(ctx context.Context, filters ...string) ([]leases.Lease, error) {
	return m.s.lm.List(withNS(ctx), filters...)
}

func (m *manager) AddResource(ctx context.Context, l leases.Lease, r leases.Resource) error {
	m.s.gcMu.RLock()
	defer m.s.gcMu.RUnlock()
	return m.s.lm.AddResource(withNS(ctx), l, r)
}

func (m *manager) DeleteResource(ctx context.Context, l leases.Lease, r leases.Resource) error {
	return m.s.lm.DeleteResource(withNS(ctx), l, r)
}

func (m *manager) ListResources(ctx context.Context, l leases.Lease) ([]leases.Resource, error) {
	return m.s.lm.ListResources(withNS(ctx), l)
}

// Begin starts a lease for work of this process (LabelProcess), holding
// rs from the start, and returns ctx carrying it (for Hold). done deletes
// the lease; it uses a context of its own, so it works after ctx is
// cancelled. The lease and rs are written in one transaction.
func (s *Store) Begin(ctx context.Context, rs ...leases.Resource) (context.Context, func() error, error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	id := "berth-" + hex.EncodeToString(b[:])
	ctx = withNS(ctx)
	s.gcMu.RLock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		tctx := boltutil.WithTransaction(ctx, tx)
		if _, err := s.lm.Create(tctx, leases.WithID(id), leases.WithLabel(LabelProcess, "berthd")); err != nil {
			return err
		}
		return s.add(tctx, id, rs)
	})
	s.gcMu.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	ns, _ := namespaces.Namespace(ctx)
	done := func() error {
		return s.lm.Delete(namespaces.WithNamespace(context.Background(), ns), leases.Lease{ID: id})
	}
	return leases.WithLease(ctx, id), done, nil
}

// add adds rs to lease id in the transaction of ctx.
func (s *Store) add(ctx context.Context, id string, rs []leases.Resource) error {
	for _, r := range rs {
		if err := s.lm.AddResource(ctx, leases.Lease{ID: id}, r); err != nil {
			return err
		}
	}
	return nil
}

// ErrNoLease is returned by Hold for a context without a lease.
var ErrNoLease = errors.New("no lease in context")

// Hold adds resources to the lease of ctx (Begin), in one transaction.
// Hold a resource before looking for its object or creating it.
func (s *Store) Hold(ctx context.Context, rs ...leases.Resource) error {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	return s.hold(ctx, rs)
}

func (s *Store) hold(ctx context.Context, rs []leases.Resource) error {
	id, ok := leases.FromContext(ctx)
	if !ok {
		return fmt.Errorf("hold %v: %w", rs, ErrNoLease)
	}
	if len(rs) == 0 {
		return nil
	}
	ctx = withNS(ctx)
	return s.db.Update(func(tx *bolt.Tx) error {
		return s.add(boltutil.WithTransaction(ctx, tx), id, rs)
	})
}

// Guard keeps collections from starting until release is called: for
// creating something whose name is known only once it exists (create it,
// hold it with the hold Guard returns, then release). Do not call Hold or
// Begin before release (the lock is not reentrant once a collection
// waits).
func (s *Store) Guard() (hold func(ctx context.Context, rs ...leases.Resource) error, release func()) {
	s.gcMu.RLock()
	hold = func(ctx context.Context, rs ...leases.Resource) error { return s.hold(ctx, rs) }
	return hold, s.gcMu.RUnlock
}

// Held is every resource held by a lease, in every namespace.
type Held struct {
	Content   map[digest.Digest]bool
	Ingests   map[string]bool
	Snapshots map[string]bool // keys of snapshots/overlayfs
}

// Collect runs fn with every resource held, while no lease can be created
// or added to. Expired leases (containerd.io/gc.expire) are deleted first.
func (s *Store) Collect(ctx context.Context, fn func(context.Context, Held) error) error {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	held := Held{Content: map[digest.Digest]bool{}, Ingests: map[string]bool{}, Snapshots: map[string]bool{}}
	nss, err := s.namespaces(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		ls, err := s.lm.List(nctx)
		if err != nil {
			return err
		}
		for _, l := range ls {
			if v, ok := l.Labels[labelExpire]; ok {
				if t, err := time.Parse(time.RFC3339Nano, v); err == nil && now.After(t) {
					if err := s.lm.Delete(nctx, l); err != nil && !cerrdefs.IsNotFound(err) {
						return err
					}
					continue
				}
			}
			rs, err := s.lm.ListResources(nctx, l)
			if err != nil {
				if cerrdefs.IsNotFound(err) {
					continue
				}
				return err
			}
			for _, r := range rs {
				switch r.Type {
				case TypeContent:
					held.Content[digest.Digest(r.ID)] = true
				case TypeIngest:
					held.Ingests[r.ID] = true
				case TypeSnapshots:
					held.Snapshots[r.ID] = true
				}
			}
		}
	}
	return fn(ctx, held)
}
