package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/stdcopy"
	"github.com/berth/berth/runtime"
)

// Client talks to one container's shim.
type Client struct {
	StateDir string
}

func (c Client) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", filepath.Join(c.StateDir, SocketName))
}

// call sends req and reads one response, on a connection of its own.
func (c Client) call(ctx context.Context, req Request) (*Response, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	resp, _, err := roundTrip(conn, req)
	return resp, err
}

func roundTrip(conn net.Conn, req Request) (*Response, *bufio.Reader, error) {
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return nil, nil, err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadBytes('\n')
	if err != nil {
		return nil, nil, err
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, nil, err
	}
	return &resp, r, nil
}

// Start runs the container and returns its PID.
func (c Client) Start(ctx context.Context) (int, error) {
	resp, err := c.call(ctx, Request{Op: "start"})
	if err != nil {
		return 0, err
	}
	if resp.Error != "" {
		return 0, &StartError{Msg: resp.Error, Kind: resp.Kind}
	}
	return resp.Pid, nil
}

// StartError is the runtime's own refusal to start a container, as the
// shim reports it (the shim then cleans up and exits by itself), and its
// kind.
type StartError = runtime.StartError

// Kill signals the container's init.
func (c Client) Kill(ctx context.Context, sig syscall.Signal) error {
	resp, err := c.call(ctx, Request{Op: "kill", Signal: int(sig)})
	if err != nil {
		return err
	}
	return respError(resp)
}

// Resize sets the TTY size.
func (c Client) Resize(ctx context.Context, w, h uint16) error {
	resp, err := c.call(ctx, Request{Op: "resize", Width: w, Height: h})
	if err != nil {
		return err
	}
	if resp.Error != "" {
		return errors.New(resp.Error)
	}
	return nil
}

// Wait blocks until the container exits (or ctx ends).
func (c Client) Wait(ctx context.Context) (*ExitStatus, error) {
	w, err := c.SendWait(ctx)
	if err != nil {
		return c.exitOnDisk(err)
	}
	return w.Result(ctx)
}

// exitOnDisk is the answer when the shim cannot give it (it is gone):
// exit.json, or err.
func (c Client) exitOnDisk(err error) (*ExitStatus, error) {
	if st, rerr := ReadExit(c.StateDir); rerr == nil {
		return st, nil
	}
	return nil, err
}

// PendingWait is a wait request already sent to the shim: registered
// before the container starts, it hears of the exit the moment it happens.
type PendingWait struct {
	c    Client
	conn net.Conn
}

// SendWait registers a wait with the shim and returns without waiting.
func (c Client) SendWait(ctx context.Context) (*PendingWait, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(Request{Op: "wait"})
	if _, err := conn.Write(append(b, '\n')); err != nil {
		conn.Close()
		return nil, err
	}
	return &PendingWait{c: c, conn: conn}, nil
}

// Result waits for the exit status (or ctx's end), as Client.Wait does.
func (w *PendingWait) Result(ctx context.Context) (*ExitStatus, error) {
	defer w.conn.Close()
	stop := context.AfterFunc(ctx, func() { w.conn.SetDeadline(time.Now()) })
	defer stop()
	line, err := bufio.NewReader(w.conn).ReadBytes('\n')
	var resp Response
	if err == nil {
		err = json.Unmarshal(line, &resp)
	}
	if err == nil && resp.Exit == nil {
		err = errors.New("shim answered a wait without an exit status")
	}
	if err != nil {
		return w.c.exitOnDisk(err)
	}
	return resp.Exit, nil
}

// Close drops a wait that will not be read.
func (w *PendingWait) Close() { w.conn.Close() }

// State returns the init PID and, once exited, the exit status.
func (c Client) State(ctx context.Context) (*Response, error) {
	return c.call(ctx, Request{Op: "state"})
}

// Attach opens an attach stream. The returned conn carries output frames
// and takes raw stdin; CloseWrite on it ends stdin.
func (c Client) Attach(ctx context.Context, stdin, stdout, stderr bool) (*AttachConn, error) {
	return c.attach(ctx, Request{Op: "attach", Stdin: stdin, Stdout: stdout, Stderr: stderr})
}

// AttachConn is an attach stream to a shim.
type AttachConn struct {
	*net.UnixConn
	R *bufio.Reader
}

// ReadFrame reads one output frame.
func (a *AttachConn) ReadFrame(buf []byte) (stream byte, data []byte, err error) {
	return stdcopy.ReadFrame(a.R, buf)
}

