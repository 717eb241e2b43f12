package image

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	ccontent "github.com/containerd/containerd/v2/core/content"
	cleases "github.com/containerd/containerd/v2/core/leases"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/berth/berth/archive"
	"github.com/berth/berth/content"
	"github.com/berth/berth/leases"
	"github.com/berth/berth/progress"
)

// ImageConfig is an image's config blob: OCI plus Docker's extensions.
type ImageConfig = dockerspec.DockerOCIImage

// pullJobs bounds how many layers download and unpack at once. Each layer
// unpacks into its own directory, so unlike Docker berth need not extract
// them one after another.
const pullJobs = 4

// resolved is a manifest found in a registry.
type resolved struct {
	img      v1.Image
	desc     *remote.Descriptor
	endpoint endpoint
	auth     authn.Authenticator
}

// linuxAMD64 is the one platform berth pulls.
var linuxAMD64 = v1.Platform{OS: "linux", Architecture: "amd64"}

// indexHasPlatform reports whether the image index manifest lists an image
// for platform, as go-containerregistry picks one (an entry without a
// platform is linux/amd64).
func indexHasPlatform(manifest []byte, platform v1.Platform) bool {
	idx, err := v1.ParseIndexManifest(bytes.NewReader(manifest))
	if err != nil {
		return true // not this package's to judge: the error stands
	}
	for _, m := range idx.Manifests {
		p := linuxAMD64
		if m.Platform != nil {
			p = *m.Platform
		}
		if p.Satisfies(platform) {
			return true
		}
	}
	return false
}

// resolve finds ref's manifest for linux/amd64, trying mirrors first. No
// progress is sent, so its errors can still be HTTP statuses.
func (s *Service) resolve(ctx context.Context, ref reference.Named, auth *registry.AuthConfig) (*resolved, error) {
	eps, err := s.endpoints(ref)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for _, ep := range eps {
		var nref name.Reference
		if d, ok := ref.(reference.Digested); ok {
			nref = ep.repo.Digest(d.Digest().String())
		} else if t, ok := ref.(reference.Tagged); ok {
			nref = ep.repo.Tag(t.Tag())
		} else {
			nref = ep.repo.Tag("latest")
		}
		ac := auth
		if ep.mirror {
			ac = nil
		}
		opts := append(s.remoteOptions(ctx, ep.repo.Registry, authenticator(ac)), remote.WithPlatform(linuxAMD64))
		desc, err := remote.Get(nref, opts...)
		if err != nil {
			if ac == nil && isUnauthorized(err) {
				// Docker's wording when a registry wants credentials and
				// the client sent none.
				err = fmt.Errorf("Head %q: no basic auth credentials", fmt.Sprintf("%s://%s/v2/%s/manifests/%s", nref.Context().Scheme(), nref.Context().RegistryStr(), nref.Context().RepositoryStr(), nref.Identifier()))
			}
			lastErr = classifyRegistryError(ref, err)
			if ep.mirror {
				s.log.Info("mirror failed, trying next endpoint", "mirror", ep.repo.RegistryStr(), "ref", ref.String(), "err", err)
				continue
			}
			return nil, lastErr
		}
		img, err := desc.Image()
		if err != nil {
			if ep.mirror {
				lastErr = err
				continue
			}
			if desc.MediaType.IsIndex() && !indexHasPlatform(desc.Manifest, linuxAMD64) {
				return nil, cerrdefs.ErrNotFound.WithMessage("no matching manifest for linux/amd64 in the manifest list entries")
			}
			return nil, err
		}
		return &resolved{img: img, desc: desc, endpoint: ep, auth: authenticator(ac)}, nil
	}
	return nil, lastErr
}

