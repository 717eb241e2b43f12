package e2e

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// TestSwarmAndPluginEndpoints (issue 11 item 8): clients probe GET /swarm
// and read dockerd's 503 as "no swarm"; the swarm-mode lists answer the
// same; /plugins lists no plugins; a named plugin is not found.
func TestSwarmAndPluginEndpoints(t *testing.T) {
	a := requireEnv(t).api()
	const noSwarm = `This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`
	for _, p := range []string{"/swarm", "/nodes", "/services", "/tasks", "/secrets", "/configs"} {
		r := a.call(t, "GET", "/v1.41"+p, nil, nil)
		if r.Status != 503 || r.message() != noSwarm {
			t.Errorf("GET %s: %s, want 503 %q", p, r, noSwarm)
		}
	}
	r := a.call(t, "GET", "/v1.41/plugins", nil, nil).wantStatus(t, 200)
	var list []json.RawMessage
	r.decode(t, &list)
	if list == nil || len(list) != 0 {
		t.Errorf("GET /plugins: %s, want []", r.Body)
	}
	a.call(t, "GET", "/v1.41/plugins/no-such-plugin:latest/json", nil, nil).wantError(t, 404, `plugin "no-such-plugin:latest" not found`)
	eachCLI(t, func(t *testing.T, c *CLI) {
		if c.name == "berth" {
			return // berth has no plugin command
		}
		out := c.ok("plugin", "ls").Stdout
		if strings.TrimSpace(out) != "ID        NAME      DESCRIPTION   ENABLED" {
			t.Errorf("docker plugin ls: %q, want the header alone", out)
		}
	})
}

// TestUnsupportedEndpointMessage (issue 11 item 8): an endpoint of the
// Engine API that berth lacks answers 501 with what is not supported, not
// a bare "page not found"; swarm mode cannot be started.
func TestUnsupportedEndpointMessage(t *testing.T) {
	a := requireEnv(t).api()
	onlyBerth(t, "dockerd serves these endpoints")
	a.call(t, "POST", "/v1.41/swarm/init", []byte(`{}`), nil).wantError(t, 501, "swarm mode is not supported by berth")
	a.call(t, "POST", "/v1.41/plugins/pull?remote=x", []byte(`[]`), nil).wantError(t, 501, "plugins are not supported by berth")
}

// TestDefaultNetworkMode (issue 11 item 8): a container created without a
// network mode reports HostConfig.NetworkMode "default", as dockerd 20.10
// (API 1.41) does; one created with "bridge" reports "bridge". Daemons
// from API 1.45 on report "bridge" for both.
func TestDefaultNetworkMode(t *testing.T) {
	busybox(t)
	a := env.d.api()
	def := ctrName(t, "netdefault")
	createCtr(t, a, def, map[string]any{"Image": "busybox:latest", "Cmd": []string{"true"}})
	br := ctrName(t, "netbridge")
	createCtr(t, a, br, map[string]any{"Image": "busybox:latest", "Cmd": []string{"true"}, "HostConfig": map[string]any{"NetworkMode": "bridge"}})
	mode := func(version, name string) string {
		var c struct{ HostConfig struct{ NetworkMode string } }
		a.call(t, "GET", "/"+version+"/containers/"+name+"/json", nil, nil).wantStatus(t, 200).decode(t, &c)
		return c.HostConfig.NetworkMode
	}
	if got := mode("v1.41", def); got != "default" {
		t.Errorf("inspect (API 1.41) of a container created without a network mode: NetworkMode %q, want default", got)
	}
	if got := mode("v1.41", br); got != "bridge" {
		t.Errorf("inspect of a container created with bridge: NetworkMode %q, want bridge", got)
	}
	var list []struct {
		Names      []string
		HostConfig struct{ NetworkMode string }
	}
	a.call(t, "GET", "/v1.41/containers/json?all=1&filters="+url.QueryEscape(`{"name":["`+def+`"]}`), nil, nil).wantStatus(t, 200).decode(t, &list)
	if len(list) != 1 || list[0].HostConfig.NetworkMode != "default" {
		t.Errorf("list (API 1.41): %+v, want NetworkMode default", list)
	}
	onlyBerth(t, "dockerd 20.10 serves API 1.41 at most")
	if got := mode("v1.45", def); got != "bridge" {
		t.Errorf("inspect (API 1.45): NetworkMode %q, want bridge as dockerd 26 and later", got)
	}
}
