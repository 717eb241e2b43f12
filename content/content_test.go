package content

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/content/testsuite"
	"github.com/containerd/containerd/v2/core/metadata"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// berth's content store under containerd's metadata layer (which adds
// the labels and namespaces berth's store does not keep), as a containerd
// client such as a CRI endpoint would use it, content shared between
// namespaces: containerd's own content test suite checks every blob and
// ingest operation (Writer, resume, Status, Abort, ReaderAt, Walk, Delete)
// against berth's store as the backend.
func metadataStore(ctx context.Context, root string) (context.Context, content.Store, func() error, error) {
	cs, err := NewStore(filepath.Join(root, "content"), true)
	if err != nil {
		return nil, nil, nil, err
	}
	db, err := bolt.Open(filepath.Join(root, "metadata.db"), 0o600, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	var n atomic.Uint64
	name := testsuite.Name(ctx)
	ctx = testsuite.SetContextWrapper(ctx, func(ctx context.Context, _ bool) (context.Context, func(context.Context) error, error) {
		return namespaces.WithNamespace(ctx, fmt.Sprintf("%s-%d", name, n.Add(1))), func(context.Context) error { return nil }, nil
	})
	return ctx, metadata.NewDB(db, cs, nil).ContentStore(), db.Close, nil
}

func TestContentSuite(t *testing.T) {
	testsuite.ContentSuite(t, "berth", metadataStore)
	testsuite.ContentCrossNSSharedSuite(t, "berth", metadataStore)
}

func TestNewStoreRemovesOldIngests(t *testing.T) {
	root := t.TempDir()
	ingest := filepath.Join(root, "ingest")
	if err := os.MkdirAll(ingest, 0o700); err != nil {
		t.Fatal(err)
	}
	// An ingest file of the old layout, and a resumable ingest of the new.
	old := filepath.Join(ingest, "0123456789abcdef0123456789abcdef")
	if err := os.WriteFile(old, []byte("partial"), 0o444); err != nil {
		t.Fatal(err)
	}
	cs, err := NewStore(root, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := cs.Writer(ctx, content.WithRef("resume-me"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("half")); err != nil {
		t.Fatal(err)
	}
	w.Close()

	cs, err = NewStore(root, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("old-layout ingest file still there: %v", err)
	}
	st, err := cs.Status(ctx, "resume-me")
	if err != nil || st.Offset != 4 {
		t.Errorf("resumable ingest after reopening: %+v, %v; want offset 4", st, err)
	}
	// Without keeping ingests, none is left.
	cs, err = NewStore(root, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Status(ctx, "resume-me"); !cerrdefs.IsNotFound(err) {
		t.Errorf("ingest kept by NewStore(root, false): %v", err)
	}
}

func TestHelpers(t *testing.T) {
	ctx := context.Background()
	cs, err := NewStore(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(`{"config":true}`)
	d, err := WriteBlob(ctx, cs, data)
	if err != nil || d != digest.FromBytes(data) {
		t.Fatalf("WriteBlob = %s, %v", d, err)
	}
	if _, err := WriteBlob(ctx, cs, data); err != nil {
		t.Fatalf("writing an existing blob again: %v", err)
	}
	if ok, err := Has(ctx, cs, d); !ok || err != nil {
		t.Errorf("Has(written) = %v, %v", ok, err)
	}
	missing := digest.FromString("missing")
	if ok, err := Has(ctx, cs, missing); ok || err != nil {
		t.Errorf("Has(missing) = %v, %v", ok, err)
	}
	if b, err := ReadBlob(ctx, cs, d); err != nil || !bytes.Equal(b, data) {
		t.Errorf("ReadBlob = %q, %v", b, err)
	}
	if _, err := ReadBlob(ctx, cs, missing); !cerrdefs.IsNotFound(err) {
		t.Errorf("ReadBlob(missing): %v, want not found", err)
	}
	rc, err := Reader(ctx, cs, d)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(b, data) {
		t.Errorf("Reader = %q, %v", b, err)
	}
	if _, err := Reader(ctx, cs, missing); !cerrdefs.IsNotFound(err) {
		t.Errorf("Reader(missing): %v, want not found", err)
	}
}
