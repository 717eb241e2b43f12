package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth/berth/errdefs"
	"github.com/opencontainers/go-digest"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ingestCount(t *testing.T, s *Store) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Root(), "ingest"))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestWriteCommitOpen(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := []byte("hello, berth")
	d := digest.FromBytes(data)

	w, err := s.Writer(ctx, d, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(data[:5]); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[5:]); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(ctx, d); ok {
		t.Fatal("blob visible before commit")
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close after Commit: %v", err)
	}

	if _, err := os.Stat(filepath.Join(s.Root(), "blobs", "sha256", d.Encoded())); err != nil {
		t.Fatalf("blob not at documented path: %v", err)
	}
	rc, err := s.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("read %q", got)
	}
	info, err := s.Info(ctx, d)
	if err != nil || info.Size != int64(len(data)) || info.Digest != d {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	ra, err := s.ReaderAt(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := ra.ReadAt(buf, 7); err != nil || string(buf) != "berth" || ra.Size() != int64(len(data)) {
		t.Fatalf("ReadAt = %q, %v, size %d", buf, err, ra.Size())
	}
	ra.Close()
	if n := ingestCount(t, s); n != 0 {
		t.Fatalf("%d ingest files left", n)
	}
}

func TestDigestMismatchCommitsNothing(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	want := digest.FromString("something else")
	w, err := s.Writer(ctx, want, -1)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "actual bytes")
	err = w.Commit(ctx)
	if !errdefs.IsInvalidParameter(err) {
		t.Fatalf("err = %v, want invalid parameter", err)
	}
	wantMsg := "digest mismatch: expected " + want.String() + ", got " + digest.FromString("actual bytes").String()
	if !strings.Contains(err.Error(), wantMsg) {
		t.Fatalf("message %q lacks %q", err, wantMsg)
	}
	if ok, _ := s.Has(ctx, want); ok {
		t.Fatal("mismatched blob committed")
	}
	if ok, _ := s.Has(ctx, digest.FromString("actual bytes")); ok {
		t.Fatal("blob committed under its real digest")
	}
	if n := ingestCount(t, s); n != 0 {
		t.Fatalf("%d ingest files left", n)
	}
}

func TestSizeMismatch(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := []byte("12345")
	d := digest.FromBytes(data)

	w, _ := s.Writer(ctx, d, 4)
	if _, err := w.Write(data); !errdefs.IsInvalidParameter(err) {
		t.Fatalf("overlong write: %v", err)
	}
	w.Close()

	w, _ = s.Writer(ctx, d, 6)
	w.Write(data)
	if err := w.Commit(ctx); !errdefs.IsInvalidParameter(err) || !strings.Contains(err.Error(), "size mismatch") {
		t.Fatalf("short commit: %v", err)
	}
	if ok, _ := s.Has(ctx, d); ok {
		t.Fatal("short blob committed")
	}
	if n := ingestCount(t, s); n != 0 {
		t.Fatalf("%d ingest files left", n)
	}
}

