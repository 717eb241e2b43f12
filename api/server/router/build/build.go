package build

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/registry"
	"google.golang.org/protobuf/proto"

	"github.com/berth/berth/api/server/httputils"
	"github.com/berth/berth/builder"
	"github.com/berth/berth/filters"
)

// buildOptions reads POST /build's query as dockerd does. Parameters of
// the classic builder BuildKit has no use for (rm, forcerm, memory, cpu*,
// cgroupparent, isolation) are accepted and ignored, as dockerd's BuildKit
// path does.
func buildOptions(r *http.Request) (builder.BuildOptions, string, error) {
	o := builder.BuildOptions{
		Remote:      r.FormValue("remote"),
		SessionID:   r.FormValue("session"),
		Dockerfile:  r.FormValue("dockerfile"),
		Tags:        r.Form["t"],
		Target:      r.FormValue("target"),
		NoCache:     httputils.BoolValue(r, "nocache"),
		Pull:        httputils.BoolValue(r, "pull"),
		Platform:    r.FormValue("platform"),
		NetworkMode: r.FormValue("networkmode"),
		ExtraHosts:  r.Form["extrahosts"],
	}
	o.AuthConfigs = registryConfig(r.Header.Get("X-Registry-Config"))
	version := r.FormValue("version")
	switch version {
	case "", "1":
		version = "1"
	case "2":
	default:
		return o, "", cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid version %q", version))
	}
	if httputils.BoolValue(r, "squash") {
		return o, "", cerrdefs.ErrInvalidArgument.WithMessage("squash is only supported with experimental mode")
	}
	if len(r.Form["securityopt"]) > 0 {
		return o, "", cerrdefs.ErrInvalidArgument.WithMessage("security options are not supported on linux")
	}
	if s := r.FormValue("shmsize"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return o, "", cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid shmsize %q", s))
		}
		o.ShmSize = n
	}
	if s := r.FormValue("buildargs"); s != "" {
		if err := json.Unmarshal([]byte(s), &o.BuildArgs); err != nil {
			return o, "", cerrdefs.ErrInvalidArgument.WithMessage("error reading build args: " + err.Error())
		}
	}
	if s := r.FormValue("labels"); s != "" {
		if err := json.Unmarshal([]byte(s), &o.Labels); err != nil {
			return o, "", cerrdefs.ErrInvalidArgument.WithMessage("error reading labels: " + err.Error())
		}
	}
	if s := r.FormValue("cachefrom"); s != "" {
		if err := json.Unmarshal([]byte(s), &o.CacheFrom); err != nil {
			return o, "", cerrdefs.ErrInvalidArgument.WithMessage("error reading cache-from: " + err.Error())
		}
	}
	return o, version, nil
}

// registryConfig decodes X-Registry-Config (base64url JSON, registry →
// credentials). As dockerd, a header that does not decode gives no
// credentials rather than an error: pulls work without them.
func registryConfig(h string) map[string]registry.AuthConfig {
	if h == "" {
		return nil
	}
	var auths map[string]registry.AuthConfig
	_ = json.NewDecoder(base64.NewDecoder(base64.URLEncoding, strings.NewReader(h))).Decode(&auths)
	return auths
}

