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

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/errdefs"
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

// Save writes the named images as one archive in the docker-archive format
// (manifest.json, repositories) that is also an OCI image layout, as
// `docker save` on Docker 25 and later does. Layers are written as stored,
// compressed; every Docker and berth loader decompresses them. All names
// are resolved before the first byte is written.
func (s *Service) Save(ctx context.Context, names []string, w io.Writer) error {
	type entry struct {
		rec  *Record
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
			e = &entry{rec: r}
			byID[r.ID] = e
			entries = append(entries, e)
		}
		// A name that is a reference saves that tag; an ID saves all tags.
		if ref, err := reference.ParseNormalizedNamed(n); err == nil && !isHexPrefix(n) {
			ref = reference.TagNameOnly(ref)
			if _, ok := ref.(reference.Tagged); ok {
				e.tags = addUnique(e.tags, reference.FamiliarString(ref))
			}
		} else {
			for _, t := range familiarRefs(r.RepoTags) {
				e.tags = addUnique(e.tags, t)
			}
		}
	}
	tw := tar.NewWriter(w)
	written := map[digest.Digest]bool{}
	now := time.Unix(0, 0)
	writeFile := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	writeBlob := func(d digest.Digest) error {
		if written[d] {
			return nil
		}
		written[d] = true
		info, err := s.content.Info(ctx, d)
		if err != nil {
			return err
		}
		rc, err := s.content.Open(ctx, d)
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + d.Encoded(), Mode: 0o644, Size: info.Size, ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = io.Copy(tw, rc)
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "blobs/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: now}); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "blobs/sha256/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: now}); err != nil {
		return err
	}
	var manifests []archiveManifest
	index := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	index.SchemaVersion = 2
	repositories := map[string]map[string]string{}
	for _, e := range entries {
		if err := s.ensureManifest(ctx, e.rec); err != nil {
			return err
		}
		if err := writeBlob(e.rec.ID); err != nil {
			return err
		}
		am := archiveManifest{Config: "blobs/sha256/" + e.rec.ID.Encoded(), RepoTags: e.tags}
		for _, l := range e.rec.Layers {
			if err := writeBlob(l.Digest); err != nil {
				return fmt.Errorf("layer %s: %w", l.Digest, err)
			}
			am.Layers = append(am.Layers, "blobs/sha256/"+l.Digest.Encoded())
		}
		if err := writeBlob(e.rec.Manifest); err != nil {
			return err
		}
		if am.RepoTags == nil {
			am.RepoTags = []string{}
		}
		manifests = append(manifests, am)
		desc := ocispec.Descriptor{MediaType: e.rec.ManifestMediaType, Digest: e.rec.Manifest, Size: e.rec.ManifestSize}
		if len(e.tags) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		for _, t := range e.tags {
			d := desc
			ref, _ := reference.ParseNormalizedNamed(t)
			d.Annotations = map[string]string{"io.containerd.image.name": ref.String()}
			if tagged, ok := ref.(reference.Tagged); ok {
				d.Annotations[ocispec.AnnotationRefName] = tagged.Tag()
				repo := reference.FamiliarName(ref)
				if repositories[repo] == nil {
					repositories[repo] = map[string]string{}
				}
				repositories[repo][tagged.Tag()] = e.rec.Layers[len(e.rec.Layers)-1].DiffID.Encoded()
			}
			index.Manifests = append(index.Manifests, d)
		}
	}
	for name, v := range map[string]any{"index.json": index, "manifest.json": manifests, "oci-layout": ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}} {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := writeFile(name, b); err != nil {
			return err
		}
	}
	if len(repositories) > 0 {
		b, _ := json.Marshal(repositories)
		if err := writeFile("repositories", b); err != nil {
			return err
		}
	}
	return tw.Close()
}

