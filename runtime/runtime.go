// Package runtime is berth's boundary to the OCI runtime: every process in a
// container (its init and every exec) runs as a Task or a Process of one,
// under the container's shim (package runtime/shim implements it). Nothing
// else in berth runs the OCI runtime binary (runc).
//
// Lifecycle of a task, as the container service and the builder drive it:
//
//	Create   the shim is up, holding the task's stdio (pipes, or a TTY once
//	         started) and its log; the bundle's config.json must exist by
//	         Start, not before (Create may run while the caller writes it)
//	Attach   optional, before Start to see the first byte of output
//	Wait     before Start to hear of an exit however quick (run --rm true)
//	Start    the runtime runs the bundle; the answer is the init's PID, or
//	         the runtime's refusal (a *StartError: the shim cleaned up)
//	Kill, Pause, Resume, Update, Resize, Pids, Stats   while it runs
//	Exec     a Process in the running task: Attach, Wait, then Start it,
//	         as for the task; it runs under the shim too, so it outlives
//	         berthd as the container does (Task.Execs lists them again)
//	exit     the shim records the exit status, answers every Wait, and
//	         removes the runtime's state; Delete removes what is left when
//	         the shim is gone without doing so
//
// A Task value is a handle: berthd may drop it, restart, and Load it again
// while the container keeps running.
package runtime

import (
	"context"
	"errors"
	"io"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth/berth/container/logger"
)

// Runtime creates tasks and finds them again after berthd restarted.
type Runtime interface {
	// Create starts the shim of a new task for the bundle. It returns once
	// the shim is ready; nothing runs in the container until Start. A
	// previous task of the same ID must be gone (Create waits a moment for
	// its shim to finish).
	Create(ctx context.Context, id string, o CreateOptions) (Task, error)
	// Load returns the task of a container that was running when berthd
	// stopped. It fails with an error wrapping errdefs.ErrNotFound when
	// its shim is gone (its process does not live: a shim slow to answer
	// is there); LastExit then tells how the task ended.
	Load(ctx context.Context, id, bundle string) (Task, error)
	// LastExit is the exit status the task's shim recorded, for a task
	// that ended while nobody was listening.
	LastExit(ctx context.Context, id, bundle string) (*ExitStatus, error)
	// Delete removes what a task whose shim is gone left behind: it thaws
	// a frozen task, kills what still runs in it and removes the
	// runtime's state and cgroups. It is a no-op when nothing is left.
	Delete(ctx context.Context, id, bundle string) error
	// WaitReleased waits (a bounded while) until no shim of an earlier
	// task of id holds it and its bundle any more, so a new Create may
	// use them; an error when one still does.
	WaitReleased(ctx context.Context, id, bundle string) error
	// WatchRelease takes hold of the shim that holds id's bundle now, if
	// one lives, and returns a wait for its exit (nil when none lives).
	// Taken before the bundle is cleared, it still waits once the
	// bundle's files (the shim's PID file among them) are gone. The wait
	// is called once; with a done ctx it only lets go of the shim.
	WatchRelease(id, bundle string) func(ctx context.Context) error
}

// CreateOptions describe a new task.
type CreateOptions struct {
	// Bundle is the OCI bundle directory: config.json (written before
	// Start) and the rootfs it names. The shim keeps its own files
	// (socket, exit status) there too.
	Bundle string
	// Stdio: a TTY (the container sees a terminal), an open stdin
	// (attachers write to it; without it stdin is /dev/null), and whether
	// stdin closes when the first attached writer is done.
	Tty, Stdin, StdinOnce bool
	// LogPath is the json-file log the shim writes the output to; "" for
	// none. LogMaxSize (bytes, 0 = never) and LogMaxFiles rotate it.
	LogPath     string
	LogMaxSize  int64
	LogMaxFiles int
	// LogAttrs go with every log entry (docker logs --details);
	// LogCompress gzips rotated files; LogFormat is "json-file" (or "")
	// or "local"; LogRemote, when set, is a remote log driver the output
	// goes to as well (the log file is then its local cache).
	LogAttrs    map[string]string
	LogCompress bool
	LogFormat   string
	LogRemote   *logger.Remote
	// CgroupPaths are the task's cgroup directories on the host, read
	// after the exit to tell an OOM kill.
	CgroupPaths []string
}

