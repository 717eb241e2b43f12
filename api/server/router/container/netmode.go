package container

import (
	"context"

	"github.com/moby/moby/api/types/container"

	"github.com/berth/berth/api/server/httputils"
)

// defaultNetworkModeBefore is the first API version whose daemons (dockerd
// 26.0) report a container created without a network mode as "bridge";
// before it, dockerd (20.10 among them) reports "default".
const defaultNetworkModeBefore = "1.45"

func legacyNetworkMode(ctx context.Context) bool {
	return httputils.VersionLess(httputils.VersionFromContext(ctx), defaultNetworkModeBefore)
}

// inspectNetworkMode gives an inspect answer the network mode the
// request's API version expects.
func (cr *containerRouter) inspectNetworkMode(ctx context.Context, resp *container.InspectResponse) {
	if resp.HostConfig == nil || resp.HostConfig.NetworkMode != "bridge" || !legacyNetworkMode(ctx) || !cr.b.UsesDefaultNetworkMode(resp.ID) {
		return
	}
	hc := *resp.HostConfig
	hc.NetworkMode = "default"
	resp.HostConfig = &hc
}

// listNetworkMode does the same for a container list.
func (cr *containerRouter) listNetworkMode(ctx context.Context, list []container.Summary) {
	if !legacyNetworkMode(ctx) {
		return
	}
	for i := range list {
		if list[i].HostConfig.NetworkMode == "bridge" && cr.b.UsesDefaultNetworkMode(list[i].ID) {
			list[i].HostConfig.NetworkMode = "default"
		}
	}
}
