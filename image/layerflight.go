package image

import (
	"context"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/berth/berth/content"
	"github.com/berth/berth/progress"
	"github.com/berth/berth/snapshot"
)

// layerFlights lets concurrent pulls of the same layer share one
// download, as dockerd's transfer manager does: the first pull to need a
// layer fetches it, the others wait for it and see its progress. Its
// zero value is ready. mu is a leaf lock: nothing else is locked or
// waited for while it is held.
type layerFlights struct {
	mu sync.Mutex
	m  map[string]*layerFlight // by chain ID and blob digest
}

// layerFlight is one layer's download, and the progress outputs of the
// pulls waiting for it.
type layerFlight struct {
	done chan struct{}
	// Set before done is closed: the download's error, and whether the
	// pull that ran it was cancelled (others then download again).
	err       error
	cancelled bool

	mu   sync.Mutex // held while a message goes out, so watchers see one order
	outs []progress.Output
}

func (f *layerFlight) WriteMessage(m progress.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.outs {
		_ = o.WriteMessage(m)
	}
	return nil
}

func (f *layerFlight) watch(out progress.Output) {
	f.mu.Lock()
	f.outs = append(f.outs, out)
	f.mu.Unlock()
}

func (f *layerFlight) unwatch(out progress.Output) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, o := range f.outs {
		if o == out {
			f.outs = append(f.outs[:i:i], f.outs[i+1:]...)
			return
		}
	}
}

// fetchLayerShared is fetchLayer, shared with every concurrent pull of
// the same layer. A pull whose download is cancelled (its client went
// away) does not fail the others: one of them downloads it again.
func (s *Service) fetchLayerShared(ctx context.Context, src *blobSource, l v1.Layer, ref LayerRef, parent digest.Digest, out progress.Output) error {
	chain := snapshot.ChainID(parent, ref.DiffID)
	key := chain.String() + " " + ref.Digest.String()
	for {
		s.flights.mu.Lock()
		f, joined := s.flights.m[key]
		if !joined {
			f = &layerFlight{done: make(chan struct{}), outs: []progress.Output{out}}
			if s.flights.m == nil {
				s.flights.m = map[string]*layerFlight{}
			}
			s.flights.m[key] = f
		}
		s.flights.mu.Unlock()

		if !joined {
			err := s.leadLayer(ctx, f, src, l, ref, parent, chain)
			s.flights.mu.Lock()
			delete(s.flights.m, key)
			s.flights.mu.Unlock()
			f.err, f.cancelled = err, ctx.Err() != nil
			close(f.done)
			return err
		}
		f.watch(out)
		select {
		case <-f.done:
			f.unwatch(out)
		case <-ctx.Done():
			f.unwatch(out)
			return ctx.Err()
		}
		if f.err == nil || !f.cancelled {
			return f.err
		}
		// The pull that was downloading it stopped: take over.
	}
}

// leadLayer downloads a layer for every pull waiting on f, unless a pull
// that finished since the caller looked has stored it.
func (s *Service) leadLayer(ctx context.Context, f *layerFlight, src *blobSource, l v1.Layer, ref LayerRef, parent, chain digest.Digest) error {
	if _, err := s.snapshots.Get(ctx, chain); err == nil {
		if ok, _ := content.Has(ctx, s.content, ref.Digest); ok {
			_ = progress.Update(f, shortID(ref.Digest), "Already exists")
			return nil
		}
	}
	return s.fetchLayer(ctx, src, l, ref, parent, f)
}
