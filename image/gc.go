package image

import (
	"context"
	"errors"
	"sort"
	"time"

	ccontent "github.com/containerd/containerd/v2/core/content"
	cleases "github.com/containerd/containerd/v2/core/leases"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"

	"github.com/berth/berth/content"
	"github.com/berth/berth/leases"
	"github.com/berth/berth/snapshot"
)

// ingestGrace is how long an ingest no lease holds must have been idle
// before a collection aborts it. berth's own writers hold their ingests;
// the grace is for a writer that does not (it would lose a write in
// progress otherwise). At start every ingest is removed anyway
// (content.NewStore).
const ingestGrace = time.Minute

// GCReport says what a collection removed.
type GCReport struct {
	// Layers are the chain IDs of the layers removed.
	Layers []digest.Digest
	// Blobs are the digests of the blobs removed.
	Blobs []digest.Digest
	// Snapshots is the number of the builder's snapshots removed.
	Snapshots int
	// Ingests is the number of unfinished writes aborted.
	Ingests int
	// Reclaimed is the bytes removed: layers' file contents and blobs.
	Reclaimed int64
}

// GC is berth's mark-and-sweep garbage collection over the content store
// and the snapshot store. Roots: every image record (its config,
// manifest and layer blobs, its layers' chain IDs and their parents), the
// layers containers stand on (Config.Containers), and every resource a lease
// holds (leases.Store). It removes every committed layer and every blob
// that no root reaches, and every ingest no lease holds that has been idle
// for a minute. Layers are removed children first; a layer something
// else stands on (a container's snapshot) is kept. Nothing is removed when
// the records cannot be read.
func (s *Service) GC(ctx context.Context) (GCReport, error) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	return s.gcLocked(ctx)
}

// gcLocked is GC with s.opMu held: what is written under opMu (records
// and the blobs they name, as ensureManifest's) needs no lease.
func (s *Service) gcLocked(ctx context.Context) (GCReport, error) {
	var rep GCReport
	err := s.leases.Collect(ctx, func(ctx context.Context, held leases.Held) error {
		recs, err := s.records.list()
		if err != nil {
			return err
		}
		keepChain := map[digest.Digest]bool{}
		keepBlob := map[digest.Digest]bool{}
		for _, r := range recs {
			keepBlob[r.ID] = true
			if r.Manifest != "" {
				keepBlob[r.Manifest] = true
			}
			diffIDs := make([]digest.Digest, 0, len(r.Layers))
			for _, l := range r.Layers {
				// DiffID too: a load may have stored the layer
				// uncompressed under it (layerReader).
				keepBlob[l.Digest], keepBlob[l.DiffID] = true, true
				diffIDs = append(diffIDs, l.DiffID)
			}
			for _, c := range ChainIDs(diffIDs) {
				keepChain[c] = true
			}
			if r.TopChain != "" {
				keepChain[r.TopChain] = true
			}
		}
		for k := range held.Snapshots {
			keepChain[digest.Digest(k)] = true
		}
		var used []digest.Digest
		if s.containers != nil {
			used = s.containers.LayerUsage()
		}
		for d := range held.Content {
			keepBlob[d] = true
		}

		// The builder's snapshots (BuildKit's cache) are kept by its
		// leases only.
		if keys, size, err := s.snapshots.SweepBuilder(ctx, func(k string) bool { return held.Snapshots[k] }); err != nil {
			s.log.Warn("garbage collection: builder snapshots", "err", err)
		} else {
			rep.Snapshots += len(keys)
			rep.Reclaimed += size
		}
		if err := s.sweepLayers(ctx, keepChain, used, &rep); err != nil {
			return err
		}
		if err := s.sweepBlobs(ctx, keepBlob, &rep); err != nil {
			return err
		}
		return s.sweepIngests(ctx, held.Ingests, &rep)
	})
	if err == nil && (len(rep.Layers) > 0 || len(rep.Blobs) > 0 || rep.Snapshots > 0 || rep.Ingests > 0) {
		s.log.Info("garbage collected", "layers", len(rep.Layers), "blobs", len(rep.Blobs), "builder_snapshots", rep.Snapshots, "ingests", rep.Ingests, "bytes", rep.Reclaimed)
	}
	return rep, err
}

// sweepLayers removes the layers neither keep nor used (the layers
// containers stand on) reaches, and remembers the used ones that only
// containers keep (orphans).
func (s *Service) sweepLayers(ctx context.Context, keep map[digest.Digest]bool, used []digest.Digest, rep *GCReport) error {
	layers, err := s.snapshots.List(ctx)
	if err != nil {
		return err
	}
	byChain := make(map[digest.Digest]snapshot.Layer, len(layers))
	for _, l := range layers {
		byChain[l.ChainID] = l
	}
	// Mark: a kept layer keeps the layers below it.
	mark := func(c digest.Digest) {
		keep[c] = true
		for p := byChain[c].Parent; p != "" && !keep[p]; p = byChain[p].Parent {
			keep[p] = true
		}
	}
	for c := range keep {
		mark(c)
	}
	orphans := map[digest.Digest]bool{}
	for _, c := range used {
		if !keep[c] {
			orphans[c] = true
		}
	}
	for c := range orphans {
		mark(c)
	}
	s.orphanMu.Lock()
	s.orphans = orphans
	s.orphanMu.Unlock()
	depth := func(c digest.Digest) int {
		n := 0
		for p := byChain[c].Parent; p != "" && n < 1000; p = byChain[p].Parent {
			n++
		}
		return n
	}
	var doomed []snapshot.Layer
	for _, l := range layers {
		if !keep[l.ChainID] {
			doomed = append(doomed, l)
		}
	}
	d := make(map[digest.Digest]int, len(doomed))
	for _, l := range doomed {
		d[l.ChainID] = depth(l.ChainID)
	}
	sort.SliceStable(doomed, func(i, j int) bool { return d[doomed[i].ChainID] > d[doomed[j].ChainID] })
	for _, l := range doomed {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := s.snapshots.Remove(ctx, l.ChainID)
		switch {
		case err == nil:
			rep.Layers = append(rep.Layers, l.ChainID)
			rep.Reclaimed += l.Size
		case cerrdefs.IsNotFound(err), cerrdefs.IsConflict(err):
			// Gone already, or a container or view stands on it.
		default:
			s.log.Warn("garbage collection: remove layer", "chain", l.ChainID, "err", err)
		}
	}
	return nil
}

