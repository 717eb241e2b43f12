package container

// Health checks, with Docker's semantics (moby daemon/health.go is the
// reference): a container whose merged config has a CMD or CMD-SHELL
// healthcheck gets a monitor while it runs and is not paused. The monitor
// waits an interval, runs the probe as an exec in the container (through
// ExecCreate/ExecStart, so probes take whatever path execs take), and
// records the result in State.Health:
//
//	start       → Health.Status "starting", FailingStreak 0, Log kept
//	exit 0      → "healthy", FailingStreak 0
//	other exit  → FailingStreak+1 (not while starting inside the start
//	              period); "unhealthy" once it reaches Retries
//	timeout     → the probe is killed; exit code -1, a failure
//	pause, exit → monitor stopped, Status "unhealthy" (as Docker)
//
// The last five results are kept in Health.Log. A change of Status is an
// event ("health_status: healthy") and is written to the record; the Log
// and streak between changes are written when berthd stops. A restarted
// berthd resumes the monitors of running containers with the state it
// finds in their records.
//
// A monitor never holds c.mu while a probe runs, and stopping it never
// waits for the probe: a stop or remove is never held up by a probe (the
// probe is killed, or dies with the container).

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

const (
	healthDefaultInterval    = 30 * time.Second
	healthDefaultTimeout     = 30 * time.Second
	healthDefaultRetries     = 3
	healthMaxLogEntries      = 5
	healthMaxOutput          = 4096
	healthStartExecTimeout   = 30 * time.Second
	healthKilledProbeTimeout = 10 * time.Second
)

// probeCommand is the command a healthcheck runs, or nil when there is
// nothing to run (no healthcheck, NONE, an unknown type).
func probeCommand(cfg *container.Config) []string {
	h := cfg.Healthcheck
	if h == nil || len(h.Test) < 2 {
		return nil
	}
	switch h.Test[0] {
	case "CMD":
		return h.Test[1:]
	case "CMD-SHELL":
		shell := cfg.Shell
		if len(shell) == 0 {
			shell = []string{"/bin/sh", "-c"}
		}
		return append(append([]string{}, shell...), h.Test[1:]...)
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// healthMonitor is a running monitor's handle, guarded by the container's
// mu: closing stop ends it.
type healthMonitor struct {
	stop chan struct{}
}

// healthStatus is the status ps filters on: "none" without a healthcheck
// that ever ran. Call with c.mu held.
func healthStatusLocked(c *Container) container.HealthStatus {
	h := c.State.Health
	if h == nil {
		return container.NoHealthcheck
	}
	if h.Status == "" {
		return container.Unhealthy
	}
	return h.Status
}

// healthSuffixLocked is what ps shows after "Up 3 seconds": "(healthy)",
// "(health: starting)"; "" without a healthcheck. Call with c.mu held.
func healthSuffixLocked(c *Container) string {
	if c.State.Health == nil {
		return ""
	}
	st := healthStatusLocked(c)
	if st == container.Starting {
		return " (health: starting)"
	}
	return " (" + string(st) + ")"
}

// inspectHealthLocked is State.Health for inspect: a copy.
func inspectHealthLocked(c *Container) *container.Health {
	h := c.State.Health
	if h == nil {
		return nil
	}
	out := &container.Health{Status: healthStatusLocked(c), FailingStreak: h.FailingStreak, Log: make([]*container.HealthcheckResult, 0, len(h.Log))}
	for _, r := range h.Log {
		r := *r
		out.Log = append(out.Log, &r)
	}
	return out
}

// initHealthLocked resets the health state of a container that just
// started and starts its monitor. Call with c.mu held.
func (s *Service) initHealthLocked(c *Container) {
	if probeCommand(c.Config) == nil {
		return
	}
	s.stopHealthLocked(c)
	if c.State.Health == nil {
		c.State.Health = &container.Health{}
	}
	c.State.Health.Status = container.Starting
	c.State.Health.FailingStreak = 0
	s.updateHealthLocked(c)
}

// updateHealthLocked starts or stops c's monitor as its state wants: it
// runs while c runs unpaused. Call with c.mu held.
func (s *Service) updateHealthLocked(c *Container) {
	if c.State.Health == nil {
		return
	}
	cmd := probeCommand(c.Config)
	want := c.State.Running && !c.State.Paused && cmd != nil && !c.removed
	if !want {
		s.stopHealthLocked(c)
		return
	}
	if c.health != nil || s.ctx.Err() != nil {
		return
	}
	m := &healthMonitor{stop: make(chan struct{})}
	c.health = m
	if !s.goBG(func() { s.runHealthMonitor(c, m) }) {
		c.health = nil
	}
}

// stopHealthLocked stops c's monitor without waiting for it; its probe,
// if one runs, is killed. Docker then calls the container unhealthy.
// Call with c.mu held.
func (s *Service) stopHealthLocked(c *Container) {
	if c.health == nil {
		return
	}
	close(c.health.stop)
	c.health = nil
	if c.State.Health != nil {
		c.State.Health.Status = container.Unhealthy
	}
}

// runHealthMonitor probes c until m is stopped or the service closes.
func (s *Service) runHealthMonitor(c *Container, m *healthMonitor) {
	c.mu.Lock()
	hc := *c.Config.Healthcheck
	cmd := probeCommand(c.Config)
	user, dir := c.Config.User, c.Config.WorkingDir
	started := c.State.StartedAt
	c.mu.Unlock()
	interval := orDefault(hc.Interval, healthDefaultInterval)
	timeout := orDefault(hc.Timeout, healthDefaultTimeout)
	nextInterval := func() time.Duration {
		// Docker 20.10 probes at Interval throughout; a StartInterval
		// (API 1.44) applies inside the start period while starting.
		if hc.StartInterval == 0 || time.Since(started) >= hc.StartPeriod {
			return interval
		}
		c.mu.Lock()
		starting := c.State.Health != nil && c.State.Health.Status == container.Starting
		c.mu.Unlock()
		if starting {
			return hc.StartInterval
		}
		return interval
	}
	timer := time.NewTimer(nextInterval())
	defer timer.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-s.ctx.Done():
			s.saveHealth(c, m)
			return
		case <-timer.C:
		}
		res := s.probe(c, m, cmd, user, dir, timeout)
		if res != nil {
			s.handleProbeResult(c, m, &hc, res)
		}
		timer.Reset(nextInterval())
	}
}

