// Package plugin answers the managed-plugin endpoints: berth has no plugins,
// so the list is empty, a named plugin is not found, and installing one is
// not supported.
package plugin

import (
	"context"
	"fmt"
	"net/http"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth/berth/api/server/httputils"
	"github.com/berth/berth/api/server/router"
	"github.com/berth/berth/filters"
)

type pluginRouter struct{}

// New returns the plugin routes.
func New() router.Router { return pluginRouter{} }

func (pluginRouter) Routes() []router.Route {
	notFound := func(_ context.Context, _ http.ResponseWriter, _ *http.Request, vars map[string]string) error {
		return cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("plugin %q not found", vars["name"]))
	}
	notSupported := func(context.Context, http.ResponseWriter, *http.Request, map[string]string) error {
		return cerrdefs.ErrNotImplemented.WithMessage("plugins are not supported by berth")
	}
	return []router.Route{
		{Method: http.MethodGet, Path: "/plugins", Handler: list},
		{Method: http.MethodGet, Path: "/plugins/{name:.*}/json", Handler: notFound},
		{Method: http.MethodDelete, Path: "/plugins/{name:.*}", Handler: notFound},
		{Method: http.MethodPost, Path: "/plugins/{name:.*}/enable", Handler: notFound},
		{Method: http.MethodPost, Path: "/plugins/{name:.*}/disable", Handler: notFound},
		{Method: http.MethodPost, Path: "/plugins/{name:.*}/set", Handler: notFound},
		{Method: http.MethodPost, Path: "/plugins/{name:.*}/push", Handler: notFound},
		{Method: http.MethodPost, Path: "/plugins/{name:.*}/upgrade", Handler: notFound},
		{Method: http.MethodGet, Path: "/plugins/privileges", Handler: notSupported},
		{Method: http.MethodPost, Path: "/plugins/pull", Handler: notSupported},
		{Method: http.MethodPost, Path: "/plugins/create", Handler: notSupported},
	}
}

// list answers GET /plugins: no plugins, whatever the filters (which are
// checked as dockerd checks them).
func list(_ context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	args, err := filters.Parse(r.Form.Get("filters"))
	if err != nil {
		return err
	}
	if err := args.Validate("enabled", "capability"); err != nil {
		return err
	}
	return httputils.WriteJSON(w, http.StatusOK, []struct{}{})
}
