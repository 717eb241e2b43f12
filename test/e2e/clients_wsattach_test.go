package e2e

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// TestAttachWebsocket (issue 11 item 8): GET /containers/{id}/attach/ws
// attaches over a websocket: what the client sends reaches stdin, stdout
// and stderr come back raw (not multiplexed), and the socket closes when
// the container exits.
func TestAttachWebsocket(t *testing.T) {
	busybox(t)
	a := env.d.api()
	name := ctrName(t, "wsattach")
	createCtr(t, a, name, map[string]any{
		"Image": "busybox:latest", "Cmd": []string{"sh", "-c", `read line; echo "got:$line"; echo to-stderr >&2`},
		"AttachStdin": true, "AttachStdout": true, "AttachStderr": true, "OpenStdin": true, "StdinOnce": true,
	})
	cfg, err := websocket.NewConfig("ws://localhost/v1.41/containers/"+name+"/attach/ws?stream=1&stdin=1&stdout=1&stderr=1", "http://localhost")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("unix", a.sock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := websocket.NewClient(cfg, conn)
	if err != nil {
		conn.Close()
		t.Fatalf("websocket handshake: %v", err)
	}
	defer ws.Close()
	startCtr(t, a, name)
	if _, err := ws.Write([]byte("hello\n")); err != nil {
		t.Fatalf("write stdin: %v", err)
	}
	// stdout and stderr are separate pipes: their relative order on the
	// socket is the scheduler's (on dockerd too), so read until the socket
	// closes at the container's exit and look for each line.
	ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	var got strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := ws.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("read: %v (so far %q)", err, got.String())
			}
			break
		}
	}
	out := got.String()
	if len(out) != len("got:hello\nto-stderr\n") || !strings.Contains(out, "got:hello\n") || !strings.Contains(out, "to-stderr\n") {
		t.Errorf("websocket attach read %q, want the raw output lines got:hello and to-stderr", out)
	}
	waitExited(t, a, name, 30*time.Second)
}