// probe runs one check. nil: the monitor was stopped meanwhile.
func (s *Service) probe(c *Container, m *healthMonitor, cmd []string, user, dir string, timeout time.Duration) *container.HealthcheckResult {
	start := time.Now()
	failed := func(msg string) *container.HealthcheckResult {
		return &container.HealthcheckResult{Start: start, End: time.Now(), ExitCode: -1, Output: msg}
	}
	id, err := s.ExecCreate(context.Background(), c.ID, container.ExecCreateRequest{
		Cmd: cmd, User: user, WorkingDir: dir, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return failed(err.Error())
	}
	defer s.forgetExec(id)
	out := &probeOutput{}
	done := make(chan error, 1)
	go func() { done <- s.ExecStart(context.Background(), id, ExecStartOptions{Conn: out}) }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			return failed(err.Error())
		}
		e, err := s.getExec(id)
		if err != nil {
			return failed(err.Error())
		}
		e.mu.Lock()
		code := e.ExitCode
		e.mu.Unlock()
		if code == nil {
			return failed(fmt.Sprintf("healthcheck for container %s has no exit code", c.ID))
		}
		return &container.HealthcheckResult{Start: start, End: time.Now(), ExitCode: *code, Output: out.String()}
	case <-timer.C:
		s.killProbe(id, done)
		return failed(fmt.Sprintf("Health check exceeded timeout (%v)", timeout))
	case <-m.stop:
		s.killProbe(id, done)
		return nil
	case <-s.ctx.Done():
		s.killProbe(id, done)
		return nil
	}
}

// killProbe kills a probe's process and waits a while for its exec to
// end, so that probes that hang never pile up. A probe that does not end
// (a frozen container) is left to end with its container.
func (s *Service) killProbe(id string, done <-chan error) {
	deadline := time.NewTimer(healthKilledProbeTimeout)
	defer deadline.Stop()
	retry := time.NewTicker(50 * time.Millisecond)
	defer retry.Stop()
	for {
		// The exec's process may not have started yet: its PID comes
		// with the start.
		if err := s.killExec(id); err != nil && !cerrdefs.IsNotFound(err) {
			s.log.Debug("kill health probe", "exec", id, "err", err)
		}
		select {
		case <-done:
			return
		case <-deadline.C:
			s.log.Warn("health probe did not end after SIGKILL", "exec", id)
			return
		case <-retry.C:
		}
	}
}

