package container

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth/berth/snapshot"
)

func TestMountDirs(t *testing.T) {
	up, lows, _ := mountDirs(snapshot.Mount{Type: "overlay", Options: []string{"lowerdir=/l/a:/l/b", "upperdir=/c/upper", "workdir=/c/work"}})
	if up != "/c/upper" || strings.Join(lows, ",") != "/l/a,/l/b" {
		t.Fatalf("%s %v", up, lows)
	}
	up, lows, _ = mountDirs(snapshot.Mount{Type: "overlay", Dir: "/root", Options: []string{"lowerdir=l/a", "upperdir=containers/x/upper"}})
	if up != "/root/containers/x/upper" || lows[0] != "/root/l/a" {
		t.Fatalf("relative: %s %v", up, lows)
	}
	if up, _, _ := mountDirs(snapshot.Mount{Type: "bind", Source: "/c/upper"}); up != "/c/upper" {
		t.Fatal(up)
	}
}

func fmtChanges(ch []container.FilesystemChange) string {
	var b []string
	for _, c := range ch {
		b = append(b, c.Kind.String()+" "+c.Path)
	}
	return strings.Join(b, "\n")
}

// TestUpperScanDirs checks the walk on hand-made upper and lower dirs.
func TestUpperScanDirs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("whiteouts need root")
	}
	lower, upper := t.TempDir(), t.TempDir()
	for _, d := range []string{"etc", "usr/lib", "opq", "proc"} {
		os.MkdirAll(filepath.Join(lower, d), 0o755)
	}
	os.WriteFile(filepath.Join(lower, "etc/passwd"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(lower, "etc/group"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(lower, "opq/old"), []byte("x"), 0o644)
	// upper: /etc copied up (new mtime) holding a placeholder hosts, a
	// modified passwd and a deleted group; a new /new/f; an opaque /opq;
	// an empty runc-made /sys.
	os.MkdirAll(filepath.Join(upper, "etc"), 0o755)
	os.WriteFile(filepath.Join(upper, "etc/hosts"), nil, 0o644)
	os.WriteFile(filepath.Join(upper, "etc/passwd"), []byte("xy"), 0o644)
	if err := unix.Mknod(filepath.Join(upper, "etc/group"), unix.S_IFCHR, 0); err != nil {
		t.Skip("mknod:", err)
	}
	os.MkdirAll(filepath.Join(upper, "new"), 0o755)
	os.WriteFile(filepath.Join(upper, "new/f"), []byte("f"), 0o644)
	os.MkdirAll(filepath.Join(upper, "opq"), 0o755)
	os.WriteFile(filepath.Join(upper, "opq/n"), []byte("n"), 0o644)
	if err := unix.Setxattr(filepath.Join(upper, "opq"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Skip("xattr:", err)
	}
	os.MkdirAll(filepath.Join(upper, "sys"), 0o755)
	// /usr copied up only to hold /usr/lib/x.
	os.MkdirAll(filepath.Join(upper, "usr/lib"), 0o755)
	os.WriteFile(filepath.Join(upper, "usr/lib/x"), []byte("x"), 0o644)
	u, err := newUpperScan(upper, []string{lower}, placeholders(false))
	if err != nil {
		t.Fatal(err)
	}
	defer u.close()
	u.markDrops(u.upper, "/")
	var out []container.FilesystemChange
	u.changes(u.upper, "/", map[string]bool{}, &out)
	want := `C /etc
D /etc/group
C /etc/passwd
A /new
A /new/f
D /opq
A /opq/n
C /usr/lib
A /usr/lib/x`
	// /usr and /usr/lib: copied up with fresh mtimes, so Docker reports
	// them as modified when their times differ; ours were just created.
	got := fmtChanges(out)
	got = strings.Replace(got, "C /usr\n", "", 1)
	if got != want {
		t.Fatalf("changes:\n%s\nwant:\n%s", fmtChanges(out), want)
	}
	if !u.drop["/etc/hosts"] || !u.drop["/sys"] || u.drop["/etc"] {
		t.Fatalf("drop = %v", u.drop)
	}
}

func TestChangesOnContainer(t *testing.T) {
	e := newXEnv(t)
	id := e.run(t, []string{"sh", "-c", "touch /newfile; rm /etc/group; echo x >> /etc/passwd; mkdir -p /newdir/sub; echo y > /newdir/sub/f"}, nil)
	if code := e.wait(t, id); code != 0 {
		t.Fatalf("exit %d", code)
	}
	ch, err := e.svc.Changes(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	want := `C /etc
D /etc/group
C /etc/passwd
A /newdir
A /newdir/sub
A /newdir/sub/f
A /newfile`
	if got := fmtChanges(ch); got != want {
		t.Fatalf("changes:\n%s\nwant:\n%s", got, want)
	}
	// A fresh container has no changes, before and after it ran.
	id2 := e.create(t, []string{"true"}, nil)
	if ch, err := e.svc.Changes(context.Background(), id2); err != nil || len(ch) != 0 {
		t.Fatalf("fresh: %v %v", fmtChanges(ch), err)
	}
	e.svc.Start(context.Background(), id2)
	e.wait(t, id2)
	if ch, err := e.svc.Changes(context.Background(), id2); err != nil || len(ch) != 0 {
		t.Fatalf("after a run: %v %v", fmtChanges(ch), err)
	}
	if _, err := e.svc.Changes(context.Background(), "nope"); err == nil || err.Error() != "No such container: nope" {
		t.Fatalf("missing: %v", err)
	}
}
