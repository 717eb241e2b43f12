package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cgroup v2 for real on a v1 (hybrid) host: berthd, and so runc (which
// picks the cgroup mode by statfs of /sys/fs/cgroup), run in a private
// mount namespace whose /sys/fs/cgroup is a cgroup2 mount. The unified
// hierarchy has no controllers here (they are bound to v1), so nothing is
// enforced; what is checked is that berth's v2 paths work: info, run, exec,
// top, stats, pause, stop, rm, the cgroup's creation and removal, and that
// a limit is discarded with Docker's warning instead of failing in runc.
// On a real v2 host the same test runs the same way.

// unifiedRoot is where this process sees the cgroup2 hierarchy: the host's
// /sys/fs/cgroup on a v2 host, /sys/fs/cgroup/unified on a hybrid one.
func unifiedRoot() string {
	for _, p := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(p, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return p
		}
	}
	return ""
}

// startCgroupV2Daemon starts a berthd in a private mount namespace with
// a cgroup2 /sys/fs/cgroup; it is stopped (SIGTERM, by PID) and its
// directory removed when the test ends.
func startCgroupV2Daemon(t *testing.T) *daemon {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare(1)")
	}
	dir, err := os.MkdirTemp("", "berth-e2e-cg2-")
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{
		kind: "berth", dir: dir,
		dataRoot: filepath.Join(dir, "data"), execRoot: filepath.Join(dir, "exec"),
		sock: filepath.Join(dir, "api.sock"), pidfile: filepath.Join(dir, "daemon.pid"),
		configFile: filepath.Join(dir, "daemon.json"), logPath: filepath.Join(dir, "daemon.log"),
	}
	if err := os.WriteFile(d.configFile, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	// sh execs berthd: the PID we hold is berthd's.
	d.cmd = exec.Command(unshare, "-m", "--propagation", "private", "sh", "-c",
		`mount -t cgroup2 none /sys/fs/cgroup && exec "$0" "$@"`, env.berthdBin,
		"--data-root", d.dataRoot, "--exec-root", d.execRoot, "-H", "unix://"+d.sock,
		"--pidfile", d.pidfile, "--config-file", d.configFile,
		"--registry-mirror", mirrorURL, "--log-level", "debug")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	d.exited = make(chan struct{})
	go func() {
		d.waitErr = d.cmd.Wait()
		logf.Close()
		close(d.exited)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last lines of the cgroup v2 berthd log:\n%s", d.logTail(30))
		}
		if err := d.cleanup(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := d.waitReady(readyTimeout); err != nil {
		t.Fatalf("berthd in a cgroup v2 mount namespace: %v\n%s", err, d.logTail(20))
	}
	return d
}

// processesUnder lists the processes whose command line names dir.
func processesUnder(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, dir) {
			out = append(out, e.Name()+": "+cmd)
		}
	}
	return out
}

