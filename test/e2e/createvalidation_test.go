package e2e

import (
	"encoding/json"
	"net/url"
	"os"
	"testing"
	"time"
)

// TestCreateValidation (issue 14 item 5): what dockerd refuses at create
// is refused with its status and words, and nothing is created: options a
// container-type or host network rules out, healthcheck durations under
// 1 ms, links to a missing container, a platform the image is not of,
// propagation on a named volume, Mounts fields of another type; then what
// dockerd lets through create and refuses at start (a --device that is no
// device, cpu shares out of the kernel's range), and a tag named like the
// digest algorithm.
func TestCreateValidation(t *testing.T) {
	busybox(t)
	a := env.d.api()
	donor := ctrName(t, "valdonor")
	createCtr(t, a, donor, map[string]any{"Image": "busybox", "Cmd": []string{"true"}})
	label := "e2e-createval-" + uniq()

	type tc struct {
		name   string
		query  string
		body   map[string]any
		status int
		msg    string
	}
	hc := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	netc := "container:" + donor
	for _, c := range []tc{
		{"dns", "", map[string]any{"HostConfig": hc("NetworkMode", netc, "Dns", []string{"1.1.1.1"})}, 400, "conflicting options: dns and the network mode"},
		{"mac", "", map[string]any{"MacAddress": "02:42:ac:11:00:99", "HostConfig": hc("NetworkMode", netc)}, 400, "conflicting options: mac-address and the network mode"},
		{"mac host", "", map[string]any{"MacAddress": "02:42:ac:11:00:99", "HostConfig": hc("NetworkMode", "host")}, 400, "conflicting options: mac-address and the network mode"},
		{"add-host", "", map[string]any{"HostConfig": hc("NetworkMode", netc, "ExtraHosts", []string{"a:1.2.3.4"})}, 400, "conflicting options: custom host-to-IP mapping and the network mode"},
		{"expose", "", map[string]any{"ExposedPorts": map[string]any{"80/tcp": struct{}{}}, "HostConfig": hc("NetworkMode", netc)}, 400, "conflicting options: port exposing and the container type network mode"},
		{"links", "", map[string]any{"HostConfig": hc("NetworkMode", netc, "Links", []string{donor + ":x"})}, 400, "conflicting options: container type network can't be used with links"},
		{"links host", "", map[string]any{"HostConfig": hc("NetworkMode", "host", "Links", []string{donor + ":x"})}, 400, "conflicting options: host type networking can't be used with links"},
		{"empty container", "", map[string]any{"HostConfig": hc("NetworkMode", "container:")}, 400, "Invalid network mode: invalid container format container:<name|id>"},
		{"interval", "", map[string]any{"Healthcheck": map[string]any{"Test": []string{"CMD", "true"}, "Interval": 100}}, 400, "Interval in Healthcheck cannot be less than 1ms"},
		{"timeout", "", map[string]any{"Healthcheck": map[string]any{"Test": []string{"CMD", "true"}, "Timeout": 100}}, 400, "Timeout in Healthcheck cannot be less than 1ms"},
		{"start period", "", map[string]any{"Healthcheck": map[string]any{"Test": []string{"CMD", "true"}, "StartPeriod": 100}}, 400, "StartPeriod in Healthcheck cannot be less than 1ms"},
		{"retries", "", map[string]any{"Healthcheck": map[string]any{"Test": []string{"CMD", "true"}, "Retries": -1}}, 400, "Retries in Healthcheck cannot be negative"},
		{"missing link", "", map[string]any{"HostConfig": hc("Links", []string{"e2e-no-such-ctr:x"})}, 400, "could not get container for e2e-no-such-ctr: No such container: e2e-no-such-ctr"},
		{"platform", "platform=linux/arm64", map[string]any{}, 404, "image with reference busybox was found but does not match the specified platform: wanted linux/arm64, actual: linux/amd64"},
		{"bad platform", "platform=bogus!!", map[string]any{}, 400, `"bogus!!" is an invalid`},
		{"shared volume", "", map[string]any{"HostConfig": hc("Binds", []string{"e2e-vol:/x:shared"})}, 500, `invalid volume specification: 'e2e-vol:/x:shared': invalid mount config for type "volume": field BindOptions must not be specified`},
		{"volume bind options", "", map[string]any{"HostConfig": hc("Mounts", []any{map[string]any{"Type": "volume", "Source": "e2e-vol", "Target": "/x", "BindOptions": map[string]any{"Propagation": "shared"}}})}, 400, `invalid mount config for type "volume": field BindOptions must not be specified`},
		{"anonymous read-only", "", map[string]any{"HostConfig": hc("Mounts", []any{map[string]any{"Type": "volume", "Target": "/x", "ReadOnly": true}})}, 400, "must not set ReadOnly mode when using anonymous volumes"},
		{"duplicate", "", map[string]any{"HostConfig": hc("Binds", []string{"/tmp:/x"}, "Mounts", []any{map[string]any{"Type": "bind", "Source": "/var", "Target": "/x"}})}, 400, "Duplicate mount point: /x"},
	} {
		body := map[string]any{"Image": "busybox", "Cmd": []string{"true"}, "Labels": map[string]string{label: c.name}}
		for k, v := range c.body {
			body[k] = v
		}
		b, _ := json.Marshal(body)
		path := "/v1.41/containers/create"
		if c.query != "" {
			path += "?" + c.query
		}
		a.call(t, "POST", path, b, nil).wantError(t, c.status, c.msg)
	}
	var left []struct{ Labels map[string]string }
	a.call(t, "GET", "/containers/json?all=1&filters="+url.QueryEscape(`{"label":["`+label+`"]}`), nil, nil).wantStatus(t, 200).decode(t, &left)
	for _, l := range left {
		t.Errorf("refused create %q left a container", l.Labels[label])
	}
	// What is allowed beside a container-type network: DNS search and options.
	createCtr(t, a, "", map[string]any{"Image": "busybox", "HostConfig": hc("NetworkMode", netc, "DnsSearch", []string{"a.b"}, "DnsOptions", []string{"ndots:1"})})

	c := cli(t, "docker")
	// Known at start: a directory with no device below it is no device
	// (dockerd: 500, so the CLI's 125).
	dev := ctrName(t, "baddev")
	c.runTimeout(time.Minute, nil, "run", "--name", dev, "--device", t.TempDir(), "busybox", "true").
		wantCode(t, "docker", 125, "not a device node")
	r := c.run("start", dev)
	r.wantCode(t, "docker", 1, "error gathering device information while adding custom device")
	// CPU shares outside the kernel's range reach runc, which refuses
	// them (cgroup v1: its words), as under dockerd.
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.shares"); err == nil {
		for _, s := range []struct{ shares, msg string }{{"1", "minimum allowed cpu-shares is 2"}, {"99999999", "maximum allowed cpu-shares is 262144"}} {
			name := ctrName(t, "shares")
			c.runTimeout(time.Minute, nil, "run", "--name", name, "--cpu-shares", s.shares, "busybox", "true").wantCode(t, "docker", 125, s.msg)
		}
	}
	r = c.run("run", "--rm", "--cpu-shares", "-1", "busybox", "true")
	r.wantCode(t, "docker", 125, "shares: invalid argument")

	// A repository named like the digest algorithm.
	a.call(t, "POST", "/images/busybox/tag?repo=sha256&tag=x", nil, nil).wantError(t, 400, "refusing to create an ambiguous tag using digest algorithm as name")
	a.call(t, "POST", "/images/busybox/tag?repo=sha256", nil, nil).wantError(t, 400, "refusing to create an ambiguous tag using digest algorithm as name")
	if r := a.call(t, "GET", "/images/sha256:x/json", nil, nil); r.Status == 200 {
		t.Errorf("a refused tag exists: %s", r)
	}
}

