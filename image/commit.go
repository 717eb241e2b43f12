package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	ccontent "github.com/containerd/containerd/v2/core/content"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/archive"
	"github.com/berth/berth/content"
	"github.com/berth/berth/snapshot"
)

// CommitRequest describes a new image made of a parent image plus one layer
// (docker commit, and each step of a build).
type CommitRequest struct {
	// Parent is the image the new one stands on; nil for an image from
	// scratch.
	Parent *Record
	// Layer is the new layer as an uncompressed tar in Docker's layer
	// format (whiteouts as .wh. files). nil adds no layer: the history
	// entry is then marked empty_layer, as for a build's ENV or CMD.
	Layer io.Reader
	// Config, when not nil, replaces the parent's runtime config (its
	// "config" section: Env, Cmd, Entrypoint ...). Its Author, when set,
	// becomes the image's author. Its RootFS and History are ignored:
	// they are the parent's plus this commit's.
	Config *ImageConfig
	// History is the new history entry. Created defaults to now and is
	// also the image's creation time.
	History ocispec.History
	// Tag is a reference to point at the new image ("" for none), in any
	// form ParseReference accepts ("app", "app:1", "registry:5000/x:y").
	Tag string
	// Platform, for an image from scratch, is its os and architecture
	// (default linux/amd64).
	Platform *ocispec.Platform
}

// Commit creates an image from req and returns its ID. The layer is stored
// as a gzip-compressed blob whose uncompressed digest becomes the new
// diff_id, and unpacked into the snapshot store on top of the parent's
// layers; then the config, a manifest and the record (with the tag) are
// written. The parent's os and architecture carry over.
func (s *Service) Commit(ctx context.Context, req CommitRequest) (digest.Digest, error) {
	var tags []string
	if req.Tag != "" {
		ref, err := ParseReference(req.Tag)
		if err != nil {
			return "", err
		}
		tags = append(tags, ref.String())
	}
	var cfg ImageConfig
	if req.Parent != nil {
		pc, err := s.Config(ctx, req.Parent)
		if err != nil {
			return "", err
		}
		cfg = *pc
	} else {
		cfg.OS = "linux"
		cfg.Architecture = "amd64"
		if p := req.Platform; p != nil {
			cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
		}
		cfg.RootFS.Type = "layers"
	}
	if cfg.RootFS.Type == "" {
		cfg.RootFS.Type = "layers"
	}
	created := time.Now().UTC()
	if req.History.Created != nil {
		created = req.History.Created.UTC()
	}
	hist := req.History
	hist.Created = &created
	if req.Config != nil {
		cfg.Config = req.Config.Config
		if req.Config.Author != "" {
			cfg.Author = req.Config.Author
		}
	}
	if hist.Author != "" {
		cfg.Author = hist.Author
	}
	cfg.Created = &created
	// Copies, so the parent's config is never shared.
	cfg.RootFS.DiffIDs = append([]digest.Digest{}, cfg.RootFS.DiffIDs...)
	cfg.History = append([]ocispec.History{}, cfg.History...)

	var layers []LayerRef
	var topChain digest.Digest
	var size int64
	if req.Parent != nil {
		layers = append(layers, req.Parent.Layers...)
		topChain = req.Parent.TopChain
		size = req.Parent.Size
	}
	if req.Layer != nil {
		ref, l, err := s.storeLayer(ctx, topChain, req.Layer)
		if err != nil {
			return "", err
		}
		layers = append(layers, ref)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, ref.DiffID)
		topChain = l.ChainID
		size += l.Size
		hist.EmptyLayer = false
	} else {
		hist.EmptyLayer = true
	}
	cfg.History = append(cfg.History, hist)

	raw, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	id, err := content.WriteBlob(ctx, s.content, raw)
	if err != nil {
		return "", err
	}
	rec := &Record{ID: id, Layers: layers, TopChain: topChain, Size: size, Added: time.Now().UTC()}
	if req.Parent != nil {
		rec.Parent = req.Parent.ID
	}
	if layers == nil {
		rec.Layers = []LayerRef{}
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if err := s.records.addImage(rec, tags, nil); err != nil {
		return "", err
	}
	if err := s.ensureManifest(ctx, rec); err != nil {
		return "", err
	}
	return id, nil
}

// storeLayer compresses the tar stream r into a blob, computing its diff
// ID on the way, then unpacks the blob on top of parent.
func (s *Service) storeLayer(ctx context.Context, parent digest.Digest, r io.Reader) (LayerRef, snapshot.Layer, error) {
	w, err := s.content.Writer(ctx, ccontent.WithRef("commit-"+randomRef()))
	if err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	defer w.Close()
	diff := digest.Canonical.Digester()
	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	if _, err := io.Copy(io.MultiWriter(zw, diff.Hash()), &ctxReader{ctx: ctx, r: r}); err != nil {
		return LayerRef{}, snapshot.Layer{}, fmt.Errorf("commit layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	st, err := w.Status()
	if err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	blob, blobSize := w.Digest(), st.Offset
	if err := w.Commit(ctx, blobSize, blob); err != nil && !cerrdefs.IsAlreadyExists(err) {
		return LayerRef{}, snapshot.Layer{}, err
	}
	diffID := diff.Digest()
	rc, err := content.Reader(ctx, s.content, blob)
	if err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	defer rc.Close()
	zr, _, err := archive.Decompress(rc)
	if err != nil {
		return LayerRef{}, snapshot.Layer{}, err
	}
	defer zr.Close()
	l, err := s.snapshots.Apply(ctx, parent, diffID, zr)
	if err != nil {
		return LayerRef{}, snapshot.Layer{}, cerrdefs.ErrInternal.WithMessage("commit layer: " + err.Error())
	}
	return LayerRef{Digest: blob, MediaType: mediaTypeDockerLayerGzip, Size: blobSize, DiffID: diffID}, l, nil
}

// ctxReader stops a copy once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// randomRef names an ingest whose digest is not known in advance.
func randomRef() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
