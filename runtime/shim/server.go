package shim

import (
	"bufio"
	"bytes"
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

	"golang.org/x/sys/unix"

	"github.com/berth/berth/container/logger"
	"github.com/berth/berth/container/logger/remote"
	"github.com/berth/berth/internal/osutil"
)

// Options configure a shim.
type Options struct {
	ID          string
	Bundle      string // holds config.json
	StateDir    string // socket, pid and exit files
	Runtime     string // runc binary
	RuntimeRoot string // runc --root
	LogPath     string // json-file log; "" = none
	LogMaxSize  int64
	LogMaxFiles int
	// LogAttrs go with every log entry (the json-file driver's labels,
	// env and tag options), for `docker logs --details`.
	LogAttrs map[string]string `json:",omitempty"`
	// LogCompress gzips rotated log files.
	LogCompress bool `json:",omitempty"`
	// LogFormat is the log file's encoding: "json-file" (or "") or
	// "local" (dockerd's local driver format).
	LogFormat string `json:",omitempty"`
	// LogRemote, when set, is a remote driver the output goes to as well
	// (the log file above is then its local cache), through a queue that
	// never holds the container up.
	LogRemote *logger.Remote `json:",omitempty"`
	Tty       bool
	OpenStdin bool
	StdinOnce bool
	// CgroupPaths are the container's cgroup directories on the host, read
	// after exit to tell an OOM kill.
	CgroupPaths []string
}

// pio is one process's stdio as the shim holds it (the container's init,
// or an exec): the process's side (pipes, or a pty master once it runs),
// the attached clients, and its input. Fields are guarded by Server.mu,
// except the files, which are set before the process runs.
type pio struct {
	tty, stdinOnce bool
	stdinW         io.WriteCloser // we write the process's stdin here
	stdinOpen      bool
	console        *os.File // pty master, with a TTY
	outR, errR     *os.File
	ctrFds         []*os.File // the process's ends, closed once it runs
	subs           map[*subscriber]struct{}
	ended          bool // output over: no more subscribers
	// Backpressure bookkeeping (see broadcast and waitOutput): pumps
	// waiting for a subscriber now, how often one had to, and the bytes
	// the subscribers' streams have written.
	blocked, stalls int
	delivered       int64
	startDone       chan struct{} // closed when the start attempt has ended
	ioDone          sync.WaitGroup
}

// newPio makes a process's stdio: with a TTY nothing until it runs (the
// pty comes through runc's console socket); else pipes for its output and
// for its stdin if open (else /dev/null).
func newPio(tty, openStdin, stdinOnce bool) (*pio, error) {
	p := &pio{tty: tty, stdinOnce: stdinOnce, subs: map[*subscriber]struct{}{}, startDone: make(chan struct{})}
	if tty {
		return p, nil
	}
	fail := func(err error) (*pio, error) {
		p.closeFds()
		return nil, err
	}
	if openStdin {
		r, w, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		p.stdinW = w
		p.stdinOpen = true
		p.ctrFds = append(p.ctrFds, r)
	} else {
		devnull, err := os.Open(os.DevNull)
		if err != nil {
			return fail(err)
		}
		p.ctrFds = append(p.ctrFds, devnull)
	}
	or, ow, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	p.outR = or
	p.ctrFds = append(p.ctrFds, ow)
	er, ew, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	p.errR = er
	p.ctrFds = append(p.ctrFds, ew)
	// A big pipe buffer lets a chatty process run ahead of us.
	_, _ = unix.FcntlInt(ow.Fd(), unix.F_SETPIPE_SZ, 1<<20)
	_, _ = unix.FcntlInt(ew.Fd(), unix.F_SETPIPE_SZ, 1<<20)
	return p, nil
}

// closeFds closes the process's ends of its pipes (once it runs, or when
// it never will).
func (p *pio) closeFds() {
	for _, f := range p.ctrFds {
		f.Close()
	}
	p.ctrFds = nil
}

