package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/berth/berth/archive"
)

// synthTar builds a layer of files files of size bytes each, spread over
// directories of 100 files, with pseudo-random (incompressible) content.
func synthTar(b *testing.B, files, size int) []byte {
	b.Helper()
	rng := rand.NewChaCha8([32]byte{1})
	body := make([]byte, size)
	var ents []ent
	for i := range files {
		rng.Read(body)
		if i%100 == 0 {
			ents = append(ents, dirEnt(fmt.Sprintf("d%04d/", i/100), 0o755))
		}
		ents = append(ents, fileEnt(fmt.Sprintf("d%04d/f%06d", i/100, i), string(body), 0o644))
	}
	t, _ := makeTar(b, ents...)
	return t
}

func benchApply(b *testing.B, tarball []byte) {
	s := newTestStore(b)
	ctx := context.Background()
	d := digestOf(tarball)
	b.SetBytes(int64(len(tarball)))
	b.ResetTimer()
	for range b.N {
		l, err := s.Apply(ctx, "", d, bytes.NewReader(tarball))
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Remove(ctx, l.ChainID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkApplySmallFiles unpacks 10,000 files of 4 KiB (about 40 MiB),
// the shape of a distro base layer.
func BenchmarkApplySmallFiles(b *testing.B) { benchApply(b, synthTar(b, 10000, 4<<10)) }

// BenchmarkApplyLargeFiles unpacks 8 files of 16 MiB (128 MiB), the shape of
// a layer adding a toolchain or model.
func BenchmarkApplyLargeFiles(b *testing.B) { benchApply(b, synthTar(b, 8, 16<<20)) }

// BenchmarkTar exports the small-files layer.
func BenchmarkTar(b *testing.B) {
	tarball := synthTar(b, 10000, 4<<10)
	s := newTestStore(b)
	l, err := s.Apply(context.Background(), "", digestOf(tarball), bytes.NewReader(tarball))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(tarball)))
	b.ResetTimer()
	for range b.N {
		rc, err := archive.TarDir(context.Background(), l.Dir, archive.WriterOptions{Layer: true})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}
