// Package containernet adapts the network service to the container
// service's Network interface (container.Network), so that neither
// package imports the other: cmd/berthd wires them with
//
//	store := ctr.NewStore()
//	networks, _ := network.New(network.Config{Containers: containernet.Lookup(store), ...})
//	containers, _ := ctr.New(ctx, ctr.Config{Store: store, Network: containernet.Adapt(networks), ...})
package containernet

import (
	"context"

	"github.com/moby/moby/api/types/container"

	ctr "github.com/berth/berth/container"
	"github.com/berth/berth/network"
)

type adapter struct{ s *network.Service }

// Adapt returns s as the container service's Network.
func Adapt(s *network.Service) ctr.Network { return adapter{s} }

func conv(r ctr.NetworkRequest) network.Request {
	return network.Request{
		ContainerID: r.ContainerID, Name: r.Name, Hostname: r.Hostname,
		Config: r.Config, HostConfig: r.HostConfig, Networking: r.Networking,
	}
}

func (a adapter) Validate(ctx context.Context, r ctr.NetworkRequest) error {
	return a.s.Validate(ctx, conv(r))
}

func (a adapter) Setup(ctx context.Context, r ctr.NetworkRequest) (string, error) {
	return a.s.Setup(ctx, conv(r))
}

func (a adapter) Teardown(ctx context.Context, id string) error { return a.s.Teardown(ctx, id) }

func (a adapter) Release(ctx context.Context, id string) error { return a.s.Release(ctx, id) }

func (a adapter) ResolvConf(id string) []string { return a.s.ResolvConf(id) }

func (a adapter) ContainerIP(id string) string { return a.s.ContainerIP(id) }

func (a adapter) FillInspect(id string, resp *container.InspectResponse) {
	a.s.FillInspect(id, resp)
}

func (a adapter) FillSummary(id string, sum *container.Summary) { a.s.FillSummary(id, sum) }

// Lookup returns the container resolver network connect/disconnect use:
// the container service's store, which exists before the network service
// (and is filled when the container service is made).
func Lookup(st *ctr.Store) network.ContainerLookup {
	return func(ctx context.Context, ref string) (network.ContainerInfo, error) {
		b, err := st.Lookup(ref)
		if err != nil {
			return network.ContainerInfo{}, err
		}
		return network.ContainerInfo{ID: b.ID, Name: trimSlash(b.Name), Running: b.Running, NetworkMode: b.NetworkMode}, nil
	}
}

func trimSlash(s string) string {
	if len(s) > 0 && s[0] == '/' {
		return s[1:]
	}
	return s
}
