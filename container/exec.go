package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"

	"github.com/berth/berth/runtime"
)

// Exec is one `docker exec` process.
type Exec struct {
	mu          sync.Mutex
	ID          string
	ContainerID string
	Config      container.ExecCreateRequest
	Running     bool
	ExitCode    *int
	Pid         int
	started     bool
	proc        runtime.Process // while it runs
	size        *[2]uint        // {height, width} asked for before it runs
	detachKeys  []byte          // Config.DetachKeys, else ctrl-p ctrl-q
	done        chan struct{}
}

type execStore struct {
	mu    sync.Mutex
	execs map[string]*Exec
}

func newExecStore() *execStore { return &execStore{execs: map[string]*Exec{}} }

func (s *Service) execIDs(containerID string) []string {
	s.execs.mu.Lock()
	defer s.execs.mu.Unlock()
	var ids []string
	for id, e := range s.execs.execs {
		if e.ContainerID != containerID {
			continue
		}
		// As dockerd's ExecIDs: created or running, not ended (an exec
		// that ended, or could not start, is still inspectable by ID).
		e.mu.Lock()
		ended := e.ExitCode != nil
		e.mu.Unlock()
		if !ended {
			ids = append(ids, id)
		}
	}
	return ids
}

// releaseExecs forgets the exec records of a stopped container.
func (s *Service) releaseExecs(containerID string) {
	s.execs.mu.Lock()
	defer s.execs.mu.Unlock()
	for id, e := range s.execs.execs {
		if e.ContainerID == containerID {
			e.mu.Lock()
			running := e.Running
			e.mu.Unlock()
			if !running {
				delete(s.execs.execs, id)
			}
		}
	}
}

func (s *Service) getExec(id string) (*Exec, error) {
	s.execs.mu.Lock()
	defer s.execs.mu.Unlock()
	e, ok := s.execs.execs[id]
	if !ok {
		return nil, cerrdefs.ErrNotFound.WithMessage("No such exec instance: " + id)
	}
	return e, nil
}

// ExecCreate registers an exec in a running container.
func (s *Service) ExecCreate(ctx context.Context, idOrName string, cfg container.ExecCreateRequest) (string, error) {
	c, err := s.Get(idOrName)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	running, paused := c.State.Running, c.State.Paused
	c.mu.Unlock()
	if !running {
		return "", cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", c.ID))
	}
	if paused {
		return "", cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is paused, unpause the container before exec", c.ID))
	}
	if len(cfg.Cmd) == 0 {
		return "", cerrdefs.ErrInvalidArgument.WithMessage("No exec command specified")
	}
	if err := checkCwd(cfg.WorkingDir); err != nil {
		return "", err
	}
	keys, err := ParseDetachKeys(cfg.DetachKeys)
	if err != nil {
		return "", cerrdefs.ErrInvalidArgument.WithMessage("Invalid escape keys (" + cfg.DetachKeys + ") provided")
	}
	if len(keys) == 0 {
		keys = DefaultDetachKeys
	}
	e := &Exec{ID: newID(), ContainerID: c.ID, Config: cfg, detachKeys: keys, done: make(chan struct{})}
	s.execs.mu.Lock()
	s.execs.execs[e.ID] = e
	s.execs.mu.Unlock()
	s.emit(c, "exec_create: "+strings.Join(cfg.Cmd, " "), map[string]string{"execID": e.ID})
	return e.ID, nil
}

// checkCwd refuses working directories that would let a process start
// outside its container's root (runc CVE-2024-21626: /proc/self/fd/N).
func checkCwd(dir string) error {
	if dir == "" {
		return nil
	}
	if !strings.HasPrefix(dir, "/") {
		return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("the working directory '%s' is invalid, it needs to be an absolute path", dir))
	}
	clean := filepath.Clean(dir)
	if clean == "/proc" || strings.HasPrefix(clean, "/proc/") {
		return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("the working directory '%s' is invalid: it is inside /proc", dir))
	}
	return nil
}

