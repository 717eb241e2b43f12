package events

import (
	"testing"
	"time"

	"github.com/berth/berth/filters"
)

func TestFilterMatch(t *testing.T) {
	ctrStart := Message{Type: "container", Action: "start", Actor: Actor{ID: "abcdef123456", Attributes: map[string]string{"name": "web", "image": "nginx:alpine", "tier": "front"}}, Scope: "local"}
	execStart := Message{Type: "container", Action: "exec_start: sh -c true", Actor: Actor{ID: "abcdef123456", Attributes: map[string]string{"name": "web"}}}
	imgTag := Message{Type: "image", Action: "tag", Actor: Actor{ID: "sha256:1234", Attributes: map[string]string{"name": "nginx:alpine"}}}
	for _, c := range []struct {
		f    filters.Args
		m    Message
		want bool
	}{
		{nil, ctrStart, true},
		{filters.Args{"type": {"container"}}, ctrStart, true},
		{filters.Args{"type": {"image"}}, ctrStart, false},
		{filters.Args{"container": {"web"}}, ctrStart, true},
		{filters.Args{"container": {"abcdef"}}, ctrStart, true},
		{filters.Args{"container": {"db"}}, ctrStart, false},
		{filters.Args{"container": {"web"}}, imgTag, false},
		{filters.Args{"event": {"start"}}, ctrStart, true},
		{filters.Args{"event": {"exec_start"}}, execStart, true},
		{filters.Args{"event": {"stop", "die"}}, ctrStart, false},
		{filters.Args{"image": {"nginx"}}, ctrStart, true},
		{filters.Args{"image": {"nginx:alpine"}}, ctrStart, true},
		{filters.Args{"image": {"nginx"}}, imgTag, true},
		{filters.Args{"image": {"sha256:1234"}}, imgTag, true},
		{filters.Args{"image": {"redis"}}, ctrStart, false},
		{filters.Args{"label": {"tier=front"}}, ctrStart, true},
		{filters.Args{"label": {"tier"}}, ctrStart, true},
		{filters.Args{"label": {"tier=back"}}, ctrStart, false},
		{filters.Args{"type": {"container"}, "event": {"start"}, "container": {"web"}}, ctrStart, true},
	} {
		if got := (Filter{Args: c.f}).Match(c.m); got != c.want {
			t.Errorf("%v on %s %s: %v", c.f, c.m.Type, c.m.Action, got)
		}
	}
}

func TestBusReplayAndSlowSubscriber(t *testing.T) {
	b := New(3)
	base := time.Unix(1700000000, 0)
	n := 0
	b.now = func() time.Time { n++; return base.Add(time.Duration(n) * time.Second) }
	for _, a := range []string{"create", "start", "die", "destroy"} {
		b.Publish("container", a, "c1", map[string]string{"image": "busybox"})
	}
	past, ch, cancel := b.Subscribe(Filter{}, base.Add(3*time.Second))
	defer cancel()
	if len(past) != 2 || past[0].Action != "die" || past[1].Action != "destroy" {
		t.Fatalf("replay (ring of 3, since the 3rd): %+v", past)
	}
	if past[0].Status != "die" || past[0].ID != "c1" || past[0].From != "busybox" || past[0].Scope != "local" {
		t.Fatalf("legacy fields: %+v", past[0])
	}
	// A subscriber that never reads is dropped, and publishing goes on.
	done := make(chan struct{})
	go func() {
		for i := 0; i < subscriberBuf*3; i++ {
			b.Publish("image", "pull", "x", nil)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("publish blocked on a slow subscriber")
	}
	count := 0
	for range ch {
		count++
	}
	if count != subscriberBuf || b.Subscribers() != 0 {
		t.Fatalf("slow subscriber got %d, %d subscribers left", count, b.Subscribers())
	}
	cancel() // after the drop: harmless
}
