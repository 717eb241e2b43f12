package e2e

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The `run` command (issue 3, item 1): what Docker prints and returns for
// each option. Every scenario runs through both CLIs.

// TestRunForeground: output on stdout and stderr, the container's exit
// code as the CLI's, a missing command is 127 with Docker's message.
func TestRunForeground(t *testing.T) {
	busybox(t)
	eachCLI(t, func(t *testing.T, c *CLI) {
		r := c.run("run", "--name", ctrName(t, "fg"), "busybox", "sh", "-c", "echo to-stdout; echo to-stderr >&2")
		r.wantCode(t, c.name, 0)
		r.wantOut(t, c.name, "to-stdout")
		if strings.TrimSpace(r.Stderr) != "to-stderr" {
			t.Errorf("%s run: stderr %q, want the container's to-stderr only", c.name, r.Stderr)
		}

		c.run("run", "--name", ctrName(t, "exit3"), "busybox", "sh", "-c", "exit 3").wantCode(t, c.name, 3)

		// dockerd 20.10: docker: Error response from daemon: failed to create shim task: OCI runtime create failed:
		// runc create failed: unable to start container process: exec: "nosuchcmd": executable file not found in $PATH: unknown
		r = c.run("run", "--name", ctrName(t, "nocmd"), "busybox", "nosuchcmd")
		r.wantCode(t, c.name, 127, "executable file not found", `"nosuchcmd"`)
		r = c.run("run", "--name", ctrName(t, "nocmd"), "busybox", "/no/such/binary")
		r.wantCode(t, c.name, 127, "no such file or directory")
	})
}

// TestRunPullsMissingImage: `run` of an image that is not there pulls it
// ("Unable to find image ... locally"), then runs it.
func TestRunPullsMissingImage(t *testing.T) {
	a := requireEnv(t).api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		removeImageEverywhere(t, a, "alpine:3.18")
		r := c.run("run", "--rm", "--name", ctrName(t, "pull"), "alpine:3.18", "cat", "/etc/alpine-release")
		r.wantCode(t, c.name, 0, "Unable to find image 'alpine:3.18' locally", "Status: Downloaded newer image for alpine:3.18")
		if !strings.HasPrefix(strings.TrimSpace(r.Stdout), "3.18") {
			t.Errorf("%s run alpine:3.18: stdout %q, want the alpine release 3.18.x", c.name, r.Stdout)
		}
		if !imageExists(t, a, "alpine:3.18") {
			t.Errorf("alpine:3.18 is not in the store after run pulled it")
		}
		// A name no registry has: the pull fails, exit 125.
		r = c.run("run", "--rm", "e2e-nosuchimage-"+uniq())
		r.wantCode(t, c.name, 125, "Unable to find image", "Error response from daemon")
	})
}

// TestRunDetachedAndRm: -d prints the full ID; --rm removes the container
// when it exits; a taken name is a 409 with Docker's wording.
func TestRunDetachedAndRm(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		name := ctrName(t, "detach")
		r := c.ok("run", "-d", "--name", name, "busybox", "sleep", "300")
		id := strings.TrimSpace(r.Stdout)
		if !hexIDRE.MatchString(id) {
			t.Fatalf("%s run -d: stdout %q, want the 64-hex container ID", c.name, r.Stdout)
		}
		ci := waitRunning(t, a, name)
		if ci.ID != id || ci.Name != "/"+name {
			t.Errorf("inspect %s: Id %s Name %s, want %s /%s", name, ci.ID, ci.Name, id, name)
		}

		// Docker: 409 Conflict. The container name "/x" is already in use by container "<id>". You have to
		// remove (or rename) that container to be able to reuse that name.
		want := fmt.Sprintf(`Conflict. The container name "/%s" is already in use by container "%s". You have to remove (or rename) that container to be able to reuse that name.`, name, id)
		c.run("run", "-d", "--name", name, "busybox", "true").wantCode(t, c.name, 125, want)
		c.run("create", "--name", name, "busybox", "true").wantCode(t, c.name, 1, want)
		a.call(t, "POST", "/containers/create?name="+name, []byte(`{"Image":"busybox:latest"}`), nil).wantError(t, 409, want)

		// --rm: gone as soon as the CLI returns (it waits for condition=removed).
		rmName := ctrName(t, "rm")
		c.run("run", "--rm", "--name", rmName, "busybox", "sh", "-c", "echo bye; exit 2").wantCode(t, c.name, 2)
		if ctrExists(t, a, rmName) {
			t.Errorf("%s run --rm: container %s still exists after the CLI returned", c.name, rmName)
		}
		if out := c.ok("ps", "-a", "-q", "--filter", "name="+rmName).Stdout; strings.TrimSpace(out) != "" {
			t.Errorf("%s ps -a --filter name=%s: %q, want nothing", c.name, rmName, out)
		}
		// -d --rm: removed when it stops.
		rmName = ctrName(t, "rmd")
		c.ok("run", "-d", "--rm", "--name", rmName, "busybox", "sleep", "300")
		waitRunning(t, a, rmName)
		c.ok("stop", "-t", "0", rmName)
		waitGone(t, a, rmName, 30*time.Second)
	})
}

