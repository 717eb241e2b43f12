package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	ccontent "github.com/containerd/containerd/v2/core/content"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/berth/berth/archive"
	"github.com/berth/berth/content"
	"github.com/berth/berth/leases"
	"github.com/berth/berth/progress"
	cerrdefs "github.com/containerd/errdefs"
)

// pushJobs is how many layers upload at once: dockerd's default
// max-concurrent-uploads.
const pushJobs = 5

// maxMountAttempts bounds the cross-repository mounts tried per blob.
const maxMountAttempts = 3

// uploadAttempts is how often a blob upload is tried before the push
// fails; retryDelay(n) is the pause after the n-th failure.
const uploadAttempts = 3

var retryDelay = func(n int) time.Duration { return time.Duration(n) * 2 * time.Second }

// Push uploads the image ref names to its registry, writing Docker's
// progress messages to out. ref is a repository with a tag (that tag is
// pushed) or without one (every local tag of the repository is pushed, as
// `push --all-tags`). platform, when set, must be the image's own: berth
// keeps one platform per image, so it only confirms what is pushed.
//
// Errors returned before the first message (a platform that does not
// match) are the caller's to report as an HTTP status; later ones belong
// in the stream. On success the registry holds every blob before the
// manifest is written, so an interrupted push never leaves a manifest
// naming missing blobs.
func (s *Service) Push(ctx context.Context, ref reference.Named, platform *ocispec.Platform, auth *registry.AuthConfig, out progress.Output) (retErr error) {
	// The lease holds the images' blobs and layers while they are read,
	// and the blobs the push compresses until the record names them
	// (compressLayer).
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer func() { end(retErr != nil) }()
	repo := reference.TrimNamed(ref)
	var tags []reference.NamedTagged
	if t, ok := ref.(reference.NamedTagged); ok {
		tags = []reference.NamedTagged{t}
	} else {
		tags = s.repoTags(repo)
	}
	if platform != nil {
		for _, t := range tags {
			if err := s.checkPushPlatform(ctx, t, *platform); err != nil {
				return err
			}
		}
	}

	_ = progress.Status(out, "", "The push refers to repository ["+repo.Name()+"]")
	if len(s.repoTags(repo)) == 0 {
		return cerrdefs.ErrNotFound.WithMessage("An image does not exist locally with the tag: " + reference.FamiliarName(repo))
	}
	recs := make([]*Record, len(tags))
	for i, t := range tags {
		id, ok := s.records.lookupRef(t.String())
		if !ok {
			return cerrdefs.ErrNotFound.WithMessage("tag does not exist: " + reference.FamiliarString(t))
		}
		rec, err := s.records.get(id)
		if err != nil {
			return err
		}
		// What the push reads stays while it runs (an rmi meanwhile
		// ends it at the manifest, not halfway through a blob).
		if err := s.holdRecord(ctx, rec); err != nil {
			return err
		}
		recs[i] = rec
	}

	domain := reference.Domain(repo)
	path := reference.Path(repo)
	rs, err := s.openSession(ctx, registryHost(domain), auth, []string{"repository:" + path + ":pull,push"})
	if err != nil {
		return err
	}
	p := &pusher{s: s, rs: rs, named: repo, domain: domain, path: path, out: out}
	for i, t := range tags {
		if err := p.pushTag(ctx, t, recs[i]); err != nil {
			return err
		}
	}
	return nil
}

// repoTags lists the local tags of repository repo, sorted.
func (s *Service) repoTags(repo reference.Named) []reference.NamedTagged {
	recs, _ := s.records.list()
	var out []reference.NamedTagged
	for _, r := range recs {
		for _, t := range r.RepoTags {
			named, err := reference.ParseNormalizedNamed(t)
			if err != nil || named.Name() != repo.Name() {
				continue
			}
			if nt, ok := named.(reference.NamedTagged); ok {
				out = append(out, nt)
			}
		}
	}
	slices.SortFunc(out, func(a, b reference.NamedTagged) int { return strings.Compare(a.Tag(), b.Tag()) })
	return out
}

