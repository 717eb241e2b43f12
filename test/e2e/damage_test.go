package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Damage at rest (issue 13 item 9): a record berthd cannot read. berthd
// starts, names the damaged file in its log and in info's Warnings, keeps
// every object it can, and never hands out a resource a live container
// holds.

func infoWarnings(t *testing.T, a *apiClient) []string {
	t.Helper()
	var info struct{ Warnings []string }
	a.call(t, "GET", "/info", nil, nil).wantStatus(t, 200).decode(t, &info)
	return info.Warnings
}

// wantDamageReported checks that the daemon's log and info name each file.
func wantDamageReported(t *testing.T, d *daemon, files ...string) {
	t.Helper()
	log, _ := os.ReadFile(d.logPath)
	warnings := strings.Join(infoWarnings(t, d.api()), "\n")
	for _, f := range files {
		if !strings.Contains(string(log), f) {
			t.Errorf("the daemon's log does not name the damaged %s", f)
		}
		if !strings.Contains(warnings, f) {
			t.Errorf("info's Warnings do not name the damaged %s:\n%s", f, warnings)
		}
	}
}

// TestDamagedVolumeRecords: volume.json garbled or empty. The volumes stay
// with their data (a local volume is its _data), the one a running
// container uses cannot be removed, the damage is reported, and a volume
// whose record was rebuilt is clean at the next start.
func TestDamagedVolumeRecords(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "berth's volume records (dockerd keeps its own, in a bolt database)")
	b := startTestDaemon(t, "berth", daemonOpts{mirror: true})
	a := b.api()
	ensureImage(t, a, "busybox:latest")
	c := cliFor(t, "docker", b)
	for _, v := range []string{"keepme", "garbled", "emptied"} {
		c.ok("volume", "create", "--label", "of=damage", v)
		c.ok("run", "--rm", "-v", v+":/data", "busybox", "sh", "-c", "echo data-of-"+v+" > /data/f")
	}
	c.ok("run", "-d", "--name", "user", "-v", "garbled:/data", "busybox", "sleep", "1000")
	pid := waitRunning(t, a, "user").State.Pid
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	garbled := filepath.Join(b.dataRoot, "volumes", "garbled", "volume.json")
	emptied := filepath.Join(b.dataRoot, "volumes", "emptied", "volume.json")
	writeFile(t, filepath.Dir(garbled), "volume.json", []byte("{\"Name\": \"garbled\", \x00\x00\x17garbage"))
	writeFile(t, filepath.Dir(emptied), "volume.json", nil)

	b2 := restartAfterCrash(t, b, daemonOpts{mirror: true})
	a, c = b2.api(), cliFor(t, "docker", b2)
	wantDamageReported(t, b2, garbled, emptied)
	ls := c.ok("volume", "ls", "--format", "{{.Name}}").Stdout
	for _, v := range []string{"keepme", "garbled", "emptied"} {
		if !strings.Contains(ls, v) {
			t.Errorf("volume ls after the restart lacks %s:\n%s", v, ls)
			continue
		}
		c.ok("run", "--rm", "-v", v+":/data", "busybox", "cat", "/data/f").wantOut(t, "docker", "data-of-"+v)
	}
	if ci := inspectCtr(t, a, "user"); !ci.State.Running || ci.State.Pid != pid {
		t.Errorf("the container using the damaged volume: State %+v, want running as pid %d", ci.State, pid)
	}
	c.fail([]string{"volume", "rm", "garbled"}, "volume is in use")
	c.ok("volume", "prune", "-af") // keepme and emptied go: nothing uses them
	if !volumeExists(t, a, "garbled") {
		t.Errorf("volume prune removed the volume a running container uses")
	}
	c.ok("rm", "-f", "user")
	if err := b2.stop(); err != nil {
		t.Fatal(err)
	}
	b3 := restartAfterCrash(t, b, daemonOpts{mirror: true})
	a, c = b3.api(), cliFor(t, "docker", b3)
	for _, w := range infoWarnings(t, a) {
		if strings.Contains(w, "volume") {
			t.Errorf("a warning about volumes after their records were rebuilt: %s", w)
		}
	}
	c.ok("run", "--rm", "-v", "garbled:/data", "busybox", "cat", "/data/f").wantOut(t, "docker", "data-of-garbled")
	c.ok("volume", "rm", "garbled")
}

