package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"
	"github.com/opencontainers/go-digest"

	"github.com/berth/berth/filters"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// familiarRefs turns stored full references into what users see.
func familiarRefs(refs []string) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		if n, err := reference.ParseNormalizedNamed(r); err == nil {
			out = append(out, reference.FamiliarString(n))
		} else {
			out = append(out, r)
		}
	}
	return out
}

func createdUnix(c *ImageConfig) int64 {
	if c.Created == nil {
		return 0
	}
	return c.Created.Unix()
}

// List returns image summaries, newest first, as GET /images/json.
func (s *Service) List(ctx context.Context, args filters.Args, all bool) ([]imagetypes.Summary, error) {
	if err := args.Validate("dangling", "reference", "label", "before", "since", "until"); err != nil {
		return nil, err
	}
	dangling, danglingSet, err := args.Bool("dangling")
	if err != nil {
		return nil, args.InvalidValue("dangling")
	}
	for _, p := range args.Get("reference") {
		// A pattern that cannot match anything is refused in path.Match's
		// words (dockerd: 500, berth: 400, the client's mistake).
		if _, err := path.Match(p, ""); err != nil {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
	}
	var before, since time.Time
	for key, t := range map[string]*time.Time{"before": &before, "since": &since} {
		for _, v := range args.Get(key) {
			r, err := s.Resolve(ctx, v)
			if err != nil {
				return nil, err
			}
			c, err := s.Config(ctx, r)
			if err != nil {
				return nil, err
			}
			if c.Created != nil {
				*t = *c.Created
			}
		}
	}
	recs, err := s.records.list()
	if err != nil {
		return nil, err
	}
	out := []imagetypes.Summary{}
	for _, r := range recs {
		c, err := s.Config(ctx, r)
		if err != nil {
			s.log.Warn("skip image with unreadable config", "id", r.ID, "err", err)
			continue
		}
		isDangling := len(r.RepoTags) == 0
		if danglingSet && isDangling != dangling {
			continue
		}
		if !args.MatchLabels("label", c.Config.Labels) {
			continue
		}
		if !before.IsZero() && (c.Created == nil || !c.Created.Before(before)) {
			continue
		}
		if !since.IsZero() && (c.Created == nil || !c.Created.After(since)) {
			continue
		}
		tags := familiarRefs(r.RepoTags)
		if refs := args.Get("reference"); len(refs) > 0 {
			var kept []string
			for _, t := range tags {
				if matchReference(refs, t) {
					kept = append(kept, t)
				}
			}
			if len(kept) == 0 {
				continue
			}
			tags = kept
		}
		labels := c.Config.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		out = append(out, imagetypes.Summary{
			ID:          r.ID.String(),
			ParentID:    r.Parent.String(),
			RepoTags:    nonNil(tags),
			RepoDigests: nonNil(familiarRefs(r.RepoDigests)),
			Created:     createdUnix(c),
			Size:        r.Size,
			Labels:      labels,
			Containers:  -1,
		})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created > out[j].Created })
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// matchReference reports whether a familiar tag matches any of the
// reference filters, which are shell patterns on "name" or "name:tag".
func matchReference(patterns []string, tag string) bool {
	repo := tag
	if i := strings.LastIndex(tag, ":"); i > strings.LastIndex(tag, "/") {
		repo = tag[:i]
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, tag); ok {
			return true
		}
		if ok, _ := path.Match(p, repo); ok {
			return true
		}
	}
	return false
}

// Inspect returns GET /images/{name}/json.
func (s *Service) Inspect(ctx context.Context, nameOrID string) (*imagetypes.InspectResponse, error) {
	r, err := s.Resolve(ctx, nameOrID)
	if err != nil {
		return nil, err
	}
	c, err := s.Config(ctx, r)
	if err != nil {
		return nil, err
	}
	layers := make([]string, len(c.RootFS.DiffIDs))
	for i, d := range c.RootFS.DiffIDs {
		layers[i] = d.String()
	}
	created := ""
	if c.Created != nil {
		created = c.Created.UTC().Format(time.RFC3339Nano)
	}
	cfg := c.Config
	resp := &imagetypes.InspectResponse{
		ID:           r.ID.String(),
		RepoTags:     nonNil(familiarRefs(r.RepoTags)),
		RepoDigests:  nonNil(familiarRefs(r.RepoDigests)),
		Created:      created,
		Author:       c.Author,
		Config:       &cfg,
		Architecture: c.Architecture,
		Variant:      c.Variant,
		Os:           c.OS,
		OsVersion:    c.OSVersion,
		Size:         r.Size,
		RootFS:       imagetypes.RootFS{Type: "layers", Layers: layers},
		GraphDriver:  s.graphDriver(ctx, r),
	}
	if !r.LastTagTime.IsZero() {
		resp.Metadata.LastTagTime = r.LastTagTime
	}
	if len(c.History) > 0 {
		resp.Comment = c.History[len(c.History)-1].Comment
	}
	return resp, nil
}