// checkPushPlatform refuses a --platform the image does not have, with
// dockerd's wording.
func (s *Service) checkPushPlatform(ctx context.Context, ref reference.NamedTagged, want ocispec.Platform) error {
	id, ok := s.records.lookupRef(ref.String())
	if !ok {
		return nil // reported in the stream, as without --platform
	}
	rec, err := s.records.get(id)
	if err != nil {
		return err
	}
	cfg, err := s.Config(ctx, rec)
	if err != nil {
		return err
	}
	have := ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	if platformMatches(want, have) {
		return nil
	}
	return cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("image with reference %s was found but does not match the specified platform: wanted %s, actual: %s",
		ref.String(), formatPlatform(want), formatPlatform(have)))
}

func platformMatches(want, have ocispec.Platform) bool {
	if want.OS != "" && want.OS != have.OS {
		return false
	}
	if want.Architecture != "" && want.Architecture != have.Architecture {
		return false
	}
	return want.Variant == "" || want.Variant == have.Variant
}

func formatPlatform(p ocispec.Platform) string {
	parts := []string{p.OS}
	if p.Architecture != "" {
		parts = append(parts, p.Architecture)
		if p.Variant != "" {
			parts = append(parts, p.Variant)
		}
	}
	return strings.Join(parts, "/")
}

// pusher pushes images to one repository through one registry session.
type pusher struct {
	s      *Service
	rs     *regSession
	named  reference.Named // the repository
	domain string
	path   string
	out    progress.Output
}

// blobOutcome is what became of one blob.
type blobOutcome int

const (
	blobPushed blobOutcome = iota
	blobExists
	blobMounted
)

