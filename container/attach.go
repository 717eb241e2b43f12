package container

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth/berth/container/logger"
	"github.com/berth/berth/internal/stdcopy"
	"github.com/berth/berth/runtime"
)

// AttachOptions are POST /containers/{id}/attach's parameters.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
	Stream, Logs          bool
	DetachKeys            []byte
}

// Stream is a hijacked client connection.
type Stream interface {
	io.ReadWriteCloser
}

// pendingAttach is an attach that waits for the container to start. It is
// registered before the client is told the stream is open, so a start the
// client sends after that answer always finds it.
type pendingAttach struct {
	c    *Container
	opts AttachOptions
	tty  bool
	done chan struct{}
	once sync.Once

	// conn is set before ready is closed: the client's stream, open and
	// past any log replay. ready is never closed if opening failed.
	conn  Stream
	ready chan struct{}
}

func (p *pendingAttach) finish() { p.once.Do(func() { close(p.done) }) }

// connect subscribes to the shim's output now (the shim holds what comes
// before the client's stream is ready) and relays it once it is.
func (p *pendingAttach) connect(ctx context.Context, t runtime.Task) {
	a, err := t.Attach(ctx, runtime.AttachOptions{Stdin: p.opts.Stdin, Stdout: p.opts.Stdout, Stderr: p.opts.Stderr})
	if err != nil {
		p.fail()
		return
	}
	go func() {
		select {
		case <-p.ready:
		case <-p.done: // the client never got its stream
			a.Close()
			return
		}
		relay(p.conn, a, p.tty, p.opts)
		p.finish()
	}()
}

func (p *pendingAttach) fail() {
	select {
	case <-p.ready:
		p.conn.Close()
	default:
	}
	p.finish()
}

// ParseDetachKeys reads Docker's detach key syntax: "ctrl-p,ctrl-q", "a".
func ParseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(strings.ToLower(k))
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c == '@':
				out = append(out, 0)
			case c == '[':
				out = append(out, 27)
			case c == '\\':
				out = append(out, 28)
			case c == ']':
				out = append(out, 29)
			case c == '^':
				out = append(out, 30)
			case c == '_':
				out = append(out, 31)
			default:
				return nil, cerrdefs.ErrInvalidArgument.WithMessage("Invalid detach keys (" + s + ") provided")
			}
		default:
			return nil, cerrdefs.ErrInvalidArgument.WithMessage("Invalid detach keys (" + s + ") provided")
		}
	}
	return out, nil
}

// DefaultDetachKeys is ctrl-p ctrl-q.
var DefaultDetachKeys = []byte{16, 17}

// Attach connects a client stream to a container's stdio. open hijacks the
// client's connection (answering 101); it is called once the attach is in
// place, so that whatever the client does next (start the container)
// cannot outrun it. Errors returned before open was called are the
// client's answer; after it, Attach returns when the stream ends: the
// container exited, the client went away or detached.
func (s *Service) Attach(ctx context.Context, idOrName string, o AttachOptions, open func() (Stream, error)) error {
	c, err := s.Get(idOrName)
	if err != nil {
		return err
	}
	c.mu.Lock()
	tty := c.Config.Tty
	running := c.State.Running
	lp, _ := s.logSetup(c)
	c.mu.Unlock()
	replayLogs := func(conn Stream) {
		if !o.Logs || lp.Path == "" {
			return
		}
		_ = logger.Read(ctx, lp.Path, lp.Limits.MaxFiles, logger.ReadOptions{Tail: -1, Format: lp.Format}, func(e logger.Entry) error {
			if (e.Stream == "stdout" && !o.Stdout) || (e.Stream == "stderr" && !o.Stderr) {
				return nil
			}
			return writeOut(conn, e.Stream, []byte(e.Log), tty)
		})
	}
	if !o.Stream {
		conn, err := open()
		if err != nil {
			return err
		}
		replayLogs(conn)
		return conn.Close()
	}
	if o.DetachKeys == nil && o.Stdin {
		o.DetachKeys = DefaultDetachKeys
	}
	if running {
		// As dockerd: the log so far, then the live output.
		conn, err := open()
		if err != nil {
			return err
		}
		replayLogs(conn)
		s.emit(c, "attach", nil)
		a, err := s.task(c).Attach(ctx, runtime.AttachOptions{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr})
		if err != nil {
			conn.Close()
			return cerrdefs.ErrConflict.WithMessage("container is not running")
		}
		relay(conn, a, tty, o)
		return nil
	}
	p := &pendingAttach{c: c, opts: o, tty: tty, done: make(chan struct{}), ready: make(chan struct{})}
	c.mu.Lock()
	c.pending = append(c.pending, p)
	changed := c.changed
	c.mu.Unlock()
	conn, err := open()
	if err != nil {
		p.finish() // a start meanwhile drops its subscription
		c.mu.Lock()
		c.pending = slices.DeleteFunc(c.pending, func(q *pendingAttach) bool { return q == p })
		c.mu.Unlock()
		return err
	}
	s.emit(c, "attach", nil)
	replayLogs(conn)
	p.conn = conn
	close(p.ready)
	// Until the start, end the stream if the container is removed.
	for {
		select {
		case <-p.done:
			return nil
		case <-changed:
			c.mu.Lock()
			removed := c.removed
			changed = c.changed
			c.mu.Unlock()
			if removed {
				p.fail()
				return nil
			}
		case <-ctx.Done():
			p.fail()
			return nil
		}
	}
}

