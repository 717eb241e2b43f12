package container

import (
	"errors"
	"slices"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth/berth/runtime/shim"
)

// TestStartErrorKind: the exit code and the wording of a failed start
// follow the kind the shim gave the runtime's refusal, not its words.
func TestStartErrorKind(t *testing.T) {
	cases := []struct {
		err  error
		code int
		msg  string
	}{
		{&shim.StartError{Msg: `runc run failed: exec: "nope": executable file not found in $PATH`, Kind: shim.StartNotFound}, 127,
			`failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: exec: "nope": executable file not found in $PATH: unknown`},
		{&shim.StartError{Msg: "exec /etc: permission denied", Kind: shim.StartPermission}, 126, "OCI runtime create failed: exec /etc: permission denied"},
		{&shim.StartError{Msg: "cgroup not found"}, 128, "OCI runtime create failed: cgroup not found"},
		// Words alone decide nothing.
		{errors.New("network x not found: no such file or directory"), 128, "OCI runtime create failed: network x not found: no such file or directory"},
	}
	for _, c := range cases {
		if got := startExitCode(c.err); got != c.code {
			t.Errorf("startExitCode(%v) = %d, want %d", c.err, got, c.code)
		}
		err := startError(c.err)
		if err.Error() != c.msg || !cerrdefs.IsInvalidArgument(err) {
			t.Errorf("startError(%v) = %q (invalid argument %v), want %q", c.err, err, cerrdefs.IsInvalidArgument(err), c.msg)
		}
	}
}

// TestNextRestartDelay: the restart policy's delays are dockerd's restart
// manager's: 100 ms doubled up to a minute, back to 100 ms after a run of
// 10 s or more, whatever the restart count.
func TestNextRestartDelay(t *testing.T) {
	var d time.Duration
	var got []time.Duration
	for range 12 {
		d = nextRestartDelay(d, time.Second)
		got = append(got, d)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond, 12800 * time.Millisecond,
		25600 * time.Millisecond, 51200 * time.Millisecond, time.Minute, time.Minute}
	if !slices.Equal(got, want) {
		t.Errorf("delays of short runs: %v, want %v", got, want)
	}
	if d := nextRestartDelay(time.Minute, 10*time.Second); d != 100*time.Millisecond {
		t.Errorf("after a run of 10 s: %v, want 100ms", d)
	}
}