func (s *Service) sweepBlobs(ctx context.Context, keep map[digest.Digest]bool, rep *GCReport) error {
	var doomed []ccontent.Info
	if err := s.content.Walk(ctx, func(info ccontent.Info) error {
		if !keep[info.Digest] {
			doomed = append(doomed, info)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, info := range doomed {
		err := s.content.Delete(ctx, info.Digest)
		switch {
		case err == nil:
			rep.Blobs = append(rep.Blobs, info.Digest)
			rep.Reclaimed += info.Size
		case cerrdefs.IsNotFound(err):
		default:
			s.log.Warn("garbage collection: remove blob", "digest", info.Digest, "err", err)
		}
	}
	return nil
}

func (s *Service) sweepIngests(ctx context.Context, held map[string]bool, rep *GCReport) error {
	sts, err := s.content.ListStatuses(ctx)
	if err != nil {
		return err
	}
	for _, st := range sts {
		if held[st.Ref] || time.Since(st.UpdatedAt) < ingestGrace {
			continue
		}
		if err := s.content.Abort(ctx, st.Ref); err != nil && !cerrdefs.IsNotFound(err) {
			s.log.Warn("garbage collection: abort ingest", "ref", st.Ref, "err", err)
			continue
		}
		rep.Ingests++
	}
	return nil
}

// ReleaseLayer is called when a container that stood on layer chain is
// gone. When chain is a layer only containers kept (its image removed
// while a container used it, as `rmi -f` of a stopped container's image
// does), a collection runs and removes what nothing needs any more, as
// dockerd frees such layers with the container. Otherwise it costs a map
// lookup.
func (s *Service) ReleaseLayer(ctx context.Context, chain digest.Digest) {
	s.orphanMu.Lock()
	orphan := s.orphans[chain]
	s.orphanMu.Unlock()
	if orphan {
		s.collect(ctx, false)
	}
}

// collect runs GC (gcLocked with locked true), logging a failure: for
// after a removal or a failed operation, whose own result does not depend
// on it.
func (s *Service) collect(ctx context.Context, locked bool) GCReport {
	gc := s.GC
	if locked {
		gc = s.gcLocked
	}
	rep, err := gc(context.WithoutCancel(ctx))
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("garbage collection", "err", err)
	}
	return rep
}

// writeBlob stores data as content.WriteBlob does, first holding the
// blob in the lease of ctx if it has one (else the caller holds opMu or
// the blob is no new reference).
func (s *Service) writeBlob(ctx context.Context, data []byte) (digest.Digest, error) {
	if _, ok := cleases.FromContext(ctx); ok {
		if err := s.leases.Hold(ctx, blobResources(nil, digest.FromBytes(data))...); err != nil {
			return "", err
		}
	}
	return content.WriteBlob(ctx, s.content, data)
}

// recordResources names what record r stands on for a lease: its config
// and manifest, its layers' blobs (also under their diff IDs, where a load
// may have stored them uncompressed) and its top layer (which keeps the
// layers below it).
func recordResources(rs []cleases.Resource, r *Record) []cleases.Resource {
	rs = append(rs, leases.Content(r.ID))
	if r.Manifest != "" {
		rs = append(rs, leases.Content(r.Manifest))
	}
	diffIDs := make([]digest.Digest, 0, len(r.Layers))
	for _, l := range r.Layers {
		rs = append(rs, leases.Content(l.Digest))
		if l.DiffID != l.Digest {
			rs = append(rs, leases.Content(l.DiffID))
		}
		diffIDs = append(diffIDs, l.DiffID)
	}
	top := r.TopChain
	if chains := ChainIDs(diffIDs); top == "" && len(chains) > 0 {
		top = chains[len(chains)-1]
	}
	if top != "" {
		rs = append(rs, leases.Snapshot(top.String()))
	}
	return rs
}

// holdRecord holds what r stands on in the lease of ctx, then checks that
// r still exists: a removal and collection between the caller's lookup and
// the hold may have taken its blobs (NotFound then). From its return on,
// r's blobs and layers stay until the lease ends, whatever is removed.
func (s *Service) holdRecord(ctx context.Context, r *Record) error {
	if err := s.leases.Hold(ctx, recordResources(nil, r)...); err != nil {
		return err
	}
	if _, err := s.records.get(r.ID); err != nil {
		if cerrdefs.IsNotFound(err) {
			return cerrdefs.ErrNotFound.WithMessage("No such image: " + r.ID.String())
		}
		return err
	}
	return nil
}

// begin starts a lease holding rs for an operation that writes blobs or
// layers; end releases it, collecting what it left when failed is true.
func (s *Service) begin(ctx context.Context, rs ...cleases.Resource) (context.Context, func(failed bool), error) {
	lctx, done, err := s.leases.Begin(ctx, rs...)
	if err != nil {
		return nil, nil, err
	}
	return lctx, func(failed bool) {
		if err := done(); err != nil {
			s.log.Warn("release lease", "err", err)
		}
		if failed {
			s.collect(ctx, false)
		}
	}, nil
}