// Server is a running shim.
type Server struct {
	opts Options
	ln   net.Listener

	logw   *logger.Writer
	remote *remote.Queue // set by start, before the output flows

	// mu guards the fields below and those of io and of every exec. The
	// shim takes no other lock while holding it, except reaper.mu (to
	// claim a PID).
	mu      sync.Mutex
	io      *pio // the init's stdio
	pid     int
	started bool
	exit    *ExitStatus
	waiters []chan *ExitStatus
	execs   map[string]*execProc
	execSeq int

	trim trimmer

	// reaper collects exit statuses once the container runs (see start):
	// before that, the start waits for its `runc run` itself, so the
	// reaper never steals runc's own exit status.
	reaper *reaper
	// replies counts requests not yet answered: wait requests registered
	// before the exit, and every other request but attach.
	replies inflight
	// streams counts attach streams not yet drained; delivered, the
	// bytes they wrote (guarded by mu).
	streams   inflight
	delivered int64
	// initExited: the init has been reaped (its PID is no longer its).
	initExited bool
	// startDone is the init's io.startDone.
	startDone chan struct{}
	// initExit yields the init's wait status (claimed from the reaper).
	initExit <-chan unix.WaitStatus
}

// NewServer prepares a shim: stdio, log and control socket.
func NewServer(o Options) (*Server, error) {
	s := &Server{opts: o, execs: map[string]*execProc{}, reaper: newReaper()}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, err
	}
	if o.LogPath != "" {
		format, err := logger.ParseFormat(o.LogFormat)
		if err != nil {
			return nil, err
		}
		// Entries lost to a full disk are counted and said in the log
		// itself; the shim's own log (stderr, shim.log) hears of it too.
		w, err := logger.NewWriter(o.LogPath, o.LogMaxSize, o.LogMaxFiles, logger.WithAttrs(o.LogAttrs), logger.WithCompress(o.LogCompress), logger.WithFormat(format),
			logger.WithReport(func(m string) { _, _ = os.Stderr.WriteString("berth-shim: " + m + "\n") }))
		if err != nil {
			return nil, err
		}
		s.logw = w
	}
	p, err := newPio(o.Tty, o.OpenStdin, o.StdinOnce)
	if err != nil {
		return nil, err
	}
	s.io, s.startDone = p, p.startDone
	sock := filepath.Join(o.StateDir, SocketName)
	_ = os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, err
	}
	// The socket file stays when we exit: the state directory is berthd's
	// to remove, and a new shim for the same container may already be
	// listening there.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	s.ln = ln
	return s, nil
}

// Serve handles control connections until the container has exited and
// been deleted. ready is called once the socket accepts connections.
func (s *Server) Serve(ready func()) error {
	go s.acceptLoop()
	if ready != nil {
		ready()
	}
	st := s.reap()
	s.finish(st)
	return nil
}

func (s *Server) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.handle(c)
	}
}

func (s *Server) handle(c net.Conn) {
	r := bufio.NewReader(c)
	line, err := r.ReadBytes('\n')
	if err != nil {
		c.Close()
		return
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		reply(c, Response{Error: "bad request: " + err.Error()})
		c.Close()
		return
	}
	if req.Op != "attach" && req.Op != "wait" {
		// Answered before this process exits (see finish).
		s.replies.add()
		defer s.replies.done()
	}
	if req.Exec != "" {
		s.handleExec(c, r, req)
		return
	}
	switch req.Op {
	case "start":
		pid, err := s.start()
		if testHookBeforeStartReply != nil {
			testHookBeforeStartReply()
		}
		if err != nil {
			resp := Response{Error: err.Error()}
			var se *StartError
			if errors.As(err, &se) {
				resp.Kind = se.Kind
			}
			reply(c, resp)
		} else {
			reply(c, Response{Pid: pid})
		}
		c.Close()
	case "attach":
		s.attach(s.io, c, r, req)
	case "resize":
		reply(c, Response{Error: errString(s.resize(s.io, req.Width, req.Height))})
		c.Close()
	case "kill":
		reply(c, errResponse(s.kill(req.Signal)))
		c.Close()
	case "wait":
		ch, registered := s.waitCh()
		st := <-ch
		reply(c, Response{Exit: st, Pid: st.Pid})
		c.Close()
		if registered {
			s.replies.done()
		}
	case "state":
		s.mu.Lock()
		resp := Response{Pid: s.pid, Exit: s.exit, Starting: s.started && s.pid == 0 && s.exit == nil}
		s.mu.Unlock()
		reply(c, resp)
		c.Close()
	case "pause", "resume":
		reply(c, errResponse(s.runcWhileRunning(nil, req.Op, s.opts.ID)))
		c.Close()
	case "update":
		reply(c, errResponse(s.update(req.Resources)))
		c.Close()
	case "pids":
		pids, err := s.pids()
		resp := errResponse(err)
		resp.Pids = pids
		reply(c, resp)
		c.Close()
	case "exec":
		reply(c, errResponse(errors.New("exec: no exec ID")))
		c.Close()
	case "execs":
		reply(c, Response{Execs: s.execList()})
		c.Close()
	default:
		reply(c, Response{Error: "unknown op " + req.Op})
		c.Close()
	}
}

