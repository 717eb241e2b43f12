package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth/berth/container/logger"
)

// buildShim compiles berth-shim for the test.
func buildShim(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "berth-shim")
	cmd := exec.Command("go", "build", "-o", out, "../../cmd/berth-shim")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build shim: %v\n%s", err, b)
	}
	return out
}

// bundle makes an OCI bundle with a busybox rootfs and runc's default spec.
func bundle(t *testing.T, args []string, tty bool) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc not installed")
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox-static not installed")
	}
	dir, err := os.MkdirTemp("", "shimtest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	rootfs := filepath.Join(dir, "rootfs")
	os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755)
	b, _ := os.ReadFile(bb)
	os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), b, 0o755)
	for _, app := range []string{"sh", "echo", "cat", "sleep", "true"} {
		os.Symlink("busybox", filepath.Join(rootfs, "bin", app))
	}
	if out, err := exec.Command(runc, "spec", "--bundle", dir).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v %s", err, out)
	}
	var spec map[string]any
	raw, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	json.Unmarshal(raw, &spec)
	proc := spec["process"].(map[string]any)
	proc["args"] = args
	proc["terminal"] = tty
	spec["root"].(map[string]any)["readonly"] = false
	raw, _ = json.Marshal(spec)
	os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644)
	return dir
}

func spawn(t *testing.T, dir string, tty, stdin bool) Client {
	t.Helper()
	shimBin := buildShim(t)
	id := "shimtest-" + filepath.Base(dir)
	c, err := Spawn(context.Background(), shimBin, Options{
		ID: id, Bundle: dir, StateDir: filepath.Join(dir, "state"), Runtime: "runc",
		RuntimeRoot: filepath.Join(dir, "runc"), LogPath: filepath.Join(dir, "ctr-json.log"), LogMaxFiles: 1,
		Tty: tty, OpenStdin: stdin, StdinOnce: stdin,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestShimRunAttachWaitLog(t *testing.T) {
	dir := bundle(t, []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, false)
	c := spawn(t, dir, false, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := c.Attach(ctx, false, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[byte]string{}
	for {
		stream, data, err := a.ReadFrame(nil)
		if err != nil {
			break
		}
		got[stream] += string(data)
	}
	if got[StreamStdout] != "out\n" || got[StreamStderr] != "err\n" {
		t.Fatalf("attach got %q", got)
	}
	st, err := c.Wait(ctx)
	if err != nil || st.ExitCode != 3 {
		t.Fatalf("wait = %+v, %v", st, err)
	}
	if onDisk, err := ReadExit(c.StateDir); err != nil || onDisk.ExitCode != 3 {
		t.Fatalf("exit.json = %+v, %v", onDisk, err)
	}
	var lines []string
	logger.Read(ctx, filepath.Join(dir, "ctr-json.log"), 1, logger.ReadOptions{Tail: -1}, func(e logger.Entry) error {
		lines = append(lines, e.Stream+":"+e.Log)
		return nil
	})
	joined := strings.Join(lines, "")
	if !strings.Contains(joined, "stdout:out\n") || !strings.Contains(joined, "stderr:err\n") {
		t.Fatalf("log = %q", lines)
	}
	// The shim removes runc's state when it is done.
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, _ := os.ReadDir(filepath.Join(dir, "runc"))
		if len(entries) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("runc state left: %v", entries)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestShimStdinAndKill(t *testing.T) {
	dir := bundle(t, []string{"cat"}, false)
	c := spawn(t, dir, false, true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := c.Attach(ctx, true, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("ping\n"))
	_, data, err := a.ReadFrame(nil)
	if err != nil || string(data) != "ping\n" {
		t.Fatalf("echo: %q %v", data, err)
	}
	a.CloseWrite() // stdin-once: cat sees EOF and exits 0
	st, err := c.Wait(ctx)
	if err != nil || st.ExitCode != 0 {
		t.Fatalf("wait = %+v, %v", st, err)
	}

	dir2 := bundle(t, []string{"sleep", "100"}, false)
	c2 := spawn(t, dir2, false, false)
	if _, err := c2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c2.Kill(ctx, 9); err != nil {
		t.Fatal(err)
	}
	st, err = c2.Wait(ctx)
	if err != nil || st.ExitCode != 137 {
		t.Fatalf("killed: %+v, %v", st, err)
	}
}

func TestShimStartFailureIsReported(t *testing.T) {
	dir := bundle(t, []string{"/no/such/binary"}, false)
	c := spawn(t, dir, false, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("start error = %v", err)
	}
	st, err := c.Wait(ctx)
	if err != nil || st.Error == "" {
		t.Fatalf("wait after failed start = %+v, %v", st, err)
	}
}

// Abort ends a shim that berthd never wrote a PID file for (berthd died
// between the shim's "ready" and the write): it finds the shim by the
// credentials of its socket.
func TestAbortWithoutPidFile(t *testing.T) {
	dir := bundle(t, []string{"true"}, false)
	c := spawn(t, dir, false, false)
	pid := socketPeer(c.StateDir)
	if pid == 0 {
		t.Fatal("no shim behind the socket")
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if err := os.Remove(filepath.Join(c.StateDir, ShimPidName)); err != nil {
		t.Fatal(err)
	}
	Abort(c.StateDir, "shimtest-"+filepath.Base(dir))
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(b), ") Z ") {
			break // killed, not yet reaped by its parent
		}
		if time.Now().After(deadline) {
			t.Fatalf("shim %d still running after Abort", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
