// Package shim is berth's per-container supervisor and the client berthd
// uses to talk to it.
//
// Lifecycle of a shim (one per running container):
//
//  1. berthd execs berth-shim in a new session with a sync pipe on stdout.
//     The shim becomes a child subreaper, creates the container's stdio
//     (pipes, or a pty through runc's console socket), starts the log
//     writer, listens on its control socket and writes "ready\n".
//  2. berthd connects (attach streams first, if any) and sends "start".
//     The shim runs `runc run --detach`; the answer carries the container's
//     PID or runc's error.
//  3. The shim copies output to the json-file log and to attached clients,
//     relays stdin, serves resize, kill and wait requests.
//  4. When the container's init exits, the shim reaps it, drains its
//     output, notes an OOM kill, writes exit.json atomically, answers every
//     waiter, closes attach streams, runs `runc delete` and exits.
//
// berthd may die and restart at any point: the shim keeps the container,
// its stdio and its log, and exit.json tells a restarted berthd how a
// container ended while nobody was listening.
//
// The wire protocol on the control socket: the client sends one JSON
// Request line; the shim answers one JSON Response line. For "attach" the
// connection then carries output frames from the shim ([stream byte,
// 3 zero bytes, big-endian uint32 length] + payload, the Engine API's
// stdcopy framing) and raw stdin bytes from the client; the client's
// half-close ends stdin. "wait" answers only when the container has exited.
package shim

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/berth/berth/internal/stdcopy"
	"github.com/berth/berth/runtime"
)

// Request is one control request.
//
// Ops on the task (the container's init): start, attach, resize, kill,
// wait, state, pause, resume, update (Resources), pids. With Exec set,
// attach, resize, kill, wait and closeio address that exec process
// instead; exec (Process, Stdin, Width/Height, Meta) prepares one,
// exec-start runs it, execs lists them.
type Request struct {
	Op     string `json:"op"`
	Exec   string `json:"exec,omitempty"`
	Stdin  bool   `json:"stdin,omitempty"`
	Stdout bool   `json:"stdout,omitempty"`
	Stderr bool   `json:"stderr,omitempty"`
	Width  uint16 `json:"w,omitempty"`
	Height uint16 `json:"h,omitempty"`
	Signal int    `json:"signal,omitempty"`
	// Resources (update) are the OCI LinuxResources for `runc update`.
	Resources json.RawMessage `json:"resources,omitempty"`
	// Process (exec) is the OCI Process of the exec.
	Process json.RawMessage `json:"process,omitempty"`
	Meta    []byte          `json:"meta,omitempty"`
}

// Response answers a Request.
type Response struct {
	Error string      `json:"error,omitempty"`
	Kind  StartKind   `json:"kind,omitempty"` // of a failed start
	Pid   int         `json:"pid,omitempty"`
	Exit  *ExitStatus `json:"exit,omitempty"`
	// Starting (state): the start was asked for and has not ended yet
	// (runc run is under way); with neither Pid nor Exit and not
	// Starting, the shim still waits to be asked.
	Starting bool `json:"starting,omitempty"`
	// NotRunning: the error is that the task (or exec) is not running.
	NotRunning bool       `json:"notRunning,omitempty"`
	Pids       []int      `json:"pids,omitempty"`
	Execs      []ExecInfo `json:"execs,omitempty"`
}

// ExecInfo is what the shim knows of one exec process.
type ExecInfo struct {
	ID      string      `json:"id"`
	Pid     int         `json:"pid,omitempty"`
	Started bool        `json:"started,omitempty"`
	Exit    *ExitStatus `json:"exit,omitempty"`
	Meta    []byte      `json:"meta,omitempty"`
}

// StartKind classifies a start the runtime refused, for the exit code
// Docker gives it (see runtime.StartKind).
type StartKind = runtime.StartKind

const (
	StartFailed     = runtime.StartFailed
	StartNotFound   = runtime.StartNotFound
	StartPermission = runtime.StartPermission
	StartLogging    = runtime.StartLogging
)

// ExitStatus is how a container ended; the shim writes it to exit.json.
type ExitStatus = runtime.ExitStatus

// Stream ids used in attach frames.
const (
	StreamStdin  = stdcopy.Stdin
	StreamStdout = stdcopy.Stdout
	StreamStderr = stdcopy.Stderr
)

// File names inside a shim's state directory.
const (
	SocketName  = "shim.sock"
	ExitName    = "exit.json"
	PidName     = "init.pid"
	ShimPidName = "shim.pid"
	ConsoleName = "console.sock"
)

// ReadExit reads exit.json from a state directory.
func ReadExit(stateDir string) (*ExitStatus, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, ExitName))
	if err != nil {
		return nil, err
	}
	var st ExitStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	return &st, nil
}
