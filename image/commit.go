package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/archive"
	"github.com/berth/berth/content"
	"github.com/berth/berth/leases"
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
	// Container and ContainerConfig: the committed container's ID and
	// config, recorded in the image config as dockerd records them
	// ("container", "container_config"); image inspect shows them to
	// clients of API 1.44 and older.
	Container       string
	ContainerConfig *container.Config
	// Platform, for an image from scratch, is its os and architecture
	// (default linux/amd64).
	Platform *ocispec.Platform
}

// Commit creates an image from req and returns its ID. The layer is stored
// as a gzip-compressed blob whose uncompressed digest becomes the new
// diff_id, and unpacked into the snapshot store on top of the parent's
// layers; then the config, a manifest and the record (with the tag) are
// written. The parent's os and architecture carry over.
func (s *Service) Commit(ctx context.Context, req CommitRequest) (_ digest.Digest, retErr error) {
	var tags []string
	if req.Tag != "" {
		ref, err := ParseReference(req.Tag)
		if err != nil {
			return "", err
		}
		tags = append(tags, ref.String())
	}
	// The lease holds the parent (its config, blobs and layers: the new
	// record names them) and what the commit writes until the record names
	// them (issue 8 item 2). It is taken before anything is read or made;
	// a parent removed before the hold is NotFound.
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return "", err
	}
	defer func() { end(retErr != nil) }()
	var cfg ImageConfig
	if req.Parent != nil {
		if err := s.holdRecord(ctx, req.Parent); err != nil {
			return "", err
		}
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

	raw, err := json.Marshal(legacyConfig{ImageConfig: cfg, Container: req.Container, ContainerConfig: req.ContainerConfig})
	if err != nil {
		return "", err
	}
	id, err := s.writeBlob(ctx, raw)
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

// storeLayer unpacks the tar stream r on top of parent, computing its diff
// ID on the way. No compressed blob is made: the layer is recorded
// uncompressed (its digest is its diff ID) and its blob, absent from the
// content store, is made from the unpacked layer when push or save need it
// (layerReader); push compresses it then, once, and remembers the result.
// A commit thus costs reading, hashing and writing the change, not
// compressing it and unpacking it again.
func (s *Service) storeLayer(ctx context.Context, parent digest.Digest, r io.Reader) (LayerRef, snapshot.Layer, error) {
	cr := &sizeReader{r: &ctxReader{ctx: ctx, r: r}}
	// The layer's chain ID is known only once it exists: no collection
	// starts before the lease holds it.
	hold, release := s.leases.Guard()
	l, err := s.snapshots.ApplyNew(ctx, parent, cr)
	if err == nil {
		err = hold(ctx, leases.Snapshot(l.ChainID.String()))
	}
	release()
	if err != nil {
		if ctx.Err() != nil {
			return LayerRef{}, snapshot.Layer{}, err
		}
		return LayerRef{}, snapshot.Layer{}, cerrdefs.ErrInternal.WithMessage("commit layer: " + err.Error())
	}
	return LayerRef{Digest: l.DiffID, MediaType: mediaTypeOCILayer, Size: cr.n, DiffID: l.DiffID}, l, nil
}

// sizeReader counts what is read through it.
type sizeReader struct {
	r io.Reader
	n int64
}

func (c *sizeReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// layerAvailable reports whether layerReader can read l.
func (s *Service) layerAvailable(ctx context.Context, l LayerRef) bool {
	for _, d := range []digest.Digest{l.Digest, l.DiffID} {
		if ok, _ := content.Has(ctx, s.content, d); ok {
			return true
		}
	}
	layers, _ := s.snapshots.List(ctx)
	for _, sl := range layers {
		if sl.DiffID == l.DiffID {
			return true
		}
	}
	return false
}

// layerReader returns layer l's blob, read from the start: the stored
// blob, else an uncompressed copy stored by a load, else (a committed
// layer, stored without a blob) a tar of the unpacked layer with that diff
// ID, which the reader's consumer checks against the diff ID.
func (s *Service) layerReader(ctx context.Context, l LayerRef) (io.ReadCloser, error) {
	rc, err := content.Reader(ctx, s.content, l.Digest)
	if cerrdefs.IsNotFound(err) && l.DiffID != l.Digest {
		rc, err = content.Reader(ctx, s.content, l.DiffID)
	}
	if !cerrdefs.IsNotFound(err) {
		return rc, err
	}
	layers, lerr := s.snapshots.List(ctx)
	if lerr != nil {
		return nil, lerr
	}
	for _, sl := range layers {
		if sl.DiffID == l.DiffID {
			return archive.TarDir(ctx, sl.Dir, archive.WriterOptions{Layer: true})
		}
	}
	return nil, err
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

// legacyConfig is an image config with the fields of Docker's v1 image
// format that name the container an image was committed from.
type legacyConfig struct {
	ImageConfig
	Container       string            `json:"container,omitempty"`
	ContainerConfig *container.Config `json:"container_config,omitempty"`
}

// LegacyContainer returns the container an image was committed from and
// that container's config, as the image config records them (dockerd's
// commits and classic builds; "" and nil for others). Image inspect shows
// them as Container and ContainerConfig to clients of API 1.44 and older.
func (s *Service) LegacyContainer(ctx context.Context, id string) (string, *container.Config, error) {
	d, err := digest.Parse(id)
	if err != nil {
		return "", nil, cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	b, err := content.ReadBlob(ctx, s.content, d)
	if err != nil {
		return "", nil, err
	}
	var l struct {
		Container       string            `json:"container"`
		ContainerConfig *container.Config `json:"container_config"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return "", nil, err
	}
	return l.Container, l.ContainerConfig, nil
}