// pushTag pushes rec as tag t: layers (in parallel), config, manifest.
func (p *pusher) pushTag(ctx context.Context, t reference.NamedTagged, rec *Record) error {
	layers, fresh := p.s.pushLayers(ctx, rec)
	cfgInfo, err := p.s.content.Info(ctx, rec.ID)
	if err != nil {
		return fmt.Errorf("config of %s: %w", reference.FamiliarString(t), err)
	}

	// Mount sources need a pull scope in the token.
	candidates := make([][]string, len(layers))
	for i, l := range layers {
		if fresh[i] {
			continue
		}
		for _, src := range p.s.records.sourcesIn(l.Digest, p.domain) {
			if src != p.path && len(candidates[i]) < maxMountAttempts {
				candidates[i] = append(candidates[i], src)
				p.rs.addScope("repository:" + src + ":pull")
			}
		}
	}

	// Top layer first, as dockerd lists them.
	order := make([]int, len(layers))
	for i := range layers {
		order[i] = len(layers) - 1 - i
	}
	for _, i := range order {
		_ = p.layerStatus(layers[i], "Preparing")
	}
	// Layers beyond the first pushJobs wait for a slot, and say so at
	// once, as dockerd's upload queue does.
	for k, i := range order {
		if k >= pushJobs {
			_ = p.layerStatus(layers[i], "Waiting")
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(pushJobs)
	// Fresh layers that wait for an upload slot are compressed meanwhile
	// (into the store), one at a time, so the last of them do not start
	// compressing alone once the others are up.
	var waiting []int
	for k, i := range order {
		if k >= pushJobs && fresh[i] {
			waiting = append(waiting, i)
		}
	}
	ahead := newCompressAhead(len(layers))
	var aheadDone sync.WaitGroup
	if len(waiting) > 0 {
		// Not one of the upload slots; g.Wait's end of gctx stops it.
		aheadDone.Go(func() { ahead.run(gctx, p.s, layers, waiting) })
	}
	for _, i := range order {
		l := layers[i]
		g.Go(func() error {
			if fresh[i] {
				// Compressed on the way up, and kept: its digest is
				// known only at the end, so there is nothing to check
				// or mount first (dockerd does the same).
				ref, err := p.streamLayer(gctx, l, ahead.take(gctx, i))
				if err != nil {
					return err
				}
				layers[i] = ref
				return p.layerStatus(l, "Pushed")
			}
			outcome, from, err := p.pushBlob(gctx, blobRef{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType}, candidates[i], shortID(l.DiffID))
			if err != nil {
				return err
			}
			switch outcome {
			case blobExists:
				return p.layerStatus(l, "Layer already exists")
			case blobMounted:
				return p.layerStatus(l, "Mounted from "+from)
			default:
				return p.layerStatus(l, "Pushed")
			}
		})
	}
	err = g.Wait()
	aheadDone.Wait()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The record remembers the compressed blobs (and gets the manifest
	// that names them), so the next push compresses nothing.
	if rec, err = p.s.rememberLayers(ctx, rec, layers); err != nil {
		return err
	}
	manifest, err := content.ReadBlob(ctx, p.s.content, rec.Manifest)
	if err != nil {
		return fmt.Errorf("manifest of %s: %w", reference.FamiliarString(t), err)
	}
	if _, _, err := p.pushBlob(ctx, blobRef{Digest: rec.ID, Size: cfgInfo.Size, MediaType: configMediaType(rec.ManifestMediaType)}, nil, ""); err != nil {
		return err
	}
	mediaType := rec.ManifestMediaType
	if mediaType == "" {
		mediaType = mediaTypeDockerManifest
	}
	if err := p.putManifest(ctx, t.Tag(), manifest, mediaType); err != nil {
		return err
	}
	md := digest.FromBytes(manifest)

	// Remember where the blobs are now, for mounts into other repositories,
	// and the image's digest in this repository.
	blobs := []digest.Digest{rec.ID}
	for _, l := range layers {
		blobs = append(blobs, l.Digest)
	}
	if err := p.s.records.addSources(p.named, blobs); err != nil {
		p.s.log.Warn("push: record distribution sources", "repo", p.named.String(), "err", err)
	}
	p.s.opMu.Lock()
	err = p.s.records.addDigestRef(p.named.String()+"@"+md.String(), rec.ID)
	p.s.opMu.Unlock()
	if err != nil && !cerrdefs.IsNotFound(err) { // NotFound: removed meanwhile
		p.s.log.Warn("push: record repo digest", "repo", p.named.String(), "err", err)
	}

	_ = progress.Status(p.out, "", fmt.Sprintf("%s: digest: %s size: %d", t.Tag(), md, len(manifest)))
	aux, _ := json.Marshal(struct {
		Tag    string
		Digest string
		Size   int
	}{t.Tag(), md.String(), len(manifest)})
	raw := json.RawMessage(aux)
	_ = p.out.WriteMessage(progress.Message{ProgressDetail: &progress.Detail{}, Aux: &raw})
	p.s.emit("push", reference.FamiliarString(t), reference.FamiliarName(t))
	return nil
}

func configMediaType(manifestType string) string {
	if manifestType == ocispec.MediaTypeImageManifest {
		return ocispec.MediaTypeImageConfig
	}
	return mediaTypeDockerConfig
}

// layerStatus sends a per-layer status, with the empty progressDetail
// dockerd sends.
func (p *pusher) layerStatus(l LayerRef, status string) error {
	return p.out.WriteMessage(progress.Message{ID: shortID(l.DiffID), Status: status, ProgressDetail: &progress.Detail{}})
}

// blobRef is one blob to push.
type blobRef struct {
	Digest    digest.Digest
	Size      int64
	MediaType string
}

// pushBlob makes sure the repository has blob b: already there (HEAD), a
// cross-repository mount from one of candidates, or an upload. id, when
// set, gets "Pushing" progress and retry messages.
func (p *pusher) pushBlob(ctx context.Context, b blobRef, candidates []string, id string) (blobOutcome, string, error) {
	exists, err := p.blobExists(ctx, b.Digest)
	if err != nil {
		return 0, "", err
	}
	if exists {
		return blobExists, "", nil
	}
	var location string
	for i, src := range candidates {
		loc, mounted, err := p.startUpload(ctx, b.Digest, src)
		if err != nil {
			p.s.log.Debug("push: mount failed", "blob", b.Digest, "from", src, "err", err)
			continue
		}
		if mounted {
			return blobMounted, src, nil
		}
		if i < len(candidates)-1 {
			p.cancelUpload(ctx, loc)
			continue
		}
		location = loc
	}
	for attempt := 1; ; attempt++ {
		err = p.upload(ctx, b, location, id)
		location = ""
		if err == nil {
			return blobPushed, "", nil
		}
		if attempt == uploadAttempts || !retryable(err) || ctx.Err() != nil {
			return 0, "", err
		}
		p.s.log.Info("push: upload failed, retrying", "blob", b.Digest, "attempt", attempt, "err", err)
		if err := p.waitRetry(ctx, id, retryDelay(attempt)); err != nil {
			return 0, "", err
		}
	}
}

// waitRetry counts down before a new attempt, as dockerd shows it.
func (p *pusher) waitRetry(ctx context.Context, id string, d time.Duration) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for left := int(d / time.Second); left > 0; left-- {
		if id != "" {
			plural := "s"
			if left == 1 {
				plural = ""
			}
			_ = p.out.WriteMessage(progress.Message{ID: id, Status: fmt.Sprintf("Retrying in %d second%s", left, plural), ProgressDetail: &progress.Detail{}})
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func (p *pusher) blobURL(d digest.Digest) string {
	return p.rs.url("/v2/" + p.path + "/blobs/" + d.String())
}

func (p *pusher) blobExists(ctx context.Context, d digest.Digest) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, p.blobURL(d), nil)
	if err != nil {
		return false, err
	}
	resp, err := p.rs.do(req)
	if err != nil {
		return false, err
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, p.registryError(resp)
}

// startUpload opens an upload session, asking to mount d from repository
// from when from is set. It returns the session's location, or mounted.
func (p *pusher) startUpload(ctx context.Context, d digest.Digest, from string) (location string, mounted bool, err error) {
	u := p.rs.url("/v2/" + p.path + "/blobs/uploads/")
	if from != "" {
		u += "?" + url.Values{"mount": {d.String()}, "from": {from}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return "", false, err
	}
	req.Header.Set("Content-Length", "0")
	resp, err := p.rs.do(req)
	if err != nil {
		return "", false, err
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusCreated:
		if from != "" {
			return "", true, nil
		}
	case http.StatusAccepted:
		loc, err := p.nextLocation(resp)
		return loc, false, err
	}
	return "", false, p.registryError(resp)
}

// cancelUpload abandons an upload session (a mount that did not happen).
func (p *pusher) cancelUpload(ctx context.Context, location string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, location, nil)
	if err != nil {
		return
	}
	if resp, err := p.rs.do(req); err == nil {
		drain(resp)
	}
}

// nextLocation resolves a response's Location header against its request.
func (p *pusher) nextLocation(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("registry %s: %s %s answered %s without a Location", p.rs.host, resp.Request.Method, resp.Request.URL.Path, resp.Status)
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("registry %s: bad Location %q: %w", p.rs.host, loc, err)
	}
	u = resp.Request.URL.ResolveReference(u)
	if err := p.rs.allowedTarget(u); err != nil {
		return "", err
	}
	return u.String(), nil
}

// upload sends blob b's bytes to the registry: in one PATCH, or in chunks
// of the size the registry asks for (OCI-Chunk-Min-Length), then PUT with
// the digest. location, when set, is an upload session already open.
func (p *pusher) upload(ctx context.Context, b blobRef, location, id string) error {
	var minChunk int64
	if location == "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.rs.url("/v2/"+p.path+"/blobs/uploads/"), nil)
		if err != nil {
			return err
		}
		resp, err := p.rs.do(req)
		if err != nil {
			return err
		}
		drain(resp)
		if resp.StatusCode != http.StatusAccepted {
			return p.registryError(resp)
		}
		if location, err = p.nextLocation(resp); err != nil {
			return err
		}
		if n, err := strconv.ParseInt(resp.Header.Get("OCI-Chunk-Min-Length"), 10, 64); err == nil && n > 0 {
			minChunk = n
		}
	}
	ra, err := p.s.content.ReaderAt(ctx, ocispec.Descriptor{Digest: b.Digest, Size: b.Size})
	if err != nil {
		return err
	}
	defer ra.Close()
	if ra.Size() != b.Size {
		return fmt.Errorf("blob %s: %d bytes stored, the manifest says %d", b.Digest, ra.Size(), b.Size)
	}
	var rep *progress.Reporter
	if id != "" {
		rep = progress.NewReporter(p.out, id, "Pushing", b.Size)
	}
	chunk := b.Size
	if minChunk > 0 {
		chunk = max(minChunk, 64<<10)
	}
	for off := int64(0); ; {
		n := min(chunk, b.Size-off)
		location, err = p.patch(ctx, location, io.NewSectionReader(ra, off, n), off, n, minChunk > 0, rep)
		if err != nil {
			return err
		}
		if off += n; off >= b.Size {
			break
		}
	}
	return p.commit(ctx, location, b.Digest)
}

// patch sends one chunk (the whole blob unless chunked) and returns the
// location for the next request.
func (p *pusher) patch(ctx context.Context, location string, sr *io.SectionReader, off, n int64, chunked bool, rep *progress.Reporter) (string, error) {
	body := func() io.ReadCloser {
		_, _ = sr.Seek(0, io.SeekStart)
		return io.NopCloser(&countingReader{r: sr, rep: rep})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, location, body())
	if err != nil {
		return "", err
	}
	// A replay (a token refreshed after a 401) starts over; the bar
	// counts what went out, so it may pass the total, as dockerd's does.
	req.GetBody = func() (io.ReadCloser, error) { return body(), nil }
	req.ContentLength = n
	req.Header.Set("Content-Type", "application/octet-stream")
	if chunked {
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, off+n-1))
	}
	resp, err := p.rs.do(req)
	if err != nil {
		return "", err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusCreated {
		return "", p.registryError(resp)
	}
	return p.nextLocation(resp)
}

// commit ends an upload with the blob's digest, and checks the registry
// stored what was sent.
func (p *pusher) commit(ctx context.Context, location string, d digest.Digest) error {
	u, err := url.Parse(location)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), http.NoBody)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := p.rs.do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusCreated {
		return p.registryError(resp)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d.String() {
		return (&integrityError{fmt.Sprintf("registry %s stored blob %s as %s: the upload was corrupted", p.rs.host, d, got)})
	}
	return nil
}

