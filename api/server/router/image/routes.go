// Package image serves the /images endpoints of the Engine API.
package image

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/containerd/platforms"
	"github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/api/server/httputils"
	"github.com/berth/berth/api/server/router"
	"github.com/berth/berth/filters"
	"github.com/berth/berth/image"
	"github.com/berth/berth/progress"
)

type imageRouter struct{ b Backend }

// New returns the image routes.
func New(b Backend) router.Router { return &imageRouter{b: b} }

func (ir *imageRouter) Routes() []router.Route {
	return []router.Route{
		{Method: http.MethodPost, Path: "/images/create", Handler: ir.create},
		{Method: http.MethodGet, Path: "/images/json", Handler: ir.list},
		{Method: http.MethodPost, Path: "/images/prune", Handler: ir.prune},
		{Method: http.MethodPost, Path: "/images/load", Handler: ir.load},
		{Method: http.MethodGet, Path: "/images/get", Handler: ir.saveMany},
		{Method: http.MethodGet, Path: "/images/search", Handler: ir.search},
		{Method: http.MethodGet, Path: "/distribution/{name:.*}/json", Handler: ir.distribution},
		{Method: http.MethodGet, Path: "/images/{name:.*}/json", Handler: ir.inspect},
		{Method: http.MethodGet, Path: "/images/{name:.*}/history", Handler: ir.history},
		{Method: http.MethodGet, Path: "/images/{name:.*}/get", Handler: ir.saveOne},
		{Method: http.MethodPost, Path: "/images/{name:.*}/tag", Handler: ir.tag},
		{Method: http.MethodPost, Path: "/images/{name:.*}/push", Handler: ir.push},
		{Method: http.MethodDelete, Path: "/images/{name:.*}", Handler: ir.remove},
	}
}

// streamOutput adapts the HTTP JSON stream to progress.Output.
type streamOutput struct{ sw *httputils.StreamWriter }

func (o streamOutput) WriteMessage(m progress.Message) error { return o.sw.Write(m) }

// runStream runs op with a progress stream. Errors before the first message
// are returned for the server to map to a status; later ones go in-stream.
func runStream(w http.ResponseWriter, op func(out progress.Output) error) error {
	sw := httputils.NewStreamWriter(w)
	err := op(streamOutput{sw})
	if err == nil {
		if !sw.Started() {
			sw.Start()
		}
		return nil
	}
	if !sw.Started() {
		return err
	}
	_ = sw.WriteError(err)
	return nil
}

func (ir *imageRouter) create(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	from := r.Form.Get("fromImage")
	if from == "" {
		if src := r.Form.Get("fromSrc"); src != "" {
			return ir.importImage(ctx, w, r, src)
		}
		return errInvalid("fromImage or fromSrc is required")
	}
	ref, err := image.ParsePullReference(from, r.Form.Get("tag"))
	if err != nil {
		return err
	}
	if p := r.Form.Get("platform"); p != "" {
		// dockerd's check first: a platform that does not parse is 400
		// in containerd's words ("unknown operating system or
		// architecture"); then berth's own: it pulls linux/amd64 only.
		sp, err := platforms.Parse(p)
		if err != nil {
			return errInvalid(err.Error())
		}
		if sp = platforms.Normalize(sp); sp.OS != "linux" || sp.Architecture != "amd64" {
			return errInvalid("platform " + p + " is not supported: berth pulls linux/amd64")
		}
	}
	auth, err := image.DecodeAuth(r.Header.Get("X-Registry-Auth"))
	if err != nil {
		return err
	}
	return runStream(w, func(out progress.Output) error { return ir.b.Pull(ctx, ref, auth, out) })
}

func (ir *imageRouter) push(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	ref, err := image.ParsePushReference(vars["name"], r.Form.Get("tag"))
	if err != nil {
		return err
	}
	var platform *ocispec.Platform
	if p := r.Form.Get("platform"); p != "" {
		if platform, err = parsePlatform(p); err != nil {
			return err
		}
	}
	auth, err := image.DecodeAuth(r.Header.Get("X-Registry-Auth"))
	if err != nil {
		return err
	}
	return runStream(w, func(out progress.Output) error { return ir.b.Push(ctx, ref, platform, auth, out) })
}

// parsePlatform reads the platform query parameter: the JSON of an OCI
// platform, as the docker CLI sends it (API 1.46), or "os[/arch[/variant]]".
func parsePlatform(s string) (*ocispec.Platform, error) {
	var p ocispec.Platform
	if strings.HasPrefix(strings.TrimSpace(s), "{") {
		if err := json.Unmarshal([]byte(s), &p); err != nil {
			return nil, errInvalid("invalid platform: " + err.Error())
		}
	} else {
		parts := strings.Split(s, "/")
		if len(parts) > 3 {
			return nil, errInvalid("invalid platform: " + s)
		}
		p.OS = parts[0]
		if len(parts) > 1 {
			p.Architecture = parts[1]
		}
		if len(parts) > 2 {
			p.Variant = parts[2]
		}
	}
	if p.OS == "" {
		return nil, errInvalid("invalid platform: os is required")
	}
	return &p, nil
}

