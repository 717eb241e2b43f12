package container

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
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

// A restart timer pending when the service closes never starts its
// container (issue 8 item 6): berthd's shutdown leaves a restarting
// container as it is, for the next berthd's restore to restart.
func TestRestartTimerAtClose(t *testing.T) {
	e := newXEnv(t)
	id := e.create(t, []string{"false"}, &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways}})
	c, err := e.svc.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Start(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	// Four exits in, the next restart waits 800 ms: Close comes well
	// before it.
	deadline := time.After(30 * time.Second)
	for {
		ch := c.waitChange()
		c.mu.Lock()
		pending := c.State.Restarting && c.RestartCount >= 4
		c.mu.Unlock()
		if pending {
			break
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatal("no fourth restart pending in 30 s")
		}
	}
	e.svc.Close()
	c.mu.Lock()
	started, delay := c.State.StartedAt, c.restartBackoff
	c.mu.Unlock()
	// Absence of a start can only be seen by waiting past the timer.
	time.Sleep(delay + time.Second)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.State.StartedAt.Equal(started) || c.State.Running {
		t.Errorf("the restart timer started the container after Close (started %v, then %v, running %v)", started, c.State.StartedAt, c.State.Running)
	}
}
