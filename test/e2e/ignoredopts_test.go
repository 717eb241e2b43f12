package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestOptionsTakeEffect (issue 14 item 4): options berth used to accept and
// ignore: --read-only makes /etc/hosts, /etc/resolv.conf and /etc/hostname
// read-only too; --cgroup-parent places the container's cgroup (a path
// that climbs out is cleaned, never created outside); --domainname reaches
// the kernel; HostConfig.Runtime reads "runc"; --mac-address (the
// config's MacAddress of API 1.41) sets the interface's address; DriverOpts and
// IPAMConfig.LinkLocalIPs are kept in inspect; a network's
// AuxiliaryAddresses are shown and never handed to a container.
func TestOptionsTakeEffect(t *testing.T) {
	_, nd := newNetTarget(t)
	a := nd.api()
	c := cliFor(t, "docker", nd.daemon)

	for _, f := range []string{"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"} {
		r := c.run("run", "--rm", "--read-only", "busybox", "touch", f)
		if r.Code == 0 || !strings.Contains(r.Stderr, "Read-only file system") {
			t.Errorf("--read-only: touch %s: exit %d, stderr %q; want Read-only file system", f, r.Code, r.Stderr)
		}
	}
	c.ok("run", "--rm", "--read-only", "busybox", "sh", "-c", "echo x > /dev/null && touch /dev/shm/x")

	// --cgroup-parent, relative, absolute and climbing out.
	for _, tc := range []struct{ parent, clean string }{
		{"e2e-cgp", "e2e-cgp"},
		{"/e2e-cgp/abs", "/e2e-cgp/abs"},
		{"../../../../../../e2e-SHOULD_NOT_EXIST", "e2e-SHOULD_NOT_EXIST"},
	} {
		name := netName("cgp")
		nd.rmLater(t, name)
		out := c.ok("run", "--name", name, "--cgroup-parent", tc.parent, "busybox", "cat", "/proc/self/cgroup").Stdout
		id := inspectNetCtr(t, a, name).ID
		if want := strings.TrimPrefix(tc.clean, "/") + "/" + id; !strings.Contains(out, want+"\n") {
			t.Errorf("--cgroup-parent %s: /proc/self/cgroup has no path ending in %s:\n%s", tc.parent, want, out)
		}
		var hc struct {
			HostConfig struct{ CgroupParent, Runtime string }
		}
		a.call(t, "GET", "/containers/"+name+"/json", nil, nil).wantStatus(t, 200).decode(t, &hc)
		if hc.HostConfig.CgroupParent != tc.parent || hc.HostConfig.Runtime != "runc" {
			t.Errorf("inspect: CgroupParent %q Runtime %q, want %q and runc", hc.HostConfig.CgroupParent, hc.HostConfig.Runtime, tc.parent)
		}
	}
	if _, err := os.Stat("/e2e-SHOULD_NOT_EXIST"); err == nil {
		t.Errorf("--cgroup-parent with ../ made /e2e-SHOULD_NOT_EXIST on the host")
	}

	c.ok("run", "--rm", "--domainname", "example.test", "busybox", "sh", "-c", "cat /proc/sys/kernel/domainname").wantOut(t, "docker", "example.test")

	// MAC addresses: the old Config.MacAddress (the docker CLI 20.10) and
	// the endpoint's.
	mac := "02:42:ac:11:99:01"
	name := netName("mac")
	nd.rmLater(t, name)
	// API 1.41: the docker CLI speaks it to dockerd 20.10, with the MAC
	// in the config.
	body, _ := json.Marshal(map[string]any{"Image": "busybox", "Cmd": []string{"sleep", "300"}, "MacAddress": mac})
	a.call(t, "POST", "/v1.41/containers/create?name="+name, body, nil).wantStatus(t, 201)
	a.call(t, "POST", "/containers/"+name+"/start", nil, nil).wantStatus(t, 204)
	if got := c.ok("exec", name, "cat", "/sys/class/net/eth0/address").Stdout; strings.TrimSpace(got) != mac {
		t.Errorf("--mac-address %s: eth0 has %q", mac, got)
	}
	if got := inspectNetCtr(t, a, name).NetworkSettings.Networks["bridge"]; got == nil || got.MacAddress != mac {
		t.Errorf("--mac-address %s: inspect has %+v", mac, got)
	}

	// A user network with auxiliary addresses; an endpoint with driver
	// options and link-local addresses.
	net := netName("aux")
	nd.rmNetLater(t, net)
	nb, _ := json.Marshal(map[string]any{"Name": net, "IPAM": map[string]any{"Config": []map[string]any{{
		"Subnet": "10.231.99.0/29", "Gateway": "10.231.99.1", "AuxiliaryAddresses": map[string]string{"dev": "10.231.99.2", "router": "10.231.99.3"}}}}})
	a.call(t, "POST", "/networks/create", nb, nil).wantStatus(t, 201)
	var ni struct {
		IPAM struct {
			Config []struct{ AuxiliaryAddresses map[string]string }
		}
	}
	a.call(t, "GET", "/networks/"+net, nil, nil).wantStatus(t, 200).decode(t, &ni)
	if len(ni.IPAM.Config) != 1 || ni.IPAM.Config[0].AuxiliaryAddresses["dev"] != "10.231.99.2" || ni.IPAM.Config[0].AuxiliaryAddresses["router"] != "10.231.99.3" {
		t.Errorf("network inspect IPAM.Config: %+v, want the auxiliary addresses", ni.IPAM.Config)
	}
	mac2 := "02:42:ac:11:99:02"
	ep := netName("ep")
	nd.rmLater(t, ep)
	body, _ = json.Marshal(map[string]any{"Image": "busybox", "Cmd": []string{"sleep", "300"}, "HostConfig": map[string]any{"NetworkMode": net},
		"MacAddress": mac2,
		"NetworkingConfig": map[string]any{"EndpointsConfig": map[string]any{net: map[string]any{
			"DriverOpts": map[string]string{"com.example.opt": "v"},
			"IPAMConfig": map[string]any{"LinkLocalIPs": []string{"169.254.7.7"}}}}}})
	a.call(t, "POST", "/v1.41/containers/create?name="+ep, body, nil).wantStatus(t, 201)
	a.call(t, "POST", "/containers/"+ep+"/start", nil, nil).wantStatus(t, 204)
	var ci struct {
		NetworkSettings struct {
			Networks map[string]struct {
				MacAddress string
				IPAddress  string
				DriverOpts map[string]string
				IPAMConfig *struct{ LinkLocalIPs []string }
			}
		}
	}
	a.call(t, "GET", "/containers/"+ep+"/json", nil, nil).wantStatus(t, 200).decode(t, &ci)
	got := ci.NetworkSettings.Networks[net]
	if got.MacAddress != mac2 || got.DriverOpts["com.example.opt"] != "v" || got.IPAMConfig == nil || len(got.IPAMConfig.LinkLocalIPs) != 1 || got.IPAMConfig.LinkLocalIPs[0] != "169.254.7.7" {
		t.Errorf("endpoint inspect: %+v", got)
	}
	if got.IPAddress == "10.231.99.2" || got.IPAddress == "10.231.99.3" {
		t.Errorf("the container got auxiliary address %s", got.IPAddress)
	}
	if out := c.ok("exec", ep, "cat", "/sys/class/net/eth0/address").Stdout; strings.TrimSpace(out) != mac2 {
		t.Errorf("EndpointSettings.MacAddress %s: eth0 has %q", mac2, out)
	}
}
