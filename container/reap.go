package container

import (
	"bytes"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// berthd is a child subreaper (for the processes of detached TTY execs), so
// the intermediate processes runc's nsexec leaves behind on every `runc
// exec` ("runc:[1:CHILD]", which its parent does not wait for) are
// reparented to it. Unreaped, each is a zombie for good: a probe a second
// piles up thousands, and one that sits in a container's PID namespace
// keeps the container's init from ever finishing its exit (the kernel's
// zap_pid_ns_processes waits for every task of the namespace to be
// reaped), so a stop hangs. reapRuncOrphans reaps them, and only them:
// every other child has an owner that waits for it (os/exec, or
// waitDetached for a detached exec's process).
//
// It runs on each SIGCHLD and every few seconds in case a signal was
// coalesced away, until the service closes.
func (s *Service) reapRuncOrphans() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGCHLD)
	defer signal.Stop(ch)
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		reapRuncZombies()
		select {
		case <-s.ctx.Done():
			return
		case <-ch:
		case <-tick.C:
		}
	}
}

// reapRuncZombies reaps this process's zombie children whose name is one
// of runc's nsexec stages ("runc:[0:PARENT]", "runc:[1:CHILD]", ...).
func reapRuncZombies() {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return
	}
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", t.Name(), "children"))
		if err != nil {
			continue
		}
		for _, f := range bytes.Fields(b) {
			pid, err := strconv.Atoi(string(f))
			if err != nil || !isRuncZombie(pid) {
				continue
			}
			var ws unix.WaitStatus
			for {
				_, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
				if !errors.Is(err, unix.EINTR) {
					break
				}
			}
		}
	}
}

// isRuncZombie reads /proc/<pid>/stat: "pid (comm) state ...".
func isRuncZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open || end+2 >= len(b) {
		return false
	}
	return b[end+2] == 'Z' && bytes.HasPrefix(b[open+1:end], []byte("runc:["))
}
