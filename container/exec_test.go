package container

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// TestExecExitCodes: an exec runc could not start is 126 (as dockerd
// 20.10) and ExecStart's error is dockerd's words (the router writes them
// into the stream), decided by the runtime's refusal, not by the output: a
// process that prints "exec failed" itself keeps its own exit code, with
// or without a TTY.
func TestExecExitCodes(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	id := e.create(t, "execcodes", []string{"sleep", "100"}, nil)
	if err := e.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	defer func() {
		zero := 0
		_ = e.svc.Stop(ctx, id, "", &zero)
	}()
	for _, c := range []struct {
		name string
		cmd  []string
		tty  bool
		want int
	}{
		{"no such executable", []string{"nosuchcmd"}, false, 126},
		{"not runnable", []string{"/etc"}, false, 126},
		{"says exec failed", []string{"sh", "-c", "echo 'exec failed: nope' >&2; exit 3"}, false, 3},
		{"exit 255", []string{"sh", "-c", "exit 255"}, false, 255},
		{"tty no such executable", []string{"nosuchcmd"}, true, 126},
		{"tty exit 4", []string{"sh", "-c", "echo exec failed; exit 4"}, true, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			execID, err := e.svc.ExecCreate(ctx, id, container.ExecCreateRequest{Cmd: c.cmd, Tty: c.tty, AttachStdout: true, AttachStderr: true})
			if err != nil {
				t.Fatal(err)
			}
			client, server := net.Pipe()
			go io.Copy(io.Discard, client)
			err = e.svc.ExecStart(ctx, execID, ExecStartOptions{Conn: pipeStream{server}, Tty: c.tty})
			if refused := c.want == 126; refused != (err != nil) {
				t.Fatalf("exec start: %v", err)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "OCI runtime exec failed: exec failed: ") {
				t.Fatalf("exec start: %q, want dockerd's words", err)
			}
			ei, _ := e.svc.ExecInspect(ctx, execID)
			if ei.ExitCode == nil || *ei.ExitCode != c.want {
				t.Fatalf("exit code %v, want %d", ei.ExitCode, c.want)
			}
		})
	}
}
