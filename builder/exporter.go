package builder

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/containerd/containerd/v2/core/snapshots"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/buildkit/cache"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/exporter"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/solver"
	"github.com/moby/buildkit/solver/pb"
	srctypes "github.com/moby/buildkit/source/types"
	"github.com/moby/buildkit/worker/base"
	"github.com/opencontainers/go-digest"
)

// ExporterMoby is the exporter buildx's docker driver and docker build ask
// for to have the result stored as an image of the daemon.
const ExporterMoby = "moby"

// danglingPrefix names an untagged build's image inside BuildKit (as
// dockerd names it); such a name never becomes a berth reference.
const danglingPrefix = "moby-dangling"

// berthWorker is BuildKit's base worker with the "moby" exporter added.
type berthWorker struct {
	*base.Worker
	images Images
	// sn is berth's snapshotter, where the worker's snapshots are.
	sn  snapshots.Snapshotter
	log *slog.Logger
}

// Exporter returns the exporter called name; "moby" is the image exporter
// whose result becomes a berth image.
func (w *berthWorker) Exporter(name string, sm *session.Manager) (exporter.Exporter, error) {
	if name != ExporterMoby {
		return w.Worker.Exporter(name, sm)
	}
	exp, err := w.Worker.Exporter(client.ExporterImage, sm)
	if err != nil {
		return nil, err
	}
	return &mobyExporter{exp: exp, w: w}, nil
}

type mobyExporter struct {
	exp exporter.Exporter
	w   *berthWorker
}

func (e *mobyExporter) Resolve(ctx context.Context, id int, attrs map[string]string) (exporter.ExporterInstance, error) {
	a := make(map[string]string, len(attrs)+3)
	for k, v := range attrs {
		a[k] = v
	}
	// The image is unpacked into berth's own snapshots by ImportBuilt.
	a[string(exptypes.OptKeyUnpack)] = "false"
	if _, ok := a[string(exptypes.OptKeyDanglingPrefix)]; !ok {
		a[string(exptypes.OptKeyDanglingPrefix)] = danglingPrefix
	}
	a[string(exptypes.OptKeyDanglingEmptyOnly)] = "true"
	// Names as dockerd reports them: docker.io/library/x:latest.
	if n := a[string(exptypes.OptKeyName)]; n != "" {
		var full []string
		for name := range strings.SplitSeq(n, ",") {
			if name = strings.TrimSpace(name); name == "" {
				continue
			}
			ref, err := reference.ParseNormalizedNamed(name)
			if err != nil {
				return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid reference format: %s", name))
			}
			full = append(full, reference.TagNameOnly(ref).String())
		}
		a[string(exptypes.OptKeyName)] = strings.Join(full, ",")
	}
	inst, err := e.exp.Resolve(ctx, id, a)
	if err != nil {
		return nil, err
	}
	return &mobyInstance{ExporterInstance: inst, w: e.w}, nil
}

type mobyInstance struct {
	exporter.ExporterInstance
	w *berthWorker
}

func (i *mobyInstance) Type() string { return ExporterMoby }

// Export runs the image exporter (manifest, config and layers into the
// worker's content store, layers made available), then imports the image
// into berth with its names. The response's image digest is the berth
// image ID, as dockerd answers.
func (i *mobyInstance) Export(ctx context.Context, src *exporter.Source, bi exporter.ExportBuildInfo) (map[string]string, exporter.FinalizeFunc, exporter.DescriptorReference, error) {
	resp, finalize, ref, err := i.ExporterInstance.Export(ctx, src, bi)
	if err != nil {
		return nil, nil, nil, err
	}
	var names []string
	for n := range strings.SplitSeq(resp[exptypes.ExporterImageNameKey], ",") {
		if n == "" || strings.HasPrefix(n, danglingPrefix+"@") || strings.Contains(n, "@") {
			continue
		}
		names = append(names, n)
	}
	id, err := i.w.images.ImportBuilt(ctx, i.w.ContentStore(), ref.Descriptor(), names, layerSnapshots(ctx, i.w.sn, src))
	if err != nil {
		if ref != nil {
			_ = ref.Release()
		}
		return nil, nil, nil, fmt.Errorf("store the built image: %w", err)
	}
	// With push=true the image exporter pushes in finalize (the session's
	// credentials); once it has, the names carry the pushed digest as
	// repo digests, as dockerd's image shows after a push.
	if pushed := ref.Descriptor().Digest; finalize != nil && pushed != "" {
		push := finalize
		finalize = func(ctx context.Context) error {
			if err := push(ctx); err != nil {
				return err
			}
			// The push is done: failing to note it (the image removed
			// meanwhile) is logged, as berth's own push does.
			for _, n := range names {
				if err := i.w.images.RecordPushed(ctx, n, pushed, id); err != nil {
					i.w.log.Warn("build push: record repo digest", "name", n, "digest", pushed.String(), "err", err)
				}
			}
			return nil
		}
	}
	resp[exptypes.ExporterImageDigestKey] = id.String()
	resp[exptypes.ExporterImageConfigDigestKey] = id.String()
	return resp, finalize, ref, nil
}

// ResolveSourceMetadata resolves a source's metadata (a FROM image's
// config for the Dockerfile frontend) with Docker's default resolve mode
// for images: berth's store first (see preferLocal).
func (w *berthWorker) ResolveSourceMetadata(ctx context.Context, op *pb.SourceOp, opt sourceresolver.Opt, sm *session.Manager, jobCtx solver.JobContext) (*sourceresolver.MetaResponse, error) {
	if strings.HasPrefix(op.GetIdentifier(), srctypes.DockerImageScheme+"://") {
		io := sourceresolver.ResolveImageOpt{}
		if opt.ImageOpt != nil {
			io = *opt.ImageOpt
		}
		mode, err := localFirst(io.ResolveMode)
		if err != nil {
			return nil, err
		}
		io.ResolveMode = mode
		opt.ImageOpt = &io
	}
	return w.Worker.ResolveSourceMetadata(ctx, op, opt, sm, jobCtx)
}

// layerSnapshots names, by chain ID, the snapshot (berth's key) of each
// layer of the export's results: the cache records' own snapshots of the
// build steps, or berth's layer where the record's snapshot is one (see
// berthLayerKey). The image exporter has set the records' chain IDs.
// Berth makes a built layer it lacks from that snapshot's files rather
// than unpacking the blob again (image.Service.ImportBuilt).
func layerSnapshots(ctx context.Context, sn snapshots.Snapshotter, src *exporter.Source) map[digest.Digest]string {
	out := map[digest.Digest]string{}
	add := func(r cache.ImmutableRef) {
		if r == nil {
			return
		}
		chain := r.LayerChain()
		defer chain.Release(context.WithoutCancel(ctx))
		for _, l := range chain {
			if l == nil {
				continue
			}
			id, err := digest.Parse(l.GetString(keyChainID))
			if err != nil {
				continue
			}
			snap := l.GetString(keySnapshot)
			if snap == "" {
				snap = l.ID() // BuildKit's fallback for old records
			}
			out[id] = berthLayerKey(ctx, sn, snap)
		}
	}
	if src != nil {
		add(src.Ref)
		for _, r := range src.Refs {
			add(r)
		}
	}
	return out
}

// Keys of BuildKit's cache record metadata (cache/metadata.go; not
// exported there): the record's chain ID and its snapshot's name.
const (
	keyChainID  = "cache.chainID"
	keySnapshot = "cache.snapshot"
)