// TestDamagedNetworkRecords: the default bridge's record garbled, a user
// network's record garbled, and the network record of a running container
// (its sandbox) emptied. The default bridge comes back with its ID and
// subnet (its containers keep their addresses), nothing a running
// container holds is given to another (addresses, MACs, subnets), and the
// damage is reported.
func TestDamagedNetworkRecords(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "berth's network records (dockerd keeps its own, in a bolt database)")
	b := startTestDaemon(t, "berth", daemonOpts{mirror: true})
	a := b.api()
	ensureImage(t, a, "busybox:latest")
	c := cliFor(t, "docker", b)
	type netJSON struct {
		ID   string `json:"Id"`
		Name string
		IPAM struct{ Config []struct{ Subnet string } }
	}
	inspectNet := func(a *apiClient, n string) netJSON {
		var nj netJSON
		a.call(t, "GET", "/networks/"+n, nil, nil).wantStatus(t, 200).decode(t, &nj)
		return nj
	}
	c.ok("network", "create", "lost")
	c.ok("network", "create", "kept")
	lost, kept, bridge := inspectNet(a, "lost"), inspectNet(a, "kept"), inspectNet(a, "bridge")
	c.ok("run", "-d", "--name", "c0", "-p", "0.0.0.0::80", "busybox", "sleep", "1000")
	hostPort := strings.TrimSpace(c.ok("inspect", "-f", `{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}`, "c0").Stdout)
	c.ok("run", "-d", "--name", "c1", "busybox", "sleep", "1000")
	c.ok("run", "-d", "--name", "c2", "--network", "kept", "busybox", "sleep", "1000")
	c.ok("run", "-d", "--name", "c3", "--network", "lost", "busybox", "sleep", "1000")
	c0, c1, c2, c3 := inspectCtr(t, a, "c0"), inspectCtr(t, a, "c1"), inspectCtr(t, a, "c2"), inspectCtr(t, a, "c3")
	addr0, addr1, addr2 := ctrAddrs(t, a, "c0")["bridge"], ctrAddrs(t, a, "c1")["bridge"], ctrAddrs(t, a, "c2")["kept"]
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	netDir := filepath.Join(b.dataRoot, "network")
	bridgeFile := filepath.Join(netDir, "networks", bridge.ID+".json")
	lostFile := filepath.Join(netDir, "networks", lost.ID+".json")
	sbFile := filepath.Join(netDir, "sandboxes", c0.ID+".json")
	writeFile(t, filepath.Dir(bridgeFile), filepath.Base(bridgeFile), []byte("{\"Name\":\"bri\x00\x00"))
	writeFile(t, filepath.Dir(lostFile), filepath.Base(lostFile), []byte("not json at all"))
	writeFile(t, filepath.Dir(sbFile), filepath.Base(sbFile), nil)

	b2 := restartAfterCrash(t, b, daemonOpts{mirror: true})
	a, c = b2.api(), cliFor(t, "docker", b2)
	wantDamageReported(t, b2, bridgeFile, lostFile, sbFile)
	if nb := inspectNet(a, "bridge"); nb.ID != bridge.ID || len(nb.IPAM.Config) == 0 || nb.IPAM.Config[0].Subnet != bridge.IPAM.Config[0].Subnet {
		t.Errorf("the default bridge after its record was damaged: %+v, want ID %s and subnet %+v", nb, bridge.ID, bridge.IPAM)
	}
	if nk := inspectNet(a, "kept"); nk.ID != kept.ID {
		t.Errorf("network kept: %+v", nk)
	}
	for _, ci := range []ctrJSON{c0, c1, c2, c3} {
		if now := inspectCtr(t, a, ci.ID); !now.State.Running || now.State.Pid != ci.State.Pid {
			t.Errorf("%s after the restart: State %+v, want running as pid %d", ci.Name, now.State, ci.State.Pid)
		}
	}
	if got := ctrAddrs(t, a, "c1")["bridge"]; got != addr1 {
		t.Errorf("c1's address on the bridge: %+v, was %+v", got, addr1)
	}
	if got := ctrAddrs(t, a, "c2")["kept"]; got != addr2 {
		t.Errorf("c2's address on kept: %+v, was %+v", got, addr2)
	}
	held := map[string]bool{addr0.IP: true, addr0.MAC: true, addr1.IP: true, addr1.MAC: true}
	for _, n := range []string{"n0", "n1", "n2", "n3"} {
		c.ok("run", "-d", "--name", n, "busybox", "sleep", "1000")
		if o := ctrAddrs(t, a, n)["bridge"]; held[o.IP] || held[o.MAC] {
			t.Errorf("%s got %+v, which a running container holds (c0 %+v, c1 %+v)", n, o, addr0, addr1)
		}
	}
	// c0's published port is still its own.
	c.run("run", "-d", "--name", "n4", "-p", hostPort+":80", "busybox", "sleep", "1000").wantCode(t, "docker", 125, "port is already allocated")
	c.run("rm", "-f", "n4")
	// A new network takes none of the subnets in use, the lost one's
	// included (c3 still runs on its bridge).
	c.ok("network", "create", "fresh")
	fresh := inspectNet(a, "fresh")
	for _, old := range []netJSON{lost, kept, bridge} {
		if fresh.IPAM.Config[0].Subnet == old.IPAM.Config[0].Subnet {
			t.Errorf("network fresh got subnet %s, the one of %s", fresh.IPAM.Config[0].Subnet, old.Name)
		}
	}
	c.ok("rm", "-f", "c0", "c1", "c2", "c3", "n0", "n1", "n2", "n3")
	c.ok("network", "rm", "kept", "fresh")
	c.run("network", "rm", "lost")
}