// forgetExec drops a finished probe's exec record: probes are not kept
// for exec inspect, or a probe a second would grow the store forever.
func (s *Service) forgetExec(id string) {
	s.execs.mu.Lock()
	defer s.execs.mu.Unlock()
	if e, ok := s.execs.execs[id]; ok {
		e.mu.Lock()
		running := e.Running
		e.mu.Unlock()
		if !running {
			delete(s.execs.execs, id)
		}
	}
}

// handleProbeResult records a result, unless the monitor was stopped
// while the probe ran.
func (s *Service) handleProbeResult(c *Container, m *healthMonitor, hc *container.HealthConfig, res *container.HealthcheckResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.health != m || c.State.Health == nil {
		return
	}
	h := c.State.Health
	old := h.Status
	h.Log = append(h.Log, res)
	if n := len(h.Log); n > healthMaxLogEntries {
		h.Log = append([]*container.HealthcheckResult{}, h.Log[n-healthMaxLogEntries:]...)
	}
	retries := hc.Retries
	if retries <= 0 {
		retries = healthDefaultRetries
	}
	if res.ExitCode == 0 {
		h.FailingStreak = 0
		h.Status = container.Healthy
	} else if h.Status != container.Starting || res.Start.Sub(c.State.StartedAt) >= hc.StartPeriod {
		h.FailingStreak++
		if h.FailingStreak >= retries {
			h.Status = container.Unhealthy
		}
	}
	if h.Status != old {
		if err := c.save(s.dir(c.ID)); err != nil {
			s.log.Warn("save health state", "id", c.ID, "err", err)
		}
		s.emitLocked(c, "health_status: "+string(h.Status), nil)
	}
}

// saveHealth writes the health state at shutdown, so that a restarted
// berthd resumes with the Log and streak of this one.
func (s *Service) saveHealth(c *Container, m *healthMonitor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.health != m || c.removed {
		return
	}
	if err := c.save(s.dir(c.ID)); err != nil {
		s.log.Warn("save health state", "id", c.ID, "err", err)
	}
}

// resumeHealth restarts the monitor of a container found running by a
// restarted berthd, with the health state of its record.
func (s *Service) resumeHealth(c *Container) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.State.Health == nil && probeCommand(c.Config) != nil {
		// Started by a berthd that had no health monitor.
		c.State.Health = &container.Health{Status: container.Starting}
	}
	s.updateHealthLocked(c)
}

// waitBackground waits for the service's goroutines to end after its
// context is cancelled, a bounded time: a health probe stuck in a frozen
// container is not worth a hung shutdown.
func (s *Service) waitBackground(d time.Duration) {
	done := make(chan struct{})
	go func() { s.bg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("health monitors still running at shutdown")
	}
}

// probeOutput is the stream a probe's exec writes to: it takes the
// multiplexed frames ExecStart writes and keeps the first 4096 bytes of
// their payload (then "..."), as Docker keeps a probe's output. It is
// never read (the probe has no stdin).
type probeOutput struct {
	mu        sync.Mutex
	hdr       [8]byte
	nhdr      int // header bytes seen of the current frame
	left      int // payload bytes left in the current frame
	buf       []byte
	truncated bool
}

func (p *probeOutput) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		if p.left == 0 {
			k := copy(p.hdr[p.nhdr:], b)
			p.nhdr += k
			b = b[k:]
			if p.nhdr == len(p.hdr) {
				p.left = int(binary.BigEndian.Uint32(p.hdr[4:]))
				p.nhdr = 0
			}
			continue
		}
		k := min(p.left, len(b))
		room := healthMaxOutput - len(p.buf)
		if room > 0 {
			p.buf = append(p.buf, b[:min(k, room)]...)
		}
		if k > room {
			p.truncated = true
		}
		p.left -= k
		b = b[k:]
	}
	return n, nil
}

func (p *probeOutput) Read([]byte) (int, error) { return 0, io.EOF }

func (p *probeOutput) Close() error { return nil }

func (p *probeOutput) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.truncated {
		return string(p.buf) + "..."
	}
	return string(p.buf)
}

// healthFilter checks ps's health= values as dockerd does.
func healthFilter(values []string) error {
	for _, v := range values {
		switch container.HealthStatus(v) {
		case container.NoHealthcheck, container.Starting, container.Healthy, container.Unhealthy:
		default:
			return cerrdefs.ErrInvalidArgument.WithMessage("Unrecognised filter value for health: " + v)
		}
	}
	return nil
}
