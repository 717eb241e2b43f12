package e2e

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestAttachRequestBodyDiscarded (issue 11 item 3): dockerode sends its
// attach options as a JSON body on the hijacked POST. The daemon discards
// that body (per its Content-Length) before the stream: the container's
// stdin sees only what the client sends after the upgrade.
func TestAttachRequestBodyDiscarded(t *testing.T) {
	busybox(t)
	a := env.d.api()
	name := ctrName(t, "attachbody")
	createCtr(t, a, name, map[string]any{
		"Image": "busybox:latest", "Cmd": []string{"sh", "-c", `read line; echo "got:$line"`},
		"AttachStdin": true, "AttachStdout": true, "AttachStderr": true, "OpenStdin": true, "StdinOnce": true,
	})
	body := []byte(`{"stream":true,"stdin":true,"stdout":true,"stderr":true,"hijack":true}`)
	h := a.hijack(t, "POST", "/containers/"+name+"/attach?stream=1&stdin=1&stdout=1&stderr=1", body)
	startCtr(t, a, name)
	if _, err := h.Write([]byte("hello\n")); err != nil {
		t.Fatalf("write stdin: %v", err)
	}
	h.SetReadDeadline(time.Now().Add(30 * time.Second))
	raw, err := io.ReadAll(h)
	if err != nil {
		t.Fatalf("read the attach stream: %v (so far %q)", err, raw)
	}
	stdout, stderr, err := demux(raw)
	if err != nil {
		t.Fatalf("attach stream %q: %v", raw, err)
	}
	if strings.TrimSpace(stdout) != "got:hello" {
		t.Errorf("the container read %q (stderr %q), want got:hello: the request's own body must not reach stdin", stdout, stderr)
	}
	waitExited(t, a, name, 30*time.Second)
}