func writeOut(w io.Writer, stream string, data []byte, tty bool) error {
	if tty {
		_, err := w.Write(data)
		return err
	}
	id := stdcopy.Stdout
	if stream == "stderr" {
		id = stdcopy.Stderr
	}
	return stdcopy.WriteFrame(w, id, data)
}

// relay copies the shim's output frames to the client (stdcopy frames
// without a TTY, raw bytes with one) and the client's input to the shim,
// until the container's streams end or the client detaches.
func relay(client Stream, a runtime.Stream, tty bool, o AttachOptions) {
	defer client.Close()
	relayStreams(client, a, tty, o)
}

// relayStreams is relay without closing the client's stream. It tells
// whether the client detached (with the detach keys).
func relayStreams(client Stream, a runtime.Stream, tty bool, o AttachOptions) (detachedByKeys bool) {
	defer a.Close()
	detached := make(chan struct{})
	if o.Stdin {
		go func() {
			copyStdin(a, client, o.DetachKeys, detached)
		}()
	}
	buf := make([]byte, 32*1024)
	for {
		stream, data, err := a.ReadFrame(buf)
		if err != nil {
			select {
			case <-detached:
				return true
			default:
				return false
			}
		}
		if tty {
			_, err = client.Write(data)
		} else {
			err = stdcopy.WriteFrame(client, stream, data)
		}
		if err != nil {
			// The client is gone; the container carries on.
			select {
			case <-detached:
				return true
			default:
				return false
			}
		}
		select {
		case <-detached:
			return true
		default:
		}
	}
}

// copyStdin forwards client input, watching for the detach sequence.
func copyStdin(a runtime.Stream, client Stream, keys []byte, detached chan struct{}) {
	buf := make([]byte, 32*1024)
	matched := 0
	for {
		n, err := client.Read(buf)
		if n > 0 {
			data := buf[:n]
			if len(keys) > 0 {
				out := make([]byte, 0, n)
				for _, b := range data {
					if b == keys[matched] {
						matched++
						if matched == len(keys) {
							close(detached)
							a.Close()
							client.Close()
							return
						}
						continue
					}
					if matched > 0 {
						out = append(out, keys[:matched]...)
						matched = 0
					}
					if b == keys[0] {
						matched = 1
						continue
					}
					out = append(out, b)
				}
				data = out
			}
			if len(data) > 0 {
				if _, werr := a.Write(data); werr != nil {
					return
				}
			}
		}
		if err != nil {
			// End of client input: end the container's stdin.
			_ = a.CloseWrite()
			return
		}
	}
}

// Resize sets the container's TTY size.
func (s *Service) Resize(ctx context.Context, idOrName string, h, w uint16) error {
	c, err := s.Get(idOrName)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running, tty := c.State.Running, c.Config.Tty
	c.mu.Unlock()
	if !running {
		return cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is not running", c.ID))
	}
	if !tty {
		// No terminal to size: a no-op, as dockerd answers it (200).
		return nil
	}
	return s.task(c).Resize(ctx, w, h)
}
