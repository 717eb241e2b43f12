package container

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/api/server/httputils"
	"github.com/berth/berth/api/server/router"
	ctr "github.com/berth/berth/container"
)

// extraRoutes are the endpoints beyond the core lifecycle: archive (cp),
// export, changes (diff), top, stats, update, commit.
func (cr *containerRouter) extraRoutes() []router.Route {
	x := &extraRouter{b: cr.b}
	return []router.Route{
		// HEAD is routed to GET handlers; archive answers it with the
		// stat header only.
		{Method: http.MethodGet, Path: "/containers/{id}/archive", Handler: x.archiveGet},
		{Method: http.MethodPut, Path: "/containers/{id}/archive", Handler: x.archivePut},
		{Method: http.MethodGet, Path: "/containers/{id}/export", Handler: x.export},
		{Method: http.MethodGet, Path: "/containers/{id}/changes", Handler: x.changes},
		{Method: http.MethodGet, Path: "/containers/{id}/top", Handler: x.top},
		{Method: http.MethodGet, Path: "/containers/{id}/stats", Handler: x.stats},
		{Method: http.MethodPost, Path: "/containers/{id}/update", Handler: x.update},
		{Method: http.MethodPost, Path: "/commit", Handler: x.commit},
	}
}

type extraRouter struct{ b Backend }

const pathStatHeader = "X-Docker-Container-Path-Stat"

// archivePath is the path query parameter of the archive endpoints: one a
// file system could name. A NUL byte, a path longer than PATH_MAX or an
// element longer than NAME_MAX is the client's mistake (400), not a
// failure of the daemon's (dockerd answers 500 with its host paths).
func archivePath(r *http.Request) (string, error) {
	p := r.Form.Get("path")
	switch {
	case p == "":
		return "", cerrdefs.ErrInvalidArgument.WithMessage("path is required")
	case strings.IndexByte(p, 0) >= 0:
		return "", cerrdefs.ErrInvalidArgument.WithMessage("invalid path: it contains a NUL byte")
	case len(p) >= unix.PathMax:
		return "", cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid path: longer than %d bytes", unix.PathMax-1))
	}
	for _, el := range strings.Split(p, "/") {
		if len(el) > unix.NAME_MAX {
			return "", cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid path: the element %.40q... is longer than %d bytes", el, unix.NAME_MAX))
		}
	}
	return p, nil
}

func (x *extraRouter) archiveGet(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	if r.Method == http.MethodHead {
		st, err := x.b.ArchiveStat(ctx, vars["id"], p)
		if err != nil {
			return err
		}
		h, err := ctr.EncodePathStat(st)
		if err != nil {
			return err
		}
		w.Header().Set(pathStatHeader, h)
		w.WriteHeader(http.StatusOK)
		return nil
	}
	st, rc, err := x.b.ArchiveGet(ctx, vars["id"], p)
	if err != nil {
		return err
	}
	defer rc.Close()
	h, err := ctr.EncodePathStat(st)
	if err != nil {
		return err
	}
	w.Header().Set(pathStatHeader, h)
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	_, err = io.Copy(w, rc)
	return err
}

func (x *extraRouter) archivePut(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	o := ctr.ExtractOptions{
		NoOverwriteDirNonDir: httputils.BoolValue(r, "noOverwriteDirNonDir"),
		CopyUIDGID:           httputils.BoolValue(r, "copyUIDGID"),
	}
	if err := x.b.ArchivePut(ctx, vars["id"], p, o, r.Body); err != nil {
		httputils.DrainBody(r)
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (x *extraRouter) export(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	rc, err := x.b.Export(ctx, vars["id"])
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	_, err = io.Copy(w, rc)
	return err
}

func (x *extraRouter) changes(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	ch, err := x.b.Changes(ctx, vars["id"])
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, ch)
}

func (x *extraRouter) top(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	resp, err := x.b.Top(ctx, vars["id"], r.Form.Get("ps_args"))
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, resp)
}

// boolDefault reads a boolean parameter, def when absent.
func boolDefault(r *http.Request, k string, def bool) bool {
	if _, ok := r.Form[k]; !ok || r.Form.Get(k) == "" {
		return def
	}
	return httputils.BoolValue(r, k)
}

func (x *extraRouter) stats(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	o := ctr.StatsOptions{Stream: boolDefault(r, "stream", true), OneShot: boolDefault(r, "one-shot", false)}
	if o.Stream && o.OneShot {
		return cerrdefs.ErrInvalidArgument.WithMessage("cannot have stream=true and one-shot=true")
	}
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	started := false
	return x.b.Stats(ctx, vars["id"], o, func(st *container.StatsResponse) error {
		if !started {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		if err := enc.Encode(st); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	})
}

func (x *extraRouter) update(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	var u container.UpdateConfig
	if err := httputils.ReadJSONTyped(r, &u); err != nil {
		return err
	}
	// As dockerd: before API 1.40 an update cannot change the PIDs limit;
	// 0 or less lifts it, and the container then reads back 0.
	if httputils.VersionLess(httputils.VersionFromContext(ctx), "1.40") {
		u.PidsLimit = nil
	}
	if u.PidsLimit != nil && *u.PidsLimit <= 0 {
		u.PidsLimit = new(int64)
	}
	warnings, err := x.b.Update(ctx, vars["id"], u)
	if err != nil {
		return err
	}
	if warnings == nil {
		warnings = []string{}
	}
	return httputils.WriteJSON(w, http.StatusOK, container.UpdateResponse{Warnings: warnings})
}

func (x *extraRouter) commit(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	var cfg *container.Config
	if err := httputils.ReadJSONTyped(r, &cfg); err != nil {
		return err
	}
	o := ctr.CommitOptions{
		Repo:    r.Form.Get("repo"),
		Tag:     r.Form.Get("tag"),
		Comment: r.Form.Get("comment"),
		Author:  r.Form.Get("author"),
		Changes: r.Form["changes"],
		Pause:   boolDefault(r, "pause", true),
		Config:  cfg,
	}
	id, err := x.b.Commit(ctx, r.Form.Get("container"), o)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusCreated, container.CommitResponse{ID: id})
}