// ExecInspect answers GET /exec/{id}/json.
func (s *Service) ExecInspect(ctx context.Context, id string) (*container.ExecInspectResponse, error) {
	e, err := s.getExec(id)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	resp := &container.ExecInspectResponse{
		ID:          e.ID,
		Running:     e.Running,
		ExitCode:    e.ExitCode,
		ContainerID: e.ContainerID,
		Pid:         e.Pid,
		OpenStdin:   e.Config.AttachStdin,
		OpenStdout:  e.Config.AttachStdout,
		OpenStderr:  e.Config.AttachStderr,
		ProcessConfig: &container.ExecProcessConfig{
			Tty:        e.Config.Tty,
			Entrypoint: e.Config.Cmd[0],
			Arguments:  e.Config.Cmd[1:],
			Privileged: &e.Config.Privileged,
			User:       e.Config.User,
		},
	}
	return resp, nil
}

// ExecResize sets an exec's TTY size.
func (s *Service) ExecResize(ctx context.Context, id string, h, w uint16) error {
	e, err := s.getExec(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.size = &[2]uint{uint(h), uint(w)}
	proc := e.proc
	e.mu.Unlock()
	if proc == nil {
		return nil // applied when it starts
	}
	return proc.Resize(ctx, w, h)
}

// execMeta is what berthd keeps of an exec with its process in the shim,
// to know it again after a restart.
type execMeta struct {
	ContainerID string
	Config      container.ExecCreateRequest
}

// ExecStartOptions are POST /exec/{id}/start's.
type ExecStartOptions struct {
	// Conn is the client's hijacked stream; nil for a detached start.
	Conn Stream
	// Tty is the start request's: without it the output goes to Conn in
	// stdcopy frames whatever the exec's own TTY, with it raw (dockerd
	// frames by the start request, not the create request).
	Tty bool
}

// ExecStart runs the exec as a process of the container's task, under its
// shim. With a stream it relays stdio until the process ends or the
// client detaches (the exec's detach keys on its stdin); detached (no
// Conn) it returns once the process runs.
func (s *Service) ExecStart(ctx context.Context, id string, o ExecStartOptions) (retErr error) {
	conn := o.Conn
	e, err := s.getExec(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("Error: Exec command %s is already running", id))
	}
	e.started = true
	size := e.size
	e.mu.Unlock()
	running := false // the process started: its own exit code follows
	defer func() {
		if retErr != nil && !running {
			// Refused or failed before it ran: 126, as dockerd says of an
			// exec it could not start (never a success to exec inspect).
			code := 126
			e.mu.Lock()
			e.ExitCode = &code
			e.mu.Unlock()
			close(e.done)
		}
	}()
	c, err := s.Get(e.ContainerID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	ctrRunning := c.State.Running
	c.mu.Unlock()
	if !ctrRunning {
		return cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is not running", c.ID))
	}
	spec, err := s.execProcess(ctx, c, e.Config)
	if err != nil {
		return err
	}
	if size == nil && e.Config.ConsoleSize != nil {
		size = &[2]uint{e.Config.ConsoleSize[0], e.Config.ConsoleSize[1]}
	}
	meta, _ := json.Marshal(execMeta{ContainerID: c.ID, Config: e.Config})
	attach := runtime.AttachOptions{Stdin: e.Config.AttachStdin, Stdout: e.Config.AttachStdout, Stderr: e.Config.AttachStderr}
	proc, err := s.task(c).Exec(ctx, e.ID, runtime.ExecOptions{
		Spec: spec, Stdin: conn != nil && attach.Stdin, ConsoleSize: size, Meta: meta,
	})
	if err != nil {
		return execError(c, e.Config.Cmd[0], err)
	}
	var stream runtime.Stream
	if conn != nil {
		if stream, err = proc.Attach(ctx, attach); err != nil {
			return execError(c, e.Config.Cmd[0], err)
		}
	}
	// Heard however soon it exits; the wait ends with the service (a
	// berthd stopping), and the next berthd finds the exec in the shim.
	exited, err := proc.Wait(s.ctx)
	if err != nil {
		if stream != nil {
			stream.Close()
		}
		return execError(c, e.Config.Cmd[0], err)
	}
	pid, err := proc.Start(ctx)
	if err != nil {
		if stream != nil {
			stream.Close()
		}
		return execError(c, e.Config.Cmd[0], err)
	}
	running = true
	e.mu.Lock()
	e.Running = true
	e.Pid = pid
	e.proc = proc
	e.mu.Unlock()
	s.emit(c, "exec_start: "+strings.Join(e.Config.Cmd, " "), map[string]string{"execID": e.ID})
	if conn == nil {
		go s.watchExec(c, e, exited, nil)
		return nil
	}
	if relayStreams(conn, stream, o.Tty, AttachOptions{Stdin: attach.Stdin, Stdout: attach.Stdout, Stderr: attach.Stderr, DetachKeys: e.detachKeys}) {
		// The client detached: the exec runs on, as dockerd's.
		s.emit(c, "exec_detach", map[string]string{"execID": e.ID})
		go s.watchExec(c, e, exited, nil)
		return nil
	}
	s.watchExec(c, e, exited, conn)
	return nil
}

// execError words an exec the runtime would not run as dockerd does, and
// classes it as dockerd's translateContainerdStartErr: a command that is
// missing, not executable or not a directory is the request's fault (400),
// anything else the runtime's (500).
func execError(c *Container, cmd string, err error) error {
	var se *runtime.StartError
	if errors.As(err, &se) {
		msg := "OCI runtime exec failed: " + se.Msg + ": unknown"
		low := strings.ToLower(msg)
		switch {
		case strings.Contains(low, strings.ToLower(cmd)) &&
			(strings.Contains(low, "executable file not found") || strings.Contains(low, "no such file or directory")),
			strings.Contains(low, syscall.EACCES.Error()):
			return cerrdefs.ErrInvalidArgument.WithMessage(msg)
		case strings.Contains(low, syscall.ENOTDIR.Error()):
			return cerrdefs.ErrInvalidArgument.WithMessage(msg + ": Are you trying to mount a directory onto a file (or vice-versa)? Check if the specified host path exists and is the expected type")
		}
		return cerrdefs.ErrUnknown.WithMessage(msg)
	}
	if cerrdefs.IsConflict(err) {
		return cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is not running", c.ID))
	}
	return err
}

// watchExec records an exec's exit once the shim tells it, then ends the
// client's stream (conn, if any): its exit code is in place by then.
func (s *Service) watchExec(c *Container, e *Exec, exited <-chan runtime.ExitStatus, conn Stream) {
	st, ok := <-exited
	if !ok {
		// berthd is stopping: the exec runs on under the shim.
		if conn != nil {
			conn.Close()
		}
		return
	}
	code := st.ExitCode
	e.mu.Lock()
	e.Running = false
	e.ExitCode = &code
	e.proc = nil
	e.mu.Unlock()
	close(e.done)
	s.emit(c, "exec_die", map[string]string{"execID": e.ID, "exitCode": fmt.Sprint(code)})
	if conn != nil {
		conn.Close()
	}
}

// restoreExecs finds again the exec processes of c's task (a restarted
// berthd): their records, and a watch on the running ones.
func (s *Service) restoreExecs(ctx context.Context, c *Container) {
	infos, err := s.task(c).Execs(ctx)
	if err != nil {
		if ctx.Err() != nil {
			s.log.Warn("restore: the shim does not list the container's execs in time", "id", c.ID, "err", err)
		}
		return
	}
	for _, in := range infos {
		var m execMeta
		if json.Unmarshal(in.Meta, &m) != nil || m.ContainerID != c.ID || len(m.Config.Cmd) == 0 {
			continue
		}
		e := &Exec{ID: in.ID, ContainerID: c.ID, Config: m.Config, started: true, Pid: in.Pid, done: make(chan struct{})}
		switch {
		case in.Exit != nil:
			code := in.Exit.ExitCode
			e.ExitCode = &code
			close(e.done)
		case in.Started:
			e.Running = true
			e.proc = in.Process
		default:
			continue // never started: its client is gone
		}
		s.execs.mu.Lock()
		s.execs.execs[e.ID] = e
		s.execs.mu.Unlock()
		if e.Running {
			exited, err := in.Process.Wait(s.ctx)
			if err != nil {
				continue
			}
			go s.watchExec(c, e, exited, nil)
		}
	}
}

// killExec ends a running exec's process with SIGKILL (a health probe past
// its timeout or whose monitor stopped). NotFound: the exec is not running
// or its process has not started yet.
func (s *Service) killExec(id string) error {
	e, err := s.getExec(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	running, proc := e.Running, e.proc
	e.mu.Unlock()
	if !running || proc == nil {
		return cerrdefs.ErrNotFound.WithMessage("exec " + id + " is not running")
	}
	// The shim signals it only while it has not reaped it: a PID reused
	// since cannot be hit.
	if err := proc.Kill(context.Background(), syscall.SIGKILL); err != nil {
		if cerrdefs.IsConflict(err) {
			return cerrdefs.ErrNotFound.WithMessage("exec " + id + " is not running")
		}
		return err
	}
	return nil
}
