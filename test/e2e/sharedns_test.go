package e2e

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSharedNamespaceRefusals (issue 14 items 1 and 5): a container that
// names itself for --network container: is refused at start as dockerd
// refuses it ("cannot join own network", 500) and the daemon keeps
// answering (berthd used to take the container's lock twice and hang every
// later request); two containers naming each other, started at once, are
// both refused without hanging (dockerd 20.10 hangs there, so that part
// is berth's only); --pid and --ipc container: need a donor
// that exists at create (400) and runs at start (500); a running donor's
// PID namespace is joined.
func TestSharedNamespaceRefusals(t *testing.T) {
	busybox(t)
	a := env.d.api()

	self := ctrName(t, "ownnet")
	createCtr(t, a, self, map[string]any{"Image": "busybox", "Cmd": []string{"true"},
		"HostConfig": map[string]any{"NetworkMode": "container:" + self}})
	a.call(t, "POST", "/containers/"+self+"/start", nil, nil).wantError(t, 500, "cannot join own network")
	// Still answering: list, info, inspect, remove.
	a.call(t, "GET", "/containers/json?all=1", nil, nil).wantStatus(t, 200)
	a.call(t, "GET", "/info", nil, nil).wantStatus(t, 200)
	if st := inspectCtr(t, a, self).State; st.Status != "created" || !strings.Contains(st.Error, "cannot join own network") {
		t.Errorf("%s after the refused start: status %q error %q, want created and the refusal", self, st.Status, st.Error)
	}
	c := cli(t, "docker")
	selfCLI := ctrName(t, "ownnetcli")
	r := c.runTimeout(time.Minute, nil, "run", "--name", selfCLI, "--net=container:"+selfCLI, "busybox", "true")
	r.wantCode(t, "docker", 125, "cannot join own network")

	// --pid/--ipc container: a missing donor is refused at create and
	// nothing is created; a stopped one at start.
	label := "e2e-sharedns-" + uniq()
	for _, hc := range []map[string]any{
		{"PidMode": "container:e2e-no-such-donor"},
		{"IpcMode": "container:e2e-no-such-donor"},
	} {
		body, _ := json.Marshal(map[string]any{"Image": "busybox", "Cmd": []string{"true"}, "Labels": map[string]string{label: ""}, "HostConfig": hc})
		a.call(t, "POST", "/containers/create", body, nil).wantError(t, 400, "No such container: e2e-no-such-donor")
	}
	var left []any
	a.call(t, "GET", "/containers/json?all=1&filters="+url.QueryEscape(`{"label":["`+label+`"]}`), nil, nil).wantStatus(t, 200).decode(t, &left)
	if len(left) != 0 {
		t.Errorf("refused creates left %d containers", len(left))
	}
	donor := ctrName(t, "donor")
	donorID := createCtr(t, a, donor, map[string]any{"Image": "busybox", "Cmd": []string{"sleep", "300"}})
	pidJoiner := ctrName(t, "pidjoin")
	createCtr(t, a, pidJoiner, map[string]any{"Image": "busybox", "Cmd": []string{"sh", "-c", "ps -o comm | grep -c sleep"},
		"HostConfig": map[string]any{"PidMode": "container:" + donor}})
	ipcJoiner := ctrName(t, "ipcjoin")
	createCtr(t, a, ipcJoiner, map[string]any{"Image": "busybox", "Cmd": []string{"true"},
		"HostConfig": map[string]any{"IpcMode": "container:" + donor}})
	var hc struct {
		HostConfig struct{ PidMode, IpcMode string }
	}
	a.call(t, "GET", "/containers/"+pidJoiner+"/json", nil, nil).wantStatus(t, 200).decode(t, &hc)
	if got := hc.HostConfig.PidMode; got != "container:"+donorID {
		t.Errorf("%s: PidMode %q, want container:%s (by ID, as dockerd records it)", pidJoiner, got, donorID)
	}
	a.call(t, "POST", "/containers/"+pidJoiner+"/start", nil, nil).wantError(t, 500, "container "+donorID+" is not running")
	a.call(t, "POST", "/containers/"+ipcJoiner+"/start", nil, nil).wantError(t, 500, "can't join IPC of container "+donorID+": container "+donorID+" is not running")
	startCtr(t, a, donor)
	waitRunning(t, a, donor)
	// A private (default) IPC namespace is not shared.
	a.call(t, "POST", "/containers/"+ipcJoiner+"/start", nil, nil).wantError(t, 500, "non-shareable IPC")
	startCtr(t, a, pidJoiner)
	waitExited(t, a, pidJoiner, time.Minute)
	out, _, err := demux(a.call(t, "GET", "/containers/"+pidJoiner+"/logs?stdout=1", nil, nil).wantStatus(t, 200).Body)
	if err != nil || strings.TrimSpace(out) != "1" {
		t.Errorf("%s in the donor's PID namespace: sleep processes seen %q (%v), want 1", pidJoiner, out, err)
	}

	// Two naming each other, started at once: neither hangs.
	t.Run("mutual", func(t *testing.T) {
		onlyBerth(t, "dockerd 20.10 deadlocks when two containers naming each other for --network container: start at once (its start requests never answer)")
		x, y := ctrName(t, "mutx"), ctrName(t, "muty")
		createCtr(t, a, x, map[string]any{"Image": "busybox", "Cmd": []string{"true"},
			"HostConfig": map[string]any{"NetworkMode": "container:" + y}})
		createCtr(t, a, y, map[string]any{"Image": "busybox", "Cmd": []string{"true"},
			"HostConfig": map[string]any{"NetworkMode": "container:" + x}})
		for range 5 {
			var wg sync.WaitGroup
			for _, n := range []string{x, y} {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					r, err := a.do(ctx, "POST", "/containers/"+n+"/start", nil, nil)
					switch {
					case err != nil:
						t.Errorf("start %s: %v", n, err)
					case r.Status != 409 || !strings.Contains(r.message(), "cannot join network of a non running container"):
						t.Errorf("start %s: %s; want 409 cannot join network of a non running container", n, r)
					}
				})
			}
			wg.Wait()
		}
	})
}

