package container

import (
	"sync"
	"time"
)

// background is what the service runs on its own (issue 8 item 6): the
// monitors of running containers, removals of --rm containers, the
// restart policy's timers, health monitors. Each is counted in Service.bg,
// so Close waits for it; nothing new begins once Close has begun, and a
// timer not yet fired never fires.
type background struct {
	mu     sync.Mutex // a leaf: nothing else is taken while it is held
	closed bool
	timers map[*time.Timer]struct{}
}

// goBG runs f on a goroutine the service owns. It reports false (and runs
// nothing) once the service is closing.
func (s *Service) goBG(f func()) bool {
	s.background.mu.Lock()
	defer s.background.mu.Unlock()
	if s.background.closed {
		return false
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f()
	}()
	return true
}

// afterFunc runs f after d on a goroutine the service owns, unless the
// service closes first.
func (s *Service) afterFunc(d time.Duration, f func()) {
	b := &s.background
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	if b.timers == nil {
		b.timers = map[*time.Timer]struct{}{}
	}
	s.bg.Add(1)
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		defer s.bg.Done()
		b.mu.Lock()
		delete(b.timers, t) // t is set: the timer is made with b.mu held
		closed := b.closed
		b.mu.Unlock()
		if !closed {
			f()
		}
	})
	b.timers[t] = struct{}{}
}

// closeBackground refuses new background work and stops the timers that
// have not fired. Service.bg then counts only what runs.
func (s *Service) closeBackground() {
	b := &s.background
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for t := range b.timers {
		if t.Stop() {
			s.bg.Done() // it will never run
		}
		delete(b.timers, t)
	}
}
