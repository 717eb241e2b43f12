package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Tools of the crash tests (issue 13): a gate in front of the OCI runtime
// that holds any of its commands at a chosen point, so that a test can
// kill -9 the daemon at exactly that moment, and probes of what a
// container leaves on the host.

// runcGate is a shell wrapper around runc, given to berthd as its
// --runtime: a runc command (run, pause, resume, kill, delete, exec...) can
// be held before it runs or after it returned, until the test releases it.
// Held means blocked reading a fifo; the wrapper marks each hold with a
// file so the test knows when it is there.
type runcGate struct {
	dir  string // fifos and marks
	path string // the wrapper
}

func newRuncGate(t *testing.T) *runcGate {
	t.Helper()
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed")
	}
	dir := t.TempDir()
	g := &runcGate{dir: dir, path: filepath.Join(dir, "runc-gate")}
	script := fmt.Sprintf(`#!/bin/sh
# runc behind a gate (berth e2e, issue 13): see runcGate.
g=%q
op=
for a in "$@"; do
	case "$a" in run|create|start|pause|resume|kill|delete|exec|update|state|ps|events|checkpoint) op=$a; break;; esac
done
hold() {
	f="$g/hold-$1-$op"
	[ -n "$op" ] && [ -p "$f" ] || return 0
	: > "$g/at-$1-$op.$$"
	cat "$f" > /dev/null 2>&1
	return 0
}
hold before
%q "$@"
rc=$?
hold after
exit $rc
`, dir, runc)
	if err := os.WriteFile(g.path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return g
}

// hold makes the next runc <op> commands block at when ("before" the
// command runs, "after" it returned) until release.
func (g *runcGate) hold(t *testing.T, when, op string) {
	t.Helper()
	if err := syscall.Mkfifo(filepath.Join(g.dir, "hold-"+when+"-"+op), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.release(when, op) })
}

// waitHeld waits until a runc <op> is held at when.
func (g *runcGate) waitHeld(t *testing.T, when, op string, timeout time.Duration) {
	t.Helper()
	if !poll(timeout, func() bool {
		m, _ := filepath.Glob(filepath.Join(g.dir, "at-"+when+"-"+op+".*"))
		return len(m) > 0
	}) {
		t.Fatalf("no runc %s was held %s it within %s", op, when, timeout)
	}
}

// release lets every held runc <op> go on, and stops holding new ones.
func (g *runcGate) release(when, op string) {
	f := filepath.Join(g.dir, "hold-"+when+"-"+op)
	// O_RDWR never blocks on a fifo; it lets blocked readers' open
	// return. Once the name is gone and our end is closed, they read EOF.
	fd, err := syscall.Open(f, syscall.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		return
	}
	_ = os.Remove(f)
	_ = syscall.Close(fd)
}

// runtimeArgs are the daemon flags that put the gate in front of runc.
func (g *runcGate) runtimeArgs() []string { return []string{"--runtime", g.path} }