func (s *Service) graphDriver(ctx context.Context, r *Record) *storage.DriverData {
	cfg, err := s.Config(ctx, r)
	if err != nil || len(cfg.RootFS.DiffIDs) == 0 {
		return &storage.DriverData{Name: "overlay2", Data: map[string]string{}}
	}
	chains := ChainIDs(cfg.RootFS.DiffIDs)
	var lower []string
	for i := len(chains) - 2; i >= 0; i-- {
		if l, err := s.snapshots.Get(ctx, chains[i]); err == nil {
			lower = append(lower, l.Dir)
		}
	}
	data := map[string]string{}
	if top, err := s.snapshots.Get(ctx, chains[len(chains)-1]); err == nil {
		data["UpperDir"] = top.Dir
		data["MergedDir"] = ""
	}
	if len(lower) > 0 {
		data["LowerDir"] = strings.Join(lower, ":")
	}
	return &storage.DriverData{Name: "overlay2", Data: data}
}

// History returns GET /images/{name}/history: newest entry first.
func (s *Service) History(ctx context.Context, nameOrID string) ([]imagetypes.HistoryResponseItem, error) {
	r, err := s.Resolve(ctx, nameOrID)
	if err != nil {
		return nil, err
	}
	c, err := s.Config(ctx, r)
	if err != nil {
		return nil, err
	}
	chains := ChainIDs(c.RootFS.DiffIDs)
	var out []imagetypes.HistoryResponseItem
	layer := 0
	for _, h := range c.History {
		item := imagetypes.HistoryResponseItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: nil}
		if h.Created != nil {
			item.Created = h.Created.Unix()
		}
		if !h.EmptyLayer {
			if layer < len(chains) {
				if l, err := s.snapshots.Get(ctx, chains[layer]); err == nil {
					item.Size = l.Size
				}
			}
			layer++
		}
		out = append(out, item)
	}
	if len(out) == 0 {
		out = append(out, imagetypes.HistoryResponseItem{ID: "<missing>"})
	}
	// Newest first; the newest entry is the image itself.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	out[0].ID = r.ID.String()
	out[0].Tags = familiarRefs(r.RepoTags)
	return out, nil
}

// Tag points newRef at the image nameOrID names (POST /images/{name}/tag).
func (s *Service) Tag(ctx context.Context, nameOrID, repo, tag string) error {
	r, err := s.Resolve(ctx, nameOrID)
	if err != nil {
		return err
	}
	ref, err := parseNormalized(repo)
	if err != nil {
		return cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	if _, ok := ref.(reference.Digested); ok {
		return cerrdefs.ErrInvalidArgument.WithMessage("refusing to create a tag with a digest reference")
	}
	if reference.FamiliarName(ref) == string(digest.Canonical) {
		// "sha256:..." would read as a digest (dockerd's reference store).
		return cerrdefs.ErrInvalidArgument.WithMessage("refusing to create an ambiguous tag using digest algorithm as name")
	}
	if tag != "" {
		if ref, err = reference.WithTag(reference.TrimNamed(ref), tag); err != nil {
			return cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
	}
	ref = reference.TagNameOnly(ref)
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if err := s.records.tag(ref.String(), r.ID); err != nil {
		return err
	}
	s.emit("tag", r.ID.String(), reference.FamiliarString(ref))
	return nil
}

// Remove deletes or untags an image as DELETE /images/{name}.
func (s *Service) Remove(ctx context.Context, nameOrID string, force, prune bool) ([]imagetypes.DeleteResponse, error) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	r, err := s.Resolve(ctx, nameOrID)
	if err != nil {
		return nil, err
	}
	var running, stopped []string
	if s.containers != nil {
		running, stopped = s.containers.ImageUsage(r.ID)
	}
	var out []imagetypes.DeleteResponse
	byRef := false
	var named reference.Named
	if n, err := reference.ParseNormalizedNamed(nameOrID); err == nil {
		n = reference.TagNameOnly(n)
		if id, ok := s.records.lookupRef(n.String()); ok && id == r.ID {
			byRef, named = true, n
		}
	}
	if byRef {
		// Removing one name of an image with others only untags it.
		remaining := len(r.RepoTags) + len(r.RepoDigests) - 1
		if _, isDigest := named.(reference.Digested); !isDigest && len(r.RepoTags) == 1 {
			// Its last tag: the digest references of the image go too.
			remaining = 0
		}
		if remaining > 0 {
			if _, err := s.records.untag(named.String()); err != nil {
				return nil, err
			}
			s.emit("untag", r.ID.String(), r.ID.String())
			return []imagetypes.DeleteResponse{{Untagged: reference.FamiliarString(named)}}, nil
		}
	} else if !force {
		repos := map[string]bool{}
		for _, t := range r.RepoTags {
			if n, err := reference.ParseNormalizedNamed(t); err == nil {
				repos[n.Name()] = true
			}
		}
		if len(repos) > 1 {
			return nil, cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", shortID(r.ID)))
		}
	}
	if len(running) > 0 {
		return nil, cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("conflict: unable to delete %s (cannot be forced) - image is being used by running container %s", shortOrName(nameOrID, r), truncateID(running[0])))
	}
	if len(stopped) > 0 && !force {
		return nil, cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s", shortOrName(nameOrID, r), truncateID(stopped[0])))
	}
	for _, t := range r.RepoTags {
		if _, err := s.records.untag(t); err == nil {
			out = append(out, imagetypes.DeleteResponse{Untagged: familiarRefs([]string{t})[0]})
		}
	}
	for _, d := range r.RepoDigests {
		if _, err := s.records.untag(d); err == nil {
			out = append(out, imagetypes.DeleteResponse{Untagged: familiarRefs([]string{d})[0]})
		}
	}
	// Forced, a stopped container's use does not keep the image (dockerd:
	// a soft conflict): it is deleted; the layers the container stands on
	// stay until it is removed (ReleaseLayer).
	deleted, _, err := s.deleteRecord(ctx, r)
	if err != nil {
		return out, err
	}
	for _, o := range out {
		if o.Untagged != "" {
			s.emit("untag", r.ID.String(), r.ID.String())
		}
	}
	s.emit("delete", r.ID.String(), r.ID.String())
	return append(out, deleted...), nil
}

