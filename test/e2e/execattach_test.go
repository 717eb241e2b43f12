package e2e

import "testing"

// TestResizeWithoutTerminal (issue 14 item 6): resizing a running
// container that has no terminal is a no-op dockerd answers with 200
// (berthd answered 500); a stopped one is 409.
func TestResizeWithoutTerminal(t *testing.T) {
	busybox(t)
	a := env.d.api()
	name, _ := runDetached(t, a, "resize", nil, "sleep", "300")
	waitRunning(t, a, name)
	a.call(t, "POST", "/containers/"+name+"/resize?h=40&w=100", nil, nil).wantStatus(t, 200)
	stopped := ctrName(t, "resizestopped")
	createCtr(t, a, stopped, map[string]any{"Image": "busybox", "Cmd": []string{"true"}})
	a.call(t, "POST", "/containers/"+stopped+"/resize?h=40&w=100", nil, nil).wantError(t, 409, "is not running")
}
