package container

import (
	"context"
	"reflect"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
)

func TestParsePS(t *testing.T) {
	out := []byte(`UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init
root         100       1  0 10:01 ?        00:00:00 sleep 1000 with  args
root         101     100  0 10:01 ?        00:00:00 sh
`)
	resp, err := parsePS(out, []int{100, 101})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Titles) != 8 || resp.Titles[1] != "PID" {
		t.Fatalf("titles %q", resp.Titles)
	}
	want := [][]string{
		{"root", "100", "1", "0", "10:01", "?", "00:00:00", "sleep 1000 with args"},
		{"root", "101", "100", "0", "10:01", "?", "00:00:00", "sh"},
	}
	if !reflect.DeepEqual(resp.Processes, want) {
		t.Fatalf("processes %q", resp.Processes)
	}
	// Thread rows ("-" PID) follow their process.
	out = []byte("  PID TTY      STAT   TIME COMMAND\n  100 ?        -      0:00 sleep\n    - -        S      0:00 -\n  200 ?        -      0:00 other\n    - -        S      0:00 -\n")
	resp, err = parsePS(out, []int{100})
	if err != nil || len(resp.Processes) != 2 || resp.Processes[1][0] != "-" {
		t.Fatalf("threads: %q %v", resp.Processes, err)
	}
	if _, err := parsePS([]byte("USER COMMAND\nroot x\n"), nil); err == nil || err.Error() != "Couldn't find PID field in ps output" {
		t.Fatalf("no PID column: %v", err)
	}
	if err := validatePSArgs("-o pid,user=PID"); err == nil {
		t.Fatal("user=PID accepted")
	}
	if err := validatePSArgs("-o pid=PID,comm"); err != nil {
		t.Fatal(err)
	}
}

func TestTopOnContainer(t *testing.T) {
	e := newXEnv(t)
	id := e.run(t, []string{"sh", "-c", "sleep 1001 & exec sleep 1002"}, nil)
	e.waitFileRunning(t, id)
	resp, err := e.svc.Top(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Titles[0] != "UID" || resp.Titles[len(resp.Titles)-1] != "CMD" {
		t.Fatalf("titles %q", resp.Titles)
	}
	var cmds []string
	for _, p := range resp.Processes {
		cmds = append(cmds, p[len(p)-1])
	}
	got := strings.Join(cmds, ",")
	if !strings.Contains(got, "sleep 1001") || !strings.Contains(got, "sleep 1002") || len(cmds) != 2 {
		t.Fatalf("processes: %q", got)
	}
	resp, err = e.svc.Top(context.Background(), id, "-o pid,comm")
	if err != nil || !reflect.DeepEqual(resp.Titles, []string{"PID", "COMMAND"}) || len(resp.Processes) != 2 {
		t.Fatalf("-o pid,comm: %+v %v", resp, err)
	}
	e.stop(t, id)
	_, err = e.svc.Top(context.Background(), id, "")
	if !cerrdefs.IsConflict(err) || err.Error() != "Container "+id+" is not running" {
		t.Fatalf("stopped: %v", err)
	}
}