// TestSharedNetnsHostname (issue 14 item 9): a container in another's
// network namespace (--network container:X) has X's hostname and domain
// name, in the kernel, in inspect, and X's /etc/hosts, /etc/hostname and
// /etc/resolv.conf, as dockerd gives them.
func TestSharedNetnsHostname(t *testing.T) {
	busybox(t)
	a := env.d.api()
	c := cli(t, "docker")
	donor := ctrName(t, "hdonor")
	c.ok("run", "-d", "--name", donor, "--hostname", "donorhost", "--domainname", "example.test", "--add-host", "marker.test:10.9.8.7", "busybox", "sleep", "300")
	waitRunning(t, a, donor)
	show := "hostname; cat /proc/sys/kernel/domainname; echo ==; cat /etc/hostname; echo ==; cat /etc/hosts; echo ==; cat /etc/resolv.conf"
	want := c.ok("exec", donor, "sh", "-c", show).Stdout
	joiner := ctrName(t, "hjoiner")
	got := c.ok("run", "--name", joiner, "--network", "container:"+donor, "busybox", "sh", "-c", show).Stdout
	if got != want {
		t.Errorf("--network container:%s sees\n%s\nwant the donor's\n%s", donor, got, want)
	}
	if !strings.HasPrefix(want, "donorhost\nexample.test\n") || !strings.Contains(want, "marker.test") {
		t.Errorf("the donor shows\n%s\nwant hostname donorhost, domain example.test and its --add-host", want)
	}
	var ci struct {
		Config struct{ Hostname, Domainname string }
	}
	a.call(t, "GET", "/containers/"+joiner+"/json", nil, nil).wantStatus(t, 200).decode(t, &ci)
	if ci.Config.Hostname != "donorhost" || ci.Config.Domainname != "example.test" {
		t.Errorf("inspect %s: Hostname %q Domainname %q, want the donor's donorhost example.test", joiner, ci.Config.Hostname, ci.Config.Domainname)
	}
}

// TestIpcShareableShm (issue 14 item 5, moby's TestIpcModeShareable and
// TestAPIIpcModeShareableAndContainer): a container that joins a
// shareable IPC namespace (--ipc container:X) shares X's /dev/shm (dockerd
// binds the donor's host tmpfs): a file one writes the other reads, and
// the size is the donor's --shm-size. A shareable /dev/shm is a mount on
// the host, a private one is not, and the host's goes when the donor is
// removed.
func TestIpcShareableShm(t *testing.T) {
	busybox(t)
	a := env.d.api()
	c := cli(t, "docker")
	donor := ctrName(t, "shmdonor")
	c.ok("run", "-d", "--name", donor, "--ipc", "shareable", "--shm-size", "8m", "busybox", "sleep", "300")
	waitRunning(t, a, donor)
	c.ok("exec", donor, "sh", "-c", "echo from-donor > /dev/shm/marker")
	joiner := ctrName(t, "shmjoiner")
	out := c.ok("run", "--name", joiner, "--ipc", "container:"+donor, "busybox", "sh", "-c",
		"cat /dev/shm/marker && echo from-joiner > /dev/shm/back && df -k /dev/shm | awk 'NR==2 {print $2}'").Stdout
	if want := "from-donor\n8192\n"; out != want {
		t.Errorf("--ipc container:%s sees %q in /dev/shm, want %q (the donor's file and its 8 MiB size)", donor, out, want)
	}
	if got := c.ok("exec", donor, "cat", "/dev/shm/back").Stdout; got != "from-joiner\n" {
		t.Errorf("the donor reads %q from the joiner's /dev/shm/back, want from-joiner", got)
	}

	// The donor's /dev/shm is a mount the host has; a private one's is not.
	devOf := func(name string) string {
		t.Helper()
		mm := strings.TrimSpace(c.ok("exec", name, "awk", `$5 == "/dev/shm" {print $3}`, "/proc/self/mountinfo").Stdout)
		if mm == "" {
			t.Fatalf("%s has no /dev/shm mount", name)
		}
		return mm
	}
	onHost := func(mm string) bool {
		t.Helper()
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		for l := range strings.Lines(string(b)) {
			if f := strings.Fields(l); len(f) > 4 && f[2] == mm {
				return true
			}
		}
		return false
	}
	shared := devOf(donor)
	if !onHost(shared) {
		t.Errorf("the shareable %s's /dev/shm (%s) is not mounted on the host", donor, shared)
	}
	private := ctrName(t, "shmprivate")
	c.ok("run", "-d", "--name", private, "--ipc", "private", "busybox", "sleep", "300")
	waitRunning(t, a, private)
	if mm := devOf(private); onHost(mm) {
		t.Errorf("the private %s's /dev/shm (%s) is mounted on the host", private, mm)
	}
	c.ok("rm", "-f", donor, joiner, private)
	if onHost(shared) {
		t.Errorf("the host still has the removed %s's /dev/shm (%s)", donor, shared)
	}
}