// TestRunOptions: -e, --env-file, -w, -u, --hostname, -l, --entrypoint,
// --stop-signal and --stop-timeout reach the process and inspect.
func TestRunOptions(t *testing.T) {
	busybox(t)
	a := env.d.api()
	envFile := writeFile(t, t.TempDir(), "env.list", []byte("# a comment\nFROMFILE=yes\nSPACED=a b\n"))
	eachCLI(t, func(t *testing.T, c *CLI) {
		name := ctrName(t, "opts")
		r := c.ok("run", "--name", name, "-e", "FOO=bar", "-e", "EMPTY=", "--env-file", envFile,
			"-w", "/tmp/wd", "-u", "nobody", "--hostname", "myhost", "-l", "e2e.a=b", "-l", "e2e.c=d",
			"busybox", "sh", "-c", `echo "FOO=$FOO"; echo "EMPTY=[$EMPTY]"; echo "FROMFILE=$FROMFILE"; echo "SPACED=$SPACED"; pwd; id -un; id -u; hostname; cat /etc/hostname`)
		want := []string{"FOO=bar", "EMPTY=[]", "FROMFILE=yes", "SPACED=a b", "/tmp/wd", "nobody", "65534", "myhost", "myhost"}
		if got := lines(r.Stdout); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s run with options: output %q, want %q", c.name, got, want)
		}
		ci := inspectCtr(t, a, name)
		for _, e := range []string{"FOO=bar", "EMPTY=", "FROMFILE=yes", "SPACED=a b"} {
			if !contains(ci.Config.Env, e) {
				t.Errorf("inspect Config.Env %q lacks %q", ci.Config.Env, e)
			}
		}
		if ci.Config.User != "nobody" || ci.Config.WorkingDir != "/tmp/wd" || ci.Config.Hostname != "myhost" {
			t.Errorf("inspect Config: User %q WorkingDir %q Hostname %q, want nobody /tmp/wd myhost", ci.Config.User, ci.Config.WorkingDir, ci.Config.Hostname)
		}
		if ci.Config.Labels["e2e.a"] != "b" || ci.Config.Labels["e2e.c"] != "d" {
			t.Errorf("inspect Config.Labels %v, want e2e.a=b e2e.c=d", ci.Config.Labels)
		}
		if got := c.ok("inspect", "-f", "{{index .Config.Labels \"e2e.a\"}}", name).Stdout; strings.TrimSpace(got) != "b" {
			t.Errorf("%s inspect -f label: %q, want b", c.name, got)
		}

		r = c.ok("run", "--rm", "--name", ctrName(t, "ep"), "--entrypoint", "echo", "busybox", "a", "b")
		r.wantOut(t, c.name, "a b")

		name = ctrName(t, "stopopts")
		c.ok("create", "--name", name, "--stop-signal", "SIGUSR1", "--stop-timeout", "3", "busybox", "true")
		ci = inspectCtr(t, a, name)
		if ci.Config.StopSignal != "SIGUSR1" || ci.Config.StopTimeout == nil || *ci.Config.StopTimeout != 3 {
			t.Errorf("inspect: StopSignal %q StopTimeout %v, want SIGUSR1 3", ci.Config.StopSignal, ci.Config.StopTimeout)
		}
	})
}

