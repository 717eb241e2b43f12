package shim

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestStartKind: runc's refusal to start reaches the client as a
// *StartError whose Kind says why (no such executable, not runnable), so
// berthd picks Docker's exit code without reading the message.
func TestStartKind(t *testing.T) {
	for _, c := range []struct {
		args []string
		want StartKind
	}{
		{[]string{"/no/such/program"}, StartNotFound},
		{[]string{"no-such-program-in-path"}, StartNotFound},
		{[]string{"/bin"}, StartPermission}, // a directory
	} {
		t.Run(c.args[0], func(t *testing.T) {
			dir := bundle(t, c.args, false)
			s, err := NewServer(Options{
				ID: "startkind-" + filepath.Base(dir), Bundle: dir, StateDir: filepath.Join(dir, "state"),
				Runtime: "runc", RuntimeRoot: filepath.Join(dir, "runc"), LogMaxFiles: 1,
			})
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan struct{})
			go func() { s.Serve(nil); close(served) }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err = Client{StateDir: filepath.Join(dir, "state")}.Start(ctx)
			var se *StartError
			if !errors.As(err, &se) || se.Kind != c.want {
				t.Fatalf("start: %#v, want a StartError of kind %q", err, c.want)
			}
			<-served
		})
	}
}

func TestRuncStartKind(t *testing.T) {
	for msg, want := range map[string]StartKind{
		`runc run failed: unable to start container process: exec: "nope": executable file not found in $PATH`: StartNotFound,
		`runc run failed: unable to start container process: exec: "/x": stat /x: no such file or directory`:   StartNotFound,
		`runc run failed: unable to start container process: exec: "/etc": permission denied`:                  StartPermission,
		`runc run failed: unable to apply cgroup configuration: cgroup not found`:                              StartFailed,
	} {
		if got := runcStartKind(msg); got != want {
			t.Errorf("runcStartKind(%q) = %q, want %q", msg, got, want)
		}
	}
}
