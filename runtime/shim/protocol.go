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
	"time"

	"github.com/berth/berth/internal/stdcopy"
)

// Request is one control request.
type Request struct {
	Op     string `json:"op"` // start, attach, resize, kill, wait, state
	Stdin  bool   `json:"stdin,omitempty"`
	Stdout bool   `json:"stdout,omitempty"`
	Stderr bool   `json:"stderr,omitempty"`
	Width  uint16 `json:"w,omitempty"`
	Height uint16 `json:"h,omitempty"`
	Signal int    `json:"signal,omitempty"`
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
}

// StartKind classifies a start the runtime refused, for the exit code
// Docker gives it.
type StartKind string

const (
	// StartFailed is any other refusal: exit code 128.
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

// ExitStatus is how a container ended; the shim writes it to exit.json.
type ExitStatus struct {
	Pid       int       `json:"pid"`
	ExitCode  int       `json:"exitCode"`
	ExitedAt  time.Time `json:"exitedAt"`
	OOMKilled bool      `json:"oomKilled"`
	Error     string    `json:"error,omitempty"`
}

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
