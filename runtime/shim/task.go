package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/runtime"
	"github.com/berth/berth/runtime/cgstats"
)

// The shim's implementation of runtime.Task and runtime.Process: handles
// on a shim's control socket, which berthd may drop and make again (Load)
// while the container runs.

// Task returns the runtime.Task of the container whose shim listens in
// c.StateDir. pid is its init's PID if known (0: asked of the shim).
func (c Client) Task(id string, pid int) runtime.Task { return &task{c: c, id: id, pid: pid} }

type task struct {
	c   Client
	id  string
	pid int
	// runcRoot is the OCI runtime's state root, where runc's state.json
	// names the task's cgroups (Stats); "" when not known.
	runcRoot string
	// stats keeps the task's cgroup reader between samples.
	stats struct {
		mu sync.Mutex // a leaf
		r  *cgstats.Reader
	}
	// launcher made the task's shim from its spare: it boots the next
	// one once the task has started (not meanwhile: that would take CPU
	// from the start).
	launcher *Launcher
}

var _ runtime.Task = (*task)(nil)

func (t *task) ID() string { return t.id }

func (t *task) Pid() int {
	if t.pid == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if st, err := t.c.State(ctx); err == nil {
			t.pid = st.Pid
		}
	}
	return t.pid
}

func (t *task) Start(ctx context.Context) (int, error) {
	pid, err := t.c.Start(ctx)
	if t.launcher != nil {
		t.launcher.Refill()
	}
	if err == nil {
		t.pid = pid
	}
	return pid, err
}

func (t *task) Wait(ctx context.Context) (<-chan runtime.ExitStatus, error) {
	pw, err := t.c.SendWait(ctx)
	if err != nil {
		// The shim is gone: the exit it recorded, if any.
		if st, rerr := ReadExit(t.c.StateDir); rerr == nil {
			ch := make(chan runtime.ExitStatus, 1)
			ch <- *st
			close(ch)
			return ch, nil
		}
	}
	return waitChan(ctx, pw, err)
}

func (t *task) State(ctx context.Context) (runtime.State, error) {
	resp, err := t.c.State(ctx)
	if err != nil {
		// Gone or slow: its process tells.
		if shimProcess(t.c.StateDir, t.id) == 0 {
			return runtime.State{}, cerrdefs.ErrNotFound.WithMessage("shim of " + t.id + " is gone: " + err.Error())
		}
		return runtime.State{}, cerrdefs.ErrUnavailable.WithMessage("shim of " + t.id + " does not answer: " + err.Error())
	}
	if resp.Pid > 0 {
		t.pid = resp.Pid
	}
	return runtime.State{Pid: resp.Pid, Starting: resp.Starting, Exit: resp.Exit}, nil
}

func (t *task) Delete(ctx context.Context) error {
	st, err := t.State(ctx)
	switch {
	case err == nil && st.Exit == nil && (st.Pid > 0 || st.Starting):
		return cerrdefs.ErrFailedPrecondition.WithMessage("task " + t.id + " is running")
	case err != nil || st.Exit == nil:
		// Never asked to start (it would wait for a start forever), or
		// deaf.
		Abort(t.c.StateDir, t.id)
	}
	if err := WaitGone(t.c.StateDir, t.id, 10*time.Second); err != nil {
		Abort(t.c.StateDir, t.id) // stuck: it goes anyway
		return err
	}
	return nil
}

// waitChan turns a wait sent to the shim into the channel Wait returns.
func waitChan(ctx context.Context, pw *PendingWait, err error) (<-chan runtime.ExitStatus, error) {
	if err != nil {
		return nil, err
	}
	ch := make(chan runtime.ExitStatus, 1)
	go func() {
		st, err := pw.Result(ctx)
		switch {
		case err == nil:
			ch <- *st
		case ctx.Err() != nil:
		default:
			ch <- runtime.ExitStatus{ExitCode: 255, ExitedAt: time.Now().UTC(), Error: err.Error()}
		}
		close(ch)
	}()
	return ch, nil
}

func (t *task) Attach(ctx context.Context, o runtime.AttachOptions) (runtime.Stream, error) {
	return t.c.Attach(ctx, o.Stdin, o.Stdout, o.Stderr)
}

func (t *task) Kill(ctx context.Context, sig syscall.Signal) error { return t.c.Kill(ctx, sig) }
func (t *task) Pause(ctx context.Context) error                    { return t.c.do(ctx, Request{Op: "pause"}) }
func (t *task) Resume(ctx context.Context) error                   { return t.c.do(ctx, Request{Op: "resume"}) }

func (t *task) Update(ctx context.Context, r *specs.LinuxResources) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return t.c.do(ctx, Request{Op: "update", Resources: b})
}

func (t *task) Resize(ctx context.Context, w, h uint16) error { return t.c.Resize(ctx, w, h) }

func (t *task) Pids(ctx context.Context) ([]int, error) {
	resp, err := t.c.call(ctx, Request{Op: "pids"})
	if err != nil {
		return nil, err
	}
	if err := respError(resp); err != nil {
		return nil, err
	}
	return resp.Pids, nil
}

