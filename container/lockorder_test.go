package container

import (
	"context"
	"fmt"
	"os"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

// TestStartWhileCountsAndCreateQueue (issue 8 item 6, the lock order at
// Service.mu): while a start builds its spec (c.mu held), /info's Counts
// holds the service's read lock waiting for c.mu and a Create queues for
// the write lock, so no new reader gets the service lock. A start that
// took the service lock under c.mu (as generateSpec once did for
// --network container:X) deadlocked there with all three.
func TestStartWhileCountsAndCreateQueue(t *testing.T) {
	e := newXEnv(t)
	ctx := context.Background()
	donor := e.run(t, []string{"sleep", "1000"}, &container.HostConfig{IpcMode: "shareable"})
	id := e.create(t, []string{"true"}, &container.HostConfig{NetworkMode: container.NetworkMode("container:" + donor), PidMode: container.PidMode("container:" + donor), IpcMode: container.IpcMode("container:" + donor)})
	counted, created := make(chan struct{}), make(chan error, 1)
	e.svc.specHook = func(c *Container) {
		if c.ID != id {
			return
		}
		go func() {
			e.svc.Counts()
			e.svc.Running()
			close(counted)
		}()
		// Counts has the read lock (and waits for c.mu, which we hold).
		for e.svc.mu.TryLock() {
			e.svc.mu.Unlock()
			goruntime.Gosched()
		}
		go func() {
			_, _, err := e.svc.Create(ctx, CreateRequest{Config: &container.Config{Image: e.image, Cmd: []string{"true"}}, HostConfig: &container.HostConfig{NetworkMode: "none"}})
			created <- err
		}()
		// Create waits for the write lock: readers now queue behind it.
		for e.svc.mu.TryRLock() {
			e.svc.mu.RUnlock()
			goruntime.Gosched()
		}
	}
	started := make(chan error, 1)
	go func() { started <- e.svc.Start(ctx, id) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		buf := make([]byte, 1<<20)
		buf = buf[:goruntime.Stack(buf, true)]
		// The test's cleanups would wait on the same locks (a panic
		// runs them too): report and end the test binary here.
		fmt.Fprintf(os.Stderr, "--- FAIL: %s: start deadlocked with Counts and a queued Create:\n%s", t.Name(), buf)
		os.Exit(1)
	}
	<-counted
	if err := <-created; err != nil {
		t.Fatal(err)
	}
}
