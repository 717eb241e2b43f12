package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/archive"
	"github.com/berth/berth/content"
	"github.com/berth/berth/leases"
	"github.com/berth/berth/progress"
	"github.com/berth/berth/snapshot"
)

// archiveManifest is one entry of a docker-archive's manifest.json.
type archiveManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

const (
	mediaTypeDockerManifest  = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerConfig    = "application/vnd.docker.container.image.v1+json"
	mediaTypeDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mediaTypeOCILayer        = "application/vnd.oci.image.layer.v1.tar"
	mediaTypeOCILayerGzip    = "application/vnd.oci.image.layer.v1.tar+gzip"
	mediaTypeOCILayerZstd    = "application/vnd.oci.image.layer.v1.tar+zstd"
)

// Save writes the named images as one docker-archive in the classic
// layout every Docker release loads (`docker save` of Docker 20.10):
// <config>.json, one <layer id>/layer.tar (uncompressed), json and VERSION
// per layer, manifest.json and repositories. All names are resolved before
// the first byte is written. A name that is a reference saves that tag; an
// ID saves the image untagged, as Docker does.
func (s *Service) Save(ctx context.Context, names []string, w io.Writer) error {
	// The lease holds each image's blobs and layers from before they are
	// read until the archive is written: an rmi or prune meanwhile removes
	// the image, and its collection leaves what the save streams.
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end(false)
	type entry struct {
		rec  *Record
		cfg  *ImageConfig
		tags []string
	}
	var entries []*entry
	byID := map[digest.Digest]*entry{}
	for _, n := range names {
		r, err := s.Resolve(ctx, n)
		if err != nil {
			return err
		}
		e := byID[r.ID]
		if e == nil {
			if err := s.holdRecord(ctx, r); err != nil {
				return err
			}
			cfg, err := s.Config(ctx, r)
			if err != nil {
				return err
			}
			e = &entry{rec: r, cfg: cfg}
			byID[r.ID] = e
			entries = append(entries, e)
		}
		if isIDRef(n, r) {
			continue
		}
		if ref, err := parseNormalized(n); err == nil {
			ref = reference.TagNameOnly(ref)
			if _, ok := ref.(reference.Tagged); ok {
				e.tags = addUnique(e.tags, reference.FamiliarString(ref))
			}
		}
	}
	// Every layer's bytes must be at hand before the first byte goes out:
	// a tar stream cannot report an error halfway.
	for _, e := range entries {
		for _, l := range e.rec.Layers {
			if !s.layerAvailable(ctx, l) {
				return fmt.Errorf("image %s: layer %s is not stored: pull the image again", shortID(e.rec.ID), l.Digest)
			}
		}
	}
	tw := tar.NewWriter(w)
	mtime := time.Unix(0, 0)
	writeFile := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	written := map[string]bool{}
	var manifests []archiveManifest
	repositories := map[string]map[string]string{}
	for _, e := range entries {
		cfgBytes, err := content.ReadBlob(ctx, s.content, e.rec.ID)
		if err != nil {
			return err
		}
		am := archiveManifest{Config: e.rec.ID.Encoded() + ".json", RepoTags: e.tags}
		if err := writeFile(am.Config, cfgBytes); err != nil {
			return err
		}
		chains := ChainIDs(e.cfg.RootFS.DiffIDs)
		var parent string
		for i, l := range e.rec.Layers {
			id := chains[i].Encoded()
			am.Layers = append(am.Layers, id+"/layer.tar")
			if !written[id] {
				written[id] = true
				if err := s.writeLegacyLayer(ctx, tw, id, parent, l, mtime); err != nil {
					return fmt.Errorf("layer %s: %w", l.Digest, err)
				}
			}
			parent = id
		}
		manifests = append(manifests, am)
		for _, t := range e.tags {
			ref, err := parseNormalized(t)
			if err != nil {
				continue
			}
			if tagged, ok := reference.TagNameOnly(ref).(reference.Tagged); ok {
				repo := reference.FamiliarName(ref)
				if repositories[repo] == nil {
					repositories[repo] = map[string]string{}
				}
				repositories[repo][tagged.Tag()] = parent
			}
		}
	}
	b, err := json.Marshal(manifests)
	if err != nil {
		return err
	}
	if err := writeFile("manifest.json", b); err != nil {
		return err
	}
	if len(repositories) > 0 {
		b, _ := json.Marshal(repositories)
		if err := writeFile("repositories", b); err != nil {
			return err
		}
	}
	return tw.Close()
}

// isIDRef reports whether name named r by (a prefix of) its ID.
func isIDRef(name string, r *Record) bool {
	h := strings.TrimPrefix(name, "sha256:")
	return isHexPrefix(h) && strings.HasPrefix(r.ID.Encoded(), h)
}

