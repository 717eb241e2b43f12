package progress

import (
	"encoding/json"
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

func TestUpdateCarriesEmptyProgressDetail(t *testing.T) {
	c := &collect{}
	_ = Update(c, "0123456789ab", "Waiting")
	_ = Status(c, "latest", "Pulling from library/busybox")
	got := make([]string, 0, 2)
	for _, m := range c.msgs {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
	}
	want := []string{
		`{"status":"Waiting","progressDetail":{},"id":"0123456789ab"}`,
		`{"status":"Pulling from library/busybox","id":"latest"}`,
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d = %s, want %s (dockerd's shape)", i, got[i], want[i])
		}
	}
}
