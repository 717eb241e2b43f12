package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestContainerInspectShape: GET /containers/{id}/json has Docker's shape
// and values for a created, a running and an exited container.
func TestContainerInspectShape(t *testing.T) {
	busybox(t)
	a := env.d.api()
	bb := inspectImage(t, a, "busybox:latest")
	name := ctrName(t, "inspect")
	id := createCtr(t, a, name, map[string]any{"Image": "busybox:latest", "Cmd": []string{"sh", "-c", "echo hello-log; sleep 300"}})

	raw := func() map[string]any {
		t.Helper()
		var m map[string]any
		a.call(t, "GET", "/containers/"+name+"/json", nil, nil).wantStatus(t, 200).decode(t, &m)
		return m
	}
	wantKeys := func(where string, m map[string]any, keys ...string) {
		t.Helper()
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("inspect: %s has no %q", where, k)
			}
		}
	}
	obj := func(m map[string]any, k string) map[string]any {
		t.Helper()
		o, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("inspect: %s is %T %v, want an object", k, m[k], m[k])
		}
		return o
	}

	// Created.
	m := raw()
	wantKeys("the top level", m, "Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath", "HostnamePath", "HostsPath",
		"LogPath", "Name", "RestartCount", "Driver", "Platform", "MountLabel", "ProcessLabel", "AppArmorProfile", "ExecIDs",
		"HostConfig", "GraphDriver", "Mounts", "Config", "NetworkSettings")
	st := obj(m, "State")
	wantKeys("State", st, "Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid", "ExitCode", "Error", "StartedAt", "FinishedAt")
	if st["Status"] != "created" || st["StartedAt"] != "0001-01-01T00:00:00Z" || st["FinishedAt"] != "0001-01-01T00:00:00Z" {
		t.Errorf("created: State %v, want created with zero StartedAt and FinishedAt (0001-01-01T00:00:00Z)", st)
	}
	if _, err := time.Parse(time.RFC3339Nano, m["Created"].(string)); err != nil {
		t.Errorf("Created %v: %v", m["Created"], err)
	}
	hc := obj(m, "HostConfig")
	wantKeys("HostConfig", hc, "Binds", "LogConfig", "NetworkMode", "PortBindings", "RestartPolicy", "AutoRemove", "CapAdd", "CapDrop",
		"Privileged", "ReadonlyRootfs", "ShmSize", "Memory", "NanoCpus", "CpuShares", "PidsLimit", "Ulimits", "MaskedPaths", "ReadonlyPaths")
	if lc := obj(hc, "LogConfig"); lc["Type"] != "json-file" {
		t.Errorf("HostConfig.LogConfig %v, want Type json-file", lc)
	}
	// An API create without a policy: dockerd keeps Name "" (the CLI sends "no").
	if rp := obj(hc, "RestartPolicy"); rp["Name"] != "" || rp["MaximumRetryCount"] != float64(0) {
		t.Errorf("HostConfig.RestartPolicy %v, want Name \"\" and MaximumRetryCount 0", rp)
	}
	if hc["ShmSize"] != float64(64<<20) {
		t.Errorf("HostConfig.ShmSize %v, want 67108864", hc["ShmSize"])
	}
	if mp, _ := hc["MaskedPaths"].([]any); len(mp) == 0 {
		t.Errorf("HostConfig.MaskedPaths %v, want Docker's default list", hc["MaskedPaths"])
	}
	cfg := obj(m, "Config")
	wantKeys("Config", cfg, "Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin",
		"StdinOnce", "Env", "Cmd", "Image", "Volumes", "WorkingDir", "Entrypoint", "OnBuild", "Labels")
	if cfg["Hostname"] != id[:12] || cfg["Image"] != "busybox:latest" {
		t.Errorf("Config.Hostname %v Image %v, want %s busybox:latest", cfg["Hostname"], cfg["Image"], id[:12])
	}
	if _, ok := m["Mounts"].([]any); !ok {
		t.Errorf("Mounts is %v, want an array", m["Mounts"])
	}
	ns := obj(m, "NetworkSettings")
	wantKeys("NetworkSettings", ns, "Networks", "Ports", "SandboxKey")
	gd := obj(m, "GraphDriver")
	if gd["Name"] == "" || gd["Name"] != m["Driver"] {
		t.Errorf("GraphDriver.Name %v Driver %v, want the same non-empty name", gd["Name"], m["Driver"])
	}
	wantKeys("GraphDriver.Data", obj(gd, "Data"), "LowerDir", "MergedDir", "UpperDir", "WorkDir")

	ci := inspectCtr(t, a, name)
	if ci.ID != id || ci.Name != "/"+name || ci.Image != bb.ID || ci.Path != "sh" || strings.Join(ci.Args, "|") != "-c|echo hello-log; sleep 300" || ci.RestartCount != 0 {
		t.Errorf("inspect: Id %s Name %s Image %s Path %s Args %q RestartCount %d, want %s /%s %s sh [-c …] 0", ci.ID, ci.Name, ci.Image, ci.Path, ci.Args, ci.RestartCount, id, name, bb.ID)
	}
	if !contains(ci.Config.Env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") {
		t.Errorf("Config.Env %q lacks the image's PATH", ci.Config.Env)
	}

	// Running.
	startCtr(t, a, id)
	ci = waitRunning(t, a, id)
	started, err := time.Parse(time.RFC3339Nano, ci.State.StartedAt)
	if err != nil || time.Since(started) > time.Minute || time.Since(started) < -5*time.Second {
		t.Errorf("running: StartedAt %q is not a recent RFC 3339 time (%v)", ci.State.StartedAt, err)
	}
	if ci.State.Status != "running" || ci.State.Pid <= 0 || ci.State.FinishedAt != "0001-01-01T00:00:00Z" {
		t.Errorf("running: State %+v", ci.State)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(ci.State.Pid)); err != nil {
		t.Errorf("running: State.Pid %d is not a host process: %v", ci.State.Pid, err)
	}
	// LogPath: a json-file log on the host, one JSON object per line.
	if !strings.HasSuffix(ci.LogPath, "/"+id+"-json.log") {
		t.Errorf("LogPath %q, want …/%s-json.log", ci.LogPath, id)
	}
	waitLog(t, a, id, "hello-log")
	if f, err := os.Open(ci.LogPath); err != nil {
		t.Errorf("LogPath: %v", err)
	} else {
		sc := bufio.NewScanner(f)
		if !sc.Scan() {
			t.Errorf("LogPath %s is empty", ci.LogPath)
		} else {
			var e struct{ Log, Stream, Time string }
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Log != "hello-log\n" || e.Stream != "stdout" || e.Time == "" {
				t.Errorf("LogPath first line %q, want {\"log\":\"hello-log\\n\",\"stream\":\"stdout\",\"time\":…} (%v)", sc.Text(), err)
			}
		}
		f.Close()
	}
	m = raw()
	for _, k := range []string{"ResolvConfPath", "HostnamePath", "HostsPath"} {
		if p, _ := m[k].(string); p == "" {
			t.Errorf("%s is empty", k)
		} else if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	// The files the container sees.
	r := cli(t, "docker").ok("exec", name, "sh", "-c", "cat /etc/hostname; grep -c localhost /etc/hosts; test -s /etc/resolv.conf && echo resolv; grep ' /dev/shm ' /proc/mounts")
	l := lines(r.Stdout)
	if len(l) != 4 || l[0] != id[:12] || l[1] == "0" || l[2] != "resolv" || !strings.HasPrefix(l[3], "shm /dev/shm tmpfs rw,nosuid,nodev,noexec") || !strings.Contains(l[3], "size=65536k") {
		t.Errorf("in the container: %q, want the hostname %s, localhost in /etc/hosts, a resolv.conf and a 64M /dev/shm", l, id[:12])
	}

	// Exited.
	a.call(t, "POST", "/containers/"+id+"/kill?signal=SIGKILL", nil, nil).wantStatus(t, 204)
	ci = waitExited(t, a, id, 10*time.Second)
	finished, err := time.Parse(time.RFC3339Nano, ci.State.FinishedAt)
	if err != nil || finished.Before(started) || ci.State.Pid != 0 || ci.State.ExitCode != 137 || ci.State.Running {
		t.Errorf("exited: State %+v, want Pid 0, ExitCode 137, FinishedAt after StartedAt", ci.State)
	}

	// The CLI prints an array; a missing container is an error.
	eachCLI(t, func(t *testing.T, c *CLI) {
		var arr []map[string]any
		if err := json.Unmarshal([]byte(c.ok("container", "inspect", name).Stdout), &arr); err != nil || len(arr) != 1 || arr[0]["Id"] != id {
			t.Errorf("%s container inspect: not a one-element array for %s (%v)", c.name, id, err)
		}
		c.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.Name}}", name).wantOut(t, c.name, "exited 137 /"+name)
		missing := "e2e-missing-" + uniq()
		// Docker: Error response from daemon: No such container: <name>
		r := c.run("container", "inspect", missing)
		r.wantFailure(t, c.name, "No such container: "+missing)
	})
}
