package container

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// A forced removal racing a create and the start that follows it, at
// every point of the two, leaves nothing of the container: no record, no
// shim, no process, no mount, no runc state, no cgroup (e2e
// TestRemoveRacingCreateAndStart is the same through the API).
func TestRemoveRacingCreateAndStart(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	var ids []string
	t.Cleanup(func() { e.reap(ids) })
	for i := range rounds {
		name := fmt.Sprintf("race%d", i)
		created := make(chan string, 1)
		started := make(chan error, 1)
		go func() {
			id, _, err := e.svc.Create(ctx, CreateRequest{Name: name, Config: &container.Config{Image: "busybox", Cmd: []string{"sleep", "300"}}})
			if err != nil {
				t.Errorf("round %d: create: %v", i, err)
				created <- ""
				started <- nil
				return
			}
			created <- id
			started <- e.svc.Start(ctx, id)
		}()
		ref, id := name, ""
		if i%2 == 0 {
			if id = <-created; id == "" {
				continue
			}
			ref = id
		}
		for {
			err := e.svc.Remove(ctx, ref, RemoveOptions{Force: true})
			if err == nil {
				break
			}
			if !cerrdefs.IsNotFound(err) || i%2 == 0 {
				t.Fatalf("round %d: remove: %v", i, err)
			}
			select {
			case id = <-created:
				if id == "" {
					t.FailNow()
				}
				ref = id
			default:
			}
		}
		if id == "" {
			id = <-created
		}
		ids = append(ids, id)
		if err := <-started; err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) {
			t.Errorf("round %d: start racing remove: %v", i, err)
		}
		if _, err := e.svc.Get(id); err == nil {
			t.Errorf("round %d: removed, still there", i)
		}
	}
	var left []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		left = e.leftoversOf(ids)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("left by removed containers:\n%s", strings.Join(left, "\n"))
	}
}

// leftoversOf lists what is left of the containers ids: shims (a
// process whose command line or working directory names the test's
// root, not the idle spare), mounts under the root, runc state, state
// and container directories, cgroups and their processes.
func (e *testEnv) leftoversOf(ids []string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("berth-shim")) {
			continue
		}
		cwd, _ := os.Readlink(filepath.Join(filepath.Dir(p), "cwd"))
		for _, id := range ids {
			if bytes.Contains(b, []byte(id)) || strings.Contains(cwd, id) {
				out = append(out, fmt.Sprintf("shim %s (cwd %s): %s", filepath.Dir(p), cwd, bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
			}
		}
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			for _, id := range ids {
				if strings.Contains(l, id) {
					out = append(out, "mount "+l)
				}
			}
		}
	}
	for _, id := range ids {
		for _, p := range []string{filepath.Join(e.cfg.ExecRoot, "runc", id), e.svc.stateDir(id), e.svc.dir(id)} {
			if _, err := os.Lstat(p); err == nil {
				out = append(out, "left "+p)
			}
		}
		for _, c := range []string{"memory", "pids", "cpu", "freezer"} {
			if d := e.svc.cgroupDir(id, c); d != "" {
				if b, err := os.ReadFile(filepath.Join(d, "cgroup.procs")); err == nil {
					out = append(out, fmt.Sprintf("cgroup %s (procs %q)", d, strings.TrimSpace(string(b))))
				}
			}
		}
	}
	return out
}

// reap kills what a failed test left of the containers ids: the
// processes in their cgroups (their shims then exit), and removes the
// cgroups.
func (e *testEnv) reap(ids []string) {
	for _, id := range ids {
		for _, c := range []string{"pids", "memory", "cpu", "freezer"} {
			d := e.svc.cgroupDir(id, c)
			b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range ids {
		for _, c := range []string{"pids", "memory", "cpu", "freezer"} {
			d := e.svc.cgroupDir(id, c)
			// A cgroup goes once its killed processes are reaped.
			for err := os.Remove(d); err != nil && !os.IsNotExist(err) && time.Now().Before(deadline); err = os.Remove(d) {
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
}
