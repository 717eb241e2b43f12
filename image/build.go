package image

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	ccontent "github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/archive"
	"github.com/berth/berth/content"
	"github.com/berth/berth/leases"
	"github.com/berth/berth/snapshot"
)

// RegistryConfig returns the registry settings in force (mirrors,
// insecure registries), for other services that reach registries (the
// builder) to follow the same ones.
func (s *Service) RegistryConfig() RegistryConfig { return s.registryConfig() }

// ImportBuilt makes the image whose manifest (or index) desc names in p a
// berth image tagged with names (full references; none for an untagged
// build): its config, manifest and compressed layers go into berth's
// content store and each layer berth does not hold yet is made once.
// Blobs and layers berth already holds are not copied again.
//
// snaps names, by chain ID, the snapshots of berth's snapshotter that
// hold the image's layers as the builder made them (its snapshots of the
// build steps, or berth's own layer): a layer berth lacks whose snapshot
// stands on the snapshot of the layer below is made from that snapshot's
// files, hard-linked (snapshot.Store.LinkLayer), not unpacked from its
// blob, so a build step's files are on disk once. Other layers (or if
// linking fails) are unpacked from their blobs. It returns the image ID
// (the config's digest).
func (s *Service) ImportBuilt(ctx context.Context, p ccontent.Provider, desc ocispec.Descriptor, names []string, snaps map[digest.Digest]string) (_ digest.Digest, retErr error) {
	mdesc, err := manifestFor(ctx, p, desc)
	if err != nil {
		return "", err
	}
	rawManifest, err := ccontent.ReadBlob(ctx, p, mdesc)
	if err != nil {
		return "", fmt.Errorf("built image manifest: %w", err)
	}
	var mf ocispec.Manifest
	if err := json.Unmarshal(rawManifest, &mf); err != nil {
		return "", fmt.Errorf("built image manifest: %w", err)
	}
	rawConfig, err := ccontent.ReadBlob(ctx, p, mf.Config)
	if err != nil {
		return "", fmt.Errorf("built image config: %w", err)
	}
	var cfg ImageConfig
	if err := json.Unmarshal(rawConfig, &cfg); err != nil {
		return "", fmt.Errorf("built image config: %w", err)
	}
	if len(cfg.RootFS.DiffIDs) != len(mf.Layers) {
		return "", fmt.Errorf("built image has %d layers but its config lists %d diff IDs", len(mf.Layers), len(cfg.RootFS.DiffIDs))
	}
	chains := ChainIDs(cfg.RootFS.DiffIDs)
	hold := blobResources(nil, digest.FromBytes(rawConfig), digest.FromBytes(rawManifest))
	for i, l := range mf.Layers {
		hold = append(blobResources(hold, l.Digest), leases.Snapshot(chains[i].String()))
	}
	ctx, end, err := s.begin(ctx, hold...)
	if err != nil {
		return "", err
	}
	defer func() { end(retErr != nil) }()
	refs := make([]LayerRef, len(mf.Layers))
	var size int64
	for i, l := range mf.Layers {
		refs[i] = LayerRef{Digest: l.Digest, MediaType: l.MediaType, Size: l.Size, DiffID: cfg.RootFS.DiffIDs[i]}
		var parent digest.Digest
		var src, srcParent string
		if i > 0 {
			parent = chains[i-1]
			srcParent = snaps[parent]
		}
		if i == 0 || srcParent != "" {
			src = snaps[chains[i]]
		}
		ly, err := s.importBuiltLayer(ctx, p, l, parent, refs[i].DiffID, src, srcParent)
		if err != nil {
			return "", fmt.Errorf("layer %s: %w", shortID(l.Digest), err)
		}
		size += ly.Size
	}
	id, err := content.WriteBlob(ctx, s.content, rawConfig)
	if err != nil {
		return "", err
	}
	if _, err := content.WriteBlob(ctx, s.content, rawManifest); err != nil {
		return "", err
	}
	rec := &Record{
		ID:                id,
		Manifest:          mdesc.Digest,
		ManifestMediaType: mdesc.MediaType,
		ManifestSize:      int64(len(rawManifest)),
		Layers:            refs,
		Size:              size,
		Added:             time.Now().UTC(),
	}
	if rec.ManifestMediaType == "" {
		rec.ManifestMediaType = mf.MediaType
	}
	if len(chains) > 0 {
		rec.TopChain = chains[len(chains)-1]
	}
	var tags []string
	for _, n := range names {
		ref, err := ParseReference(n)
		if err != nil {
			return "", err
		}
		tags = append(tags, ref.String())
	}
	s.opMu.Lock()
	err = s.records.addImage(rec, tags, nil)
	s.opMu.Unlock()
	if err != nil {
		return "", err
	}
	for _, t := range tags {
		s.emit("tag", id.String(), familiarRefs([]string{t})[0])
	}
	return id, nil
}

