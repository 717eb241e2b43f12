package image

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DistributionInspect answers GET /distribution/{name}/json: the
// descriptor of the manifest (or index) ref names in its registry, and the
// platforms it offers, as dockerd's. Mirrors are tried first, as for a pull.
func (s *Service) DistributionInspect(ctx context.Context, ref reference.Named, auth *registry.AuthConfig) (*registry.DistributionInspect, error) {
	eps, err := s.endpoints(ref)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for _, ep := range eps {
		var nref name.Reference = ep.repo.Tag("latest")
		if d, ok := ref.(reference.Digested); ok {
			nref = ep.repo.Digest(d.Digest().String())
		} else if t, ok := ref.(reference.Tagged); ok {
			nref = ep.repo.Tag(t.Tag())
		}
		ac := auth
		if ep.mirror {
			ac = nil
		}
		opts := s.remoteOptions(ctx, ep.repo.Registry, authenticator(ac))
		desc, err := remote.Get(nref, opts...)
		if err != nil {
			lastErr = classifyRegistryError(ref, err)
			if ep.mirror {
				continue
			}
			return nil, lastErr
		}
		out := &registry.DistributionInspect{Descriptor: ocispec.Descriptor{
			MediaType: string(desc.MediaType), Digest: digest.Digest(desc.Digest.String()), Size: desc.Size,
		}}
		if desc.MediaType.IsIndex() {
			var idx ocispec.Index
			if err := json.Unmarshal(desc.Manifest, &idx); err != nil {
				return nil, fmt.Errorf("manifest list of %s: %w", reference.FamiliarString(ref), err)
			}
			for _, m := range idx.Manifests {
				if m.Platform != nil {
					out.Platforms = append(out.Platforms, *m.Platform)
				}
			}
		} else {
			img, err := desc.Image()
			if err != nil {
				return nil, err
			}
			cf, err := img.ConfigFile()
			if err != nil {
				return nil, fmt.Errorf("image config of %s: %w", reference.FamiliarString(ref), err)
			}
			out.Platforms = []ocispec.Platform{{
				Architecture: cf.Architecture, OS: cf.OS, OSVersion: cf.OSVersion,
				OSFeatures: cf.OSFeatures, Variant: strings.TrimSpace(cf.Variant),
			}}
		}
		if out.Platforms == nil {
			out.Platforms = []ocispec.Platform{}
		}
		return out, nil
	}
	return nil, lastErr
}
