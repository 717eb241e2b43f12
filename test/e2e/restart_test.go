package e2e

import (
	"syscall"
	"testing"
	"time"
)

// Restart policies (issue 3, item 1).

// TestRestartPolicies: on-failure:N, always, unless-stopped and the bad
// ones.
func TestRestartPolicies(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		// on-failure:2: two restarts, then it stays exited.
		name := ctrName(t, "onfailure")
		c.ok("run", "-d", "--name", name, "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1")
		ci := waitCtr(t, a, name, "exited after 2 restarts", 30*time.Second, func(c ctrJSON) bool {
			return c.State.Status == "exited" && c.RestartCount == 2
		})
		if ci.State.ExitCode != 1 || ci.HostConfig.RestartPolicy.Name != "on-failure" || ci.HostConfig.RestartPolicy.MaximumRetryCount != 2 {
			t.Errorf("on-failure:2: ExitCode %d RestartPolicy %+v", ci.State.ExitCode, ci.HostConfig.RestartPolicy)
		}
		// No third restart (Docker's back-off is 100ms, 200ms, 400ms…).
		if poll(1500*time.Millisecond, func() bool { return inspectCtr(t, a, name).RestartCount > 2 }) {
			t.Errorf("on-failure:2 restarted a third time")
		}
		// on-failure does not restart a clean exit.
		name = ctrName(t, "onfailure0")
		c.ok("run", "-d", "--name", name, "--restart", "on-failure", "busybox", "true")
		waitExited(t, a, name, 30*time.Second)
		if poll(1*time.Second, func() bool { return inspectCtr(t, a, name).RestartCount > 0 }) {
			t.Errorf("on-failure restarted a container that exited 0")
		}

		// always: a process that dies is started again, a clean exit too.
		name = ctrName(t, "always")
		alwaysName := name
		c.ok("run", "-d", "--name", name, "--restart", "always", "busybox", "sleep", "300")
		ci = waitRunning(t, a, name)
		if ci.State.Pid <= 1 {
			t.Fatalf("bad Pid %d", ci.State.Pid)
		}
		if err := syscall.Kill(ci.State.Pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 %d: %v", ci.State.Pid, err)
		}
		waitCtr(t, a, name, "restarted after its process was killed", 30*time.Second, func(c ctrJSON) bool {
			return c.State.Running && c.RestartCount == 1 && c.State.Pid != ci.State.Pid
		})
		name = ctrName(t, "alwaysexit")
		c.ok("run", "-d", "--name", name, "--restart", "always", "busybox", "true")
		waitCtr(t, a, name, "restarted twice after exiting 0", 30*time.Second, func(c ctrJSON) bool { return c.RestartCount >= 2 })
		c.ok("stop", "-t", "0", name)
		c.ok("rm", name) // a stopped restart=always container can be removed

		// unless-stopped: not restarted after stop.
		name = ctrName(t, "unlessstopped")
		c.ok("run", "-d", "--name", name, "--restart", "unless-stopped", "busybox", "sleep", "300")
		waitRunning(t, a, name)
		c.ok("stop", "-t", "0", name)
		if poll(1500*time.Millisecond, func() bool { c := inspectCtr(t, a, name); return c.State.Running || c.RestartCount > 0 }) {
			t.Errorf("restart=unless-stopped: restarted after stop")
		}

		// An explicit `kill` is a manual stop: Docker does not restart it.
		name = alwaysName
		c.ok("kill", name)
		waitExited(t, a, name, 10*time.Second)
		if poll(1500*time.Millisecond, func() bool { return inspectCtr(t, a, name).State.Running }) {
			t.Errorf("restart=always: the container was restarted after an explicit kill (Docker leaves it stopped)")
		}

		// Docker: invalid restart policy 'bogus' (400)
		c.run("run", "-d", "--name", ctrName(t, "bogus"), "--restart", "bogus", "busybox", "true").wantCode(t, c.name, 125, "invalid restart policy 'bogus'")
	})
	// The API's 400s.
	for body, msg := range map[string]string{
		`{"Image":"busybox:latest","HostConfig":{"RestartPolicy":{"Name":"bogus"}}}`:                             "invalid restart policy 'bogus'",
		`{"Image":"busybox:latest","HostConfig":{"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":-1}}}`: "maximum retry count cannot be negative",
		`{"Image":"busybox:latest","HostConfig":{"RestartPolicy":{"Name":"always","MaximumRetryCount":2}}}`:      "maximum retry count cannot be used with restart policy 'always'",
	} {
		a.call(t, "POST", "/containers/create", []byte(body), nil).wantError(t, 400, msg)
	}
}