// writeLegacyLayer writes <id>/VERSION, <id>/json and <id>/layer.tar, the
// layer uncompressed (byte for byte what its diff ID names). The size must
// be known before the tar header, so the layer is decompressed to a
// temporary file first.
func (s *Service) writeLegacyLayer(ctx context.Context, tw *tar.Writer, id, parent string, l LayerRef, mtime time.Time) error {
	rc, err := s.layerReader(ctx, l)
	if err != nil {
		return err
	}
	defer rc.Close()
	dr, _, err := archive.Decompress(rc)
	if err != nil {
		return err
	}
	defer dr.Close()
	tmp, err := os.CreateTemp(s.tmpDir(), "save-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	dg := digest.Canonical.Digester()
	size, err := io.Copy(io.MultiWriter(tmp, dg.Hash()), dr)
	if err != nil {
		return err
	}
	if dg.Digest() != l.DiffID {
		return fmt.Errorf("layer %s: its tar does not match its diff ID: %w", shortID(l.DiffID), cerrdefs.ErrDataLoss)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: mtime})
	}
	file := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := dir(id + "/"); err != nil {
		return err
	}
	if err := file(id+"/VERSION", []byte("1.0")); err != nil {
		return err
	}
	v1 := map[string]any{"id": id, "created": "1970-01-01T00:00:00Z", "container_config": map[string]any{}}
	if parent != "" {
		v1["parent"] = parent
	}
	jb, _ := json.Marshal(v1)
	if err := file(id+"/json", jb); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: id + "/layer.tar", Mode: 0o644, Size: size, ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, tmp)
	return err
}

// ensureManifest gives r a stored manifest if it has none (images loaded
// or built locally), so it can be saved and pushed like a pulled one.
func (s *Service) ensureManifest(ctx context.Context, r *Record) error {
	if r.Manifest != "" {
		if ok, _ := content.Has(ctx, s.content, r.Manifest); ok {
			return nil
		}
	}
	b, err := s.manifestOf(ctx, r)
	if err != nil {
		return err
	}
	d, err := content.WriteBlob(ctx, s.content, b)
	if err != nil {
		return err
	}
	r.Manifest, r.ManifestMediaType, r.ManifestSize = d, mediaTypeDockerManifest, int64(len(b))
	return s.records.addImage(r, nil, nil)
}

// manifestOf is the Docker schema2 manifest of r's config and layers.
func (s *Service) manifestOf(ctx context.Context, r *Record) ([]byte, error) {
	cfgInfo, err := s.content.Info(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	m := ocispec.Manifest{MediaType: mediaTypeDockerManifest, Config: ocispec.Descriptor{MediaType: mediaTypeDockerConfig, Digest: r.ID, Size: cfgInfo.Size}}
	m.SchemaVersion = 2
	for _, l := range r.Layers {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size})
	}
	return json.Marshal(m)
}

// Load reads a docker-archive (as written by any `docker save`, or an OCI
// layout with manifest.json), uncompressed or compressed with gzip, bzip2,
// xz or zstd, and imports its images, as POST /images/load.
func (s *Service) Load(ctx context.Context, r io.Reader, out progress.Output, quiet bool) error {
	dir, err := os.MkdirTemp(s.tmpDir(), "load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// dockerd takes the archive compressed too (gzip, bzip2, xz; zstd
	// since 23.0): `docker load -i image.tar.gz`. All of it is unpacked
	// before any image is imported, so a corrupt stream loads nothing.
	dr, _, err := archive.Decompress(r)
	if err != nil {
		return err
	}
	defer dr.Close()
	if err := extractArchive(ctx, dr, dir); err != nil {
		return err
	}
	mb, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return cerrdefs.ErrInvalidArgument.WithMessage("invalid archive: no manifest.json (is this a docker save archive?)")
		}
		return err
	}
	var manifests []archiveManifest
	if err := json.Unmarshal(mb, &manifests); err != nil {
		return cerrdefs.ErrInvalidArgument.WithMessage("invalid archive: manifest.json: " + err.Error())
	}
	// Not quiet: each layer the store lacks is reported as dockerd does
	// ("Loading layer", its diff ID's first 12 digits, bytes read of the
	// archive's layer file); the docker CLI draws them as bars.
	var layerOut progress.Output
	if !quiet {
		layerOut = out
	}
	for _, m := range manifests {
		id, err := s.loadOne(ctx, dir, m, layerOut)
		if err != nil {
			return err
		}
		s.emit("load", id.String(), id.String())
		if len(m.RepoTags) == 0 {
			_ = out.WriteMessage(progress.Message{Stream: "Loaded image ID: " + id.String() + "\n"})
		}
		for _, t := range m.RepoTags {
			_ = out.WriteMessage(progress.Message{Stream: "Loaded image: " + t + "\n"})
		}
	}
	return nil
}

func (s *Service) tmpDir() string {
	d := filepath.Join(s.root, "tmp")
	_ = os.MkdirAll(d, 0o700)
	return d
}

// archivePath maps a name inside an archive to a path under dir, refusing
// anything that would leave it.
func archivePath(dir, name string) (string, error) {
	clean := path.Clean("/" + name)
	if clean == "/" {
		return "", cerrdefs.ErrInvalidArgument.WithMessage("invalid archive entry " + name)
	}
	return filepath.Join(dir, filepath.FromSlash(clean)), nil
}

