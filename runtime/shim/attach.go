package shim

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth/berth/internal/stdcopy"
)

// Attached clients get all of a process's output, however slowly they read
// (issue 13 item 7). As dockerd's attach (a bytespipe per client that
// blocks its writer past 1e6 bytes), a client that falls behind holds the
// process back: its output pump stops reading, the pipe fills and the
// process waits in write(2). Nothing is dropped, and nothing grows without
// bound. The log is written by the same pump, so it waits too, as
// dockerd's log copier, fed by the same broadcaster, does.

// subscriberLimit is what one attached client may have queued before the
// process's output waits for it.
const subscriberLimit = 1 << 20

// streamStall bounds how long an exited container's shim keeps a stream
// that writes nothing: a client that stopped reading for that long is left.
const streamStall = 30 * time.Second

type frame struct {
	stream byte
	data   []byte
}

// subscriber is one attached client. Its fields are guarded by Server.mu;
// cond (on Server.mu) is broadcast on every change a waiter may wait for.
type subscriber struct {
	stdout, stderr bool
	cond           *sync.Cond
	q              []frame
	qBytes         int
	// ended: no more frames come, the stream writes what is queued and
	// ends. gone: the stream ended (the client went away).
	ended, gone bool
}

func (sub *subscriber) wants(stream byte) bool {
	return !(stream == StreamStdout && !sub.stdout) && !(stream == StreamStderr && !sub.stderr)
}

// broadcast queues data for every subscriber of p that wants stream, then
// waits while one of them has more than subscriberLimit queued.
func (s *Server) broadcast(p *pio, stream byte, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(p.subs) == 0 {
		return
	}
	var f frame
	var full []*subscriber
	for sub := range p.subs {
		if !sub.wants(stream) {
			continue
		}
		if f.data == nil {
			f = frame{stream: stream, data: append([]byte(nil), data...)}
		}
		sub.q = append(sub.q, f)
		sub.qBytes += len(f.data)
		sub.cond.Broadcast()
		if sub.qBytes >= subscriberLimit {
			full = append(full, sub)
		}
	}
	for _, sub := range full {
		if sub.qBytes < subscriberLimit || sub.ended || sub.gone {
			continue
		}
		p.stalls++
		p.blocked++
		for sub.qBytes >= subscriberLimit && !sub.ended && !sub.gone {
			sub.cond.Wait()
		}
		p.blocked--
	}
}

// endOutputLocked ends every subscriber of p: its output is over. Each
// stream still writes what it has queued. Call with s.mu held.
func endOutputLocked(p *pio) {
	p.ended = true
	for sub := range p.subs {
		delete(p.subs, sub)
		sub.ended = true
		sub.cond.Broadcast()
	}
}

func (s *Server) attach(p *pio, c net.Conn, r *bufio.Reader, req Request) {
	sub := &subscriber{cond: sync.NewCond(&s.mu), stdout: req.Stdout, stderr: req.Stderr}
	s.mu.Lock()
	ended := p.ended
	if !ended {
		p.subs[sub] = struct{}{}
		// What it still holds when the container exits is delivered
		// before the shim ends (see finish).
		s.streams.add()
	}
	s.mu.Unlock()
	reply(c, Response{})
	if ended {
		c.Close()
		return
	}
	defer s.streams.done()
	if req.Stdin {
		go s.copyStdin(p, r)
	}
	s.writeFrames(p, sub, c)
	c.Close()
	if testHookAttachEnded != nil {
		testHookAttachEnded()
	}
}

// writeFrames writes sub's frames to c until its output ends or c fails.
func (s *Server) writeFrames(p *pio, sub *subscriber, c net.Conn) {
	w := bufio.NewWriterSize(c, 64<<10)
	var batch []frame
	s.mu.Lock()
	for {
		for len(sub.q) == 0 && !sub.ended {
			sub.cond.Wait()
		}
		if len(sub.q) == 0 {
			break
		}
		// Everything queued (up to 256 KiB) in one go: a chatty process's
		// small writes do not cost a system call each.
		batch = batch[:0]
		n := 0
		for len(sub.q) > 0 && n < 256<<10 {
			f := sub.q[0]
			sub.q[0] = frame{}
			sub.q = sub.q[1:]
			batch = append(batch, f)
			n += len(f.data)
		}
		wasFull := sub.qBytes >= subscriberLimit
		sub.qBytes -= n
		if wasFull && sub.qBytes < subscriberLimit {
			sub.cond.Broadcast()
		}
		s.mu.Unlock()
		var err error
		for _, f := range batch {
			if err = stdcopy.WriteFrame(w, f.stream, f.data); err != nil {
				break
			}
		}
		if err == nil {
			err = w.Flush()
		}
		clear(batch)
		s.mu.Lock()
		if err != nil {
			break
		}
		p.delivered += int64(n)
		s.delivered += int64(n)
	}
	sub.gone = true
	sub.q, sub.qBytes = nil, 0
	delete(p.subs, sub)
	sub.cond.Broadcast()
	s.mu.Unlock()
}

// waitOutput waits, once a process has exited, for the end of its output:
// its pipes close when the last writer is gone. Bounded, in case something
// outside its PID namespace holds them: 2 s, and longer only as long as
// an attached client that reads is what holds the output back.
func (s *Server) waitOutput(p *pio) {
	done := make(chan struct{})
	go func() { p.ioDone.Wait(); close(done) }()
	s.mu.Lock()
	stalls, delivered := p.stalls, p.delivered
	s.mu.Unlock()
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		s.mu.Lock()
		held := p.stalls > stalls || p.blocked > 0
		moved := p.delivered > delivered
		stalls, delivered = p.stalls, p.delivered
		s.mu.Unlock()
		if !held || !moved {
			return
		}
		t.Reset(2 * time.Second)
	}
}

// drainStreams waits, at the very end, until every attached client has
// been written all it was queued, as long as they read (a stream that
// writes nothing for streamStall is left). Before that, the shim withdraws
// its PID file: it holds nothing of the container any more, and a new start
// of it need not wait for a slow reader of the last run.
func (s *Server) drainStreams() {
	if s.streams.wait(0) {
		return
	}
	pidFile := filepath.Join(s.opts.StateDir, ShimPidName)
	if b, err := os.ReadFile(pidFile); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 && f[0] == strconv.Itoa(os.Getpid()) {
			_ = os.Remove(pidFile)
		}
	}
	s.mu.Lock()
	last := s.delivered
	s.mu.Unlock()
	lastMoved := time.Now()
	for !s.streams.wait(2 * time.Second) {
		s.mu.Lock()
		d := s.delivered
		s.mu.Unlock()
		if d != last {
			last, lastMoved = d, time.Now()
		} else if time.Since(lastMoved) >= streamStall {
			return
		}
	}
}
