// Package volume serves the /volumes endpoints of the Engine API.
package volume

import (
	"context"
	"net/http"

	cerrdefs "github.com/containerd/errdefs"
	volumetypes "github.com/moby/moby/api/types/volume"

	"github.com/berth/berth/api/server/httputils"
	"github.com/berth/berth/api/server/router"
	"github.com/berth/berth/filters"
)

// clusterVolumesVersion is the API version that brought swarm cluster
// volumes and made prune spare named volumes unless asked for all.
const clusterVolumesVersion = "1.42"

// errNoSwarm is Docker's answer to cluster-volume requests on a node that is
// not a swarm manager.
const errNoSwarm = `This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`

type volumeRouter struct{ b Backend }

// New returns the volume routes.
func New(b Backend) router.Router { return &volumeRouter{b: b} }

func (vr *volumeRouter) Routes() []router.Route {
	return []router.Route{
		{Method: http.MethodGet, Path: "/volumes", Handler: vr.list},
		{Method: http.MethodPost, Path: "/volumes/create", Handler: vr.create},
		{Method: http.MethodPost, Path: "/volumes/prune", Handler: vr.prune},
		// Names hold no slashes, but Docker still answers "no such volume"
		// for one that does, so take the whole rest of the path.
		{Method: http.MethodGet, Path: "/volumes/{name:.*}", Handler: vr.inspect},
		{Method: http.MethodPut, Path: "/volumes/{name:.*}", Handler: vr.update},
		{Method: http.MethodDelete, Path: "/volumes/{name:.*}", Handler: vr.remove},
	}
}

func (vr *volumeRouter) list(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	args, err := filters.Parse(r.Form.Get("filters"))
	if err != nil {
		return err
	}
	vols, warnings, err := vr.b.List(ctx, args)
	if err != nil {
		return err
	}
	if vols == nil {
		vols = []volumetypes.Volume{}
	}
	return httputils.WriteJSON(w, http.StatusOK, &volumetypes.ListResponse{Volumes: vols, Warnings: warnings})
}

func (vr *volumeRouter) inspect(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	v, err := vr.b.Get(ctx, vars["name"])
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, v)
}

func (vr *volumeRouter) create(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	var req volumetypes.CreateRequest
	if err := httputils.ReadJSONBody(r, &req); err != nil {
		return err
	}
	if req.ClusterVolumeSpec != nil && !httputils.VersionLess(httputils.VersionFromContext(ctx), clusterVolumesVersion) {
		return cerrdefs.ErrUnavailable.WithMessage(errNoSwarm)
	}
	v, err := vr.b.Create(ctx, req.Name, req.Driver, req.Labels, req.DriverOpts)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusCreated, v)
}

// update is PUT /volumes/{name}: cluster volumes only.
func (vr *volumeRouter) update(context.Context, http.ResponseWriter, *http.Request, map[string]string) error {
	return cerrdefs.ErrUnavailable.WithMessage("volume update only valid for cluster volumes, but swarm is unavailable")
}

func (vr *volumeRouter) remove(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if err := vr.b.Remove(ctx, vars["name"], httputils.BoolValue(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (vr *volumeRouter) prune(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	args, err := filters.Parse(r.Form.Get("filters"))
	if err != nil {
		return err
	}
	// Before API 1.42 prune removed every unused local volume, named or not.
	if httputils.VersionLess(httputils.VersionFromContext(ctx), clusterVolumesVersion) {
		args["all"] = append(args["all"], "true")
	}
	rep, err := vr.b.Prune(ctx, args)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, rep)
}
