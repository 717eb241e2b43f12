package container

import (
	"context"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/runtime"
)

// taskBox holds a container's runtime.Task for Container.task.
type taskBox struct{ t runtime.Task }

// setTask records t as c's task.
func (c *Container) setTask(t runtime.Task) { c.task.Store(&taskBox{t}) }

// noTask is the task of a container that has none in this berthd (never
// started, or its shim was gone at restore): everything is refused as
// for a task that does not run.
type noTask struct{ id string }

var _ runtime.Task = noTask{}

func (n noTask) err() error {
	return cerrdefs.ErrConflict.WithMessage("container " + n.id + " is not running")
}

func (n noTask) ID() string                                 { return n.id }
func (n noTask) Pid() int                                   { return 0 }
func (n noTask) Start(context.Context) (int, error)         { return 0, n.err() }
func (n noTask) Kill(context.Context, syscall.Signal) error { return n.err() }
func (n noTask) Pause(context.Context) error                { return n.err() }
func (n noTask) Resume(context.Context) error               { return n.err() }
func (n noTask) Update(context.Context, *specs.LinuxResources) error {
	return n.err()
}
func (n noTask) Resize(context.Context, uint16, uint16) error { return n.err() }
func (n noTask) Wait(context.Context) (<-chan runtime.ExitStatus, error) {
	return nil, n.err()
}
func (n noTask) Attach(context.Context, runtime.AttachOptions) (runtime.Stream, error) {
	return nil, n.err()
}
func (n noTask) Exec(context.Context, string, runtime.ExecOptions) (runtime.Process, error) {
	return nil, n.err()
}
func (n noTask) Execs(context.Context) ([]runtime.ProcessInfo, error) { return nil, n.err() }
func (n noTask) Pids(context.Context) ([]int, error)                  { return nil, n.err() }
func (n noTask) Stats(context.Context) (*runtime.Stats, error)        { return nil, n.err() }
func (n noTask) State(context.Context) (runtime.State, error) {
	return runtime.State{}, cerrdefs.ErrUnavailable.WithMessage("container " + n.id + " has no task")
}
func (n noTask) Delete(context.Context) error { return nil }
