package e2e

import (
	"strings"
	"testing"
)

// TestOlderAPIVersions (issue 14 item 10): what dockerd does for clients
// of older API versions. dockerd 20.10 serves API 1.12 to 1.41; berth, as
// Docker Engine since v26, serves 1.24 and up (README): a 1.23 client gets
// 400 and Docker's "too old" words, and nothing happens.
func TestOlderAPIVersions(t *testing.T) {
	busybox(t)
	a := requireEnv(t).api()

	// Before 1.40 the default IPC mode is "shareable"; from 1.40 "private".
	// Before 1.25 the client removes an AutoRemove container itself: the
	// daemon does not keep the flag.
	for _, c := range []struct {
		ver, ipc   string
		autoRemove bool
	}{
		{"1.24", "shareable", false},
		{"1.39", "shareable", true},
		{"1.40", "private", true},
		{"1.41", "private", true},
	} {
		name := ctrName(t, "apiver")
		a.call(t, "POST", "/v"+c.ver+"/containers/create?name="+name,
			[]byte(`{"Image":"busybox:latest","Cmd":["true"],"HostConfig":{"AutoRemove":true}}`), nil).wantStatus(t, 201)
		var ci struct {
			HostConfig struct {
				IpcMode    string
				AutoRemove bool
			}
		}
		a.call(t, "GET", "/containers/"+name+"/json", nil, nil).wantStatus(t, 200).decode(t, &ci)
		if ci.HostConfig.IpcMode != c.ipc || ci.HostConfig.AutoRemove != c.autoRemove {
			t.Errorf("created at API %s: IpcMode %q AutoRemove %v, want %q %v", c.ver, ci.HostConfig.IpcMode, ci.HostConfig.AutoRemove, c.ipc, c.autoRemove)
		}
	}

	// PidsLimit: at create 0 or less is no limit (null); an update before
	// API 1.40 leaves the limit as it is; from 1.40, 0, -1 or -2 lift it
	// and it reads back 0.
	name := ctrName(t, "pids")
	a.call(t, "POST", "/containers/create?name="+name, []byte(`{"Image":"busybox:latest","Cmd":["sleep","300"],"HostConfig":{"PidsLimit":-1}}`), nil).wantStatus(t, 201)
	if ci := inspectCtr(t, a, name); ci.HostConfig.PidsLimit != nil {
		t.Errorf("created with PidsLimit -1: inspect PidsLimit %d, want null", *ci.HostConfig.PidsLimit)
	}
	name = ctrName(t, "pids")
	a.call(t, "POST", "/containers/create?name="+name, []byte(`{"Image":"busybox:latest","Cmd":["sleep","300"],"HostConfig":{"PidsLimit":32}}`), nil).wantStatus(t, 201)
	startCtr(t, a, name)
	pids := func() int64 {
		ci := inspectCtr(t, a, name)
		if ci.HostConfig.PidsLimit == nil {
			t.Fatalf("PidsLimit null, want a number")
		}
		return *ci.HostConfig.PidsLimit
	}
	a.call(t, "POST", "/v1.24/containers/"+name+"/update", []byte(`{"PidsLimit":16}`), nil).wantStatus(t, 200)
	if got := pids(); got != 32 {
		t.Errorf("after an update to 16 at API 1.24: PidsLimit %d, want 32 (ignored)", got)
	}
	for _, v := range []string{"-2", "-1", "0"} {
		a.call(t, "POST", "/containers/"+name+"/update", []byte(`{"PidsLimit":32}`), nil).wantStatus(t, 200)
		a.call(t, "POST", "/containers/"+name+"/update", []byte(`{"PidsLimit":`+v+`}`), nil).wantStatus(t, 200)
		if got := pids(); got != 0 {
			t.Errorf("after an update to %s: PidsLimit %d, want 0", v, got)
		}
	}
	ci := waitRunning(t, a, name)
	if got := cgroupValue(t, ci.State.Pid, "pids", "pids.max", "pids.max"); got != "max" {
		t.Errorf("pids.max %q after the limit was lifted, want max", got)
	}

	// API 1.12 to 1.23: dockerd 20.10 serves them; berth does not.
	r := a.call(t, "GET", "/v1.23/version", nil, nil)
	if env.target == "docker" {
		r.wantStatus(t, 200)
		return
	}
	r.wantStatus(t, 400)
	if !strings.Contains(string(r.Body), "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version") {
		t.Errorf("%s: want Docker's \"too old\" words", r)
	}
	a.call(t, "POST", "/v1.23/containers/create?name="+ctrName(t, "old"), []byte(`{"Image":"busybox:latest"}`), nil).wantStatus(t, 400)
}
