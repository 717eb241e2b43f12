package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"golang.org/x/term"
)

// This file holds what attach, run and exec share once a hijacked
// connection is up: copying the streams (raw with a TTY, stdcopy frames
// without), the local terminal in raw mode, the detach keys, terminal
// resizes and signal forwarding.

const defaultDetachKeys = "ctrl-p,ctrl-q"

// errDetached is returned when the user typed the detach key sequence.
var errDetached = errors.New("read escape sequence")

// parseDetachKeys turns "ctrl-p,ctrl-q" into the bytes the terminal sends.
// Each key is one character or ctrl-<a-z@[\]^_>.
func parseDetachKeys(keys string) ([]byte, error) {
	var out []byte
	for _, k := range strings.Split(keys, ",") {
		if len(k) > 1 {
			if len(k) != 6 || !strings.EqualFold(k[:5], "ctrl-") {
				return nil, fmt.Errorf("Unknown character: '%s'", k)
			}
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c >= 'A' && c <= 'Z':
				out = append(out, c-'A'+1)
			case c == '@':
				out = append(out, 0)
			case c >= '[' && c <= '_':
				out = append(out, c-'['+27)
			default:
				return nil, fmt.Errorf("Unknown character: '%s'", k)
			}
			continue
		}
		if k == "" {
			return nil, fmt.Errorf("Unknown character: '%s'", k)
		}
		out = append(out, k[0])
	}
	return out, nil
}

// escapeProxy passes input through until it sees the escape sequence, then
// returns errDetached. Bytes that start the sequence are held back until
// it is clear whether the sequence follows.
type escapeProxy struct {
	r        io.Reader
	keys     []byte
	matched  int
	detached bool
}

func newEscapeProxy(r io.Reader, keys []byte) io.Reader {
	if len(keys) == 0 {
		return r
	}
	return &escapeProxy{r: r, keys: keys}
}

func (e *escapeProxy) Read(p []byte) (int, error) {
	if e.detached {
		return 0, errDetached
	}
	buf := make([]byte, len(p))
	n, err := e.r.Read(buf)
	out := p[:0]
	for _, b := range buf[:n] {
		if b == e.keys[e.matched] {
			e.matched++
			if e.matched == len(e.keys) {
				// Hand over what came before the sequence; the next read
				// reports the detach.
				e.detached = true
				if len(out) == 0 {
					return 0, errDetached
				}
				return copy(p, out), nil
			}
			continue
		}
		if e.matched > 0 {
			out = append(out, e.keys[:e.matched]...)
			e.matched = 0
		}
		if b == e.keys[0] {
			e.matched = 1
			continue
		}
		out = append(out, b)
	}
	if len(out) > len(p) {
		// held-back keys plus new bytes overflow: keep the rest for later
		// (rare; only when a partial sequence is released)
		e.r = io.MultiReader(strings.NewReader(string(out[len(p):])), e.r)
		out = out[:len(p)]
	}
	return len(out), err
}

// streamOptions says which local streams take part in a hijacked session.
type streamOptions struct {
	in         io.Reader // nil: do not send input
	out, err   io.Writer // nil: discard
	tty        bool
	detachKeys string
}

// terminalState remembers the local terminal's mode to restore it.
type terminalState struct {
	fd    int
	state *term.State
}

// setRawTerminal puts the CLI's stdin in raw mode when it is a terminal
// and returns a function that restores it.
func (c *CLI) setRawTerminal() (restore func(), err error) {
	if !c.In.IsTerminal() {
		return func() {}, nil
	}
	fd := int(c.In.FD())
	st, err := term.MakeRaw(fd)
	if err != nil {
		return nil, err
	}
	ts := &terminalState{fd: fd, state: st}
	var once sync.Once
	return func() { once.Do(func() { _ = term.Restore(ts.fd, ts.state) }) }, nil
}

