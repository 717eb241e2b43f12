package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLegacyLinks (issue 14 item 3): --link on the default bridge gives the
// linking container an /etc/hosts line for the linked one (alias, its
// hostname, its name) and dockerd's <ALIAS>_NAME, <ALIAS>_PORT_* and
// <ALIAS>_ENV_* variables; the link's name "/parent/alias" is among the
// linked container's Names and resolves to it; the parent's
// HostConfig.Links reads "/child:/parent/alias"; DELETE
// /containers/{parent}/{alias}?link=1 removes it; a rename of either side
// keeps the link under the new names; a stopped linked container is refused
// at the parent's start with dockerd's words.
func TestLegacyLinks(t *testing.T) {
	_, nd := newNetTarget(t)
	a := nd.api()
	c := cliFor(t, "docker", nd.daemon)
	srv, parent := netName("lsrv"), netName("lcli")
	nd.rmLater(t, srv)
	nd.rmLater(t, parent)
	c.ok("run", "-d", "--name", srv, "-e", "FOO=bar", "-e", "HOME=/x", "--expose", "80", "--expose", "53/udp", "busybox", "sleep", "300")
	ip := netCtrIP(t, a, srv, "bridge")
	host := inspectNetCtr(t, a, srv).Config.Hostname

	out := c.ok("run", "--name", parent, "--link", srv+":db-1", "--link", srv, "busybox", "sh", "-c", "cat /etc/hosts; echo ---; env | sort").Stdout
	hosts, envs, _ := strings.Cut(out, "---\n")
	for _, want := range []string{ip + "\tdb-1 " + host + " " + srv + "\n", ip + "\t" + srv + " " + host + "\n"} {
		if !strings.Contains(hosts, want) {
			t.Errorf("/etc/hosts of the linking container lacks %q:\n%s", want, hosts)
		}
	}
	env := lines(envs)
	for _, want := range []string{
		"DB_1_NAME=/" + parent + "/db-1",
		"DB_1_PORT=udp://" + ip + ":53", // the lowest port
		"DB_1_PORT_80_TCP=tcp://" + ip + ":80",
		"DB_1_PORT_80_TCP_ADDR=" + ip,
		"DB_1_PORT_80_TCP_PORT=80",
		"DB_1_PORT_80_TCP_PROTO=tcp",
		"DB_1_PORT_53_UDP=udp://" + ip + ":53",
		"DB_1_ENV_FOO=bar",
		strings.ToUpper(strings.ReplaceAll(srv, "-", "_")) + "_NAME=/" + parent + "/" + srv,
	} {
		if !slices.Contains(env, want) {
			t.Errorf("environment of the linking container lacks %q:\n%s", want, envs)
		}
	}
	for _, e := range env {
		if strings.HasPrefix(e, "DB_1_ENV_HOME=") || strings.HasPrefix(e, "DB_1_ENV_PATH=") {
			t.Errorf("environment has %q: dockerd leaves HOME and PATH out", e)
		}
	}

	// Names, link names resolving, HostConfig.Links.
	wantLinks := []string{"/" + srv + ":/" + parent + "/db-1", "/" + srv + ":/" + parent + "/" + srv}
	checkLinks := func(what string, want []string) {
		t.Helper()
		var ci struct{ HostConfig struct{ Links []string } }
		a.call(t, "GET", "/containers/"+parent+"/json", nil, nil).wantStatus(t, 200).decode(t, &ci)
		got := slices.Sorted(slices.Values(ci.HostConfig.Links))
		if !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			t.Errorf("%s: HostConfig.Links %q, want %q", what, got, want)
		}
	}
	checkLinks("after run", wantLinks)
	names := func(id string) []string {
		var list []struct {
			ID    string `json:"Id"`
			Names []string
		}
		a.call(t, "GET", "/containers/json?all=1", nil, nil).wantStatus(t, 200).decode(t, &list)
		for _, s := range list {
			if s.ID == id {
				return s.Names
			}
		}
		return nil
	}
	srvID := inspectNetCtr(t, a, srv).ID
	if got, want := names(srvID), []string{"/" + parent + "/db-1", "/" + parent + "/" + srv, "/" + srv}; !slices.Equal(got, want) {
		t.Errorf("Names of the linked container: %q, want %q", got, want)
	}
	if got := inspectNetCtr(t, a, parent+"/db-1").ID; got != srvID {
		t.Errorf("inspect %s/db-1: %s, want the linked container %s", parent, got, srvID)
	}

	// Remove one link.
	a.call(t, "DELETE", "/containers/"+parent+"/db-1?link=1", nil, nil).wantStatus(t, 204)
	a.call(t, "DELETE", "/containers/"+parent+"/db-1?link=1", nil, nil).wantError(t, 404, "No such container: "+parent+"/db-1")
	checkLinks("after removing db-1", wantLinks[1:])
	if !inspectNetCtr(t, a, srv).State.Running {
		t.Errorf("removing a link stopped the linked container")
	}

	// Renames keep the link.
	srv2, parent2 := netName("lsrv2"), netName("lcli2")
	nd.rmLater(t, srv2)
	nd.rmLater(t, parent2)
	c.ok("rename", srv, srv2)
	c.ok("rename", parent, parent2)
	parent = parent2
	checkLinks("after renames", []string{"/" + srv2 + ":/" + parent2 + "/" + srv})
	if got, want := names(srvID), []string{"/" + parent2 + "/" + srv, "/" + srv2}; !slices.Equal(got, want) {
		t.Errorf("Names after renames: %q, want %q", got, want)
	}
	out = c.ok("start", "-a", parent2).Stdout
	if want := ip + "\t" + srv + " " + host + " " + srv2 + "\n"; !strings.Contains(out, want) {
		t.Errorf("/etc/hosts after the renames lacks %q:\n%s", want, out)
	}

	// A stopped linked container: the parent does not start.
	c.ok("stop", "-t", "0", srv2)
	r := c.runTimeout(time.Minute, nil, "start", parent2)
	r.wantCode(t, "docker", 1, "Cannot link to a non running container: /"+srv2+" AS /"+parent2+"/"+srv)
	var st struct{ State struct{ Running bool } }
	b := a.call(t, "GET", "/containers/"+parent2+"/json", nil, nil).wantStatus(t, 200).Body
	if json.Unmarshal(b, &st) == nil && st.State.Running {
		t.Errorf("%s runs though its linked container is stopped", parent2)
	}
}
