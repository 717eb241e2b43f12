package container

import (
	"context"
	"io"

	"github.com/moby/moby/api/types/container"

	ctr "github.com/berth/berth/container"
	"github.com/berth/berth/filters"
)

// Backend is what the container routes need from the container service.
type Backend interface {
	Create(ctx context.Context, req ctr.CreateRequest) (string, []string, error)
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id, signal string, timeout *int) error
	Restart(ctx context.Context, id, signal string, timeout *int) error
	Kill(ctx context.Context, id, signal string) error
	Wait(ctx context.Context, id string, cond container.WaitCondition) (<-chan ctr.WaitResult, error)
	Remove(ctx context.Context, id string, o ctr.RemoveOptions) error
	// RemoveLink removes a legacy link by its name, "parent/alias".
	RemoveLink(name string) error
	Inspect(ctx context.Context, id string, size bool) (*container.InspectResponse, error)
	List(ctx context.Context, o ctr.ListOptions) ([]container.Summary, error)
	UsesDefaultNetworkMode(idOrName string) bool
	Logs(ctx context.Context, id string, o ctr.LogsOptions, started func(tty bool), w io.Writer, flush func()) error
	Attach(ctx context.Context, id string, o ctr.AttachOptions, open func() (ctr.Stream, error)) error
	Resize(ctx context.Context, id string, h, w uint16) error
	Pause(ctx context.Context, id string) error
	Unpause(ctx context.Context, id string) error
	Rename(ctx context.Context, id, name string) error
	Prune(ctx context.Context, args filters.Args) (*container.PruneReport, error)
	ExecCreate(ctx context.Context, id string, cfg container.ExecCreateRequest) (string, error)
	ExecStart(ctx context.Context, execID string, o ctr.ExecStartOptions) error
	ExecInspect(ctx context.Context, execID string) (*container.ExecInspectResponse, error)
	ExecResize(ctx context.Context, execID string, h, w uint16) error
}