func TestCloseAborts(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w, _ := s.Writer(ctx, "", -1)
	io.WriteString(w, "partial")
	if n := ingestCount(t, s); n != 1 {
		t.Fatalf("%d ingest files, want 1", n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := ingestCount(t, s); n != 0 {
		t.Fatalf("%d ingest files left", n)
	}
	if err := w.Commit(ctx); err == nil {
		t.Fatal("Commit after Close succeeded")
	}
	n := 0
	s.Walk(ctx, func(Info) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d blobs after abort", n)
	}
}

func TestUnknownDigestStoredUnderSHA256(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w, _ := s.Writer(ctx, "", -1)
	io.WriteString(w, "abc")
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if w.Digest() != digest.FromString("abc") {
		t.Fatalf("Digest = %s", w.Digest())
	}
	if ok, _ := s.Has(ctx, digest.FromString("abc")); !ok {
		t.Fatal("blob missing")
	}
}

func TestCommitExistingIsNoop(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	d, err := s.WriteBlob(ctx, []byte("same"))
	if err != nil {
		t.Fatal(err)
	}
	d2, err := s.WriteBlob(ctx, []byte("same"))
	if err != nil || d2 != d {
		t.Fatalf("second WriteBlob = %s, %v", d2, err)
	}
	if n := ingestCount(t, s); n != 0 {
		t.Fatalf("%d ingest files left", n)
	}
}

func TestConcurrentWritersSameDigest(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := bytes.Repeat([]byte("concurrent "), 100000)
	d := digest.FromBytes(data)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.Writer(ctx, d, int64(len(data)))
			if err != nil {
				errs <- err
				return
			}
			defer w.Close()
			for off := 0; off < len(data); off += 4096 {
				end := min(off+4096, len(data))
				if _, err := w.Write(data[off:end]); err != nil {
					errs <- err
					return
				}
			}
			errs <- w.Commit(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ReadBlob(ctx, d)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadBlob: %v (len %d)", err, len(got))
	}
	if n := ingestCount(t, s); n != 0 {
		t.Fatalf("%d ingest files left", n)
	}
}

func TestNotFoundAndInvalid(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	missing := digest.FromString("missing")
	if _, err := s.Open(ctx, missing); !errdefs.IsNotFound(err) {
		t.Fatalf("Open: %v", err)
	}
	if _, err := s.Info(ctx, missing); !errdefs.IsNotFound(err) {
		t.Fatalf("Info: %v", err)
	}
	if _, err := s.ReadBlob(ctx, missing); !errdefs.IsNotFound(err) {
		t.Fatalf("ReadBlob: %v", err)
	}
	if err := s.Delete(ctx, missing); !errdefs.IsNotFound(err) {
		t.Fatalf("Delete: %v", err)
	}
	if ok, err := s.Has(ctx, missing); ok || err != nil {
		t.Fatalf("Has = %v, %v", ok, err)
	}
	bad := digest.Digest("sha256:../../../etc/passwd")
	if _, err := s.Open(ctx, bad); !errdefs.IsInvalidParameter(err) {
		t.Fatalf("Open(bad): %v", err)
	}
	if _, err := s.Writer(ctx, bad, -1); !errdefs.IsInvalidParameter(err) {
		t.Fatalf("Writer(bad): %v", err)
	}
}

func TestDeleteAndWalk(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	want := map[digest.Digest]int64{}
	for _, b := range []string{"a", "bb", "ccc"} {
		d, err := s.WriteBlob(ctx, []byte(b))
		if err != nil {
			t.Fatal(err)
		}
		want[d] = int64(len(b))
	}
	// Junk in the blobs dir is ignored by Walk.
	os.WriteFile(filepath.Join(s.Root(), "blobs", "sha256", "not-a-digest"), nil, 0o644)

	got := map[digest.Digest]int64{}
	if err := s.Walk(ctx, func(i Info) error { got[i.Digest] = i.Size; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("walk = %v", got)
	}
	for d, n := range want {
		if got[d] != n {
			t.Fatalf("walk %s size %d, want %d", d, got[d], n)
		}
	}
	stop := errors.New("stop")
	if err := s.Walk(ctx, func(Info) error { return stop }); err != stop {
		t.Fatalf("walk error = %v", err)
	}

	d := digest.FromString("bb")
	if err := s.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(ctx, d); ok {
		t.Fatal("deleted blob still there")
	}
}

func TestNewStoreRemovesLeftoverIngests(t *testing.T) {
	root := t.TempDir()
	s, err := NewStore(root)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := s.Writer(context.Background(), "", -1)
	io.WriteString(w, "crash mid-write")
	// Simulate a crash: the writer is never committed nor closed.
	if _, err := NewStore(root); err != nil {
		t.Fatal(err)
	}
	if n := ingestCount(t, s); n != 0 {
		t.Fatalf("%d leftover ingest files", n)
	}
}

func TestCancelledContext(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	w, _ := s.Writer(ctx, "", -1)
	io.WriteString(w, "x")
	cancel()
	if err := w.Commit(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit with cancelled ctx: %v", err)
	}
	if ok, _ := s.Has(context.Background(), digest.FromString("x")); ok {
		t.Fatal("committed despite cancellation")
	}
}