// Task is one container's init process and what runs beside it.
type Task interface {
	ID() string
	// Pid is the init's host PID, 0 before Start.
	Pid() int
	// Start runs the container and returns the init's PID. The runtime's
	// own refusal (a missing executable, a bad spec) is a *StartError.
	Start(ctx context.Context) (int, error)
	// Wait registers a wait now and returns a channel that yields the exit
	// status once (or an ExitStatus with Error set when the shim could not
	// be heard; or nothing if ctx ends first). Call it before Start to
	// hear of a quick exit.
	Wait(ctx context.Context) (<-chan ExitStatus, error)
	// Attach opens a stream to the task's stdio: output frames from the
	// moment it is in place, input to its stdin (if open).
	Attach(ctx context.Context, o AttachOptions) (Stream, error)
	Kill(ctx context.Context, sig syscall.Signal) error
	// Pause freezes every process of the task; Resume thaws them.
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
	// Update changes the task's cgroup limits.
	Update(ctx context.Context, r *specs.LinuxResources) error
	// Resize sets the task's TTY size (an error without a TTY).
	Resize(ctx context.Context, width, height uint16) error
	// Exec prepares a process in the running task; it runs on its Start.
	// meta is kept with it by the shim and comes back from Execs (berthd
	// keeps its exec records there, so they survive a restart).
	Exec(ctx context.Context, execID string, o ExecOptions) (Process, error)
	// Execs lists the task's exec processes the shim knows of (running,
	// or ended while the task runs), for a restarted berthd.
	Execs(ctx context.Context) ([]ProcessInfo, error)
	// Pids lists the host PIDs of every process in the task.
	Pids(ctx context.Context) ([]int, error)
	// Stats samples the task's resource usage.
	Stats(ctx context.Context) (*Stats, error)
	// State asks the task's shim where the task is. When the shim does
	// not answer, the error wraps errdefs.ErrNotFound if its process is
	// gone, errdefs.ErrUnavailable if it lives (slow, or busy: it may
	// answer later).
	State(ctx context.Context) (State, error)
	// Delete lets go of the task: before Start (or when the shim does not
	// answer) its shim is ended; after the exit, Delete waits (a bounded
	// while) until the shim is gone, and ends it past that. A task that
	// runs is refused (errdefs.ErrFailedPrecondition).
	Delete(ctx context.Context) error
}

// State is where a task is.
type State struct {
	// Pid is the init's PID once started.
	Pid int
	// Starting: Start was asked for and has not answered yet.
	Starting bool
	// Exit is set once the task has exited.
	Exit *ExitStatus
}

// ExecOptions describe an exec process.
type ExecOptions struct {
	Spec *specs.Process // Terminal says whether it gets a TTY
	// Stdin keeps its stdin open for attachers (else /dev/null); it closes
	// when the first attached writer ends its input.
	Stdin bool
	// ConsoleSize is the TTY's initial {height, width}, if known.
	ConsoleSize *[2]uint
	// Meta is opaque to the runtime and returned by Task.Execs.
	Meta []byte
}

// Process is an exec process of a task.
type Process interface {
	ID() string
	// Pid is the process's host PID, 0 before Start.
	Pid() int
	// Start runs the process and returns its PID. If the runtime cannot
	// run it (a missing executable...) the error is a *StartError, and the
	// process's exit status (126, as Docker's) is also what Wait yields;
	// the runtime's message has been written to its output.
	Start(ctx context.Context) (int, error)
	Wait(ctx context.Context) (<-chan ExitStatus, error)
	Attach(ctx context.Context, o AttachOptions) (Stream, error)
	Kill(ctx context.Context, sig syscall.Signal) error
	Resize(ctx context.Context, width, height uint16) error
	// CloseIO ends the process's stdin.
	CloseIO(ctx context.Context) error
}

// ProcessInfo is what the shim knows of an exec process.
type ProcessInfo struct {
	ID      string
	Pid     int
	Started bool
	Exit    *ExitStatus // nil while it runs (or before it started)
	Meta    []byte
	Process Process
}

// AttachOptions choose the streams of an attach.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
}