// TestRunStdin: -i connects the CLI's stdin; without -i the container
// sees none.
func TestRunStdin(t *testing.T) {
	busybox(t)
	eachCLI(t, func(t *testing.T, c *CLI) {
		r := c.runStdin([]byte("hi\nthere\n"), "run", "-i", "--rm", "--name", ctrName(t, "stdin"), "busybox", "cat")
		r.wantCode(t, c.name, 0)
		r.wantOut(t, c.name, "hi\nthere")
		r = c.runStdin([]byte("hi\n"), "run", "--rm", "--name", ctrName(t, "nostdin"), "busybox", "cat")
		r.wantCode(t, c.name, 0)
		r.wantOut(t, c.name, "")
		// stdin and the exit code together.
		r = c.runStdin([]byte("exit 5\n"), "run", "-i", "--rm", "--name", ctrName(t, "stdinsh"), "busybox", "sh")
		r.wantCode(t, c.name, 5)
	})
}

// TestRunInit: --init runs Docker's init (docker-init, a tini) as PID 1,
// with the command as its child.
func TestRunInit(t *testing.T) {
	busybox(t)
	eachCLI(t, func(t *testing.T, c *CLI) {
		r := c.ok("run", "--rm", "--init", "--name", ctrName(t, "init"), "busybox", "sh", "-c", "cat /proc/1/comm; echo $$")
		l := lines(r.Stdout)
		if len(l) != 2 {
			t.Fatalf("%s run --init: output %q", c.name, r.Stdout)
		}
		if l[0] != "docker-init" && !strings.HasPrefix(l[0], "tini") {
			t.Errorf("%s run --init: PID 1 is %q, want docker-init (tini)", c.name, l[0])
		}
		if l[1] == "1" {
			t.Errorf("%s run --init: the command is PID 1", c.name)
		}
		// Without --init the command is PID 1.
		r = c.ok("run", "--rm", "--name", ctrName(t, "noinit"), "busybox", "sh", "-c", "echo $$")
		r.wantOut(t, c.name, "1")
	})
}

// TestRunReadOnlyTmpfs: --read-only makes the root file system read-only;
// --tmpfs mounts a writable tmpfs with Docker's default options.
func TestRunReadOnlyTmpfs(t *testing.T) {
	busybox(t)
	eachCLI(t, func(t *testing.T, c *CLI) {
		r := c.run("run", "--rm", "--read-only", "--name", ctrName(t, "ro"), "busybox", "touch", "/x")
		r.wantCode(t, c.name, 1, "Read-only file system")
		r = c.ok("run", "--rm", "--read-only", "--tmpfs", "/tmp", "--tmpfs", "/big:size=1m", "--name", ctrName(t, "tmpfs"),
			"busybox", "sh", "-c", `touch /tmp/y && echo written; grep -E " /(tmp|big) " /proc/mounts`)
		l := lines(r.Stdout)
		if len(l) != 3 || l[0] != "written" {
			t.Fatalf("%s run --tmpfs: output %q", c.name, r.Stdout)
		}
		// dockerd: tmpfs /tmp tmpfs rw,nosuid,nodev,noexec,relatime 0 0
		for _, m := range l[1:] {
			f := strings.Fields(m)
			if len(f) < 4 || f[0] != "tmpfs" || f[2] != "tmpfs" {
				t.Errorf("%s run --tmpfs: mount %q, want a tmpfs", c.name, m)
				continue
			}
			opts := "," + f[3] + ","
			for _, o := range []string{"rw", "nosuid", "nodev", "noexec"} {
				if !strings.Contains(opts, ","+o+",") {
					t.Errorf("%s run --tmpfs: mount %q lacks %s", c.name, m, o)
				}
			}
			if f[1] == "/big" && !strings.Contains(opts, ",size=1024k,") {
				t.Errorf("%s run --tmpfs /big:size=1m: mount %q, want size=1024k", c.name, m)
			}
		}
	})
}