// ppid is the parent of pid (0 if it is gone).
func ppid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// freezerState is the freezer state of the container's cgroup (v1), ""
// when there is none.
func freezerState(id string) string {
	for _, p := range []string{"/sys/fs/cgroup/freezer/berth/" + id + "/freezer.state"} {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountPath(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	return out
}

// apiBackground sends a request without waiting for the answer; the
// returned channel yields it (or the error) when it comes.
func apiBackground(a *apiClient, method, path string, body []byte) <-chan *apiResp {
	ch := make(chan *apiResp, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		r, err := a.do(ctx, method, path, body, nil)
		if err != nil {
			r = &apiResp{Status: -1, Body: []byte(err.Error())}
		}
		ch <- r
	}()
	return ch
}

// restartAfterCrash starts a new daemon on b's roots (b was killed or
// stopped) and stops it when the test ends; then whatever container
// process the daemons left alive is reaped (and reported).
func restartAfterCrash(t *testing.T, b *daemon, o daemonOpts) *daemon {
	t.Helper()
	var b2 *daemon
	// Cleanups run last first: the daemon stops, then what it left alive
	// is reaped.
	t.Cleanup(func() {
		if b2 != nil {
			reapContainers(t, b, b2)
		} else {
			reapContainers(t, b)
		}
	})
	b2, err := b.restart(o)
	if err != nil {
		t.Fatalf("restart on the same roots: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last lines of the restarted daemon's log:\n%s", b2.logTail(40))
		}
		if err := b2.cleanup(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return b2
}

// killPid sends SIGKILL to pid.
func killPid(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// cgroupControllers are the cgroup v1 hierarchies runc makes a container's
// cgroups in (and the v2 one, "unified" on a hybrid host).
var cgroupControllers = []string{"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb", "memory", "net_cls", "net_prio", "perf_event", "pids", "rdma", "misc", "systemd", "unified"}

// knownContainerIDs are the IDs of every container a daemon has (its data
// root's records) or was asked about by ID (its log).
func knownContainerIDs(ds ...*daemon) map[string]bool {
	ids := map[string]bool{}
	for _, d := range ds {
		if b, err := os.ReadFile(d.logPath); err == nil {
			for _, m := range containerPathRE.FindAllStringSubmatch(string(b), -1) {
				ids[m[1]] = true
			}
		}
		ents, _ := os.ReadDir(filepath.Join(d.dataRoot, "containers"))
		for _, e := range ents {
			if hexIDRE.MatchString(e.Name()) {
				ids[e.Name()] = true
			}
		}
	}
	return ids
}

// cgroupProcs are the processes in a container's cgroup.
func cgroupProcs(id string) []int {
	var out []int
	for _, p := range []string{"/sys/fs/cgroup/pids/berth/" + id + "/cgroup.procs", "/sys/fs/cgroup/berth/" + id + "/cgroup.procs"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
		return out
	}
	return out
}

// reapContainers is the last resort of a crash test that failed half-way:
// a container process the daemons left alive (running, frozen) outlives
// them and the test. It thaws and kills every process in the cgroups of
// the daemons' containers, removes those cgroups, and reports what it had
// to kill.
func reapContainers(t *testing.T, ds ...*daemon) { reapContainerIDs(t, nil, ds...) }

// reapContainerIDs is reapContainers for the containers ids too.
func reapContainerIDs(t *testing.T, ids map[string]bool, ds ...*daemon) {
	t.Helper()
	all := knownContainerIDs(ds...)
	for id := range ids {
		all[id] = true
	}
	for id := range all {
		procs := cgroupProcs(id)
		if len(procs) > 0 {
			t.Errorf("container %s: processes %v still alive when the test ended; killed", id[:12], procs)
			_ = os.WriteFile("/sys/fs/cgroup/freezer/berth/"+id+"/freezer.state", []byte("THAWED"), 0o644)
			for _, p := range procs {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			poll(10*time.Second, func() bool { return len(cgroupProcs(id)) == 0 })
		}
		for _, ctl := range cgroupControllers {
			_ = syscall.Rmdir("/sys/fs/cgroup/" + ctl + "/berth/" + id)
		}
		_ = syscall.Rmdir("/sys/fs/cgroup/berth/" + id)
	}
	// A daemon stopped with containers left keeps its bridges and rules
	// (for them): once they are gone, so are those.
	for _, d := range ds {
		if d.kind != "berth" {
			continue
		}
		prefix := kernelPrefix(d.dataRoot)
		out, _ := runOut("ip", "-o", "link", "show", "type", "bridge")
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			name := strings.TrimSuffix(f[1], ":")
			if name == prefix+"0" || strings.HasPrefix(name, prefix+"-") {
				_, _ = runOut("ip", "link", "del", name)
			}
		}
		_, _ = runOut("nft", "delete", "table", "ip", prefix)
	}
}

// kernelPrefix is the prefix of the kernel objects (bridges, nftables
// table) of the berthd on dataRoot, as cmd/berthd names them.
func kernelPrefix(dataRoot string) string {
	abs, err := filepath.Abs(dataRoot)
	if err != nil {
		abs = dataRoot
	}
	sum := sha256.Sum256([]byte(abs))
	return "b" + hex.EncodeToString(sum[:])[:7]
}

// runOut runs a host command and returns its output.
func runOut(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(b), err
}
