package container

import (
	"context"
	"encoding/binary"
	"io"
	"sync"

	"github.com/berth/berth/container/logger"
	"github.com/berth/berth/errdefs"
	"github.com/berth/berth/runtime/shim"
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

type closeWriter interface{ CloseWrite() error }

// pendingAttach is an attach that waits for the container to start.
type pendingAttach struct {
	c    *Container
	opts AttachOptions
	conn Stream
	tty  bool
	done chan struct{}
	once sync.Once
}

func (p *pendingAttach) finish() { p.once.Do(func() { close(p.done) }) }

func (p *pendingAttach) connect(ctx context.Context, cl shim.Client) {
	a, err := cl.Attach(ctx, p.opts.Stdin, p.opts.Stdout, p.opts.Stderr)
	if err != nil {
		p.fail()
		return
	}
	go func() {
		relay(p.conn, a, p.tty, p.opts)
		p.finish()
	}()
}

func (p *pendingAttach) fail() {
	p.conn.Close()
	p.finish()
}

// DefaultDetachKeys is ctrl-p ctrl-q.
var DefaultDetachKeys = []byte{16, 17}

// Attach connects a client stream to a container's stdio. It returns when
// the stream ends: the container exited, the client went away or detached.
func (s *Service) Attach(ctx context.Context, idOrName string, o AttachOptions, conn Stream) error {
	c, err := s.Get(idOrName)
	if err != nil {
		return err
	}
	c.mu.Lock()
	tty := c.Config.Tty
	running := c.State.Running
	logPath := c.LogPath
	c.mu.Unlock()
	if o.Logs {
		_ = logger.Read(ctx, logPath, 1, logger.ReadOptions{Tail: -1}, func(e logger.Entry) error {
			if (e.Stream == "stdout" && !o.Stdout) || (e.Stream == "stderr" && !o.Stderr) {
				return nil
			}
			return writeOut(conn, e.Stream, []byte(e.Log), tty)
		})
	}
	if !o.Stream {
		return conn.Close()
	}
	s.emit(c, "attach", nil)
	if o.DetachKeys == nil && o.Stdin {
		o.DetachKeys = DefaultDetachKeys
	}
	if running {
		a, err := s.shimClient(c).Attach(ctx, o.Stdin, o.Stdout, o.Stderr)
		if err != nil {
			conn.Close()
			return errdefs.Conflict("container is not running")
		}
		relay(conn, a, tty, o)
		return nil
	}
	p := &pendingAttach{c: c, opts: o, conn: conn, tty: tty, done: make(chan struct{})}
	c.mu.Lock()
	c.pending = append(c.pending, p)
	changed := c.changed
	c.mu.Unlock()
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
	var id byte = 1
	if stream == "stderr" {
		id = 2
	}
	hdr := make([]byte, 8, 8+len(data))
	hdr[0] = id
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(data)))
	_, err := w.Write(append(hdr, data...))
	return err
}

// relay copies the shim's output frames to the client (stdcopy frames
// without a TTY, raw bytes with one) and the client's input to the shim,
// until the container's streams end or the client detaches.
func relay(client Stream, a *shim.AttachConn, tty bool, o AttachOptions) {
	defer client.Close()
	defer a.Close()
	detached := make(chan struct{})
	if o.Stdin {
		go func() {
			copyStdin(a, client, o.DetachKeys, detached)
		}()
	}
	buf := make([]byte, 32*1024)
	var hdr [8]byte
	for {
		stream, data, err := a.ReadFrame(buf)
		if err != nil {
			return
		}
		if tty {
			_, err = client.Write(data)
		} else {
			hdr[0] = stream
			binary.BigEndian.PutUint32(hdr[4:], uint32(len(data)))
			if _, err = client.Write(hdr[:]); err == nil {
				_, err = client.Write(data)
			}
		}
		if err != nil {
			// The client is gone; the container carries on.
			return
		}
		select {
		case <-detached:
			return
		default:
		}
	}
}

// copyStdin forwards client input, watching for the detach sequence.
func copyStdin(a *shim.AttachConn, client Stream, keys []byte, detached chan struct{}) {
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
