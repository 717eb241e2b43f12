package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// pullLikeLayers is the shape of nginx:alpine: a base layer of a few
// thousand small files and six small layers above it.
func pullLikeLayers(b *testing.B) [][]byte {
	b.Helper()
	rng := rand.NewChaCha8([32]byte{2})
	var out [][]byte
	for li, files := range []int{3000, 400, 60, 5, 5, 5, 5} {
		var ents []ent
		for i := range files {
			body := make([]byte, 1024+int(rng.Uint64()%8192))
			rng.Read(body)
			if i%50 == 0 {
				ents = append(ents, dirEnt(fmt.Sprintf("l%d-d%04d/", li, i/50), 0o755))
			}
			ents = append(ents, fileEnt(fmt.Sprintf("l%d-d%04d/f%06d", li, i/50, i), string(body), 0o644))
		}
		t, _ := makeTar(b, ents...)
		out = append(out, t)
	}
	return out
}

// BenchmarkPullLike unpacks a 7-layer image as a pull does (4 layers at
// a time, in any order), then removes it top-down as rmi does.
func BenchmarkPullLike(b *testing.B) { benchPullLike(b, 4) }

// BenchmarkPullLikeSeq is BenchmarkPullLike one layer at a time.
func BenchmarkPullLikeSeq(b *testing.B) { benchPullLike(b, 1) }

func benchPullLike(b *testing.B, jobs int) {
	layers := pullLikeLayers(b)
	s := newTestStore(b)
	ctx := context.Background()
	diffs := make([]digest.Digest, len(layers))
	chains := make([]digest.Digest, len(layers))
	var parent digest.Digest
	for i, l := range layers {
		diffs[i] = digestOf(l)
		chains[i] = ChainID(parent, diffs[i])
		parent = chains[i]
	}
	b.ResetTimer()
	for range b.N {
		var g errgroup.Group
		g.SetLimit(jobs)
		for i := range layers {
			g.Go(func() error {
				var p digest.Digest
				if i > 0 {
					p = chains[i-1]
				}
				_, err := s.Apply(ctx, p, diffs[i], bytes.NewReader(layers[i]))
				return err
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		for i := len(chains) - 1; i >= 0; i-- {
			if err := s.Remove(ctx, chains[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