func shortOrName(nameOrID string, r *Record) string {
	if isHexPrefix(nameOrID) {
		return nameOrID
	}
	if _, err := digest.Parse(nameOrID); err == nil {
		return shortID(r.ID)
	}
	return nameOrID
}

// deleteRecord removes r, then collects garbage (GC): the layers and
// blobs nothing else needs go, those an operation in flight holds (a pull
// that counted a layer "Already exists") stay. The answer lists r's
// layers the collection removed, top first, as Docker's, and the
// collection's report.
func (s *Service) deleteRecord(ctx context.Context, r *Record) ([]imagetypes.DeleteResponse, GCReport, error) {
	cfg, cfgErr := s.Config(ctx, r)
	if err := s.records.deleteImage(r.ID); err != nil && !errors.Is(err, cerrdefs.ErrNotFound) {
		return nil, GCReport{}, err
	}
	out := []imagetypes.DeleteResponse{{Deleted: r.ID.String()}}
	rep := s.collect(ctx, true)
	if cfgErr == nil {
		removed := make(map[digest.Digest]bool, len(rep.Layers))
		for _, c := range rep.Layers {
			removed[c] = true
		}
		chains := ChainIDs(cfg.RootFS.DiffIDs)
		for i := len(chains) - 1; i >= 0; i-- {
			if removed[chains[i]] {
				out = append(out, imagetypes.DeleteResponse{Deleted: chains[i].String()})
			}
		}
	}
	return out, rep, nil
}

// PruneReport is the answer of POST /images/prune.
type PruneReport struct {
	ImagesDeleted []imagetypes.DeleteResponse
	// SpaceReclaimed is what the collections after the removals freed
	// (layers' files and blobs), not the images' sizes: a layer another
	// image keeps frees nothing, as with dockerd (the sizes of the layers
	// it deleted).
	SpaceReclaimed uint64
}

// Prune removes dangling images, or with all every image no container uses.
func (s *Service) Prune(ctx context.Context, args filters.Args) (*PruneReport, error) {
	if err := args.Validate("dangling", "label", "until"); err != nil {
		return nil, err
	}
	danglingOnly := true
	if v, set, err := args.Bool("dangling"); err != nil {
		return nil, args.InvalidValue("dangling")
	} else if set {
		danglingOnly = v
	}
	until, err := args.Until(time.Now())
	if err != nil {
		return nil, err
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	recs, err := s.records.list()
	if err != nil {
		return nil, err
	}
	report := &PruneReport{ImagesDeleted: []imagetypes.DeleteResponse{}}
	for _, r := range recs {
		if danglingOnly && len(r.RepoTags) > 0 {
			continue
		}
		if s.containers != nil {
			if running, stopped := s.containers.ImageUsage(r.ID); len(running)+len(stopped) > 0 {
				continue
			}
		}
		c, cfgErr := s.Config(ctx, r)
		if cfgErr == nil && !args.MatchLabels("label", c.Config.Labels) {
			continue
		}
		if !until.IsZero() && (cfgErr != nil || c.Created == nil || c.Created.After(until)) {
			continue // Docker keeps an image newer than until, or of no known age
		}
		for _, ref := range append(append([]string{}, r.RepoTags...), r.RepoDigests...) {
			if _, err := s.records.untag(ref); err == nil {
				report.ImagesDeleted = append(report.ImagesDeleted, imagetypes.DeleteResponse{Untagged: familiarRefs([]string{ref})[0]})
			}
		}
		deleted, rep, err := s.deleteRecord(ctx, r)
		if err != nil {
			return report, err
		}
		report.ImagesDeleted = append(report.ImagesDeleted, deleted...)
		report.SpaceReclaimed += uint64(rep.Reclaimed)
	}
	return report, nil
}