// errNotRunning is the answer to a request that needs the task (or the
// exec) running.
var errNotRunning = errors.New("container is not running")

func errResponse(err error) Response {
	if err == nil {
		return Response{}
	}
	return Response{Error: err.Error(), NotRunning: errors.Is(err, errNotRunning)}
}

// testHookBeforeStartReply, when set (tests), runs between the start and
// its answer.
var testHookBeforeStartReply func()

// testHookAttachEnded, when set (tests), runs when an attach stream has
// written all it will.
var testHookAttachEnded func()

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func reply(c net.Conn, r Response) {
	b, _ := json.Marshal(r)
	_, _ = c.Write(append(b, '\n'))
}

// waitCh returns a channel that yields the exit status; registered says
// the caller must call s.replies.done once it has answered.
func (s *Server) waitCh() (ch chan *ExitStatus, registered bool) {
	ch = make(chan *ExitStatus, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exit != nil {
		ch <- s.exit
		return ch, false
	}
	s.waiters = append(s.waiters, ch)
	s.replies.add()
	return ch, true
}

// start runs the container with `runc run --detach`.
func (s *Server) start() (int, error) {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return 0, errors.New("container already started")
	}
	s.started = true
	s.mu.Unlock()
	defer close(s.startDone)
	if r := s.opts.LogRemote; r != nil {
		// As dockerd: the driver connects before the container runs, and
		// an endpoint that refuses fails the start.
		snd, err := remote.Dial(r)
		if err != nil {
			return 0, s.failStart(&StartError{Msg: "failed to initialize logging driver: " + err.Error(), Kind: StartLogging})
		}
		s.remote = remote.NewQueue(snd, r.BufferSize(), func(m string) {
			_, _ = os.Stderr.WriteString("berth-shim: " + r.Driver + ": " + m + "\n")
		})
	}

	pidFile := filepath.Join(s.opts.StateDir, PidName)
	args := []string{"--root", s.opts.RuntimeRoot, "run", "--detach", "--bundle", s.opts.Bundle, "--pid-file", pidFile}
	var consoleLn *net.UnixListener
	if s.opts.Tty {
		sock := filepath.Join(s.opts.StateDir, ConsoleName)
		_ = os.Remove(sock)
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			return 0, s.failStart(err)
		}
		consoleLn = l
		defer func() { l.Close(); os.Remove(sock) }()
		args = append(args, "--console-socket", sock)
	}
	args = append(args, s.opts.ID)
	cmd := exec.Command(s.opts.Runtime, args...)
	var stderr bytes.Buffer
	if s.opts.Tty {
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
	} else {
		cmd.Stdin, cmd.Stdout = s.io.ctrFds[0], s.io.ctrFds[1]
		cmd.Stderr = s.io.ctrFds[2]
		// runc itself reports errors on stderr, which here is the
		// container's stderr pipe: its log line goes to the log reader.
		cmd.Env = append(os.Environ(), "_BERTH_SHIM=1")
	}
	var console *os.File
	var consoleErr error
	var consoleDone chan struct{}
	if consoleLn != nil {
		consoleDone = make(chan struct{})
		go func() {
			defer close(consoleDone)
			console, consoleErr = osutil.ReceiveConsole(consoleLn, 30*time.Second)
		}()
	}
	if err := cmd.Run(); err != nil {
		if consoleLn != nil {
			consoleLn.Close()
			<-consoleDone
		}
		msg := strings.TrimSpace(stderr.String())
		if !s.opts.Tty {
			msg = drainRuncError(s.io)
		}
		if msg == "" {
			msg = err.Error()
		}
		return 0, s.failStart(&StartError{Msg: msg, Kind: runcStartKind(msg)})
	}
	if consoleLn != nil {
		<-consoleDone
		if consoleErr != nil {
			return 0, s.failStart(consoleErr)
		}
	}
	s.io.closeFds()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, s.failStart(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, s.failStart(err)
	}
	// From here on every child is reaped by the reaper's loop; the init
	// is claimed before it runs.
	s.initExit = s.reaper.claim(pid)
	s.reaper.run()
	s.mu.Lock()
	s.pid = pid
	if console != nil {
		s.io.console = console
		s.io.stdinW = console
		s.io.stdinOpen = true
	}
	s.mu.Unlock()
	s.startIO(s.io, true)
	// Past start-up (and the first requests that follow it): from here
	// on the shim mostly sleeps.
	time.AfterFunc(time.Second, func() {
		s.trim.trim(true)
		s.trim.trimAfterCollections()
	})
	return pid, nil
}

