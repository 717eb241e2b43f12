package shim

import (
	"context"
	"os"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth/berth/runtime"
)

// Runtime is the shim's runtime.Runtime: every task runs under a
// berth-shim of its own, which alone runs the OCI runtime (runc). The
// task's bundle directory is also the shim's state directory (socket,
// exit status, shim.log).
type Runtime struct {
	shimPath, binary, root string
	launcher               *Launcher
}

var _ runtime.Runtime = (*Runtime)(nil)

// NewRuntime returns the runtime of shims at shimPath running the OCI
// runtime binary with its state under root. It boots a spare shim ahead
// of the first Create; Close ends it.
func NewRuntime(shimPath, binary, root string) *Runtime {
	return &Runtime{shimPath: shimPath, binary: binary, root: root, launcher: NewLauncher(shimPath)}
}

// Close ends the spare shim. Tasks keep running under their shims.
func (r *Runtime) Close() { r.launcher.Close() }

func (r *Runtime) Create(ctx context.Context, id string, o runtime.CreateOptions) (runtime.Task, error) {
	cl, err := r.launcher.Spawn(ctx, Options{
		ID: id, Bundle: o.Bundle, StateDir: o.Bundle, Runtime: r.binary, RuntimeRoot: r.root,
		LogPath: o.LogPath, LogMaxSize: o.LogMaxSize, LogMaxFiles: o.LogMaxFiles,
		LogAttrs: o.LogAttrs, LogCompress: o.LogCompress, LogFormat: o.LogFormat, LogRemote: o.LogRemote,
		Tty: o.Tty, OpenStdin: o.Stdin, StdinOnce: o.StdinOnce, CgroupPaths: o.CgroupPaths,
	})
	if err != nil {
		return nil, err
	}
	return &task{c: cl, id: id, launcher: r.launcher, runcRoot: r.root}, nil
}

func (r *Runtime) Load(ctx context.Context, id, bundle string) (runtime.Task, error) {
	t := &task{c: Client{StateDir: bundle}, id: id, runcRoot: r.root}
	// Whether the shim is there is whether its process lives, not whether
	// it answers in time: on a loaded machine a live shim may take
	// seconds (crash loop finding: a restarted berthd took a shim slower
	// than its 2 s for gone and killed the container it served). It is
	// asked a moment for the init's PID, learnt later if it is slow.
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := t.State(qctx); cerrdefs.IsNotFound(err) {
		return nil, cerrdefs.ErrNotFound.WithMessage("no shim of " + id + ": " + err.Error())
	}
	return t, nil
}

func (r *Runtime) LastExit(ctx context.Context, id, bundle string) (*runtime.ExitStatus, error) {
	st, err := ReadExit(bundle)
	if os.IsNotExist(err) {
		return nil, cerrdefs.ErrNotFound.WithMessage("no exit status recorded for " + id)
	}
	return st, err
}

func (r *Runtime) Delete(ctx context.Context, id, bundle string) error {
	return Delete(ctx, r.shimPath, Options{ID: id, Runtime: r.binary, RuntimeRoot: r.root})
}

func (r *Runtime) WaitReleased(ctx context.Context, id, bundle string) error {
	return WaitGone(bundle, id, 10*time.Second)
}

// WatchRelease implements runtime.Runtime: a pidfd of the shim, opened now.
func (r *Runtime) WatchRelease(id, bundle string) func(ctx context.Context) error {
	return watchGone(bundle, id, 10*time.Second)
}