// holdHijackedConnection copies the streams of a hijacked connection until
// the daemon closes it, the input ends (then it half-closes and waits for
// the output), the user detaches, or ctx is done.
func (c *CLI) holdHijackedConnection(ctx context.Context, resp client.HijackedResponse, o streamOptions) error {
	var restore func()
	if o.tty && o.in != nil && c.In.IsTerminal() {
		r, err := c.setRawTerminal()
		if err != nil {
			return err
		}
		restore = r
		defer restore()
	}

	outputDone := make(chan error, 1)
	go func() {
		stdout, stderr := o.out, o.err
		if stdout == nil {
			stdout = io.Discard
		}
		if stderr == nil {
			stderr = io.Discard
		}
		var err error
		if o.tty {
			_, err = io.Copy(stdout, resp.Reader)
		} else {
			_, err = stdcopy.StdCopy(stdout, stderr, resp.Reader)
		}
		// Restore the terminal as soon as the container's output ends, so
		// that anything printed afterwards is not in raw mode.
		if restore != nil {
			restore()
		}
		if err != nil && isClosedConnErr(err) {
			err = nil
		}
		outputDone <- err
	}()

	inputDone := make(chan error, 1)
	if o.in != nil {
		go func() {
			in := o.in
			if o.tty {
				keys := o.detachKeys
				if keys == "" {
					keys = defaultDetachKeys
				}
				b, err := parseDetachKeys(keys)
				if err == nil {
					in = newEscapeProxy(in, b)
				}
			}
			_, err := io.Copy(resp.Conn, in)
			if errors.Is(err, errDetached) {
				inputDone <- err
				return
			}
			_ = resp.CloseWrite()
			inputDone <- nil
		}()
	}

	select {
	case err := <-outputDone:
		return err
	case err := <-inputDone:
		if errors.Is(err, errDetached) {
			return err
		}
		select {
		case err := <-outputDone:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

func isClosedConnErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)
}

// monitorTTYSize sends the terminal's size with resize now and again on
// every SIGWINCH, until ctx is done. A first resize that fails (the process
// may not be running yet) is retried a few times, as docker does.
func (c *CLI) monitorTTYSize(ctx context.Context, resize func(h, w uint) error) {
	size := func() (uint, uint, bool) {
		if !c.Out.IsTerminal() {
			return 0, 0, false
		}
		w, h, err := term.GetSize(int(c.Out.FD()))
		if err != nil || w == 0 || h == 0 {
			return 0, 0, false
		}
		return uint(h), uint(w), true
	}
	if h, w, ok := size(); ok {
		if err := resize(h, w); err != nil {
			go func() {
				for i := 0; i < 10; i++ {
					time.Sleep(time.Duration(i+1) * 10 * time.Millisecond)
					if resize(h, w) == nil {
						return
					}
				}
			}()
		}
	}
	sigwinch := make(chan os.Signal, 1)
	signal.Notify(sigwinch, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(sigwinch)
		var lastH, lastW uint
		for {
			select {
			case <-ctx.Done():
				return
			case <-sigwinch:
				if h, w, ok := size(); ok && (h != lastH || w != lastW) {
					lastH, lastW = h, w
					_ = resize(h, w)
				}
			}
		}
	}()
}

// initialConsoleSize is the terminal's size for ConsoleSize in create and
// exec requests, or zeros when stdout is not a terminal.
func (c *CLI) initialConsoleSize() [2]uint {
	if !c.Out.IsTerminal() {
		return [2]uint{}
	}
	w, h, err := term.GetSize(int(c.Out.FD()))
	if err != nil {
		return [2]uint{}
	}
	return [2]uint{uint(h), uint(w)}
}

// keepSignals makes SIGINT and SIGTERM leave the command running (main
// does not cancel it) until release is called: an attached run, start -a
// or attach only ends with the container, or with three signals, as
// docker's do.
func (c *CLI) keepSignals() (release func()) {
	c.proxying.Add(1)
	var once sync.Once
	return func() { once.Do(func() { c.proxying.Add(-1) }) }
}

// forwardSignals sends every signal the CLI receives to the container,
// until ctx is done. SIGCHLD, SIGPIPE, SIGURG and SIGWINCH stay local.
func (c *CLI) forwardSignals(ctx context.Context, cl *client.Client, id string) {
	sigc := make(chan os.Signal, 128)
	signal.Notify(sigc)
	c.proxying.Add(1)
	go func() {
		defer func() {
			signal.Stop(sigc)
			c.proxying.Add(-1)
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sigc:
				sig, ok := s.(syscall.Signal)
				if !ok {
					continue
				}
				switch sig {
				case syscall.SIGCHLD, syscall.SIGPIPE, syscall.SIGURG, syscall.SIGWINCH:
					continue
				}
				name := signalName(sig)
				if name == "" {
					continue
				}
				if _, err := cl.ContainerKill(context.WithoutCancel(ctx), id, client.ContainerKillOptions{Signal: name}); err != nil {
					fmt.Fprintf(c.Err, "error sending signal: %v\n", err)
				}
			}
		}
	}()
}

// signalName is the name the API takes for sig ("INT", "TERM"), or its
// number when it has no name.
func signalName(sig syscall.Signal) string {
	for name, s := range signalMap {
		if s == sig {
			return name
		}
	}
	return fmt.Sprintf("%d", int(sig))
}

var signalMap = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "BUS": syscall.SIGBUS, "CHLD": syscall.SIGCHLD,
	"CONT": syscall.SIGCONT, "FPE": syscall.SIGFPE, "HUP": syscall.SIGHUP, "ILL": syscall.SIGILL,
	"INT": syscall.SIGINT, "IO": syscall.SIGIO, "KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE,
	"PROF": syscall.SIGPROF, "PWR": syscall.SIGPWR, "QUIT": syscall.SIGQUIT, "SEGV": syscall.SIGSEGV,
	"STKFLT": syscall.SIGSTKFLT, "STOP": syscall.SIGSTOP, "SYS": syscall.SIGSYS, "TERM": syscall.SIGTERM,
	"TRAP": syscall.SIGTRAP, "TSTP": syscall.SIGTSTP, "TTIN": syscall.SIGTTIN, "TTOU": syscall.SIGTTOU,
	"URG": syscall.SIGURG, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "VTALRM": syscall.SIGVTALRM,
	"WINCH": syscall.SIGWINCH, "XCPU": syscall.SIGXCPU, "XFSZ": syscall.SIGXFSZ,
}