// drainRuncError reads what runc wrote to the (process's) stderr pipe when
// it failed before the process ran.
func drainRuncError(p *pio) string {
	p.closeFds()
	_ = p.errR.SetReadDeadline(time.Now().Add(time.Second))
	b, _ := io.ReadAll(io.LimitReader(p.errR, 64*1024))
	return cleanRuncError(string(b))
}

// cleanRuncError extracts the message from runc's logrus-style output.
func cleanRuncError(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "msg=\""); i >= 0 {
		m := s[i+5:]
		if j := strings.LastIndex(m, "\""); j >= 0 {
			m = m[:j]
		}
		if u, err := strconv.Unquote("\"" + m + "\""); err == nil {
			return u
		}
		return m
	}
	return s
}

// runcStartKind classifies runc's refusal to start a container. runc tells
// why only in words (its log line), so this is the one place where they are
// read, as dockerd reads containerd's: a missing executable or file is
// StartNotFound, EACCES is StartPermission. Everything after it goes by
// the kind.
func runcStartKind(msg string) StartKind {
	switch {
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, syscall.ENOENT.Error()):
		return StartNotFound
	case strings.Contains(msg, syscall.EACCES.Error()):
		return StartPermission
	}
	return StartFailed
}

// failStart records a failed start so waiters and berthd learn it.
func (s *Server) failStart(err error) error {
	st := &ExitStatus{ExitCode: 128, ExitedAt: time.Now().UTC(), Error: err.Error()}
	s.mu.Lock()
	s.exit = st
	s.mu.Unlock()
	return err
}

// startIO copies a process's output to its subscribers and, with log
// (the init's), to the log. Call once the process runs (its console, with
// a TTY, is set).
func (s *Server) startIO(p *pio, log bool) {
	if p.tty {
		p.ioDone.Add(1)
		go s.pump(p, log, p.console, StreamStdout, "stdout")
		return
	}
	p.ioDone.Add(2)
	go s.pump(p, log, p.outR, StreamStdout, "stdout")
	go s.pump(p, log, p.errR, StreamStderr, "stderr")
}

func (s *Server) pump(p *pio, log bool, r *os.File, stream byte, name string) {
	defer p.ioDone.Done()
	var split *logger.LineSplitter
	switch {
	case !log:
	case s.logw != nil && s.remote != nil:
		split = &logger.LineSplitter{Stream: name, Emit: func(e logger.Entry) { _ = s.logw.Write(e); s.remote.Log(e) }}
	case s.logw != nil:
		split = &logger.LineSplitter{Stream: name, Emit: func(e logger.Entry) { _ = s.logw.Write(e) }}
	case s.remote != nil:
		split = &logger.LineSplitter{Stream: name, Emit: s.remote.Log}
	}
	buf := make([]byte, 32*1024)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if split != nil {
				_, _ = split.Write(buf[:n])
			}
			s.broadcast(p, stream, buf[:n])
		}
		if err != nil {
			break
		}
	}
	if split != nil {
		split.Flush()
	}
}

