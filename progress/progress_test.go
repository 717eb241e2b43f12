package progress

import (
	"strings"
	"sync"
	"testing"
)

type collect struct {
	mu   sync.Mutex
	msgs []Message
}

func (c *collect) WriteMessage(m Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, m)
	return nil
}

func TestBar(t *testing.T) {
	b := Bar(50, 100)
	if !strings.HasPrefix(b, "[=========================>") || !strings.HasSuffix(b, "50B/100B") {
		t.Fatalf("bar = %q", b)
	}
	if full := Bar(100, 100); strings.Contains(full, ">") {
		t.Fatalf("full bar has an arrow: %q", full)
	}
}

func TestReporterThrottlesButSendsFinal(t *testing.T) {
	c := &collect{}
	r := NewReporter(c, "abc", "Downloading", 1000)
	for i := 0; i < 100; i++ {
		r.Add(10)
	}
	if len(c.msgs) == 0 || len(c.msgs) > 3 {
		t.Fatalf("got %d messages, want a throttled few", len(c.msgs))
	}
	last := c.msgs[len(c.msgs)-1]
	if last.ProgressDetail.Current != 1000 || last.ID != "abc" {
		t.Fatalf("final message %+v", last)
	}
}
