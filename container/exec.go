package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/osutil"
	"github.com/berth/berth/internal/stdcopy"
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
	console     *os.File
	size        *unix.Winsize // last size asked for, applied once the TTY exists
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
		if e.ContainerID == containerID {
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
	e := &Exec{ID: newID(), ContainerID: c.ID, Config: cfg, done: make(chan struct{})}
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
	defer e.mu.Unlock()
	ws := &unix.Winsize{Row: h, Col: w}
	e.size = ws
	if e.console == nil {
		return nil
	}
	return unix.IoctlSetWinsize(int(e.console.Fd()), unix.TIOCSWINSZ, ws)
}

// ExecStart runs the exec. With a stream it relays stdio until the
// process ends; detached (conn nil) it returns once the process runs.
func (s *Service) ExecStart(ctx context.Context, id string, conn Stream) (retErr error) {
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
	proc, err := s.execProcess(ctx, c, e.Config)
	if err != nil {
		return err
	}
	stateDir := s.stateDir(c.ID)
	procPath := filepath.Join(stateDir, "exec-"+e.ID+".json")
	b, _ := json.Marshal(proc)
	if err := os.WriteFile(procPath, b, 0o600); err != nil {
		return err
	}
	runcLog := filepath.Join(stateDir, "exec-"+e.ID[:12]+".log")
	// runc's own messages go to runcLog; stderr then carries only the
	// process's output and, on failure, runc's one-line error.
	// runc writes the pid file only once the process runs: an exec that
	// fails without one is one runc could not start.
	pidFile := execPidFile(stateDir, e.ID)
	args := []string{"--root", s.runcRoot(), "--log", runcLog, "--log-format", "json", "exec", "--process", procPath, "--pid-file", pidFile}
	var consoleSock string
	var ln *net.UnixListener
	if e.Config.Tty {
		consoleSock = filepath.Join(stateDir, "e"+e.ID[:8]+".sock")
		ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: consoleSock, Net: "unix"})
		if err != nil {
			return err
		}
		// runc takes a console socket only when it detaches: the process
		// is then reparented to berthd, a child subreaper, which reaps it.
		args = append(args, "--console-socket", consoleSock, "--detach")
	}
	args = append(args, c.ID)
	cmd := exec.Command(s.cfg.Runtime, args...)
	var outW *stdcopy.Mux
	var stdinW io.WriteCloser
	if !e.Config.Tty {
		if conn != nil {
			outW = stdcopy.NewMux(conn)
			if e.Config.AttachStdout {
				cmd.Stdout = outW.Stream(stdcopy.Stdout)
			}
			if e.Config.AttachStderr {
				cmd.Stderr = outW.Stream(stdcopy.Stderr)
			}
			if e.Config.AttachStdin {
				stdinW, _ = cmd.StdinPipe()
			}
		}
	}
	if err := cmd.Start(); err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	running = true
	e.mu.Lock()
	e.Running = true
	e.mu.Unlock()
	s.emit(c, "exec_start: "+strings.Join(e.Config.Cmd, " "), map[string]string{"execID": e.ID})
	var master *os.File
	if ln != nil {
		master, err = osutil.ReceiveConsole(ln, 10*time.Second)
		ln.Close()
		os.Remove(consoleSock)
		if err != nil {
			_ = cmd.Process.Kill()
		} else {
			e.mu.Lock()
			e.console = master
			if e.size == nil && e.Config.ConsoleSize != nil {
				e.size = &unix.Winsize{Row: uint16(e.Config.ConsoleSize[0]), Col: uint16(e.Config.ConsoleSize[1])}
			}
			if e.size != nil {
				_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, e.size)
			}
			e.mu.Unlock()
		}
	}
	var ioWG sync.WaitGroup
	if conn != nil && master != nil {
		ioWG.Add(1)
		go func() { defer ioWG.Done(); _, _ = io.Copy(conn, master) }()
		if e.Config.AttachStdin {
			go func() { _, _ = io.Copy(master, conn) }()
		}
	} else if conn != nil && stdinW != nil {
		go func() { _, _ = io.Copy(stdinW, conn); stdinW.Close() }()
	}
	finish := func() {
		err := cmd.Wait()
		_, serr := os.Stat(pidFile)
		started := serr == nil
		if err == nil && e.Config.Tty {
			// runc detached: wait for the process itself.
			err = waitDetached(pidFile, e)
		}
		code := 0
		var de detachedExit
		if errors.As(err, &de) {
			code = int(de)
			err = nil
		}
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					code = 128 + int(ws.Signal())
				} else {
					code = ee.ExitCode()
				}
			} else {
				code = 126
			}
		}
		if master != nil {
			// The pty's output ends with the process; take what is left.
			ioWG.Wait()
			master.Close()
		}
		if code != 0 && !started {
			// Docker 20.10 answers 126 for any exec that runc could not
			// start, a missing executable included.
			code = 126
		}
		os.Remove(runcLog)
		os.Remove(pidFile)
		os.Remove(procPath)
		e.mu.Lock()
		e.Running = false
		e.ExitCode = &code
		e.console = nil
		e.mu.Unlock()
		close(e.done)
		s.emit(c, "exec_die", map[string]string{"execID": e.ID, "exitCode": fmt.Sprint(code)})
		if conn != nil {
			conn.Close()
		}
	}
	if conn == nil {
		go finish()
		return nil
	}
	finish()
	return nil
}

// detachedExit is the exit code of a process runc started detached.
type detachedExit int

func (d detachedExit) Error() string { return fmt.Sprintf("exit status %d", int(d)) }

// waitDetached waits for the process whose PID runc wrote to pidFile. It
// is berthd's child since runc exited (berthd is a child subreaper).
func waitDetached(pidFile string, e *Exec) error {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return err
	}
	os.Remove(pidFile)
	var pid int
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d", &pid); err != nil {
		return err
	}
	e.mu.Lock()
	e.Pid = pid
	e.mu.Unlock()
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if ws.Signaled() {
			return detachedExit(128 + int(ws.Signal()))
		}
		return detachedExit(ws.ExitStatus())
	}
}

// execPidFile is where runc writes an exec's PID once the process runs.
func execPidFile(stateDir, id string) string { return filepath.Join(stateDir, "e"+id[:8]+".pid") }

// killExec ends a running exec's process with SIGKILL (a health probe past
// its timeout or whose monitor stopped). NotFound: the exec is not running
// or its process has not started yet.
func (s *Service) killExec(id string) error {
	e, err := s.getExec(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	running := e.Running
	e.mu.Unlock()
	if !running {
		return cerrdefs.ErrNotFound.WithMessage("exec " + id + " is not running")
	}
	b, err := os.ReadFile(execPidFile(s.stateDir(e.ContainerID), id))
	if err != nil {
		return cerrdefs.ErrNotFound.WithMessage("exec " + id + " has no process yet")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return cerrdefs.ErrNotFound.WithMessage("exec " + id + " has no process yet")
	}
	// The process is runc's child until runc reaps it and ends the exec:
	// hold it by a pidfd, then check the exec still runs, so that a PID
	// reused since cannot be hit.
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return cerrdefs.ErrNotFound.WithMessage("exec " + id + ": process gone")
	}
	defer unix.Close(fd)
	e.mu.Lock()
	running = e.Running
	e.mu.Unlock()
	if !running {
		return cerrdefs.ErrNotFound.WithMessage("exec " + id + " is not running")
	}
	return unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
}