// putManifest writes the manifest under tag and checks the registry
// stored it byte for byte.
func (p *pusher) putManifest(ctx context.Context, tag string, manifest []byte, mediaType string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, p.rs.url("/v2/"+p.path+"/manifests/"+tag), bytes.NewReader(manifest))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := p.rs.do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return p.registryError(resp)
	}
	want := digest.FromBytes(manifest)
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != want.String() {
		return &integrityError{fmt.Sprintf("registry %s stored the manifest of %s as %s, berth sent %s", p.rs.host, tag, got, want)}
	}
	return nil
}

// integrityError is a registry that stored something other than what was
// sent: never retried.
type integrityError struct{ msg string }

func (e *integrityError) Error() string { return e.msg }

// retryable reports whether an upload failure may go away on its own:
// a dropped connection or a server error, not a refusal.
func retryable(err error) bool {
	var ie *integrityError
	if errors.As(err, &ie) {
		return false
	}
	var re *registryStatusError
	if errors.As(err, &re) {
		return re.status >= 500 || re.status == http.StatusRequestTimeout || re.status == http.StatusTooManyRequests
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// registryStatusError is a registry's refusal, worded as Docker words the
// registry's error codes ("unauthorized: authentication required").
type registryStatusError struct {
	status int
	msg    string
	class  error // a containerd errdefs class, or nil
}

func (e *registryStatusError) Error() string { return e.msg }

func (e *registryStatusError) Unwrap() error { return e.class }

// statusClass is the error class of a registry's HTTP status.
func statusClass(status int) error {
	switch status {
	case http.StatusUnauthorized:
		return cerrdefs.ErrUnauthenticated
	case http.StatusForbidden:
		return cerrdefs.ErrPermissionDenied
	case http.StatusNotFound:
		return cerrdefs.ErrNotFound
	}
	return nil
}

// registryError reads a failed response's error body.
func (p *pusher) registryError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var env struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	var msgs []string
	if json.Unmarshal(body, &env) == nil {
		for _, e := range env.Errors {
			code := strings.ToLower(strings.ReplaceAll(e.Code, "_", " "))
			msgs = append(msgs, code+": "+e.Message)
		}
	}
	var msg string
	switch {
	case len(msgs) == 1:
		msg = msgs[0]
	case len(msgs) > 1:
		msg = "errors:\n" + strings.Join(msgs, "\n") + "\n"
	case resp.StatusCode == http.StatusUnauthorized && basicHeader(p.rs.auth) == "" && p.rs.challenge.scheme == "basic":
		msg = "no basic auth credentials"
	case resp.StatusCode == http.StatusUnauthorized:
		msg = "unauthorized: authentication required"
	case resp.StatusCode == http.StatusForbidden:
		msg = "denied: requested access to the resource is denied"
	default:
		msg = fmt.Sprintf("%s %s: unexpected status from the registry: %s", resp.Request.Method, resp.Request.URL.Redacted(), resp.Status)
	}
	return &registryStatusError{status: resp.StatusCode, msg: msg, class: statusClass(resp.StatusCode)}
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// countingReader reports the bytes read to a progress reporter.
type countingReader struct {
	r   io.Reader
	rep *progress.Reporter
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 && c.rep != nil {
		c.rep.Add(int64(n))
	}
	return n, err
}

// pushLayers returns the blobs to push for rec's layers, in order, and
// which of them have no compressed blob yet (fresh): a layer stored
// uncompressed (an image loaded from a docker save archive) is compressed
// with gzip as it goes up, once. A layer some image already has
// compressed (the same diff ID) reuses that blob: the push of a rebuilt
// image compresses only what changed.
//
// This is where push meets the layer store: layers that have no
// pushable blob are the fresh ones.
func (s *Service) pushLayers(ctx context.Context, rec *Record) ([]LayerRef, []bool) {
	layers := slices.Clone(rec.Layers)
	fresh := make([]bool, len(layers))
	var known map[digest.Digest]LayerRef
	for i, l := range layers {
		if l.MediaType != mediaTypeOCILayer && l.MediaType != "application/vnd.docker.image.rootfs.diff.tar" {
			continue
		}
		if known == nil {
			known = s.compressedLayers(ctx)
		}
		if ref, ok := known[l.DiffID]; ok {
			layers[i] = ref
			continue
		}
		fresh[i] = true
	}
	return layers, fresh
}

// rememberLayers records layers (now all compressed) as rec's, with a
// manifest naming them, unless they are rec's already.
func (s *Service) rememberLayers(ctx context.Context, rec *Record, layers []LayerRef) (*Record, error) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	cur, err := s.records.get(rec.ID)
	if cerrdefs.IsNotFound(err) {
		// Removed while the push ran (its lease holds what it reads):
		// the manifest is made for this push alone, nothing recorded.
		cp := *rec
		if !slices.Equal(cp.Layers, layers) {
			cp.Layers = layers
			cp.Manifest, cp.ManifestMediaType, cp.ManifestSize = "", "", 0
		}
		if cp.Manifest != "" {
			if ok, _ := content.Has(ctx, s.content, cp.Manifest); ok {
				return &cp, nil
			}
		}
		b, err := s.manifestOf(ctx, &cp)
		if err != nil {
			return nil, err
		}
		d, err := s.writeBlob(ctx, b)
		if err != nil {
			return nil, err
		}
		cp.Manifest, cp.ManifestMediaType, cp.ManifestSize = d, mediaTypeDockerManifest, int64(len(b))
		return &cp, nil
	}
	if err != nil {
		return nil, err
	}
	if !slices.Equal(cur.Layers, layers) {
		cur.Layers = layers
		cur.Manifest, cur.ManifestMediaType, cur.ManifestSize = "", "", 0
	}
	if err := s.ensureManifest(ctx, cur); err != nil {
		return nil, err
	}
	return cur, nil
}

// compressedLayers maps diff IDs to the gzip blobs images already have
// for them (blobs present in the content store).
func (s *Service) compressedLayers(ctx context.Context) map[digest.Digest]LayerRef {
	recs, _ := s.records.list()
	out := map[digest.Digest]LayerRef{}
	for _, r := range recs {
		for _, l := range r.Layers {
			if l.MediaType != mediaTypeDockerLayerGzip && l.MediaType != mediaTypeOCILayerGzip {
				continue
			}
			if _, ok := out[l.DiffID]; ok {
				continue
			}
			if ok, _ := content.Has(ctx, s.content, l.Digest); ok {
				out[l.DiffID] = l
			}
		}
	}
	return out
}

// compressAhead compresses layers that wait for an upload slot into the
// store, one at a time, before their upload starts. A layer is either
// compressed here or, once its upload took it first, on the way up.
type compressAhead struct {
	mu    sync.Mutex
	state []aheadState // by layer index
}

type aheadState struct {
	taken bool          // its upload started: not compressed here
	done  chan struct{} // closed when compressed here (ref or err)
	ref   LayerRef
	err   error
}

func newCompressAhead(n int) *compressAhead {
	return &compressAhead{state: make([]aheadState, n)}
}

// run compresses layers (indexes in waiting) in order, skipping those
// whose upload has started, until ctx is done.
func (a *compressAhead) run(ctx context.Context, s *Service, layers []LayerRef, waiting []int) {
	for _, i := range waiting {
		if ctx.Err() != nil {
			return
		}
		a.mu.Lock()
		st := &a.state[i]
		if st.taken {
			a.mu.Unlock()
			continue
		}
		st.done = make(chan struct{})
		a.mu.Unlock()
		ref, err := s.compressLayer(ctx, layers[i], io.Discard, nil)
		a.mu.Lock()
		st.ref, st.err = ref, err
		close(st.done)
		a.mu.Unlock()
	}
}

// take is called when layer i's upload starts: it returns the layer's
// compressed blob when it was compressed here (waiting for a compression
// under way), or nothing, and the upload compresses it itself.
func (a *compressAhead) take(ctx context.Context, i int) LayerRef {
	a.mu.Lock()
	st := &a.state[i]
	st.taken = true
	done := st.done
	a.mu.Unlock()
	if done == nil {
		return LayerRef{}
	}
	select {
	case <-done:
	case <-ctx.Done():
		return LayerRef{}
	}
	if st.err != nil {
		return LayerRef{} // compressed again on the way up, or failing there
	}
	return st.ref
}

// streamLayer pushes a layer that has no compressed blob: its tar is
// gzipped once, and the compressed bytes go both to the registry (as they
// come, in one PATCH or in the chunks the registry asks for) and into the
// content store. The PUT that ends the upload names the digest computed
// on the way. A failed attempt is retried from the stored blob when the
// compression finished, from the start otherwise; uploadAttempts bounds
// the attempts of both kinds together. A ref with a digest is the layer
// compressed already (while it waited for its slot): only its upload is
// left.
func (p *pusher) streamLayer(ctx context.Context, l LayerRef, ref LayerRef) (LayerRef, error) {
	id := shortID(l.DiffID)
	for attempt := 1; ; attempt++ {
		var err error
		if ref.Digest == "" {
			ref, err = p.streamOnce(ctx, l, id)
		} else {
			// Compressed and stored; only the upload failed.
			err = p.uploadStored(ctx, blobRef{Digest: ref.Digest, Size: ref.Size, MediaType: ref.MediaType}, id)
		}
		if err == nil {
			return ref, nil
		}
		if attempt == uploadAttempts || !retryable(err) || ctx.Err() != nil {
			return LayerRef{}, err
		}
		p.s.log.Info("push: upload failed, retrying", "layer", l.DiffID, "attempt", attempt, "err", err)
		if err := p.waitRetry(ctx, id, retryDelay(attempt)); err != nil {
			return LayerRef{}, err
		}
	}
}

// uploadStored is one attempt at uploading a stored blob, unless the
// registry has it already (an earlier attempt that arrived though its
// answer did not).
func (p *pusher) uploadStored(ctx context.Context, b blobRef, id string) error {
	exists, err := p.blobExists(ctx, b.Digest)
	if err != nil || exists {
		return err
	}
	return p.upload(ctx, b, "", id)
}

// streamOnce is one attempt of streamLayer. A returned LayerRef with a
// digest means the blob is stored, whatever the error.
func (p *pusher) streamOnce(ctx context.Context, l LayerRef, id string) (LayerRef, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.rs.url("/v2/"+p.path+"/blobs/uploads/"), nil)
	if err != nil {
		return LayerRef{}, err
	}
	resp, err := p.rs.do(req)
	if err != nil {
		return LayerRef{}, err
	}
	drain(resp)
	if resp.StatusCode != http.StatusAccepted {
		return LayerRef{}, p.registryError(resp)
	}
	location, err := p.nextLocation(resp)
	if err != nil {
		return LayerRef{}, err
	}
	var minChunk int64
	if n, err := strconv.ParseInt(resp.Header.Get("OCI-Chunk-Min-Length"), 10, 64); err == nil && n > 0 {
		minChunk = max(n, 64<<10)
	}

	// The compressor writes into the store and a pipe; the upload reads
	// the pipe. Whatever happens, the compressor is done when this returns.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	type result struct {
		ref LayerRef
		err error
	}
	// compressed gets the blob's reference as soon as the whole stream
	// went into the pipe, before the store's commit (an fsync) is done:
	// the upload's end and its PUT overlap that commit.
	compressed := make(chan LayerRef, 1)
	done := make(chan result, 1)
	go func() {
		ref, err := p.s.compressLayer(cctx, l, pw, func(ref LayerRef) {
			_ = pw.Close()
			compressed <- ref
		})
		pw.CloseWithError(err) // after a Close: a no-op
		done <- result{ref, err}
	}()
	wait := func(uploadErr error) (LayerRef, error) {
		if uploadErr != nil {
			cancel()
			_ = pr.CloseWithError(uploadErr)
		}
		r := <-done
		if uploadErr != nil {
			return r.ref, uploadErr
		}
		return r.ref, r.err
	}

	rep := progress.NewReporter(p.out, id, "Pushing", l.Size)
	if minChunk == 0 {
		req, err := http.NewRequestWithContext(ctx, http.MethodPatch, location, &countingReader{r: pr, rep: rep})
		if err != nil {
			return wait(err)
		}
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := p.rs.do(req)
		if err != nil {
			return wait(err)
		}
		drain(resp)
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusCreated {
			return wait(p.registryError(resp))
		}
		if location, err = p.nextLocation(resp); err != nil {
			return wait(err)
		}
	} else {
		buf := make([]byte, minChunk)
		for off := int64(0); ; {
			n, rerr := io.ReadFull(pr, buf)
			if n > 0 {
				if location, err = p.patch(ctx, location, io.NewSectionReader(bytesReaderAt(buf[:n]), 0, int64(n)), off, int64(n), true, rep); err != nil {
					return wait(err)
				}
				off += int64(n)
			}
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				break
			}
			if rerr != nil {
				return wait(rerr)
			}
		}
	}
	// The stream ended: the compressor has checked it (diff ID) and may
	// still be committing it to the store.
	var ref LayerRef
	var r result
	stored := false
	select {
	case ref = <-compressed:
	case r = <-done:
		if r.err != nil {
			return r.ref, r.err
		}
		ref, stored = r.ref, true
	}
	putErr := p.commit(ctx, location, ref.Digest)
	if !stored {
		if r = <-done; r.err != nil {
			return r.ref, r.err
		}
	}
	return r.ref, putErr
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// compressLayer gzips an uncompressed layer blob into the content store
// and into w, checking the tar against the layer's diff ID, and returns
// the compressed blob's reference. sent, when set, is called with that
// reference once everything went to w and the diff ID matched, before
// the blob is committed to the store; the blob is stored only when
// compressLayer returns without an error.
func (s *Service) compressLayer(ctx context.Context, l LayerRef, w io.Writer, sent func(LayerRef)) (LayerRef, error) {
	rc, err := s.layerReader(ctx, l)
	if err != nil {
		return LayerRef{}, err
	}
	defer rc.Close()
	iref := "compress-" + randomRef()
	if err := s.leases.Hold(ctx, leases.Ingest(iref)); err != nil {
		return LayerRef{}, err
	}
	cw, err := s.content.Writer(ctx, ccontent.WithRef(iref))
	if err != nil {
		return LayerRef{}, err
	}
	defer cw.Close()
	zw, err := archive.Compress(io.MultiWriter(cw, w), archive.Gzip)
	if err != nil {
		return LayerRef{}, err
	}
	diff := digest.Canonical.Digester()
	dr, _, err := archive.Decompress(rc)
	if err != nil {
		return LayerRef{}, err
	}
	defer dr.Close()
	if _, err := io.Copy(io.MultiWriter(zw, diff.Hash()), &ctxReader{ctx: ctx, r: dr}); err != nil {
		return LayerRef{}, fmt.Errorf("compress layer %s: %w", shortID(l.DiffID), err)
	}
	if err := zw.Close(); err != nil {
		return LayerRef{}, err
	}
	if diff.Digest() != l.DiffID {
		return LayerRef{}, fmt.Errorf("layer %s: stored blob does not match its diff ID", shortID(l.DiffID))
	}
	st, err := cw.Status()
	if err != nil {
		return LayerRef{}, err
	}
	ref := LayerRef{Digest: cw.Digest(), MediaType: mediaTypeDockerLayerGzip, Size: st.Offset, DiffID: l.DiffID}
	if sent != nil {
		sent(ref)
	}
	if err := s.leases.Hold(ctx, leases.Content(ref.Digest)); err != nil {
		return LayerRef{}, err
	}
	if err := cw.Commit(ctx, ref.Size, ref.Digest); err != nil && !cerrdefs.IsAlreadyExists(err) {
		return LayerRef{}, err
	}
	return ref, nil
}
