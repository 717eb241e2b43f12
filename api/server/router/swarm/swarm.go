// Package swarm answers the swarm-mode endpoints as a dockerd that is not
// part of a swarm does: clients (Compose, SDKs, `docker info` users) probe
// GET /swarm and read the 503 as "no swarm here". berth has no swarm mode.
package swarm

import (
	"context"
	"net/http"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth/berth/api/server/router"
)

// errNoSwarm is dockerd's answer on a node that is not a swarm manager.
const errNoSwarm = `This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`

type swarmRouter struct{}

// New returns the swarm-mode routes.
func New() router.Router { return swarmRouter{} }

func (swarmRouter) Routes() []router.Route {
	noSwarm := func(context.Context, http.ResponseWriter, *http.Request, map[string]string) error {
		return cerrdefs.ErrUnavailable.WithMessage(errNoSwarm)
	}
	notSupported := func(context.Context, http.ResponseWriter, *http.Request, map[string]string) error {
		return cerrdefs.ErrNotImplemented.WithMessage("swarm mode is not supported by berth")
	}
	var rs []router.Route
	add := func(method string, h router.HandlerFunc, paths ...string) {
		for _, p := range paths {
			rs = append(rs, router.Route{Method: method, Path: p, Handler: h})
		}
	}
	add(http.MethodGet, noSwarm, "/swarm", "/swarm/unlockkey",
		"/nodes", "/nodes/{id}", "/services", "/services/{id}", "/services/{id}/logs",
		"/tasks", "/tasks/{id}", "/tasks/{id}/logs", "/secrets", "/secrets/{id}", "/configs", "/configs/{id}")
	add(http.MethodPost, noSwarm, "/swarm/update", "/swarm/unlock", "/nodes/{id}/update",
		"/services/create", "/services/{id}/update", "/secrets/create", "/secrets/{id}/update",
		"/configs/create", "/configs/{id}/update")
	add(http.MethodDelete, noSwarm, "/nodes/{id}", "/services/{id}", "/secrets/{id}", "/configs/{id}")
	add(http.MethodPost, func(context.Context, http.ResponseWriter, *http.Request, map[string]string) error {
		return cerrdefs.ErrUnavailable.WithMessage("This node is not part of a swarm")
	}, "/swarm/leave")
	add(http.MethodPost, notSupported, "/swarm/init", "/swarm/join")
	return rs
}
