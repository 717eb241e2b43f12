package spec

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// These tests run real containers with the runc on this machine. They need
// root, runc and a static busybox (Debian's busybox-static), and skip
// otherwise. Every container lives under the cgroup /berth-spec-test/<rand>
// and is deleted, with its cgroups, when the test ends.

const cgroupTestParent = "berth-spec-test"

type runcEnv struct {
	t       *testing.T
	runc    string
	dir     string // bundle and state live here
	rootfs  string
	state   string
	cgroups []string // cgroup paths to remove at the end
}

func newRuncEnv(t *testing.T) *runcEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc not installed")
	}
	bb := "/bin/busybox"
	if out, err := exec.Command("file", "-L", bb).Output(); err != nil || !bytes.Contains(out, []byte("statically linked")) {
		t.Skip("needs a static /bin/busybox (apt-get install busybox-static)")
	}
	e := &runcEnv{t: t, runc: runc, dir: t.TempDir()}
	e.rootfs = filepath.Join(e.dir, "rootfs")
	e.state = filepath.Join(e.dir, "state")
	e.buildRootfs(bb)
	t.Cleanup(e.cleanup)
	return e
}

func (e *runcEnv) buildRootfs(bb string) {
	t := e.t
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev", "home/app"} {
		if err := os.MkdirAll(filepath.Join(e.rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.rootfs, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range strings.Fields(string(list)) {
		if name == "busybox" {
			continue
		}
		_ = os.Symlink("busybox", filepath.Join(e.rootfs, "bin", name))
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(e.rootfs, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
	write("etc/group", "root:x:0:root\nwheel:x:10:root,app\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n")
	// A symlink an image could ship to lead a working directory into /proc.
	if err := os.Symlink("/proc/self/fd/7", filepath.Join(e.rootfs, "evil")); err != nil {
		t.Fatal(err)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// input returns a Generate input for a new container in this env.
func (e *runcEnv) input(cfg *container.Config, hc *container.HostConfig) Input {
	id := "bst" + randHex(8)
	cg := "/" + cgroupTestParent + "/" + id
	e.cgroups = append(e.cgroups, cg)
	return Input{ID: id, Config: cfg, HostConfig: hc, Rootfs: e.rootfs, Hostname: "berth-" + id[:8], CgroupsPath: cg}
}

func (e *runcEnv) writeBundle(s *specs.Spec) string {
	bundle := filepath.Join(e.dir, "bundle-"+randHex(4))
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		e.t.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return bundle
}

func (e *runcEnv) cmd(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, e.runc, append([]string{"--root", e.state}, args...)...)
}

// run runs the container of s in the foreground and returns its output.
func (e *runcEnv) run(id string, s *specs.Spec) (string, error) {
	bundle := e.writeBundle(s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	c := e.cmd(ctx, "run", "--bundle", bundle, id)
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	e.delete(id)
	return out.String(), err
}

func (e *runcEnv) delete(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = e.cmd(ctx, "delete", "-f", id).Run()
}

func (e *runcEnv) cleanup() {
	ctrls, _ := filepath.Glob("/sys/fs/cgroup/*")
	ctrls = append(ctrls, "/sys/fs/cgroup")
	for _, cg := range e.cgroups {
		for _, c := range ctrls {
			_ = os.Remove(filepath.Join(c, cg))
		}
	}
	for _, c := range ctrls {
		_ = os.Remove(filepath.Join(c, cgroupTestParent)) // fails while another test uses it
	}
}

func statusField(status, name string) string {
	m := regexp.MustCompile(`(?m)^` + name + `:\s*(\S+)`).FindStringSubmatch(status)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestRuncDefaultIsolation(t *testing.T) {
	e := newRuncEnv(t)
	script := `cat /proc/self/status; echo "HOST=$(hostname)"; ls -l /proc/kcore /proc/keys /proc/timer_list /proc/interrupts 2>/dev/null; echo CGROUP; cat /proc/self/cgroup;
echo "MEM=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)";
echo "PIDS=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)";
echo "NOFILE=$(ulimit -n)"; echo "ID=$(id)"; echo "PWD=$(pwd)"; echo "SHM=$(df -k /dev/shm | tail -1)";
echo "ENV=$(env | sort | tr '\n' ' ')"; echo x > /proc/sys/kernel/domainname && echo RW_PROC_SYS || echo RO_PROC_SYS;
echo "FIRMWARE=$(ls -A /sys/firmware | wc -l)";
mknod /tmp/blk c 1 7 && echo MKNOD_OK; head -c1 /tmp/blk >/dev/null && echo FULL_READ; rm -f /tmp/blk;
mknod /tmp/mem c 1 1 && echo "MEM=$(head -c1 /tmp/mem 2>&1 >/dev/null)"; rm -f /tmp/mem;
head -c1 /dev/urandom >/dev/null && echo URANDOM_OK`
	in := e.input(&container.Config{Cmd: []string{"sh", "-c", script}, WorkingDir: "/work/new", Env: []string{"FOO=bar"}},
		&container.HostConfig{Resources: container.Resources{Memory: 64 << 20, PidsLimit: ptr(int64(100))}})
	s, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.run(in.ID, s)
	if err != nil {
		t.Fatalf("runc run: %v\n%s", err, out)
	}
	t.Log(out)
	checks := map[string]string{
		"CapEff": "00000000a80425fb", "CapPrm": "00000000a80425fb", "CapBnd": "00000000a80425fb",
		"CapInh": "0000000000000000", "CapAmb": "0000000000000000", "Seccomp": "2", "NoNewPrivs": "0",
	}
	for k, want := range checks {
		if got := statusField(out, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, want := range []string{
		"HOST=" + in.Hostname,
		"/" + cgroupTestParent + "/" + in.ID,
		"MEM=67108864",
		"PIDS=100",
		"NOFILE=" + fmt.Sprint(min(DefaultNofile, DetectHost().NofileHard)),
		"ID=uid=0(root) gid=0(root) groups=0(root),10(wheel)",
		"PWD=/work/new",
		"FOO=bar", "HOSTNAME=" + in.Hostname, "PATH=" + DefaultPathEnv,
		"RO_PROC_SYS",
		"FIRMWARE=0", // masked directory: an empty tmpfs
		// The device cgroup: mknod of anything, use of the allowed only
		// (/dev/full yes, /dev/mem no).
		"MKNOD_OK", "FULL_READ", "URANDOM_OK", "MEM=head: /tmp/mem: Operation not permitted",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// Masked files are covered with /dev/null: a char device 1, 3. Which of
	// them exist depends on the kernel.
	for _, f := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/interrupts"} {
		if _, err := os.Stat(f); err != nil {
			continue
		}
		if !regexp.MustCompile(`(?m)^c.*1,\s+3 .*` + f + `$`).MatchString(out) {
			t.Errorf("%s is not masked", f)
		}
	}
	if !strings.Contains(out, "65536") { // /dev/shm is 64 MiB
		t.Errorf("/dev/shm size not 64M")
	}
}

func TestRuncPrivileged(t *testing.T) {
	e := newRuncEnv(t)
	in := e.input(&container.Config{Cmd: []string{"sh", "-c", "cat /proc/self/status; ls /dev; echo x > /proc/sys/kernel/domainname && echo RW_PROC_SYS; grep ' /sys ' /proc/mounts"}},
		&container.HostConfig{Privileged: true})
	s, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp != nil || s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
		t.Fatal("privileged spec keeps seccomp or masked/readonly paths")
	}
	out, err := e.run(in.ID, s)
	if err != nil {
		t.Fatalf("runc run: %v\n%s", err, out)
	}
	t.Log(out)
	want := fmt.Sprintf("%016x", capMask(DetectHost().Caps))
	if got := statusField(out, "CapEff"); got != want {
		t.Errorf("CapEff = %q, want the host's %q", got, want)
	}
	if got := statusField(out, "Seccomp"); got != "0" {
		t.Errorf("Seccomp = %q, want 0", got)
	}
	// The host's device nodes are there (ls /dev lists them by name).
	devs, _ := hostDevices()
	for _, d := range devs {
		if name := strings.TrimPrefix(d.Path, "/dev/"); !strings.Contains(name, "/") && d.Type == "b" {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `$`).MatchString(out) {
				t.Errorf("host block device %s missing in the privileged container", d.Path)
			}
			break
		}
	}
	if !strings.Contains(out, "RW_PROC_SYS") {
		t.Errorf("/proc/sys is not writable in a privileged container")
	}
	if !regexp.MustCompile(`sysfs /sys sysfs rw`).MatchString(out) {
		t.Errorf("/sys is not read-write in a privileged container")
	}
}

func TestRuncOptions(t *testing.T) {
	e := newRuncEnv(t)
	init := "/usr/bin/tini-static"
	if _, err := os.Stat(init); err != nil {
		init = ""
	}
	hc := &container.HostConfig{
		ReadonlyRootfs: true,
		Tmpfs:          map[string]string{"/scratch": "size=1m"},
		CapDrop:        []string{"chown"},
		CapAdd:         []string{"sys_admin"},
		SecurityOpt:    []string{"no-new-privileges"},
		Sysctls:        map[string]string{"net.ipv4.ip_forward": "1"},
		GroupAdd:       []string{"staff"},
	}
	hc.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 512, Hard: 1024}}
	if init != "" {
		hc.Init = ptr(true)
	}
	script := `cat /proc/self/status; touch /x 2>/dev/null && echo ROOT_RW || echo ROOT_RO; touch /scratch/y && echo TMPFS_RW;
grep ' /scratch ' /proc/mounts; echo "NOFILE=$(ulimit -Sn):$(ulimit -Hn)"; echo "FWD=$(cat /proc/sys/net/ipv4/ip_forward)";
echo "ID=$(id)"; echo "INIT=$(tr '\0' ' ' < /proc/1/cmdline)"`
	in := e.input(&container.Config{Cmd: []string{"sh", "-c", script}, User: "app"}, hc)
	in.InitPath = init
	s, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.run(in.ID, s)
	if err != nil {
		t.Fatalf("runc run: %v\n%s", err, out)
	}
	t.Log(out)
	// app is not root: its effective set is empty, the bounding set is the
	// default less CHOWN plus SYS_ADMIN.
	wantBnd := fmt.Sprintf("%016x", (defaultCapMask&^1)|1<<21)
	if got := statusField(out, "CapBnd"); got != wantBnd {
		t.Errorf("CapBnd = %q, want %q", got, wantBnd)
	}
	if got := statusField(out, "CapEff"); got != "0000000000000000" {
		t.Errorf("CapEff of a non-root user = %q, want 0", got)
	}
	if got := statusField(out, "NoNewPrivs"); got != "1" {
		t.Errorf("NoNewPrivs = %q", got)
	}
	for _, want := range []string{
		"ROOT_RO", "TMPFS_RW", "noexec", "size=1024k", "NOFILE=512:1024", "FWD=1",
		"ID=uid=1000(app) gid=1000(app) groups=10(wheel),50(staff),1000(app)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if init != "" && !strings.Contains(out, "INIT="+InitDest+" -- sh -c") {
		t.Errorf("pid 1 is not the init")
	}
}

func TestRuncWorkingDirIntoProcRejected(t *testing.T) {
	e := newRuncEnv(t)
	for _, wd := range []string{"/proc/self/fd/7", "/evil", "/evil/sub", "/dev/fd/7", "/dev/../evil", "/proc/1/cwd"} {
		in := e.input(&container.Config{Cmd: []string{"pwd"}, WorkingDir: wd}, nil)
		if _, err := Generate(in); err == nil {
			t.Errorf("working dir %s accepted", wd)
		}
	}
}

// TestRuncExec starts a container, then runs exec processes built by
// ExecProcess in it, including one whose working directory is a symlink the
// container itself planted in its tmpfs.
func TestRuncExec(t *testing.T) {
	e := newRuncEnv(t)
	in := e.input(&container.Config{Cmd: []string{"sleep", "60"}, Env: []string{"A=1"}},
		&container.HostConfig{Tmpfs: map[string]string{"/run/x": ""}})
	s, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	bundle := e.writeBundle(s)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The container keeps its stdio: give it a file, not a pipe we would
	// wait on.
	logf, err := os.Create(filepath.Join(e.dir, "detached.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	start := e.cmd(ctx, "run", "--detach", "--bundle", bundle, in.ID)
	start.Stdout, start.Stderr = logf, logf
	if err := start.Run(); err != nil {
		b, _ := os.ReadFile(logf.Name())
		t.Fatalf("runc run -d: %v\n%s", err, b)
	}
	defer e.delete(in.ID)
	st, err := e.cmd(ctx, "state", in.ID).Output()
	if err != nil {
		t.Fatal(err)
	}
	var state struct{ Pid int }
	if err := json.Unmarshal(st, &state); err != nil || state.Pid == 0 {
		t.Fatalf("runc state: %v %s", err, st)
	}
	execIn := func(ei ExecInput) (string, error) {
		ei.Pid = state.Pid
		p, err := ExecProcess(s, ei)
		if err != nil {
			return "", err
		}
		b, _ := json.Marshal(p)
		pf := filepath.Join(e.dir, "process-"+randHex(4)+".json")
		if err := os.WriteFile(pf, b, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := e.cmd(ctx, "exec", "--process", pf, in.ID).CombinedOutput()
		if err != nil {
			t.Fatalf("runc exec: %v\n%s", err, out)
		}
		return string(out), nil
	}

	out, err := execIn(ExecInput{Cmd: []string{"sh", "-c", "id; pwd; env; grep Cap /proc/self/status"}, User: "app", WorkingDir: "/home/app", Env: []string{"B=2"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"uid=1000(app)", "/home/app", "A=1", "B=2", "HOSTNAME=" + in.Hostname} {
		if !strings.Contains(out, want) {
			t.Errorf("exec output lacks %q:\n%s", want, out)
		}
	}
	out, err = execIn(ExecInput{Cmd: []string{"sh", "-c", "grep CapEff /proc/self/status"}, Privileged: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%016x", capMask(DetectHost().Caps)); !strings.Contains(out, want) {
		t.Errorf("privileged exec: %s, want CapEff %s", out, want)
	}
	// The container plants a symlink into /proc in its own tmpfs.
	if _, err := execIn(ExecInput{Cmd: []string{"ln", "-s", "/proc/self/fd/7", "/run/x/evil"}}); err != nil {
		t.Fatal(err)
	}
	for _, wd := range []string{"/proc/self/fd/7", "/run/x/evil", "/dev/fd/7"} {
		if _, err := execIn(ExecInput{Cmd: []string{"pwd"}, WorkingDir: wd}); err == nil {
			t.Errorf("exec working dir %s accepted", wd)
		}
	}
}