// procStatus runs busybox with args and returns the named fields of its
// /proc/self/status.
func procStatus(t *testing.T, c *CLI, args ...string) map[string]string {
	t.Helper()
	r := c.run(append(append([]string{"run", "--rm", "--name", ctrName(t, "status")}, args...), "busybox", "cat", "/proc/self/status")...)
	if r.Code != 0 {
		t.Errorf("%s run %s: exit %d: %s", c.name, strings.Join(args, " "), r.Code, r.Stderr)
		return nil
	}
	out := map[string]string{}
	for _, l := range lines(r.Stdout) {
		k, v, _ := strings.Cut(l, ":")
		out[k] = strings.TrimSpace(v)
	}
	return out
}

// Docker's default capability set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL
// SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD
// AUDIT_WRITE SETFCAP (14).
const dockerDefaultCaps = "00000000a80425fb"

// TestRunCapabilitiesAndSecurity: Docker's 14 capabilities with empty
// inheritable and ambient sets, seccomp on; --cap-drop/--cap-add change
// the set; no-new-privileges sets NoNewPrivs.
func TestRunCapabilitiesAndSecurity(t *testing.T) {
	busybox(t)
	eachCLI(t, func(t *testing.T, c *CLI) {
		st := procStatus(t, c)
		want := map[string]string{"CapEff": dockerDefaultCaps, "CapPrm": dockerDefaultCaps, "CapBnd": dockerDefaultCaps,
			"CapInh": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "0", "Seccomp": "2"}
		for k, v := range want {
			if st != nil && st[k] != v {
				t.Errorf("%s run (defaults): %s %q, want %q", c.name, k, st[k], v)
			}
		}
		for _, tc := range []struct {
			args []string
			eff  string
		}{
			{[]string{"--cap-drop", "ALL"}, "0000000000000000"},
			{[]string{"--cap-drop", "ALL", "--cap-add", "NET_ADMIN"}, "0000000000001000"},
			{[]string{"--cap-drop", "CHOWN"}, "00000000a80425fa"},
			{[]string{"--cap-add", "SYS_ADMIN"}, "00000000a82425fb"},
		} {
			if st := procStatus(t, c, tc.args...); st != nil && (st["CapEff"] != tc.eff || st["CapBnd"] != tc.eff) {
				t.Errorf("%s run %s: CapEff %s CapBnd %s, want %s", c.name, strings.Join(tc.args, " "), st["CapEff"], st["CapBnd"], tc.eff)
			}
		}
		r := c.run("run", "--rm", "--cap-drop", "CHOWN", "--name", ctrName(t, "chown"), "busybox", "chown", "1", "/tmp")
		r.wantCode(t, c.name, 1, "Operation not permitted")

		if st := procStatus(t, c, "--security-opt", "no-new-privileges"); st != nil && st["NoNewPrivs"] != "1" {
			t.Errorf("%s run --security-opt no-new-privileges: NoNewPrivs %q, want 1", c.name, st["NoNewPrivs"])
		}
	})
}

// TestRunUlimit: --ulimit sets the limit; the default never exceeds the
// host's hard limit.
func TestRunUlimit(t *testing.T) {
	busybox(t)
	hostHard := hostNofileHard(t)
	eachCLI(t, func(t *testing.T, c *CLI) {
		r := c.ok("run", "--rm", "--ulimit", "nofile=512:512", "--name", ctrName(t, "ulimit"), "busybox", "sh", "-c", "ulimit -Sn; ulimit -Hn")
		r.wantOut(t, c.name, "512\n512")
		r = c.ok("run", "--rm", "--ulimit", "nofile=256:1024", "--name", ctrName(t, "ulimit"), "busybox", "sh", "-c", "ulimit -Sn; ulimit -Hn")
		r.wantOut(t, c.name, "256\n1024")
		r = c.ok("run", "--rm", "--name", ctrName(t, "ulimit"), "busybox", "sh", "-c", "ulimit -Hn")
		if n, err := strconv.Atoi(strings.TrimSpace(r.Stdout)); err != nil || n > hostHard || n < 1024 {
			t.Errorf("%s run: default hard nofile %q, want between 1024 and the host's hard limit %d", c.name, r.Stdout, hostHard)
		}
	})
}

