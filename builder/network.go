package builder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	resourcestypes "github.com/moby/buildkit/executor/resources/types"
	"github.com/moby/buildkit/solver/pb"
	bknetwork "github.com/moby/buildkit/util/network"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/network"
)

// Sandboxes are network namespaces on berth's default bridge, made and
// torn down by berth's network service as for a container: an address
// from the bridge's pool, a veth, the default route and NAT.
type Sandboxes interface {
	// Setup makes the namespace of sandbox id on the default bridge and
	// returns its path. On error nothing is left behind.
	Setup(ctx context.Context, id, hostname string) (string, error)
	// Release tears sandbox id down and forgets it.
	Release(ctx context.Context, id string) error
}

// NetworkSandboxes adapts berth's network service: a build's sandboxes
// are sandboxes of the default network mode, named "buildkit-<random>"
// (never a container ID). A crash leaves records restore releases, as
// for any sandbox whose container is unknown.
func NetworkSandboxes(s *network.Service) Sandboxes { return netSandboxes{s} }

type netSandboxes struct{ s *network.Service }

func (n netSandboxes) Setup(ctx context.Context, id, hostname string) (string, error) {
	return n.s.Setup(ctx, network.Request{
		ContainerID: id,
		Name:        id,
		Hostname:    hostname,
		HostConfig:  &container.HostConfig{NetworkMode: "default"},
	})
}

func (n netSandboxes) Release(ctx context.Context, id string) error { return n.s.Release(ctx, id) }

// networkProviders are the networks RUN steps get: berth's default bridge
// unless the step asks for none or (with the network.host entitlement)
// the host's, as under dockerd.
func networkProviders(sb Sandboxes) map[pb.NetMode]bknetwork.Provider {
	return map[pb.NetMode]bknetwork.Provider{
		pb.NetMode_UNSET: bridgeProvider{sb: sb},
		pb.NetMode_HOST:  bknetwork.NewHostProvider(),
		pb.NetMode_NONE:  bknetwork.NewNoneProvider(),
	}
}

// bridgeProvider gives each RUN step its own namespace on berth's
// default bridge.
type bridgeProvider struct {
	sb Sandboxes
}

func (p bridgeProvider) New(ctx context.Context, hostname string, _ bknetwork.NamespaceOptions) (bknetwork.Namespace, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := "buildkit-" + hex.EncodeToString(b[:])
	path, err := p.sb.Setup(ctx, id, hostname)
	if err != nil {
		return nil, fmt.Errorf("RUN network on the default bridge: %w", err)
	}
	return &bridgeNS{sb: p.sb, id: id, path: path}, nil
}

func (bridgeProvider) Close() error { return nil }

type bridgeNS struct {
	sb   Sandboxes
	id   string
	path string
}

// Set makes the step join the namespace.
func (n *bridgeNS) Set(s *specs.Spec) error {
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	for i, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			s.Linux.Namespaces[i].Path = n.path
			return nil
		}
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: n.path})
	return nil
}

// Close releases the sandbox once the step has ended, also when the
// build was cancelled.
func (n *bridgeNS) Close() error { return n.sb.Release(context.Background(), n.id) }

func (n *bridgeNS) Sample() (*resourcestypes.NetworkSample, error) { return nil, nil }