func (ir *imageRouter) list(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	args, err := filters.Parse(r.Form.Get("filters"))
	if err != nil {
		return err
	}
	if f := r.Form.Get("filter"); f != "" {
		args["reference"] = append(args["reference"], f)
	}
	list, err := ir.b.List(ctx, args, httputils.BoolValue(r, "all"))
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, list)
}

func (ir *imageRouter) inspect(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	resp, err := ir.b.Inspect(ctx, vars["name"])
	if err != nil {
		return err
	}
	if httputils.VersionLess(httputils.VersionFromContext(ctx), "1.45") {
		// Before 1.45 dockerd always sent Container and ContainerConfig
		// (empty for an image that was not committed from a container).
		ctr, cfg, err := ir.b.LegacyContainer(ctx, resp.ID)
		if err != nil {
			return err
		}
		if cfg == nil {
			cfg = &container.Config{}
		}
		return httputils.WriteJSON(w, http.StatusOK, inspectBefore145{InspectResponse: resp, Container: ctr, ContainerConfig: cfg})
	}
	return httputils.WriteJSON(w, http.StatusOK, resp)
}

// inspectBefore145 is image inspect as API 1.44 and older have it.
type inspectBefore145 struct {
	*imagetypes.InspectResponse
	Container       string
	ContainerConfig *container.Config
}

func (ir *imageRouter) history(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	h, err := ir.b.History(ctx, vars["name"])
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, h)
}

func (ir *imageRouter) tag(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	repo := r.Form.Get("repo")
	if repo == "" {
		return errInvalid("repo is required")
	}
	if err := ir.b.Tag(ctx, vars["name"], repo, r.Form.Get("tag")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (ir *imageRouter) remove(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	out, err := ir.b.Remove(ctx, vars["name"], httputils.BoolValue(r, "force"), !httputils.BoolValue(r, "noprune"))
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, out)
}

func (ir *imageRouter) prune(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	args, err := filters.Parse(r.Form.Get("filters"))
	if err != nil {
		return err
	}
	rep, err := ir.b.Prune(ctx, args)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, rep)
}

func (ir *imageRouter) saveOne(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	return ir.save(ctx, w, []string{vars["name"]})
}

func (ir *imageRouter) saveMany(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	return ir.save(ctx, w, r.Form["names"])
}

func (ir *imageRouter) save(ctx context.Context, w http.ResponseWriter, names []string) error {
	if len(names) == 0 {
		return errInvalid("no images given")
	}
	w.Header().Set("Content-Type", "application/x-tar")
	return ir.b.Save(ctx, names, w)
}

func (ir *imageRouter) load(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	quiet := httputils.BoolValue(r, "quiet")
	return runStream(w, func(out progress.Output) error {
		err := ir.b.Load(ctx, r.Body, out, quiet)
		if err != nil {
			httputils.DrainBody(r)
		}
		return err
	})
}

// importImage answers POST /images/create?fromSrc= (docker import).
func (ir *imageRouter) importImage(ctx context.Context, w http.ResponseWriter, r *http.Request, src string) error {
	req := image.ImportRequest{
		Src: src, Body: r.Body, Repo: r.Form.Get("repo"), Tag: r.Form.Get("tag"),
		Message: r.Form.Get("message"), Changes: r.Form["changes"], Platform: r.Form.Get("platform"),
	}
	return runStream(w, func(out progress.Output) error {
		_, err := ir.b.Import(ctx, req, out)
		return err
	})
}

// search answers GET /images/search.
func (ir *imageRouter) search(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	args, err := filters.Parse(r.Form.Get("filters"))
	if err != nil {
		return err
	}
	limit, err := httputils.IntValue(r, "limit", 0)
	if err != nil {
		return err
	}
	auth, err := image.DecodeAuth(r.Header.Get("X-Registry-Auth"))
	if err != nil {
		return err
	}
	res, err := ir.b.Search(ctx, r.Form.Get("term"), limit, args, auth)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, res)
}

// distribution answers GET /distribution/{name}/json.
func (ir *imageRouter) distribution(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	ref, err := image.ParsePullReference(vars["name"], "")
	if err != nil {
		return err
	}
	auth, err := image.DecodeAuth(r.Header.Get("X-Registry-Auth"))
	if err != nil {
		return err
	}
	res, err := ir.b.DistributionInspect(ctx, ref, auth)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, res)
}