// TestDamagedContainerRecord: the record of a running container garbled.
// The container stays listed (as far as it can be rebuilt) and running,
// keeps its address, and can be stopped and removed; the damage is
// reported.
func TestDamagedContainerRecord(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "berth's container records")
	b := startTestDaemon(t, "berth", daemonOpts{mirror: true})
	a := b.api()
	ensureImage(t, a, "busybox:latest")
	c := cliFor(t, "docker", b)
	c.ok("run", "-d", "--name", "victim", "busybox", "sleep", "1000")
	victim := inspectCtr(t, a, "victim")
	addr := ctrAddrs(t, a, "victim")["bridge"]
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(b.dataRoot, "containers", victim.ID, "config.v2.json")
	writeFile(t, filepath.Dir(rec), filepath.Base(rec), []byte("{\"ID\":\"x\x00\x01"))
	b2 := restartAfterCrash(t, b, daemonOpts{mirror: true})
	a, c = b2.api(), cliFor(t, "docker", b2)
	wantDamageReported(t, b2, rec)
	now := inspectCtr(t, a, victim.ID)
	if !now.State.Running || now.State.Pid != victim.State.Pid {
		t.Errorf("the container with the damaged record: State %+v, want running as pid %d", now.State, victim.State.Pid)
	}
	for i := range 3 {
		n := "other" + string(rune('0'+i))
		c.ok("run", "-d", "--name", n, "busybox", "sleep", "1000")
		if o := ctrAddrs(t, a, n)["bridge"]; o.IP == addr.IP || o.MAC == addr.MAC {
			t.Errorf("%s got %+v, which the damaged container holds", n, o)
		}
	}
	c.ok("rm", "-f", victim.ID, "other0", "other1", "other2")
	if procAlive(victim.State.Pid) {
		t.Errorf("the damaged container's process %d is alive after rm -f", victim.State.Pid)
	}
}

// TestDamagedImageStore: images.db garbled, or empty. berthd starts (no
// panic), says so, running containers keep running with their layers, and
// images can be pulled again.
func TestDamagedImageStore(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "berth's image store")
	for _, damage := range []struct {
		name string
		data []byte
	}{{"garbled", []byte("\x00\x01 not a bolt file \x00")}, {"empty", nil}} {
		t.Run(damage.name, func(t *testing.T) {
			b := startTestDaemon(t, "berth", daemonOpts{mirror: true})
			a := b.api()
			ensureImage(t, a, "busybox:latest")
			c := cliFor(t, "docker", b)
			c.ok("run", "-d", "--name", "runner", "busybox", "sleep", "1000")
			pid := waitRunning(t, a, "runner").State.Pid
			if err := b.stop(); err != nil {
				t.Fatal(err)
			}
			db := filepath.Join(b.dataRoot, "image", "images.db")
			writeFile(t, filepath.Dir(db), filepath.Base(db), damage.data)
			b2 := restartAfterCrash(t, b, daemonOpts{mirror: true})
			a, c = b2.api(), cliFor(t, "docker", b2)
			wantDamageReported(t, b2, db)
			if ci := inspectCtr(t, a, "runner"); !ci.State.Running || ci.State.Pid != pid {
				t.Errorf("runner after the restart: %+v", ci.State)
			}
			c.ok("exec", "runner", "ls", "/bin/sh")
			c.ok("pull", "busybox:latest")
			c.ok("run", "--rm", "busybox", "true")
			c.ok("rm", "-f", "runner")
		})
	}
}