// Pull fetches ref (a tag or digest reference) into the store, writing
// Docker's progress messages to out. Errors returned before the first
// message are the caller's to report as an HTTP status; after that they
// belong in the stream.
func (s *Service) Pull(ctx context.Context, ref reference.Named, auth *registry.AuthConfig, out progress.Output) (retErr error) {
	res, err := s.resolve(ctx, ref, auth)
	if err != nil {
		return err
	}
	tagOrDigest := "latest"
	if t, ok := ref.(reference.Tagged); ok {
		tagOrDigest = t.Tag()
	} else if _, ok := ref.(reference.Digested); ok {
		// Docker names a digest pull by its whole reference.
		tagOrDigest = ref.String()
	}
	_ = progress.Status(out, tagOrDigest, "Pulling from "+reference.Path(ref))

	mf, err := res.img.Manifest()
	if err != nil {
		return fmt.Errorf("image manifest: %w", err)
	}
	if err := checkManifest(mf); err != nil {
		return err
	}
	rawConfig, err := res.img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("fetch image config: %w", err)
	}
	configDigest := digest.FromBytes(rawConfig)
	var cfg ImageConfig
	if err := jsonUnmarshal(rawConfig, &cfg); err != nil {
		return fmt.Errorf("image config: %w", err)
	}
	if mf.Config.Digest.String() != configDigest.String() {
		return fmt.Errorf("config digest mismatch: manifest says %s, got %s", mf.Config.Digest, configDigest)
	}
	if len(mf.Layers) != len(cfg.RootFS.DiffIDs) {
		return fmt.Errorf("image has %d layers but its config lists %d diff IDs", len(mf.Layers), len(cfg.RootFS.DiffIDs))
	}
	rawManifest, err := res.img.RawManifest()
	if err != nil {
		return err
	}
	manifestDigest, err := res.img.Digest()
	if err != nil {
		return err
	}
	repoDigest := reference.TrimNamed(ref).String() + "@" + res.desc.Digest.String()

	// Up to date: the reference already names this exact image.
	if id, ok := s.records.lookupRef(ref.String()); ok && id == configDigest {
		if rec, err := s.records.get(id); err == nil && s.layersPresent(ctx, rec) {
			_ = s.records.addImage(rec, nil, []string{repoDigest})
			s.recordPullSources(ref, rec)
			_ = progress.Status(out, "", "Digest: "+res.desc.Digest.String())
			_ = progress.Status(out, "", "Status: Image is up to date for "+reference.FamiliarString(ref))
			s.emit("pull", reference.FamiliarString(ref), reference.FamiliarName(ref))
			return nil
		}
	}

	chains := ChainIDs(cfg.RootFS.DiffIDs)
	layers, err := res.img.Layers()
	if err != nil {
		return err
	}
	refs := make([]LayerRef, len(mf.Layers))
	for i, l := range mf.Layers {
		refs[i] = LayerRef{Digest: digest.Digest(l.Digest.String()), MediaType: string(l.MediaType), Size: l.Size, DiffID: cfg.RootFS.DiffIDs[i]}
	}
	// Everything this pull uses or makes is held by its lease before it
	// looks for any of it, so no removal or collection can take a layer
	// it counted as "Already exists" (issue 8 item 2). A failed pull's
	// leftovers are collected when it ends.
	manifestDigestD := digest.Digest(manifestDigest.String())
	hold := blobResources(nil, configDigest, manifestDigestD)
	for i := range refs {
		hold = append(blobResources(hold, refs[i].Digest), leases.Snapshot(chains[i].String()))
	}
	ctx, end, err := s.begin(ctx, hold...)
	if err != nil {
		return err
	}
	defer func() { end(retErr != nil) }()
	var todo []int
	for i := range refs {
		id := shortID(refs[i].Digest)
		if _, err := s.snapshots.Get(ctx, chains[i]); err == nil {
			// The blob too: save and push need this image's own bytes.
			if ok, _ := content.Has(ctx, s.content, refs[i].Digest); ok {
				_ = progress.Update(out, id, "Already exists")
				continue
			}
		}
		_ = progress.Update(out, id, "Pulling fs layer")
		todo = append(todo, i)
	}
	// Layers past the concurrency limit wait for a slot, and say so as
	// Docker's do.
	for k, i := range todo {
		if k >= pullJobs {
			_ = progress.Update(out, shortID(refs[i].Digest), "Waiting")
		}
	}

	blobs := s.newBlobSource(res)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(pullJobs)
	for _, i := range todo {
		g.Go(func() error {
			var parent digest.Digest
			if i > 0 {
				parent = chains[i-1]
			}
			return s.fetchLayerShared(gctx, blobs, layers[i], refs[i], parent, out)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	if _, err := content.WriteBlob(ctx, s.content, rawConfig); err != nil {
		return err
	}
	if _, err := content.WriteBlob(ctx, s.content, rawManifest); err != nil {
		return err
	}
	var size int64
	for _, c := range chains {
		l, err := s.snapshots.Get(ctx, c)
		if err != nil {
			return err
		}
		size += l.Size
	}
	rec := &Record{
		ID:                configDigest,
		Manifest:          digest.Digest(manifestDigest.String()),
		ManifestMediaType: string(mf.MediaType),
		ManifestSize:      int64(len(rawManifest)),
		Layers:            refs,
		Size:              size,
		Added:             time.Now().UTC(),
	}
	if len(chains) > 0 {
		rec.TopChain = chains[len(chains)-1]
	}
	var tags []string
	if _, ok := ref.(reference.Tagged); ok {
		tags = []string{ref.String()}
	}
	s.opMu.Lock()
	err = s.records.addImage(rec, tags, []string{repoDigest})
	s.opMu.Unlock()
	if err != nil {
		return err
	}
	s.recordPullSources(ref, rec)
	_ = progress.Status(out, "", "Digest: "+res.desc.Digest.String())
	_ = progress.Status(out, "", "Status: Downloaded newer image for "+reference.FamiliarString(ref))
	s.emit("pull", reference.FamiliarString(ref), reference.FamiliarName(ref))
	return nil
}

// layersPresent reports whether every layer of rec is unpacked.
func (s *Service) layersPresent(ctx context.Context, rec *Record) bool {
	if rec.TopChain == "" {
		return true
	}
	_, err := s.snapshots.Get(ctx, rec.TopChain)
	return err == nil
}

// fetchLayer downloads one compressed layer and, in the same pass, stores
// the blob and unpacks it. The blob is verified against its digest and the
// unpacked stream against the diff ID; on any failure nothing of this layer
// stays behind.
func (s *Service) fetchLayer(ctx context.Context, blobs *blobSource, l v1.Layer, ref LayerRef, parent digest.Digest, out progress.Output) error {
	id := shortID(ref.Digest)
	rc, err := blobs.open(ctx, l, ref.Digest, ref.Size)
	if err != nil {
		return fmt.Errorf("layer %s: %w", id, err)
	}
	defer rc.Close()
	w, err := s.blobWriter(ctx, ref.Digest, ref.Size)
	if err != nil {
		return err
	}
	defer w.Close()
	rep := progress.NewReporter(out, id, "Downloading", ref.Size)
	src := bufio.NewReaderSize(io.TeeReader(io.TeeReader(rc, w), rep), 1<<20)
	dr, _, err := archive.Decompress(src)
	if err != nil {
		return fmt.Errorf("layer %s: %w", id, err)
	}
	_, err = s.snapshots.Apply(ctx, parent, ref.DiffID, dr)
	dr.Close()
	if err == nil {
		// The tar ends before the compressed stream does (gzip trailer,
		// padding): read the rest so the blob's digest covers every byte.
		_, err = io.Copy(io.Discard, src)
	}
	if err == nil {
		err = w.Commit(ctx, ref.Size, ref.Digest)
	}
	if err != nil {
		// What this layer left (a committed layer, the blob's ingest) is
		// the pull's lease's to release and the collector's to remove:
		// another pull may hold the same layer.
		if _, ok := w.(discardWriter); !ok {
			_ = w.Close()
			if aerr := s.content.Abort(context.WithoutCancel(ctx), ingestRef(ref.Digest)); aerr != nil && !cerrdefs.IsNotFound(aerr) {
				s.log.Warn("abort blob after failed pull", "digest", ref.Digest, "err", aerr)
			}
		}
		return fmt.Errorf("layer %s: %w", id, err)
	}
	_ = progress.Update(out, id, "Verifying Checksum")
	_ = progress.Update(out, id, "Download complete")
	_ = out.WriteMessage(progress.Message{ID: id, Status: "Extracting", ProgressDetail: &progress.Detail{Current: ref.Size, Total: ref.Size}, Progress: progress.Bar(ref.Size, ref.Size)})
	_ = progress.Update(out, id, "Pull complete")
	return nil
}

// blobWriter opens a writer for the blob d of the given size, starting from
// its first byte. A concurrent write of the same blob is waited for; a blob
// that is already stored gets a writer that discards what it is given.
func (s *Service) blobWriter(ctx context.Context, d digest.Digest, size int64) (ccontent.Writer, error) {
	w, err := ccontent.OpenWriter(ctx, s.content, ccontent.WithRef(ingestRef(d)), ccontent.WithDescriptor(ocispec.Descriptor{Digest: d, Size: size}))
	if cerrdefs.IsAlreadyExists(err) {
		return discardWriter{d: d}, nil
	}
	if err != nil {
		return nil, err
	}
	// An ingest left by an interrupted write of the same blob: start over.
	if st, err := w.Status(); err != nil || st.Offset != 0 {
		if err := w.Truncate(0); err != nil {
			w.Close()
			return nil, err
		}
	}
	return w, nil
}

// ingestRef is the ingest ref of blob d's writer (as content.WriteBlob's).
func ingestRef(d digest.Digest) string { return "blob-" + d.String() }

// blobResources appends the lease resources of blobs ds (the blob and its
// ingest) to rs.
func blobResources(rs []cleases.Resource, ds ...digest.Digest) []cleases.Resource {
	for _, d := range ds {
		rs = append(rs, leases.Content(d), leases.Ingest(ingestRef(d)))
	}
	return rs
}

// discardWriter stands in for the writer of a blob that is already stored.
type discardWriter struct{ d digest.Digest }

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) Close() error                { return nil }
func (w discardWriter) Digest() digest.Digest     { return w.d }
func (discardWriter) Commit(context.Context, int64, digest.Digest, ...ccontent.Opt) error {
	return nil
}
func (discardWriter) Status() (ccontent.Status, error) { return ccontent.Status{}, nil }
func (discardWriter) Truncate(int64) error             { return nil }
