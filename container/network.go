package container

import (
	"context"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// NetworkRequest describes a container's networking needs.
type NetworkRequest struct {
	ContainerID string
	Name        string // without the leading slash
	Hostname    string
	Config      *container.Config
	HostConfig  *container.HostConfig
	Networking  *network.NetworkingConfig
}

// Network is what the container service needs from the network service.
// Config.Network; without one, containers get an isolated network
// namespace with only loopback.
type Network interface {
	// Validate checks a create request's network settings (mode, port
	// specs, named networks) without changing anything.
	Validate(ctx context.Context, req NetworkRequest) error
	// Setup prepares networking for a container about to start and
	// returns the path of the network namespace runc must join ("" to let
	// runc make a new one, "host" for the host's). On error nothing is
	// left behind.
	Setup(ctx context.Context, req NetworkRequest) (nsPath string, err error)
	// Teardown releases what Setup made (veth, addresses, published
	// ports, namespace). It is idempotent.
	Teardown(ctx context.Context, containerID string) error
	// Release forgets a removed container for good.
	Release(ctx context.Context, containerID string) error
	// ResolvConf returns the nameservers the container should use
	// (the embedded DNS server on user-defined networks), or nil to use
	// the host's.
	ResolvConf(containerID string) []string
	// ContainerIP is the container's primary address, for /etc/hosts.
	ContainerIP(containerID string) string
	FillInspect(containerID string, resp *container.InspectResponse)
	FillSummary(containerID string, sum *container.Summary)
}
