package leases

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	cleases "github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/opencontainers/go-digest"
)

func held(t *testing.T, s *Store) Held {
	t.Helper()
	var h Held
	if err := s.Collect(context.Background(), func(_ context.Context, x Held) error { h = x; return nil }); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestProcessLeasesEndAtOpen: a lease of berthd's own work is gone when
// the database is opened again (a killed berthd's pull is over); a lease
// made through the Manager without the label (BuildKit's) stays, until it
// expires.
func TestProcessLeasesEndAtOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "leases.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	d1, d2, d3 := digest.FromString("1"), digest.FromString("2"), digest.FromString("3")
	lctx, _, err := s.Begin(ctx, Content(d1), Ingest("blob-x"), Snapshot("sha256:abc"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Hold(lctx, Content(d3)); err != nil {
		t.Fatal(err)
	}
	m := s.Manager(nil)
	bctx := namespaces.WithNamespace(ctx, "buildkit")
	l, err := m.Create(bctx, cleases.WithID("cache-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AddResource(bctx, l, Content(d2)); err != nil {
		t.Fatal(err)
	}
	exp, err := m.Create(ctx, cleases.WithID("expired"), cleases.WithExpiration(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AddResource(ctx, exp, Snapshot("sha256:expired")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // past the expiry date, not a sync
	h := held(t, s)
	if !h.Content[d1] || !h.Content[d2] || !h.Content[d3] || !h.Ingests["blob-x"] || !h.Snapshots["sha256:abc"] {
		t.Fatalf("held = %+v", h)
	}
	if h.Snapshots["sha256:expired"] {
		t.Errorf("an expired lease still holds its resource")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h = held(t, s)
	if h.Content[d1] || h.Content[d3] || h.Ingests["blob-x"] || h.Snapshots["sha256:abc"] {
		t.Errorf("a lease of the earlier process survived: %+v", h)
	}
	if !h.Content[d2] {
		t.Errorf("BuildKit's lease is gone: %+v", h)
	}
}

// TestDoneReleases: done deletes the lease, even after ctx is cancelled.
func TestDoneReleases(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "leases.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	d := digest.FromString("x")
	if _, done, err := s.Begin(ctx, Content(d)); err != nil {
		t.Fatal(err)
	} else {
		cancel()
		if err := done(); err != nil {
			t.Fatal(err)
		}
	}
	if h := held(t, s); h.Content[d] {
		t.Errorf("released lease still holds %s", d)
	}
	if err := s.Hold(context.Background(), Content(d)); err == nil {
		t.Errorf("Hold without a lease succeeded")
	}
}

// TestCollectExcludesHolds: a Hold waits while a collection runs.
func TestCollectExcludesHolds(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "leases.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lctx, _, err := s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromString("late")
	inCollect, holdDone := make(chan struct{}), make(chan struct{})
	err = s.Collect(context.Background(), func(context.Context, Held) error {
		go func() {
			close(inCollect)
			_ = s.Hold(lctx, Content(d))
			close(holdDone)
		}()
		<-inCollect
		select {
		case <-holdDone:
			t.Errorf("Hold finished while a collection ran")
		case <-time.After(100 * time.Millisecond):
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	<-holdDone
	if h := held(t, s); !h.Content[d] {
		t.Errorf("the hold made after the collection is missing")
	}
}

// BenchmarkBeginDone: what a pull pays for its lease (create with its
// resources, delete).
func BenchmarkBeginDone(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "leases.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var rs []cleases.Resource
	for i := range 6 {
		d := digest.FromString(string(rune('a' + i)))
		rs = append(rs, Content(d), Ingest("blob-"+d.String()), Snapshot(d.String()))
	}
	for b.Loop() {
		_, done, err := s.Begin(context.Background(), rs...)
		if err != nil {
			b.Fatal(err)
		}
		if err := done(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestContentWrapperHolds: a blob written through Content with a lease
// in ctx is held (its ingest from the start, the blob at commit).
func TestContentWrapperHolds(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, filepath.Join(dir, "leases.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base, err := local.NewStore(filepath.Join(dir, "content"))
	if err != nil {
		t.Fatal(err)
	}
	cs := s.Content(base)
	lctx, _, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.Writer(lctx, content.WithRef("ref-1"))
	if err != nil {
		t.Fatal(err)
	}
	if h := held(t, s); !h.Ingests["ref-1"] {
		t.Errorf("ingest not held while writing: %+v", h)
	}
	if _, err := w.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(lctx, 4, ""); err != nil {
		t.Fatal(err)
	}
	if h := held(t, s); !h.Content[digest.FromString("data")] {
		t.Errorf("committed blob not held: %+v", h)
	}
	if _, err := cs.Writer(ctx, content.WithRef("ref-2")); err != nil {
		t.Errorf("a writer without a lease: %v", err)
	}
}
