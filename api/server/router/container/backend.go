package container

import (
	"context"
	"io"

	"github.com/moby/moby/api/types/container"

	ctr "github.com/berth/berth/container"
	"github.com/berth/berth/filters"
)

// The container routes' backend is made of roles, as moby's router's
// (issue 8 item 6): each role names what one group of endpoints needs,
// and *container.Service implements them all, each role's methods in
// the files its comment names. No route probes its backend for more.

// stateBackend is the containers' life cycle (container/create.go,
// lifecycle.go, pause.go, update.go, names.go, links.go).
type stateBackend interface {
	Create(ctx context.Context, req ctr.CreateRequest) (string, []string, error)
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id, signal string, timeout *int) error
	Restart(ctx context.Context, id, signal string, timeout *int) error
	Kill(ctx context.Context, id, signal string) error
	Wait(ctx context.Context, id string, cond container.WaitCondition) (<-chan ctr.WaitResult, error)
	Remove(ctx context.Context, id string, o ctr.RemoveOptions) error
	// RemoveLink removes a legacy link by its name, "parent/alias".
	RemoveLink(name string) error
	Pause(ctx context.Context, id string) error
	Unpause(ctx context.Context, id string) error
	Rename(ctx context.Context, id, name string) error
	Update(ctx context.Context, name string, u container.UpdateConfig) ([]string, error)
}

// execBackend runs processes in running containers (container/exec.go).
type execBackend interface {
	ExecCreate(ctx context.Context, id string, cfg container.ExecCreateRequest) (string, error)
	ExecStart(ctx context.Context, execID string, o ctr.ExecStartOptions) error
	ExecInspect(ctx context.Context, execID string) (*container.ExecInspectResponse, error)
	ExecResize(ctx context.Context, execID string, h, w uint16) error
}

// copyBackend copies files in and out of containers (container/archive.go).
type copyBackend interface {
	ArchiveStat(ctx context.Context, name, path string) (*container.PathStat, error)
	ArchiveGet(ctx context.Context, name, path string) (*container.PathStat, io.ReadCloser, error)
	ArchivePut(ctx context.Context, name, path string, o ctr.ExtractOptions, r io.Reader) error
	Export(ctx context.Context, name string) (io.ReadCloser, error)
}

// monitorBackend tells about containers (container/inspect.go, logs.go,
// changes.go, top.go, stats.go).
type monitorBackend interface {
	Inspect(ctx context.Context, id string, size bool) (*container.InspectResponse, error)
	List(ctx context.Context, o ctr.ListOptions) ([]container.Summary, error)
	UsesDefaultNetworkMode(idOrName string) bool
	Logs(ctx context.Context, id string, o ctr.LogsOptions, started func(tty bool), w io.Writer, flush func()) error
	Changes(ctx context.Context, name string) ([]container.FilesystemChange, error)
	Top(ctx context.Context, name, psArgs string) (*container.TopResponse, error)
	Stats(ctx context.Context, name string, o ctr.StatsOptions, send func(*container.StatsResponse) error) error
}

// attachBackend connects clients to containers' streams
// (container/attach.go).
type attachBackend interface {
	Attach(ctx context.Context, id string, o ctr.AttachOptions, open func() (ctr.Stream, error)) error
	Resize(ctx context.Context, id string, h, w uint16) error
}

// systemBackend acts on all containers at once (container/prune.go).
type systemBackend interface {
	Prune(ctx context.Context, args filters.Args) (*container.PruneReport, error)
}

// commitBackend makes images of containers (container/commit.go).
type commitBackend interface {
	Commit(ctx context.Context, name string, o ctr.CommitOptions) (string, error)
}

// Backend is everything the container and exec routes need.
type Backend interface {
	stateBackend
	execBackend
	copyBackend
	monitorBackend
	attachBackend
	systemBackend
	commitBackend
}