func hostNofileHard(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Max open files\s+\d+\s+(\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no Max open files in /proc/self/limits")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestRunPrivileged: --privileged gives every capability the host has,
// the host's devices and no seccomp.
func TestRunPrivileged(t *testing.T) {
	busybox(t)
	host := map[string]string{}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines(string(b)) {
		k, v, _ := strings.Cut(l, ":")
		host[k] = strings.TrimSpace(v)
	}
	if env.target == "docker" {
		// dockerd 20.10 gives --privileged every capability up to the
		// kernel's cap_last_cap, whether the host's bounding set has it
		// or not; runc then fails with "unable to apply caps: operation
		// not permitted". Such a host (this VM lacks CAP_SYS_RESOURCE)
		// cannot run a privileged container under dockerd at all.
		if missing := missingBoundingCaps(t, host["CapBnd"]); len(missing) > 0 {
			onlyBerth(t, fmt.Sprintf("dockerd --privileged cannot start on this host: its bounding set %s lacks %s, which dockerd asks for (runc: unable to apply caps: operation not permitted)",
				host["CapBnd"], strings.Join(missing, ", ")))
		}
	}
	eachCLI(t, func(t *testing.T, c *CLI) {
		st := procStatus(t, c, "--privileged")
		if st == nil {
			return
		}
		if st["CapEff"] != host["CapBnd"] || st["Seccomp"] != "0" {
			t.Errorf("%s run --privileged: CapEff %s Seccomp %s, want the host's %s and 0", c.name, st["CapEff"], st["Seccomp"], host["CapBnd"])
		}
		r := c.run("run", "--rm", "--privileged", "--name", ctrName(t, "priv"), "busybox", "ls", "/dev/loop-control", "/dev/kmsg")
		r.wantCode(t, c.name, 0)
	})
}

// capNames are the capabilities by number (linux/capability.h).
var capNames = []string{"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
	"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
	"SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
	"MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
	"CHECKPOINT_RESTORE"}

// missingBoundingCaps names the capabilities up to the kernel's
// cap_last_cap that the bounding set capBnd (hex, /proc/self/status)
// lacks.
func missingBoundingCaps(t *testing.T, capBnd string) []string {
	t.Helper()
	bnd, err := strconv.ParseUint(capBnd, 16, 64)
	if err != nil {
		t.Fatalf("CapBnd %q: %v", capBnd, err)
	}
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		t.Fatal(err)
	}
	last, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("cap_last_cap %q: %v", b, err)
	}
	var missing []string
	for i := 0; i <= last && i < 64; i++ {
		if bnd&(1<<i) == 0 {
			name := fmt.Sprintf("capability %d", i)
			if i < len(capNames) {
				name = "CAP_" + capNames[i]
			}
			missing = append(missing, name)
		}
	}
	return missing
}

// TestRunRepeated: short-lived containers run back to back (the race
// between the CLI's attach, wait and start and a process that exits at
// once): every run prints its output, returns its code, and --rm leaves
// nothing.
func TestRunRepeated(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		label := "e2e.repeat=" + uniq()
		for i := 0; i < 10; i++ {
			want := fmt.Sprintf("hi-%d", i)
			r := c.runTimeout(20*time.Second, nil, "run", "--rm", "-l", label, "--name", ctrName(t, "rep"), "busybox", "echo", want)
			r.wantCode(t, c.name, 0)
			r.wantOut(t, c.name, want)
			r = c.runTimeout(20*time.Second, nil, "run", "-l", label, "--name", ctrName(t, "rep"), "busybox", "sh", "-c", "echo "+want+"; exit 3")
			r.wantCode(t, c.name, 3)
			r.wantOut(t, c.name, want)
		}
		var left []psEntry
		q := `{"label":["` + label + `"]}`
		a.call(t, "GET", "/containers/json?all=1&filters="+url.QueryEscape(q), nil, nil).wantStatus(t, 200).decode(t, &left)
		if len(left) != 10 {
			t.Errorf("%s: %d containers with the label remain, want the 10 without --rm", c.name, len(left))
		}
	})
}
