package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth/berth/internal/osutil"
)

// execProc is one exec process of the container. It runs under the shim
// (`runc exec --detach` hands it to the shim, a child subreaper), so it
// outlives berthd as the container does. Fields past io are guarded by
// Server.mu.
type execProc struct {
	id       string
	io       *pio
	meta     []byte
	procPath string // the OCI process, for runc exec --process
	seq      int    // creation order

	size    *unix.Winsize // the TTY size, applied when the TTY exists
	started bool
	pid     int
	exit    *ExitStatus
	reaped  bool // its exit status is collected: the PID is no longer its
	waiters []chan *ExitStatus
	done    chan struct{} // closed when exit is set
}

// maxEndedExecs bounds the exec processes kept after they ended (for a
// restarted berthd to learn their exit codes): health probes run one
// every few seconds for the life of a container.
const maxEndedExecs = 64

// handleExec serves a request addressed to an exec process.
func (s *Server) handleExec(c net.Conn, r *bufio.Reader, req Request) {
	if req.Op == "exec" {
		reply(c, errResponse(s.newExec(req)))
		c.Close()
		return
	}
	s.mu.Lock()
	e := s.execs[req.Exec]
	s.mu.Unlock()
	if e == nil {
		reply(c, Response{Error: "no such exec: " + req.Exec})
		c.Close()
		return
	}
	switch req.Op {
	case "start":
		pid, err := s.startExec(e)
		resp := errResponse(err)
		resp.Pid = pid
		var se *StartError
		if errors.As(err, &se) {
			resp.Kind = se.Kind
		}
		reply(c, resp)
		c.Close()
	case "attach":
		s.attach(e.io, c, r, req)
	case "resize":
		reply(c, errResponse(s.resizeExec(e, req.Width, req.Height)))
		c.Close()
	case "kill":
		reply(c, errResponse(s.killExec(e, req.Signal)))
		c.Close()
	case "closeio":
		s.closeStdin(e.io)
		reply(c, Response{})
		c.Close()
	case "wait":
		ch := make(chan *ExitStatus, 1)
		s.mu.Lock()
		registered := e.exit == nil
		if registered {
			e.waiters = append(e.waiters, ch)
			s.replies.add()
		} else {
			ch <- e.exit
		}
		s.mu.Unlock()
		st := <-ch
		reply(c, Response{Exit: st, Pid: st.Pid})
		c.Close()
		if registered {
			s.replies.done()
		}
	default:
		reply(c, Response{Error: "unknown op " + req.Op + " for an exec"})
		c.Close()
	}
}