func TestCgroupV2Smoke(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "dockerd would need its containerd in the same mount namespace")
	root := unifiedRoot()
	if root == "" {
		t.Skip("no cgroup2 hierarchy on this host")
	}
	d := startCgroupV2Daemon(t)
	a := d.api()
	c := cliFor(t, "berth", d)
	berthDir := func(id string) string { return filepath.Join(root, "berth", id) }
	var ids []string
	defer func() {
		// Whatever a failure left: containers first (their shims hold
		// the namespace and its mounts), then cgroups.
		for _, id := range ids {
			_ = c.run("rm", "-f", id)
		}
	}()

	// info: version 2, cgroupfs, cgroupns, and the controllers' absence.
	var info struct {
		CgroupVersion, CgroupDriver string
		MemoryLimit, PidsLimit      bool
		SecurityOptions, Warnings   []string
	}
	a.call(t, "GET", "/info", nil, nil).wantStatus(t, 200).decode(t, &info)
	if info.CgroupVersion != "2" || info.CgroupDriver != "cgroupfs" || !contains(info.SecurityOptions, "name=cgroupns") {
		t.Errorf("info: CgroupVersion %q CgroupDriver %q SecurityOptions %q", info.CgroupVersion, info.CgroupDriver, info.SecurityOptions)
	}
	ctrls, _ := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	has := func(ctrl string) bool { return slices.Contains(strings.Fields(string(ctrls)), ctrl) }
	if !has("memory") && (info.MemoryLimit || !contains(info.Warnings, "WARNING: No memory limit support")) {
		t.Errorf("info without a memory controller: MemoryLimit %v Warnings %q", info.MemoryLimit, info.Warnings)
	}
	if out := c.ok("info").Stdout; !strings.Contains(out, "Cgroup Version: 2") {
		t.Errorf("berth info lacks 'Cgroup Version: 2':\n%s", out)
	}

	// run --rm: the container sees its own cgroup namespace.
	out := c.ok("run", "--rm", "busybox", "sh", "-c", "cat /proc/self/cgroup; grep ' /sys/fs/cgroup ' /proc/mounts").Stdout
	if !strings.Contains(out, "0::/\n") || !strings.Contains(out, " /sys/fs/cgroup cgroup2 ") {
		t.Errorf("container's cgroup view: %q, want 0::/ and a cgroup2 /sys/fs/cgroup", out)
	}

	// run -d, exec, top, stats, pause, stop, rm.
	id := strings.TrimSpace(c.ok("run", "-d", "busybox", "sleep", "300").Stdout)
	ids = append(ids, id)
	cg := berthDir(id)
	var ci struct {
		State struct{ Pid int }
	}
	a.call(t, "GET", "/containers/"+id+"/json", nil, nil).wantStatus(t, 200).decode(t, &ci)
	procs, err := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
	if err != nil || !strings.Contains(string(procs), strconv.Itoa(ci.State.Pid)) {
		t.Fatalf("cgroup %s: procs %q (%v), want pid %d", cg, procs, err, ci.State.Pid)
	}
	if out := c.ok("exec", id, "echo", "exec-ok").Stdout; strings.TrimSpace(out) != "exec-ok" {
		t.Errorf("exec: %q", out)
	}
	top := c.ok("top", id).Stdout
	if !strings.Contains(top, "sleep 300") || !strings.Contains(top, strconv.Itoa(ci.State.Pid)) {
		t.Errorf("top:\n%s", top)
	}
	var st struct {
		CPUStats struct {
			CPUUsage struct {
				TotalUsage uint64 `json:"total_usage"`
			} `json:"cpu_usage"`
		} `json:"cpu_stats"`
		MemoryStats struct {
			Limit uint64 `json:"limit"`
		} `json:"memory_stats"`
	}
	a.call(t, "GET", "/containers/"+id+"/stats?stream=false", nil, nil).wantStatus(t, 200).decode(t, &st)
	if st.CPUStats.CPUUsage.TotalUsage == 0 || st.MemoryStats.Limit == 0 {
		t.Errorf("stats from %s/cpu.stat: total_usage %d, memory limit %d", cg, st.CPUStats.CPUUsage.TotalUsage, st.MemoryStats.Limit)
	}
	if out := c.ok("stats", "--no-stream", id).Stdout; !strings.Contains(out, id[:12]) {
		t.Errorf("stats --no-stream:\n%s", out)
	}
	c.ok("pause", id)
	if b, _ := os.ReadFile(filepath.Join(cg, "cgroup.freeze")); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("paused: cgroup.freeze %q, want 1", b)
	}
	c.ok("unpause", id)
	c.ok("stop", "-t", "1", id)
	// The shim runs `runc delete` (which removes the cgroup) just after it
	// reported the exit.
	stopped := time.Now()
	for {
		_, err := os.Stat(cg)
		if errors.Is(err, os.ErrNotExist) {
			t.Logf("cgroup removed %s after stop returned", time.Since(stopped).Round(time.Millisecond))
			break
		}
		if time.Since(stopped) > 5*time.Second {
			t.Errorf("cgroup %s 5s after stop: %v, want gone", cg, err)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.ok("rm", id)

	// A limit the hierarchy cannot apply: Docker's warning, the container
	// runs, nothing is left. --cpus is refused with Docker's 400.
	if !has("memory") {
		r := c.ok("run", "--rm", "--memory", "64m", "--pids-limit", "50", "busybox", "echo", "limited")
		if !strings.Contains(r.Stdout, "limited") || !strings.Contains(r.Stderr, "Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.") {
			t.Errorf("run --memory without a memory controller: stdout %q stderr %q", r.Stdout, r.Stderr)
		}
	}
	if !has("cpu") {
		body := `{"Image":"busybox","Cmd":["true"],"HostConfig":{"NanoCpus":500000000}}`
		a.call(t, "POST", "/containers/create", []byte(body), nil).wantError(t, 400, "NanoCPUs can not be set")
	}

	// Nothing of the containers is left: cgroups, shims, runc state.
	var ps []json.RawMessage
	a.call(t, "GET", "/containers/json?all=1", nil, nil).wantStatus(t, 200).decode(t, &ps)
	if len(ps) != 0 {
		t.Errorf("containers left: %s", ps)
	}
	// A --rm container's shim deletes its runc state and cgroup just
	// after the exit: give it a moment.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ents, _ := os.ReadDir(filepath.Join(d.execRoot, "runc"))
		cgs, _ := filepath.Glob(filepath.Join(root, "berth", "*", "cgroup.procs"))
		// Other daemons' containers share <root>/berth: ours are those
		// our daemon's (debug) log names.
		logText, _ := os.ReadFile(d.logPath)
		var mine []string
		for _, p := range cgs {
			if id := filepath.Base(filepath.Dir(p)); strings.Contains(string(logText), id) {
				mine = append(mine, filepath.Dir(p))
			}
		}
		if len(ents) == 0 && len(mine) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("runc state left: %v; cgroups left: %q", ents, mine)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for {
		left := processesUnder(d.dir)
		if len(left) == 1 && strings.HasPrefix(left[0], fmt.Sprint(d.pid())+":") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("processes left besides berthd (pid %d): %q", d.pid(), left)
			for _, p := range left {
				if pid, _ := strconv.Atoi(strings.SplitN(p, ":", 2)[0]); pid > 0 && pid != d.pid() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}
