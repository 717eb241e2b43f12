// Package network serves the /networks endpoints of the Engine API.
package network

import (
	"context"
	"net/http"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"

	"github.com/berth/berth/api/server/httputils"
	"github.com/berth/berth/api/server/router"
	"github.com/berth/berth/filters"
	netsvc "github.com/berth/berth/network"
)

type networkRouter struct{ b Backend }

// New returns the network routes.
func New(b Backend) router.Router { return &networkRouter{b: b} }

func (nr *networkRouter) Routes() []router.Route {
	return []router.Route{
		{Method: http.MethodGet, Path: "/networks", Handler: nr.list},
		{Method: http.MethodGet, Path: "/networks/", Handler: nr.list},
		{Method: http.MethodPost, Path: "/networks/create", Handler: nr.create},
		{Method: http.MethodPost, Path: "/networks/prune", Handler: nr.prune},
		// A network's name may hold "/" (dockerd allows it): the docker
		// CLI sends it as is, other clients escape it ("%2F").
		{Method: http.MethodGet, Path: "/networks/{id:.*}", Handler: nr.inspect},
		{Method: http.MethodDelete, Path: "/networks/{id:.*}", Handler: nr.remove},
		{Method: http.MethodPost, Path: "/networks/{id:.*}/connect", Handler: nr.connect},
		{Method: http.MethodPost, Path: "/networks/{id:.*}/disconnect", Handler: nr.disconnect},
	}
}

func (nr *networkRouter) list(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	args, err := filters.Parse(r.Form.Get("filters"))
	if err != nil {
		return err
	}
	list, err := nr.b.List(ctx, args)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, list)
}

func (nr *networkRouter) create(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	var req netsvc.CreateRequest
	if err := httputils.ReadJSONBody(r, &req); err != nil {
		return err
	}
	resp, err := nr.b.Create(ctx, req)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusCreated, resp)
}

func (nr *networkRouter) inspect(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	resp, err := nr.b.Inspect(ctx, vars["id"])
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, resp)
}

func (nr *networkRouter) remove(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if err := nr.b.Remove(ctx, vars["id"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (nr *networkRouter) prune(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	args, err := filters.Parse(r.Form.Get("filters"))
	if err != nil {
		return err
	}
	rep, err := nr.b.Prune(ctx, args)
	if err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, rep)
}

func (nr *networkRouter) connect(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	var req network.ConnectRequest
	if err := httputils.ReadJSONBody(r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return cerrdefs.ErrInvalidArgument.WithMessage("no container specified")
	}
	if err := nr.b.Connect(ctx, vars["id"], req.Container, req.EndpointConfig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (nr *networkRouter) disconnect(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	var req network.DisconnectRequest
	if err := httputils.ReadJSONBody(r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return cerrdefs.ErrInvalidArgument.WithMessage("no container specified")
	}
	if err := nr.b.Disconnect(ctx, vars["id"], req.Container, req.Force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