// RecordPushed notes that BuildKit's image exporter pushed image id to
// name as the manifest or index pushed: name's repository gets the repo
// digest repo@pushed (inspect's RepoDigests, as after a push of dockerd)
// and is remembered as a source of the image's blobs, for cross-repository
// mounts of later pushes.
func (s *Service) RecordPushed(ctx context.Context, name string, pushed, id digest.Digest) error {
	ref, err := ParseReference(name)
	if err != nil {
		return err
	}
	repo := reference.TrimNamed(ref)
	s.opMu.Lock()
	err = s.records.addDigestRef(repo.String()+"@"+pushed.String(), id)
	s.opMu.Unlock()
	if err != nil {
		return err
	}
	rec, err := s.records.get(id)
	if err != nil {
		return err
	}
	blobs := []digest.Digest{rec.ID}
	for _, l := range rec.Layers {
		blobs = append(blobs, l.Digest)
	}
	if err := s.records.addSources(repo, blobs); err != nil {
		s.log.Warn("build push: record distribution sources", "repo", repo.String(), "err", err)
	}
	return nil
}

// manifestFor picks the image manifest of this host's platform when desc
// is an index (a build with attestations), else desc itself.
func manifestFor(ctx context.Context, p ccontent.Provider, desc ocispec.Descriptor) (ocispec.Descriptor, error) {
	if !images.IsIndexType(desc.MediaType) {
		return desc, nil
	}
	ms, err := images.Children(ctx, p, desc)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	match := platforms.Default()
	for _, m := range ms {
		if images.IsManifestType(m.MediaType) && m.Platform != nil && match.Match(*m.Platform) {
			return m, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("built image has no manifest for %s: %w", platforms.DefaultString(), cerrdefs.ErrNotFound)
}

// importBuiltLayer copies one compressed layer into the content store
// unless it is there, and makes the layer unless berth holds it: from
// snapshot snap standing on snapParent (LinkLayer) when snap is given and
// the blob is stored already, else unpacked from the blob, reading the
// blob once for both.
func (s *Service) importBuiltLayer(ctx context.Context, p ccontent.Provider, l ocispec.Descriptor, parent, diffID digest.Digest, snap, snapParent string) (snapshot.Layer, error) {
	chain := snapshot.ChainID(parent, diffID)
	have, _ := content.Has(ctx, s.content, l.Digest)
	if ly, err := s.snapshots.Get(ctx, chain); err == nil && have {
		return ly, nil
	}
	if snap != "" && have {
		ly, err := s.snapshots.LinkLayer(ctx, snap, snapParent, parent, diffID)
		if err == nil {
			return ly, nil
		}
		if ctx.Err() != nil {
			return snapshot.Layer{}, err
		}
		s.log.Warn("built layer: cannot link the build's snapshot, unpacking the blob", "layer", diffID.String(), "snapshot", snap, "err", err)
	}
	ra, err := p.ReaderAt(ctx, l)
	if err != nil {
		return snapshot.Layer{}, err
	}
	defer ra.Close()
	w, err := s.blobWriter(ctx, l.Digest, l.Size)
	if err != nil {
		return snapshot.Layer{}, err
	}
	defer w.Close()
	src := bufio.NewReaderSize(io.TeeReader(ccontent.NewReader(ra), w), 1<<20)
	ly, err := s.snapshots.Get(ctx, chain)
	if err != nil {
		dr, _, derr := archive.Decompress(src)
		if derr != nil {
			return snapshot.Layer{}, derr
		}
		ly, err = s.snapshots.Apply(ctx, parent, diffID, dr)
		dr.Close()
		if err != nil {
			return snapshot.Layer{}, err
		}
	}
	if _, err := io.Copy(io.Discard, src); err != nil {
		return snapshot.Layer{}, err
	}
	if err := w.Commit(ctx, l.Size, l.Digest); err != nil && !errors.Is(err, cerrdefs.ErrAlreadyExists) {
		return snapshot.Layer{}, err
	}
	return ly, nil
}

// LocalImage returns the image berth holds under the full reference name
// (tagged, "docker.io/library/alpine:3.18", or by digest), as containerd
// describes an image: its Target is the image's manifest, which is in
// berth's content store. It is how the builder uses a FROM image from
// berth's store. Not found if no image has that reference.
func (s *Service) LocalImage(ctx context.Context, name string) (images.Image, error) {
	ref, err := parseNormalized(name)
	if err != nil {
		return images.Image{}, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid reference %q: %v", name, err))
	}
	ref = reference.TagNameOnly(ref)
	id, ok := s.records.lookupRef(ref.String())
	if !ok {
		return images.Image{}, fmt.Errorf("image %s: %w", ref, cerrdefs.ErrNotFound)
	}
	rec, err := s.records.get(id)
	if err != nil {
		return images.Image{}, err
	}
	if has, _ := content.Has(ctx, s.content, rec.Manifest); rec.Manifest == "" || !has {
		s.opMu.Lock()
		err = s.ensureManifest(ctx, rec)
		s.opMu.Unlock()
		if err != nil {
			return images.Image{}, fmt.Errorf("image %s: %w", ref, err)
		}
	}
	if err := s.ensureLayerBlobs(ctx, rec); err != nil {
		return images.Image{}, fmt.Errorf("image %s: %w", ref, err)
	}
	mt := rec.ManifestMediaType
	if mt == "" {
		mt = mediaTypeDockerManifest
	}
	return images.Image{
		Name:      ref.String(),
		Target:    ocispec.Descriptor{MediaType: mt, Digest: rec.Manifest, Size: rec.ManifestSize},
		CreatedAt: rec.Added,
		UpdatedAt: rec.Added,
	}, nil
}

// ensureLayerBlobs stores, once, the blob of each of rec's layers that
// was recorded without one (a committed layer: its digest is its diff ID,
// see storeLayer), as the uncompressed tar of the unpacked layer, checked
// against the diff ID. A consumer of the image's content (BuildKit using
// it as a FROM image: its image exporter makes every layer of a result it
// stores present) then finds every layer its manifest names. Layers whose
// compressed blob is missing for another reason are left as they are.
func (s *Service) ensureLayerBlobs(ctx context.Context, rec *Record) error {
	for _, l := range rec.Layers {
		if l.Digest != l.DiffID {
			continue
		}
		if has, err := content.Has(ctx, s.content, l.Digest); err != nil || has {
			if err != nil {
				return err
			}
			continue
		}
		rc, err := s.layerReader(ctx, l)
		if err != nil {
			return fmt.Errorf("layer %s: %w", shortID(l.DiffID), err)
		}
		err = ccontent.WriteBlob(ctx, s.content, "layer-"+l.DiffID.String(), &ctxReader{ctx: ctx, r: rc},
			ocispec.Descriptor{MediaType: l.MediaType, Digest: l.DiffID, Size: l.Size})
		rc.Close()
		if err != nil && !cerrdefs.IsAlreadyExists(err) {
			return fmt.Errorf("layer %s: %w", shortID(l.DiffID), err)
		}
	}
	return nil
}

// LocalImages lists the images berth holds as containerd describes them
// (named by their ID, Target their manifest), for the builder to tell
// which of its cache records images use (shared, kept by a prune without
// --all, as under dockerd). Images whose manifest is not stored are left
// out; nothing is written.
func (s *Service) LocalImages(ctx context.Context) ([]images.Image, error) {
	recs, err := s.records.list()
	if err != nil {
		return nil, err
	}
	out := make([]images.Image, 0, len(recs))
	for _, r := range recs {
		if r.Manifest == "" {
			continue
		}
		if ok, _ := content.Has(ctx, s.content, r.Manifest); !ok {
			continue
		}
		mt := r.ManifestMediaType
		if mt == "" {
			mt = mediaTypeDockerManifest
		}
		out = append(out, images.Image{
			Name:      r.ID.String(),
			Target:    ocispec.Descriptor{MediaType: mt, Digest: r.Manifest, Size: r.ManifestSize},
			CreatedAt: r.Added,
			UpdatedAt: r.Added,
		})
	}
	return out, nil
}