func (s *Server) copyStdin(p *pio, r io.Reader) {
	if p.tty {
		// The TTY exists only once the process runs.
		<-p.startDone
	}
	s.mu.Lock()
	w, open := p.stdinW, p.stdinOpen
	s.mu.Unlock()
	if w == nil || !open {
		return
	}
	_, _ = io.Copy(w, r)
	if p.stdinOnce && !p.tty {
		s.closeStdin(p)
	}
}

// closeStdin ends a process's stdin (without a TTY; a TTY's input is the
// pty, which stays).
func (s *Server) closeStdin(p *pio) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.stdinOpen && !p.tty {
		p.stdinOpen = false
		p.stdinW.Close()
	}
}

func (s *Server) resize(p *pio, w, h uint16) error {
	s.mu.Lock()
	con := p.console
	s.mu.Unlock()
	if con == nil {
		return errors.New("container has no TTY")
	}
	return unix.IoctlSetWinsize(int(con.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: h, Col: w})
}

func (s *Server) kill(sig int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pid == 0 || s.exit != nil {
		return errNotRunning
	}
	if s.initExited {
		// Reaped: its exit is reported once its output is out. Nothing
		// to signal (and the PID may be another process's by now).
		return nil
	}
	// The shim is the init's reaper: until it reaps, the PID is the init's.
	return unix.Kill(s.pid, syscall.Signal(sig))
}

// running reports whether the init runs (started, not yet exited).
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid != 0 && s.exit == nil
}

// runcWhileRunning runs a runc command on the running container: stdin
// (may be nil) is its input; the error carries runc's message.
func (s *Server) runcWhileRunning(stdin *os.File, args ...string) error {
	if !s.running() {
		return errNotRunning
	}
	return s.runc(stdin, args...)
}

// runc runs the runtime once the container runs (the reaper takes its
// exit status); the error carries its message.
func (s *Server) runc(stdin *os.File, args ...string) error {
	_, err := s.runcOutput(stdin, args...)
	return err
}

