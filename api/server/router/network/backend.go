package network

import (
	"context"

	"github.com/moby/moby/api/types/network"

	"github.com/berth/berth/filters"
	netsvc "github.com/berth/berth/network"
)

// Backend is what the network routes need from the network service.
type Backend interface {
	Create(ctx context.Context, req netsvc.CreateRequest) (*network.CreateResponse, error)
	List(ctx context.Context, args filters.Args) ([]network.Summary, error)
	Inspect(ctx context.Context, ref string) (*network.Inspect, error)
	Remove(ctx context.Context, ref string) error
	Prune(ctx context.Context, args filters.Args) (*network.PruneReport, error)
	Connect(ctx context.Context, netRef, ctrRef string, es *network.EndpointSettings) error
	Disconnect(ctx context.Context, netRef, ctrRef string, force bool) error
}