// Stats reads the task's cgroups where runc recorded them (its
// state.json, read once) and its network namespace's counters: berthd
// reads the files itself, a sample costs no round trip to the shim.
func (t *task) Stats(ctx context.Context) (*runtime.Stats, error) {
	t.stats.mu.Lock()
	defer t.stats.mu.Unlock()
	if t.stats.r == nil {
		if t.runcRoot == "" {
			return nil, cerrdefs.ErrNotImplemented.WithMessage("stats of " + t.id + ": the runtime's state root is not known")
		}
		paths, err := cgstats.RuncPaths(t.runcRoot, t.id)
		if errors.Is(err, os.ErrNotExist) {
			return nil, cerrdefs.ErrNotFound.WithMessage("stats of " + t.id + ": not running")
		}
		if err != nil {
			return nil, err
		}
		// cgroup v2: one directory, under "" (on a v1 or hybrid host
		// runc names each controller's).
		t.stats.r = cgstats.NewReader(paths, paths["memory"] == "" && paths[""] != "")
	}
	st := &runtime.Stats{}
	t.stats.r.Sample(st, t.Pid())
	return st, nil
}

func (t *task) Exec(ctx context.Context, execID string, o runtime.ExecOptions) (runtime.Process, error) {
	if o.Spec == nil {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("exec: no process")
	}
	spec := *o.Spec
	req := Request{Op: "exec", Exec: execID, Stdin: o.Stdin, Meta: o.Meta}
	if o.ConsoleSize != nil {
		req.Height, req.Width = uint16(o.ConsoleSize[0]), uint16(o.ConsoleSize[1])
		if spec.Terminal {
			// runc sizes the pty before the process runs: it never sees
			// 0x0 (a resize after the start may come too late).
			spec.ConsoleSize = &specs.Box{Height: o.ConsoleSize[0], Width: o.ConsoleSize[1]}
		}
	}
	b, err := json.Marshal(&spec)
	if err != nil {
		return nil, err
	}
	req.Process = b
	if err := t.c.do(ctx, req); err != nil {
		return nil, err
	}
	return &process{c: t.c, id: execID}, nil
}

func (t *task) Execs(ctx context.Context) ([]runtime.ProcessInfo, error) {
	resp, err := t.c.call(ctx, Request{Op: "execs"})
	if err != nil {
		return nil, err
	}
	if err := respError(resp); err != nil {
		return nil, err
	}
	out := make([]runtime.ProcessInfo, 0, len(resp.Execs))
	for _, e := range resp.Execs {
		out = append(out, runtime.ProcessInfo{ID: e.ID, Pid: e.Pid, Started: e.Started, Exit: e.Exit, Meta: e.Meta,
			Process: &process{c: t.c, id: e.ID, pid: e.Pid}})
	}
	return out, nil
}

// process is an exec process of a task, addressed through its shim.
type process struct {
	c   Client
	id  string
	pid int
}

var _ runtime.Process = (*process)(nil)

func (p *process) ID() string { return p.id }
func (p *process) Pid() int   { return p.pid }

func (p *process) Start(ctx context.Context) (int, error) {
	resp, err := p.c.call(ctx, Request{Op: "start", Exec: p.id})
	if err != nil {
		return 0, err
	}
	if resp.Error != "" {
		if resp.NotRunning {
			return 0, respError(resp)
		}
		return 0, &StartError{Msg: resp.Error, Kind: resp.Kind}
	}
	p.pid = resp.Pid
	return resp.Pid, nil
}

func (p *process) Wait(ctx context.Context) (<-chan runtime.ExitStatus, error) {
	conn, err := p.c.dial(ctx)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(Request{Op: "wait", Exec: p.id})
	if _, err := conn.Write(append(b, '\n')); err != nil {
		conn.Close()
		return nil, err
	}
	ch := make(chan runtime.ExitStatus, 1)
	go func() {
		defer close(ch)
		defer conn.Close()
		stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
		defer stop()
		line, err := bufio.NewReader(conn).ReadBytes('\n')
		var resp Response
		if err == nil {
			err = json.Unmarshal(line, &resp)
		}
		if err == nil && resp.Error != "" {
			err = errors.New(resp.Error)
		}
		if err == nil && resp.Exit == nil {
			err = errors.New("shim answered a wait without an exit status")
		}
		switch {
		case err == nil:
			ch <- *resp.Exit
		case ctx.Err() != nil:
		default:
			// The shim is gone: the container, and the exec with it, ended.
			ch <- runtime.ExitStatus{ExitCode: 255, ExitedAt: time.Now().UTC(), Error: err.Error()}
		}
	}()
	return ch, nil
}

func (p *process) Attach(ctx context.Context, o runtime.AttachOptions) (runtime.Stream, error) {
	return p.c.attach(ctx, Request{Op: "attach", Exec: p.id, Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr})
}

func (p *process) Kill(ctx context.Context, sig syscall.Signal) error {
	return p.c.do(ctx, Request{Op: "kill", Exec: p.id, Signal: int(sig)})
}

func (p *process) Resize(ctx context.Context, w, h uint16) error {
	return p.c.do(ctx, Request{Op: "resize", Exec: p.id, Width: w, Height: h})
}

func (p *process) CloseIO(ctx context.Context) error {
	return p.c.do(ctx, Request{Op: "closeio", Exec: p.id})
}

// do sends req and turns an error answer into an error: of class
// conflict when the task (or exec) is not running.
func (c Client) do(ctx context.Context, req Request) error {
	resp, err := c.call(ctx, req)
	if err != nil {
		return err
	}
	return respError(resp)
}

func respError(resp *Response) error {
	if resp.Error == "" {
		return nil
	}
	if resp.NotRunning {
		return cerrdefs.ErrConflict.WithMessage(resp.Error)
	}
	return errors.New(resp.Error)
}

// attach opens an attach stream for req.
func (c Client) attach(ctx context.Context, req Request) (*AttachConn, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	resp, r, err := roundTrip(conn, req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.Error != "" {
		conn.Close()
		return nil, errors.New(resp.Error)
	}
	return &AttachConn{UnixConn: conn.(*net.UnixConn), R: r}, nil
}