// ensureManifest gives r a stored manifest if it has none (images loaded
// or built locally), so it can be saved and pushed like a pulled one.
func (s *Service) ensureManifest(ctx context.Context, r *Record) error {
	if r.Manifest != "" {
		if ok, _ := s.content.Has(ctx, r.Manifest); ok {
			return nil
		}
	}
	cfgInfo, err := s.content.Info(ctx, r.ID)
	if err != nil {
		return err
	}
	m := ocispec.Manifest{MediaType: mediaTypeDockerManifest, Config: ocispec.Descriptor{MediaType: mediaTypeDockerConfig, Digest: r.ID, Size: cfgInfo.Size}}
	m.SchemaVersion = 2
	for _, l := range r.Layers {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size})
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	d, err := s.content.WriteBlob(ctx, b)
	if err != nil {
		return err
	}
	r.Manifest, r.ManifestMediaType, r.ManifestSize = d, mediaTypeDockerManifest, int64(len(b))
	return s.records.addImage(r, nil, nil)
}

// Load reads a docker-archive (as written by any `docker save`, or an OCI
// layout with manifest.json) and imports its images, as POST /images/load.
func (s *Service) Load(ctx context.Context, r io.Reader, out progress.Output, quiet bool) error {
	dir, err := os.MkdirTemp(s.tmpDir(), "load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := extractArchive(ctx, r, dir); err != nil {
		return err
	}
	mb, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errdefs.InvalidParameter("invalid archive: no manifest.json (is this a docker save archive?)")
		}
		return err
	}
	var manifests []archiveManifest
	if err := json.Unmarshal(mb, &manifests); err != nil {
		return errdefs.InvalidParameter("invalid archive: manifest.json: " + err.Error())
	}
	for _, m := range manifests {
		id, err := s.loadOne(ctx, dir, m)
		if err != nil {
			return err
		}
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
		return "", errdefs.InvalidParameter("invalid archive entry " + name)
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
			return nil
		}
		if err != nil {
			return errdefs.InvalidParameter("invalid archive: " + err.Error())
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
			return fmt.Errorf("invalid archive: %s: %w", h.Name, err)
		}
	}
}

func (s *Service) loadOne(ctx context.Context, dir string, m archiveManifest) (digest.Digest, error) {
	cp, err := archivePath(dir, m.Config)
	if err != nil {
		return "", err
	}
	rawConfig, err := os.ReadFile(cp)
	if err != nil {
		return "", errdefs.InvalidParameter("invalid archive: config " + m.Config + ": " + err.Error())
	}
	var cfg ImageConfig
	if err := json.Unmarshal(rawConfig, &cfg); err != nil {
		return "", errdefs.InvalidParameter("invalid archive: config: " + err.Error())
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return "", errdefs.InvalidParameter(fmt.Sprintf("invalid archive: %d layers but config lists %d diff IDs", len(m.Layers), len(cfg.RootFS.DiffIDs)))
	}
	chains := ChainIDs(cfg.RootFS.DiffIDs)
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
		ref, l, err := s.importLayerFile(ctx, p, parent, cfg.RootFS.DiffIDs[i])
		if err != nil {
			return "", fmt.Errorf("layer %s: %w", lp, err)
		}
		refs[i] = ref
		size += l.Size
	}
	id, err := s.content.WriteBlob(ctx, rawConfig)
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
// unpacks it, verifying the uncompressed stream against diffID.
func (s *Service) importLayerFile(ctx context.Context, p string, parent, diffID digest.Digest) (LayerRef, snapshot.Layer, error) {
	f, err := os.Open(p)
	if err != nil {
		return LayerRef{}, snapshot.Layer{}, errdefs.InvalidParameter("invalid archive: " + err.Error())
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
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	w, err := s.content.Writer(ctx, blob, st.Size())
	if err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	defer w.Close()
	dr, comp, err := snapshot.Decompress(io.TeeReader(f, w))
	if err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	l, err := s.snapshots.Apply(ctx, parent, diffID, dr)
	dr.Close()
	if err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	if _, err := io.Copy(w, f); err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	if err := w.Commit(ctx); err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	mt := mediaTypeDockerLayerGzip
	switch {
	case strings.Contains(comp.String(), "zstd"):
		mt = mediaTypeOCILayerZstd
	case strings.Contains(comp.String(), "none") || strings.Contains(comp.String(), "uncompressed"):
		mt = mediaTypeOCILayer
	}
	return LayerRef{Digest: blob, MediaType: mt, Size: st.Size(), DiffID: diffID}, l, nil
}
