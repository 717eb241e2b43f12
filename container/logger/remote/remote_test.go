package remote

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth/berth/container/logger"
)

// stuck is an endpoint that takes one entry and then never answers.
type stuck struct {
	got     atomic.Int64
	release chan struct{}
}

func (s *stuck) Send(logger.Entry) error {
	s.got.Add(1)
	<-s.release
	return nil
}

func (s *stuck) Close() error { return nil }

// TestQueueNeverBlocks: an endpoint that stops answering never holds up
// the writer: past the buffer entries are dropped and counted, and Close
// gives up after its bound.
func TestQueueNeverBlocks(t *testing.T) {
	s := &stuck{release: make(chan struct{})}
	defer close(s.release)
	var reports atomic.Int64
	q := NewQueue(s, 1000, func(string) { reports.Add(1) })
	start := time.Now()
	for i := 0; i < 10000; i++ {
		q.Log(logger.Entry{Log: "0123456789012345678901234567890123456789\n", Stream: "stdout", Time: time.Now()})
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("10000 entries to a stuck endpoint took %v", d)
	}
	if n := q.Dropped(); n < 9000 {
		t.Errorf("dropped %d entries, want most of 10000 (buffer 1000 bytes)", n)
	}
	if reports.Load() == 0 {
		t.Errorf("dropping was not reported")
	}
	start = time.Now()
	_ = q.Close(200 * time.Millisecond)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close waited %v for a stuck endpoint", d)
	}
}

// counting takes every entry at once.
type counting struct{ n atomic.Int64 }

func (c *counting) Send(logger.Entry) error { c.n.Add(1); return nil }
func (c *counting) Close() error            { return nil }

// TestQueueDelivers: with a live endpoint everything arrives, in order,
// before Close returns.
func TestQueueDelivers(t *testing.T) {
	c := &counting{}
	q := NewQueue(c, 1<<20, nil)
	for i := 0; i < 1000; i++ {
		q.Log(logger.Entry{Log: "x\n", Stream: "stdout"})
	}
	_ = q.Close(5 * time.Second)
	if c.n.Load() != 1000 || q.Dropped() != 0 {
		t.Errorf("delivered %d, dropped %d; want 1000, 0", c.n.Load(), q.Dropped())
	}
}