// newExec prepares an exec process: its stdio and its OCI process file.
func (s *Server) newExec(req Request) error {
	if strings.ContainsAny(req.Exec, "/.") || len(req.Exec) > 128 {
		return fmt.Errorf("bad exec ID %q", req.Exec)
	}
	var proc struct {
		Terminal bool `json:"terminal"`
	}
	if err := json.Unmarshal(req.Process, &proc); err != nil {
		return fmt.Errorf("exec process: %w", err)
	}
	s.mu.Lock()
	_, dup := s.execs[req.Exec]
	running := s.pid != 0 && s.exit == nil
	s.mu.Unlock()
	if dup {
		return fmt.Errorf("exec %s exists", req.Exec)
	}
	if !running {
		return errNotRunning
	}
	p, err := newPio(proc.Terminal, req.Stdin, true)
	if err != nil {
		return err
	}
	e := &execProc{id: req.Exec, io: p, meta: req.Meta, done: make(chan struct{}),
		procPath: filepath.Join(s.opts.StateDir, "exec-"+req.Exec+".json")}
	if req.Width != 0 || req.Height != 0 {
		e.size = &unix.Winsize{Row: req.Height, Col: req.Width}
	}
	if err := osutil.ReplaceFile(e.procPath, req.Process); err != nil {
		p.closeFds()
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.execs[req.Exec]; dup {
		p.closeFds()
		return fmt.Errorf("exec %s exists", req.Exec)
	}
	s.execSeq++
	e.seq = s.execSeq
	s.execs[e.id] = e
	s.pruneExecsLocked()
	return nil
}

// pruneExecsLocked forgets the oldest ended execs past maxEndedExecs.
func (s *Server) pruneExecsLocked() {
	var ended []*execProc
	for _, e := range s.execs {
		if e.exit != nil {
			ended = append(ended, e)
		}
	}
	if len(ended) <= maxEndedExecs {
		return
	}
	sort.Slice(ended, func(i, j int) bool { return ended[i].seq < ended[j].seq })
	for _, e := range ended[:len(ended)-maxEndedExecs] {
		delete(s.execs, e.id)
	}
}

// startExec runs an exec with `runc exec --detach`: runc hands the process
// to the shim and exits. Its refusal (no such executable...) is a
// *StartError and the exec's exit status (126, as Docker's).
func (s *Server) startExec(e *execProc) (int, error) {
	s.mu.Lock()
	if e.started {
		s.mu.Unlock()
		return 0, errors.New("exec already started")
	}
	running := s.pid != 0 && s.exit == nil
	e.started = true
	s.mu.Unlock()
	defer close(e.io.startDone)
	if !running {
		s.endExec(e, &ExitStatus{ExitCode: 126, ExitedAt: time.Now().UTC(), Error: errNotRunning.Error()})
		return 0, errNotRunning
	}
	s.reaper.run()
	base := filepath.Join(s.opts.StateDir, "exec-"+e.id)
	pidFile, logFile := base+".pid", base+".log"
	defer os.Remove(logFile)
	args := []string{"--root", s.opts.RuntimeRoot, "--log", logFile, "--log-format", "json",
		"exec", "--detach", "--process", e.procPath, "--pid-file", pidFile}
	var consoleLn *net.UnixListener
	var console *os.File
	var consoleErr error
	consoleDone := make(chan struct{})
	if e.io.tty {
		// Short: a unix socket path is limited to 108 bytes.
		sock := filepath.Join(s.opts.StateDir, "e"+strconv.Itoa(e.seq)+".sock")
		_ = os.Remove(sock)
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			return 0, s.failExec(e, err)
		}
		consoleLn = l
		defer func() { l.Close(); os.Remove(sock) }()
		args = append(args, "--console-socket", sock)
		go func() {
			defer close(consoleDone)
			console, consoleErr = osutil.ReceiveConsole(consoleLn, 30*time.Second)
		}()
	} else {
		close(consoleDone)
	}
	args = append(args, s.opts.ID)
	cmd := newCmd(s.opts.Runtime, args...)
	if !e.io.tty {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = e.io.ctrFds[0], e.io.ctrFds[1], e.io.ctrFds[2]
	}
	ch, err := s.reaper.start(cmd)
	if err != nil {
		if consoleLn != nil {
			consoleLn.Close()
			<-consoleDone
		}
		return 0, s.failExec(e, err)
	}
	ws := <-ch
	_ = cmd.Process.Release()
	if code := exitCode(ws); code != 0 {
		if consoleLn != nil {
			consoleLn.Close()
			<-consoleDone
		}
		msg := runcLogError(logFile)
		if !e.io.tty {
			if m := drainRuncError(e.io); msg == "" {
				msg = m
			}
		}
		if msg == "" {
			msg = fmt.Sprintf("runc exec: exit status %d", code)
		}
		return 0, s.failExec(e, &StartError{Msg: msg, Kind: runcStartKind(msg)})
	}
	<-consoleDone
	if consoleErr != nil {
		// The process runs without a way to reach its TTY: end it.
		if pid := readPid(pidFile); pid > 0 {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		return 0, s.failExec(e, consoleErr)
	}
	e.io.closeFds()
	pid := readPid(pidFile)
	os.Remove(pidFile)
	os.Remove(e.procPath)
	if pid <= 0 {
		return 0, s.failExec(e, errors.New("runc exec wrote no PID"))
	}
	exited := s.reaper.claim(pid)
	s.mu.Lock()
	e.pid = pid
	if console != nil {
		e.io.console = console
		e.io.stdinW = console
		e.io.stdinOpen = true
		if e.size != nil {
			_ = unix.IoctlSetWinsize(int(console.Fd()), unix.TIOCSWINSZ, e.size)
		}
	}
	s.mu.Unlock()
	s.startIO(e.io, false)
	go s.waitExec(e, exited)
	return pid, nil
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// runcLogError is the last error runc wrote to its JSON log.
func runcLogError(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	msg := ""
	for _, line := range strings.Split(string(b), "\n") {
		var l struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &l) == nil && (l.Level == "error" || l.Level == "fatal") && l.Msg != "" {
			msg = l.Msg
		}
	}
	return msg
}

// failExec records an exec that never ran: exit code 126, as dockerd's.
func (s *Server) failExec(e *execProc, err error) error {
	os.Remove(e.procPath)
	s.endExec(e, &ExitStatus{ExitCode: 126, ExitedAt: time.Now().UTC(), Error: err.Error()})
	return err
}

// waitExec waits for a running exec's exit and its output's end.
func (s *Server) waitExec(e *execProc, exited <-chan unix.WaitStatus) {
	ws := <-exited
	s.mu.Lock()
	e.reaped = true
	s.mu.Unlock()
	st := &ExitStatus{Pid: e.pid, ExitCode: exitCode(ws), ExitedAt: time.Now().UTC()}
	// Its output ends with it, unless something it started holds the
	// pipes: bounded, as the init's.
	s.waitOutput(e.io)
	s.endExec(e, st)
}

// endExec records an exec's end: its waiters hear of it, its attached
// clients' streams end, its files close.
func (s *Server) endExec(e *execProc, st *ExitStatus) {
	s.mu.Lock()
	if e.exit != nil {
		s.mu.Unlock()
		return
	}
	e.exit = st
	waiters := e.waiters
	e.waiters = nil
	endOutputLocked(e.io)
	if e.io.stdinOpen && e.io.stdinW != nil && !e.io.tty {
		e.io.stdinOpen = false
		e.io.stdinW.Close()
	}
	console := e.io.console
	e.io.closeFds()
	s.pruneExecsLocked()
	s.mu.Unlock()
	close(e.done)
	for _, w := range waiters {
		w <- st
	}
	if console != nil {
		console.Close()
	}
	for _, f := range []*os.File{e.io.outR, e.io.errR} {
		if f != nil {
			f.Close()
		}
	}
}

func (s *Server) resizeExec(e *execProc, w, h uint16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !e.io.tty {
		return errors.New("exec has no TTY")
	}
	e.size = &unix.Winsize{Row: h, Col: w}
	if e.io.console == nil {
		return nil // applied when the TTY exists
	}
	return unix.IoctlSetWinsize(int(e.io.console.Fd()), unix.TIOCSWINSZ, e.size)
}

func (s *Server) killExec(e *execProc, sig int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.pid == 0 || e.exit != nil {
		return errNotRunning
	}
	if e.reaped {
		// Its exit is reported once its output is out; its PID may be
		// another process's by now.
		return nil
	}
	return unix.Kill(e.pid, syscall.Signal(sig))
}

// execList describes every exec the shim knows of, oldest first.
func (s *Server) execList() []ExecInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := make([]*execProc, 0, len(s.execs))
	for _, e := range s.execs {
		all = append(all, e)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].seq < all[j].seq })
	out := make([]ExecInfo, 0, len(all))
	for _, e := range all {
		out = append(out, ExecInfo{ID: e.id, Pid: e.pid, Started: e.started, Exit: e.exit, Meta: e.meta})
	}
	return out
}

// endExecs is called once the init has exited: the kernel has killed the
// rest of its PID namespace, so the running execs' exits come in; execs
// never started end now. It waits at most d for them.
func (s *Server) endExecs(d time.Duration) {
	s.mu.Lock()
	var running []*execProc
	var never []*execProc
	for _, e := range s.execs {
		switch {
		case e.exit != nil:
		case e.started:
			running = append(running, e)
		default:
			e.started = true
			never = append(never, e)
		}
	}
	s.mu.Unlock()
	for _, e := range never {
		close(e.io.startDone)
		s.endExec(e, &ExitStatus{ExitCode: 126, ExitedAt: time.Now().UTC(), Error: errNotRunning.Error()})
	}
	deadline := time.After(d)
	for _, e := range running {
		select {
		case <-e.done:
		case <-deadline:
			// Outside the init's PID namespace (--pid=host): end it.
			s.mu.Lock()
			pid := e.pid
			s.mu.Unlock()
			if pid > 0 {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
	}
}