// build serves POST /build on the embedded BuildKit. version=2 streams
// BuildKit's own status as dockerd does (aux "moby.buildkit.trace", then
// "moby.image.id"); version=1 (the default) renders it as the classic
// builder's stream (classic.go).
func (br *buildRouter) build(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := r.ParseForm(); err != nil {
		return cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	opts, version, err := buildOptions(r)
	if err != nil {
		return err
	}
	if id := r.FormValue("buildid"); id != "" {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		br.mu.Lock()
		br.builds[id] = cancel
		br.mu.Unlock()
		defer func() {
			br.mu.Lock()
			delete(br.builds, id)
			br.mu.Unlock()
		}()
	}
	quiet := httputils.BoolValue(r, "q")
	rm := r.FormValue("rm") == "" || httputils.BoolValue(r, "rm") || httputils.BoolValue(r, "forcerm")
	// The answer streams while the context is still being read.
	_ = http.NewResponseController(w).EnableFullDuplex()

	sw := httputils.NewStreamWriter(w)
	var held []any // quiet: the progress, sent only if the build fails
	write := func(m any) error {
		if quiet {
			held = append(held, m)
			return nil
		}
		return sw.Write(m)
	}

	var status builder.StatusFunc
	var classic *classicProgress
	if version == "2" {
		if opts.Remote == "" {
			opts.Context = r.Body
		}
		status = func(sr *controlapi.StatusResponse) error {
			dt, err := proto.Marshal(sr)
			if err != nil {
				return err
			}
			return write(auxMessage{ID: "moby.buildkit.trace", Aux: dt})
		}
	} else {
		var sniff *dockerfileSniffer
		if opts.Remote == "" {
			sniff = sniffDockerfile(r.Body, opts.Dockerfile)
			opts.Context = sniff
		}
		status = func(sr *controlapi.StatusResponse) error {
			ss := client.NewSolveStatus(sr)
			if classic == nil {
				if !hasStep(ss) {
					return nil
				}
				var df []byte
				if sniff != nil {
					wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					df = sniff.dockerfile(wctx)
					cancel()
				}
				classic = newClassicProgress(df, opts.Target, rm, write)
			}
			return classic.status(ss)
		}
	}

	id, err := br.b.Build(ctx, opts, status)
	if err != nil {
		if quiet {
			for _, m := range held {
				_ = sw.Write(m)
			}
		}
		if !sw.Started() {
			return err
		}
		if version == "1" {
			return ignoreWriteError(sw.Write(classicError(err)))
		}
		return ignoreWriteError(sw.WriteError(err))
	}
	if version == "2" {
		err = write(auxMessage{ID: "moby.image.id", Aux: build.Result{ID: id}})
	} else {
		if classic == nil {
			classic = newClassicProgress(nil, opts.Target, rm, write)
		}
		err = classic.finish(id, opts.Tags)
	}
	if err == nil && quiet {
		err = sw.Write(streamMessage{Stream: id + "\n"})
	}
	return ignoreWriteError(err)
}

// cancel serves POST /build/cancel?id=: it ends the build that POST
// /build started with that buildid. As dockerd, an unknown ID is no error.
func (br *buildRouter) cancel(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	id := r.FormValue("id")
	if id == "" {
		return cerrdefs.ErrInvalidArgument.WithMessage("build ID not provided")
	}
	br.mu.Lock()
	cancel := br.builds[id]
	br.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// ignoreWriteError: once the stream has started, a failed write means the
// client went away; there is no one left to answer.
func ignoreWriteError(error) error { return nil }

// hasStep reports whether ss names an instruction's vertex.
func hasStep(ss *client.SolveStatus) bool {
	for _, v := range ss.Vertexes {
		if stepName.MatchString(v.Name) {
			return true
		}
	}
	return false
}

// prune serves POST /build/prune: all, filters (until/unused-for, id,
// type, description, inuse, shared, private), keep-storage (reserved-space
// from API 1.48), max-used-space, min-free-space.
func (br *buildRouter) prune(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := r.ParseForm(); err != nil {
		return cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	opts := builder.PruneOptions{All: httputils.BoolValue(r, "all")}
	f, err := filters.Parse(r.FormValue("filters"))
	if err != nil {
		return err
	}
	if err := opts.SetFilters(f, time.Now()); err != nil {
		return err
	}
	bytesValue := func(name string) (int64, error) {
		s := r.FormValue(name)
		if s == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s is in bytes and expects an integer, got %v", name, s))
		}
		return n, nil
	}
	if opts.ReservedSpace, err = bytesValue("reserved-space"); err != nil {
		return err
	}
	if opts.ReservedSpace == 0 {
		if opts.ReservedSpace, err = bytesValue("keep-storage"); err != nil {
			return err
		}
	}
	if opts.MaxUsedSpace, err = bytesValue("max-used-space"); err != nil {
		return err
	}
	if opts.MinFreeSpace, err = bytesValue("min-free-space"); err != nil {
		return err
	}
	size, ids, err := br.b.Prune(ctx, opts)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, build.CachePruneReport{CachesDeleted: ids, SpaceReclaimed: uint64(size)})
}