func extractArchive(ctx context.Context, r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			// The rest of the stream too: a compressed archive's
			// checksum is at its very end.
			if _, err := io.Copy(io.Discard, r); err != nil {
				return fmt.Errorf("invalid archive: %w", archive.InvalidTar(err))
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("invalid archive: %w", archive.InvalidTar(err))
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		p, err := archivePath(dir, h.Name)
		if err != nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("invalid archive: %s: %w", h.Name, archive.InvalidTar(err))
		}
	}
}

func (s *Service) loadOne(ctx context.Context, dir string, m archiveManifest, layerOut progress.Output) (_ digest.Digest, retErr error) {
	cp, err := archivePath(dir, m.Config)
	if err != nil {
		return "", err
	}
	rawConfig, err := os.ReadFile(cp)
	if err != nil {
		return "", cerrdefs.ErrInvalidArgument.WithMessage("invalid archive: config " + m.Config + ": " + err.Error())
	}
	var cfg ImageConfig
	if err := json.Unmarshal(rawConfig, &cfg); err != nil {
		return "", cerrdefs.ErrInvalidArgument.WithMessage("invalid archive: config: " + err.Error())
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return "", cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid archive: %d layers but config lists %d diff IDs", len(m.Layers), len(cfg.RootFS.DiffIDs)))
	}
	chains := ChainIDs(cfg.RootFS.DiffIDs)
	hold := blobResources(nil, digest.FromBytes(rawConfig))
	for _, c := range chains {
		hold = append(hold, leases.Snapshot(c.String()))
	}
	ctx, end, err := s.begin(ctx, hold...)
	if err != nil {
		return "", err
	}
	defer func() { end(retErr != nil) }()
	refs := make([]LayerRef, len(m.Layers))
	var size int64
	for i, lp := range m.Layers {
		p, err := archivePath(dir, lp)
		if err != nil {
			return "", err
		}
		var parent digest.Digest
		if i > 0 {
			parent = chains[i-1]
		}
		out := layerOut
		if out != nil {
			if _, err := s.snapshots.Get(ctx, chains[i]); err == nil {
				out = nil // in the store already: dockerd does not load it
			}
		}
		ref, l, err := s.importLayerFile(ctx, p, parent, cfg.RootFS.DiffIDs[i], out)
		if err != nil {
			return "", fmt.Errorf("layer %s: %w", lp, err)
		}
		refs[i] = ref
		size += l.Size
	}
	id, err := content.WriteBlob(ctx, s.content, rawConfig)
	if err != nil {
		return "", err
	}
	rec := &Record{ID: id, Layers: refs, Size: size, Added: time.Now().UTC()}
	if len(chains) > 0 {
		rec.TopChain = chains[len(chains)-1]
	}
	var tags []string
	for _, t := range m.RepoTags {
		ref, err := ParseReference(t)
		if err != nil {
			return "", err
		}
		tags = append(tags, ref.String())
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if err := s.records.addImage(rec, tags, nil); err != nil {
		return "", err
	}
	return id, s.ensureManifest(ctx, rec)
}

// importLayerFile stores a layer file from an archive as a blob and
// unpacks it, verifying the uncompressed stream against diffID; with out,
// the bytes of the file unpacked are reported as "Loading layer".
func (s *Service) importLayerFile(ctx context.Context, p string, parent, diffID digest.Digest, out progress.Output) (LayerRef, snapshot.Layer, error) {
	f, err := os.Open(p)
	if err != nil {
		return LayerRef{}, snapshot.Layer{}, cerrdefs.ErrInvalidArgument.WithMessage("invalid archive: " + err.Error())
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	dg := digest.Canonical.Digester()
	if _, err := io.Copy(dg.Hash(), f); err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	blob := dg.Digest()
	if err := s.leases.Hold(ctx, blobResources(nil, blob)...); err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	w, err := s.blobWriter(ctx, blob, st.Size())
	if err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	defer w.Close()
	var src io.Reader = f
	if out != nil {
		id := diffID.Encoded()
		id = id[:min(12, len(id))] // an archive's diff ID may be anything
		src = io.TeeReader(f, progress.NewReporter(out, id, "Loading layer", st.Size()))
	}
	dr, comp, err := archive.Decompress(io.TeeReader(src, w))
	if err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	if comp != archive.None && comp != archive.Gzip && comp != archive.Zstd {
		dr.Close()
		// No image media type names such a blob: it could not be pushed.
		return LayerRef{}, snapshot.Layer{}, fmt.Errorf("%s layers in an archive: %w", archive.Name(comp), cerrdefs.ErrNotImplemented)
	}
	l, err := s.snapshots.Apply(ctx, parent, diffID, dr)
	dr.Close()
	if err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	if _, err := io.Copy(w, src); err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	if err := w.Commit(ctx, st.Size(), blob); err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	mt := mediaTypeDockerLayerGzip
	switch comp {
	case archive.Zstd:
		mt = mediaTypeOCILayerZstd
	case archive.None:
		mt = mediaTypeOCILayer
	}
	return LayerRef{Digest: blob, MediaType: mt, Size: st.Size(), DiffID: diffID}, l, nil
}
