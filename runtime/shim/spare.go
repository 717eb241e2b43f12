package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Launcher starts shims. It keeps one spare shim booted ahead of need, so a
// container start does not wait for a process to exec and its runtime to
// initialise (a few ms, more on a busy host): the spare waits on its stdin
// for its Options, sets up for that container and answers "ready" as a
// freshly spawned one does. Another spare boots in the background after
// each one is taken. A spare that loses berthd (its stdin closes) exits.
type Launcher struct {
	path string

	mu      sync.Mutex
	spare   *spareShim
	filling bool
	closed  bool
	filled  chan struct{} // closed and replaced each time a spare is ready (tests)
}

type spareShim struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// NewLauncher returns a launcher for the berth-shim binary at path and
// starts booting its first spare.
func NewLauncher(path string) *Launcher {
	l := &Launcher{path: path, filled: make(chan struct{})}
	l.refill()
	return l
}

// Spawn starts a shim for a container, from the spare when there is one,
// and waits until it is ready. Call Refill once the container has started:
// booting the next spare meanwhile would take CPU from the start.
func (l *Launcher) Spawn(ctx context.Context, o Options) (Client, error) {
	l.mu.Lock()
	sp := l.spare
	l.spare = nil
	l.mu.Unlock()
	if sp == nil {
		l.refill()
	} else if c, err := sp.adopt(o); err == nil {
		return c, nil
	}
	// No spare, or one that died or failed its set-up: spawn afresh, which
	// reports any real error (a bad state dir, a log that cannot be
	// opened) the usual way.
	return Spawn(ctx, l.path, o)
}

// Close ends the spare; later Spawns start shims afresh.
func (l *Launcher) Close() {
	l.mu.Lock()
	sp := l.spare
	l.spare = nil
	l.closed = true
	l.mu.Unlock()
	if sp != nil {
		sp.in.Close() // its read of the options ends: it exits
	}
}

// Refill boots a spare in the background unless one is ready or booting.
func (l *Launcher) Refill() { l.refill() }

func (l *Launcher) refill() {
	l.mu.Lock()
	if l.closed || l.spare != nil || l.filling {
		l.mu.Unlock()
		return
	}
	l.filling = true
	l.mu.Unlock()
	go func() {
		sp, err := startSpare(l.path)
		l.mu.Lock()
		defer l.mu.Unlock()
		l.filling = false
		if err != nil {
			return // the next Spawn spawns afresh and tries again
		}
		if l.closed {
			sp.in.Close()
			return
		}
		l.spare = sp
		close(l.filled)
		l.filled = make(chan struct{})
	}()
}

// startSpare execs a shim in spare mode. It is ready for its options as
// soon as it runs: its own start-up happens while it waits.
func startSpare(path string) (*spareShim, error) {
	// Room for the title the shim gives itself once it has a container.
	cmd := exec.Command(path, "--spare", "--title-space="+strings.Repeat("_", 240))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		in.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		in.Close()
		return nil, fmt.Errorf("start spare shim: %w", err)
	}
	go cmd.Wait()
	return &spareShim{cmd: cmd, in: in, out: bufio.NewReader(out)}, nil
}

// adopt hands the spare its container and waits for it to be ready.
func (sp *spareShim) adopt(o Options) (Client, error) {
	defer sp.in.Close()
	// The shim makes the state dir itself before it answers.
	b, err := json.Marshal(o)
	if err != nil {
		sp.cmd.Process.Kill()
		return Client{}, err
	}
	if _, err := sp.in.Write(append(b, '\n')); err != nil {
		sp.cmd.Process.Kill()
		return Client{}, err
	}
	line, err := sp.out.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		sp.cmd.Process.Kill()
		return Client{}, errors.New("spare shim failed to set up")
	}
	if err := writeShimPid(o.StateDir, sp.cmd.Process.Pid); err != nil {
		sp.cmd.Process.Kill()
		return Client{}, err
	}
	return Client{StateDir: o.StateDir}, nil
}

// The shim's PID file holds its PID and its start time (field 22 of
// /proc/<pid>/stat, in clock ticks since boot): together they name the
// process even after the PID is reused, whatever its command line.

func writeShimPid(stateDir string, pid int) error {
	st, err := procStartTime(pid)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(stateDir, ShimPidName), []byte(strconv.Itoa(pid)+" "+strconv.FormatUint(st, 10)), 0o600)
}

// liveShim returns the PID of the shim that last ran in stateDir, or 0 when
// it is gone (or never ran there).
func liveShim(stateDir, id string) int {
	b, err := os.ReadFile(filepath.Join(stateDir, ShimPidName))
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 0
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil || pid <= 0 {
		return 0
	}
	if len(fields) >= 2 {
		want, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			return 0
		}
		if got, err := procStartTime(pid); err != nil || got != want {
			return 0
		}
		return pid
	}
	// A PID file from before start times were recorded: the command line
	// names the container.
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "berth-shim") || !strings.Contains(string(cmdline), id) {
		return 0
	}
	return pid
}

// procStartTime reads when pid started, in clock ticks after boot.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	if fields[0] == "Z" || fields[0] == "X" {
		return 0, fmt.Errorf("process %d has exited", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}
