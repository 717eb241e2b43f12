package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth/berth/archive/archivetest"
)

// TestApplySuite runs the archive package's escape suite through Apply,
// the entry point of every pull, load and commit.
func TestApplySuite(t *testing.T) {
	s := newTestStore(t)
	archivetest.Run(t, archivetest.Target{
		Name: "snapshot Apply", Kind: archivetest.Layer, Devices: true, SameOwner: true,
		Run: func(t *testing.T, _ func(string), tarball []byte) (string, error) {
			l, err := s.Apply(context.Background(), "", digest.FromBytes(tarball), bytes.NewReader(tarball))
			if err != nil {
				tmpEmpty(t, s)
				return "", err
			}
			return l.Dir, nil
		},
	})
}

func TestApplyFifoAsParentDoesNotHang(t *testing.T) {
	s := newTestStore(t)
	fifo := ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "f", Mode: 0o600, ModTime: testTime}}
	b, d := makeTar(t, fifo, fileEnt("f/x", "x", 0o644))
	done := make(chan error, 1)
	go func() {
		_, err := s.Apply(context.Background(), "", d, bytes.NewReader(b))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("file under a fifo applied")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Apply hangs opening a fifo as a directory")
	}
	tmpEmpty(t, s)
}