// Spawn starts a shim for a container and waits until it is ready. The
// shim runs in its own session, so it outlives berthd.
func Spawn(ctx context.Context, shimPath string, o Options) (Client, error) {
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return Client{}, err
	}
	args := []string{
		"--id", o.ID, "--bundle", o.Bundle, "--state-dir", o.StateDir,
		"--runtime", o.Runtime, "--runtime-root", o.RuntimeRoot,
		"--log-path", o.LogPath, "--log-max-size", strconv.FormatInt(o.LogMaxSize, 10),
		"--log-max-files", strconv.Itoa(o.LogMaxFiles),
	}
	if o.LogCompress {
		args = append(args, "--log-compress")
	}
	if o.LogFormat != "" {
		args = append(args, "--log-format", o.LogFormat)
	}
	if o.LogRemote != nil {
		b, err := json.Marshal(o.LogRemote)
		if err != nil {
			return Client{}, err
		}
		args = append(args, "--log-remote", string(b))
	}
	for k, v := range o.LogAttrs {
		args = append(args, "--log-attr", k+"="+v)
	}
	if o.Tty {
		args = append(args, "--tty")
	}
	if o.OpenStdin {
		args = append(args, "--stdin")
	}
	if o.StdinOnce {
		args = append(args, "--stdin-once")
	}
	for _, p := range o.CgroupPaths {
		args = append(args, "--cgroup", p)
	}
	cmd := exec.Command(shimPath, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = o.StateDir
	logf, err := os.OpenFile(filepath.Join(o.StateDir, "shim.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return Client{}, err
	}
	defer logf.Close()
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return Client{}, err
	}
	if err := cmd.Start(); err != nil {
		return Client{}, fmt.Errorf("start shim: %w", err)
	}
	// The shim is not our child for long: release it so it is never a
	// zombie of berthd (it is reparented to init when it outlives us).
	go cmd.Wait()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		_ = cmd.Process.Kill()
		b, _ := os.ReadFile(filepath.Join(o.StateDir, "shim.log"))
		return Client{}, fmt.Errorf("shim failed to start: %s%v", strings.TrimSpace(string(b)), err)
	}
	if err := writeShimPid(o.StateDir, cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		return Client{}, err
	}
	return Client{StateDir: o.StateDir}, nil
}

// Alive reports whether a shim answers on its socket.
func (c Client) Alive(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := c.State(ctx)
	return err == nil
}

// WaitGone waits until the shim that last ran in stateDir has exited, so
// its state directory and runc ID can be reused. It gives up after d.
func WaitGone(stateDir, id string, d time.Duration) error {
	if wait := watchGone(stateDir, id, d); wait != nil {
		return wait(context.Background())
	}
	return nil
}

// watchGone opens a pidfd of the shim of id that lives now (nil when none
// does: gone, never ran here, or its PID is someone else's now) and
// returns a wait of at most d for its exit, which closes the pidfd.
func watchGone(stateDir, id string, d time.Duration) func(ctx context.Context) error {
	pid := liveShim(stateDir, id)
	if pid == 0 {
		return nil
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil
	}
	return func(ctx context.Context) error {
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		deadline := time.Now().Add(d)
		for {
			left := time.Until(deadline)
			if left <= 0 {
				return fmt.Errorf("shim %d for %s did not exit in %v", pid, id, d)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			// Short polls, so a cancelled ctx is seen.
			n, err := unix.Poll(fds, int(min(left, 100*time.Millisecond).Milliseconds())+1)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
		}
	}
}

// Delete removes what a task whose shim is gone left behind (runc's state
// and cgroups) with `berth-shim delete`, which runs `runc delete --force`:
// berthd never runs the OCI runtime itself. o needs ID, Runtime and
// RuntimeRoot.
func Delete(ctx context.Context, shimPath string, o Options) error {
	out, err := exec.CommandContext(ctx, shimPath, "delete", "--id", o.ID, "--runtime", o.Runtime, "--runtime-root", o.RuntimeRoot).CombinedOutput()
	if err != nil {
		return fmt.Errorf("berth-shim delete: %s: %w", strings.TrimSpace(string(out)), err)
	}
	return nil
}

// RunDelete is `berth-shim delete`: `runc resume` (a frozen task's
// processes die only once thawed; an error when it is not paused) and
// `runc delete --force` of o.ID.
func RunDelete(o Options) error {
	_ = exec.Command(o.Runtime, "--root", o.RuntimeRoot, "resume", o.ID).Run()
	out, err := exec.Command(o.Runtime, "--root", o.RuntimeRoot, "delete", "--force", o.ID).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w", cleanRuncError(string(out)), err)
	}
	return nil
}

// Abort ends a shim whose container failed to start, so it does not wait
// for a start that will never come. It is a no-op when the shim is gone.
func Abort(stateDir, id string) {
	pid := liveShim(stateDir, id)
	if pid == 0 {
		// A shim with no PID file: berthd died between its "ready" and
		// writing the file (a restarted berthd found it in the crash
		// loop, waiting forever for a start).
		pid = socketPeer(stateDir)
	}
	if pid != 0 {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
}

// shimProcess is the PID of the live berth-shim of container id in
// stateDir (by its PID file, else by who serves its socket), or 0 when
// none lives there.
func shimProcess(stateDir, id string) int {
	if pid := liveShim(stateDir, id); pid != 0 {
		return pid
	}
	return socketPeer(stateDir)
}

// socketPeer is the PID of the berth-shim serving stateDir's socket (the
// process that listens on it, as SO_PEERCRED tells), or 0.
func socketPeer(stateDir string) int {
	conn, err := net.DialTimeout("unix", filepath.Join(stateDir, SocketName), 2*time.Second)
	if err != nil {
		return 0
	}
	defer conn.Close()
	raw, err := conn.(*net.UnixConn).SyscallConn()
	if err != nil {
		return 0
	}
	var cred *unix.Ucred
	_ = raw.Control(func(fd uintptr) {
		cred, _ = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if cred == nil || cred.Pid <= 0 {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cred.Pid))
	if err != nil || !strings.Contains(string(cmdline), "berth-shim") {
		return 0
	}
	return int(cred.Pid)
}