// Stream ids in Stream frames (the Engine API's stdcopy numbering).
const (
	Stdin  = 0
	Stdout = 1
	Stderr = 2
)

// Stream is an attached client's connection to a process's stdio.
type Stream interface {
	// ReadFrame reads the next piece of output and the stream it came
	// from (Stdout or Stderr; Stdout only with a TTY). data is valid until
	// the next call; buf is used when it is large enough. io.EOF: the
	// output has ended (the process exited).
	ReadFrame(buf []byte) (stream byte, data []byte, err error)
	// Write sends input to the process's stdin.
	Write(p []byte) (int, error)
	// CloseWrite ends this attacher's input (and stdin, with StdinOnce).
	CloseWrite() error
	Close() error
}

// ExitStatus is how a task or process ended.
type ExitStatus struct {
	Pid       int       `json:"pid"`
	ExitCode  int       `json:"exitCode"`
	ExitedAt  time.Time `json:"exitedAt"`
	OOMKilled bool      `json:"oomKilled"`
	// Error says why the process never ran, or why its end could not be
	// observed.
	Error string `json:"error,omitempty"`
}

// StartError is the runtime's own refusal to start a task or process. The
// shim has cleaned up after it.
type StartError struct {
	Msg  string
	Kind StartKind
}

// StartKind classifies a start the runtime refused, for the exit code
// Docker gives it.
type StartKind string

const (
	// StartFailed is any other refusal: exit code 128 (126 for an exec).
	StartFailed StartKind = ""
	// StartNotFound: the executable (or a file it needs) does not exist:
	// exit code 127.
	StartNotFound StartKind = "not-found"
	// StartPermission: the executable cannot be run: exit code 126.
	StartPermission StartKind = "permission"
	// StartLogging: the log driver's endpoint could not be reached
	// ("failed to initialize logging driver: ..."): exit code 128,
	// the message as is.
	StartLogging StartKind = "logging"
)

func (e *StartError) Error() string { return e.Msg }

// IsStartError reports whether err is the runtime's refusal to start.
func IsStartError(err error) bool {
	var se *StartError
	return errors.As(err, &se)
}

// IO is a caller's side of a process's stdio, for Copy.
type IO struct {
	Stdin          io.Reader // nil: no input
	Stdout, Stderr io.Writer // nil: discarded
}

// Copy relays a Stream to io until the process's output ends: output
// frames to Stdout and Stderr, and Stdin (when set) to the process, whose
// stdin is closed when Stdin ends. It returns when the output has ended
// (the process exited) or ctx ends; the stream is closed.
func Copy(ctx context.Context, s Stream, o IO) error {
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	defer s.Close()
	if o.Stdin != nil {
		go func() {
			_, _ = io.Copy(s, o.Stdin)
			_ = s.CloseWrite()
		}()
	}
	buf := make([]byte, 32*1024)
	for {
		stream, data, err := s.ReadFrame(buf)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return ctx.Err()
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		w := o.Stdout
		if stream == Stderr {
			w = o.Stderr
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
}

// Stats is one sample of a task's resource usage, from its cgroups (the
// fields a cgroup version lacks stay zero).
type Stats struct {
	Read time.Time
	CPU  struct {
		Total, User, Kernel uint64 // ns
		PerCPU              []uint64
		// Periods, ThrottledPeriods and ThrottledTime (ns) of the CFS quota.
		Periods, ThrottledPeriods, ThrottledTime uint64
	}
	Memory struct {
		Usage, MaxUsage, Failcnt uint64
		Limit                    uint64 // 0: none
		Stat                     map[string]uint64
	}
	Pids struct{ Current, Limit uint64 }
	// IO lists bytes and operations per device and direction.
	IO struct{ Bytes, Ops []IOEntry }
	// Networks are the interfaces of the task's network namespace
	// (loopback left out); nil when it shares another's.
	Networks map[string]NetworkStats
}

// IOEntry is one block device counter ("Read", "Write", ... on cgroup v1;
// "read", "write" on v2).
type IOEntry struct {
	Major, Minor uint64
	Op           string
	Value        uint64
}

// NetworkStats are one interface's counters.
type NetworkStats struct {
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}