// runcOutput runs the runtime and returns its output (stdout and stderr,
// the first 1 MiB).
func (s *Server) runcOutput(stdin *os.File, args ...string) ([]byte, error) {
	// Past the start (or its failure): the loop may run.
	s.reaper.run()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	out := make(chan []byte, 1)
	go func() {
		defer r.Close()
		b, _ := io.ReadAll(io.LimitReader(r, 1<<20))
		_, _ = io.Copy(io.Discard, r)
		out <- b
	}()
	cmd := newCmd(s.opts.Runtime, append([]string{"--root", s.opts.RuntimeRoot}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, w, w
	ch, err := s.reaper.start(cmd)
	w.Close()
	if err != nil {
		return nil, err
	}
	ws := <-ch
	_ = cmd.Process.Release()
	var b []byte
	select {
	case b = <-out:
	case <-time.After(time.Second):
	}
	if exitCode(ws) == 0 {
		return b, nil
	}
	msg := cleanRuncError(string(b))
	if msg == "" {
		msg = fmt.Sprintf("exit status %d", exitCode(ws))
	}
	return nil, fmt.Errorf("runc %s: %s", args[0], msg)
}

// newCmd is a command the reaper waits for.
func newCmd(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }

// update applies new cgroup limits (OCI LinuxResources) with `runc update`.
func (s *Server) update(resources []byte) error {
	f, err := os.CreateTemp(s.opts.StateDir, ".resources-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(resources); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return s.runcWhileRunning(f, "update", "--resources", "-", s.opts.ID)
}

// pids lists the processes of the container (`runc ps`).
func (s *Server) pids() ([]int, error) {
	if !s.running() {
		return nil, errNotRunning
	}
	out, err := s.runcOutput(nil, "ps", "--format", "json", s.opts.ID)
	if err != nil {
		return nil, err
	}
	var pids []int
	if err := json.Unmarshal(out, &pids); err != nil {
		return nil, fmt.Errorf("runc ps: %w", err)
	}
	return pids, nil
}

// reap waits for the container's init to exit (the reaper's loop reaps
// every orphan reparented to us meanwhile). It returns the init's exit
// status.
func (s *Server) reap() *ExitStatus {
	select {
	case <-s.startDone:
	case <-time.After(2 * time.Minute):
		// berthd spawned us but never asked for the start (it died).
		s.mu.Lock()
		if !s.started {
			s.started = true
			s.exit = &ExitStatus{ExitCode: 128, ExitedAt: time.Now().UTC(), Error: "container was never started"}
			s.mu.Unlock()
			return s.exit
		}
		s.mu.Unlock()
		<-s.startDone
	}
	s.mu.Lock()
	failed := s.exit
	pid := s.pid
	s.mu.Unlock()
	if failed != nil {
		return failed
	}
	ws := <-s.initExit
	s.mu.Lock()
	s.initExited = true
	s.mu.Unlock()
	return &ExitStatus{Pid: pid, ExitCode: exitCode(ws), ExitedAt: time.Now().UTC()}
}

// finish records the exit and tears everything down.
func (s *Server) finish(st *ExitStatus) {
	// The kernel kills the rest of the PID namespace with its init; the
	// output pipes close when the last writer is gone.
	s.waitOutput(s.io)
	if st.Error == "" {
		st.OOMKilled = oomKilled(s.opts.CgroupPaths)
	}
	b, _ := json.Marshal(st)
	_ = osutil.WriteFileAtomic(filepath.Join(s.opts.StateDir, ExitName), b)
	s.mu.Lock()
	s.exit = st
	waiters := s.waiters
	s.waiters = nil
	endOutputLocked(s.io)
	s.mu.Unlock()
	for _, w := range waiters {
		w <- st
	}
	// The execs died with the init's PID namespace; their waiters hear of
	// it (bounded, as above).
	s.endExecs(2 * time.Second)
	// The waiters (berthd) learn the exit now, before the clean-up below
	// and before this process exits, which would cut their connections;
	// so does the start request of a container that exited at once, and
	// attached clients get the last of the output.
	s.replies.wait(2 * time.Second)
	if s.logw != nil {
		_ = s.logw.Close()
	}
	if s.remote != nil {
		_ = s.remote.Close(2 * time.Second)
	}
	// Remove runc's state and the container's cgroups: by hand when that
	// is certain to be what `runc delete` would do, else by runc.
	if !removeRuncState(s.opts.RuntimeRoot, s.opts.ID) {
		_ = s.runc(nil, "delete", "--force", s.opts.ID)
	}
	s.ln.Close()
	s.replies.wait(2 * time.Second)
	s.drainStreams()
}

// inflight counts requests being answered. Unlike a sync.WaitGroup it may
// go up from zero while someone waits.
type inflight struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed when n drops to 0 while someone waits
}

func (f *inflight) add() {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
}

func (f *inflight) done() {
	f.mu.Lock()
	f.n--
	if f.n == 0 && f.zero != nil {
		close(f.zero)
		f.zero = nil
	}
	f.mu.Unlock()
}

// wait returns when no request is being answered (true), or after d.
func (f *inflight) wait(d time.Duration) bool {
	f.mu.Lock()
	if f.n == 0 {
		f.mu.Unlock()
		return true
	}
	if d <= 0 {
		f.mu.Unlock()
		return false
	}
	if f.zero == nil {
		f.zero = make(chan struct{})
	}
	ch := f.zero
	f.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// oomKilled reports whether the kernel's OOM killer acted in the
// container's memory cgroup (v1 memory.oom_control, v2 memory.events).
func oomKilled(paths []string) bool {
	for _, p := range paths {
		for _, f := range []string{"memory.events", "memory.oom_control"} {
			b, err := os.ReadFile(filepath.Join(p, f))
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				k, v, _ := strings.Cut(line, " ")
				if (k == "oom_kill") && strings.TrimSpace(v) != "0" {
					return true
				}
			}
		}
	}
	return false
}
