package container

import (
	"sync/atomic"
	"testing"
	"time"
)

// The restart policy's timers and the service's goroutines are owned by the
// service (issue 8 item 6): a timer set before Close never fires after it,
// nothing begins once Close has begun, and Service.bg counts exactly what
// runs, so Close's wait ends.
func TestBackgroundStopsAtClose(t *testing.T) {
	s := &Service{}
	var ran atomic.Int32
	fired := make(chan struct{})
	s.afterFunc(0, func() { close(fired) })
	<-fired
	s.afterFunc(time.Hour, func() { ran.Add(1) })
	s.afterFunc(time.Hour, func() { ran.Add(1) })
	release := make(chan struct{})
	if !s.goBG(func() { <-release }) {
		t.Fatal("goBG refused before Close")
	}
	s.closeBackground()
	s.afterFunc(0, func() { ran.Add(1) })
	if s.goBG(func() { ran.Add(1) }) {
		t.Error("goBG ran work after Close began")
	}
	close(release)
	waited := make(chan struct{})
	go func() { s.bg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("Service.bg still counts work after Close: stopped timers were not let go")
	}
	if n := ran.Load(); n != 0 {
		t.Errorf("%d functions ran after Close", n)
	}
	if len(s.background.timers) != 0 {
		t.Errorf("%d timers left", len(s.background.timers))
	}
}