// TestCreateOnMissingNetwork: dockerd 20.10 creates a container on a
// network that does not exist (201, the docker CLI's create too) and
// refuses its start (404 "network X not found"); the container stays,
// created. The same holds for a network named only in the endpoints
// config.
func TestCreateOnMissingNetwork(t *testing.T) {
	busybox(t)
	a := env.d.api()
	for _, tc := range []struct{ what, body string }{
		{"NetworkMode", `{"Image":"busybox","Cmd":["true"],"HostConfig":{"NetworkMode":"e2e-no-such-net"}}`},
		{"EndpointsConfig", `{"Image":"busybox","Cmd":["true"],"HostConfig":{"NetworkMode":"e2e-no-such-net"},"NetworkingConfig":{"EndpointsConfig":{"e2e-no-such-net":{}}}}`},
	} {
		name := ctrName(t, "nonet")
		a.call(t, "POST", "/containers/create?name="+name, []byte(tc.body), nil).wantStatus(t, 201)
		a.call(t, "POST", "/containers/"+name+"/start", nil, nil).wantError(t, 404, "network e2e-no-such-net not found")
		if st := inspectCtr(t, a, name).State; st.Status != "created" || st.Running {
			t.Errorf("%s: after the refused start the container is %q (running %v), want created", tc.what, st.Status, st.Running)
		}
	}
	c := cli(t, "docker")
	name := ctrName(t, "nonetcli")
	c.ok("create", "--name", name, "--network", "e2e-no-such-net", "busybox", "true")
	c.fail([]string{"start", name}, "network e2e-no-such-net not found")
}
