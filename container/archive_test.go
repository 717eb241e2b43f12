package container

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"

	"github.com/berth/berth/content"
	"github.com/berth/berth/image"
	"github.com/berth/berth/progress"
	"github.com/berth/berth/snapshot"
)

// ---- test environment: a real container service on runc ----------------

var (
	xShimOnce sync.Once
	xShimBin  string
	xShimErr  error
)

func xBuildShim(t testing.TB) string {
	t.Helper()
	xShimOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-shim-test")
		if err != nil {
			xShimErr = err
			return
		}
		xShimBin = filepath.Join(dir, "berth-shim")
		if out, err := exec.Command("go", "build", "-o", xShimBin, "../cmd/berth-shim").CombinedOutput(); err != nil {
			xShimErr = fmt.Errorf("build shim: %v\n%s", err, out)
		}
	})
	if xShimErr != nil {
		t.Fatal(xShimErr)
	}
	return xShimBin
}

type xEnv struct {
	svc    *Service
	images *image.Service
	snaps  *snapshot.Store
	root   string
	image  string // reference of the busybox test image
}

const xTestImage = "berthtest/busybox:latest"

// newXEnv makes a container service with a busybox image, on runc.
func newXEnv(t testing.TB) *xEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc not installed")
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed")
	}
	shim := xBuildShim(t)
	root, err := os.MkdirTemp("", "bctr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	cs, err := content.NewStore(filepath.Join(root, "content"), false)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := snapshot.NewStore(filepath.Join(root, "snap"), nil)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := image.New(image.Config{Root: filepath.Join(root, "image"), Content: cs, Snapshots: ss, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { imgs.Close() })
	if err := imgs.Load(context.Background(), bytes.NewReader(xBusyboxArchive(t, bb)), progress.Discard, true); err != nil {
		t.Fatal(err)
	}
	svc, err := New(context.Background(), Config{
		Root:      filepath.Join(root, "ctr"),
		ExecRoot:  filepath.Join(root, "run"),
		Runtime:   "runc",
		ShimPath:  shim,
		Images:    imgs,
		Snapshots: ss,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &xEnv{svc: svc, images: imgs, snaps: ss, root: root, image: xTestImage}
	t.Cleanup(func() {
		for _, id := range e.ids() {
			_ = svc.Remove(context.Background(), id, RemoveOptions{Force: true})
		}
	})
	return e
}

func (e *xEnv) ids() []string {
	e.svc.mu.RLock()
	defer e.svc.mu.RUnlock()
	var out []string
	for id := range e.svc.byID {
		out = append(out, id)
	}
	return out
}

// xBusyboxArchive is a docker-archive with one image: busybox and its
// applets, /etc/passwd and /etc/group.
func xBusyboxArchive(t testing.TB, bb string) []byte {
	t.Helper()
	bin, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	mt := time.Unix(1700000000, 0)
	dir := func(name string, mode int64) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: mt})
	}
	file := func(name string, mode int64, data []byte) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mt})
		tw.Write(data)
	}
	for _, d := range []string{"bin", "dev", "etc", "proc", "root", "sys", "usr", "var", "home"} {
		dir(d, 0o755)
	}
	dir("tmp", 0o1777)
	file("bin/busybox", 0o755, bin)
	for _, app := range strings.Fields(string(out)) {
		if app == "busybox" {
			continue
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: "bin/" + app, Linkname: "bin/busybox", ModTime: mt})
	}
	file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\napp:x:1000:1000:app:/home:/bin/sh\n"))
	file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\napp:x:1000:\n"))
	tw.Close()
	diffID := digest.FromBytes(layer.Bytes())
	cfg := map[string]any{
		"architecture": "amd64", "os": "linux",
		"created": mt.UTC().Format(time.RFC3339),
		"config": map[string]any{
			"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			"Cmd": []string{"sh"},
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{diffID.String()}},
		"history": []map[string]any{{"created": mt.UTC().Format(time.RFC3339), "created_by": "busybox for tests"}},
	}
	cfgJSON, _ := json.Marshal(cfg)
	manifest, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{xTestImage}, "Layers": []string{"layer.tar"}}})
	var arc bytes.Buffer
	aw := tar.NewWriter(&arc)
	for _, f := range []struct {
		name string
		data []byte
	}{{"config.json", cfgJSON}, {"layer.tar", layer.Bytes()}, {"manifest.json", manifest}} {
		aw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: mt})
		aw.Write(f.data)
	}
	aw.Close()
	return arc.Bytes()
}

// run creates and starts a container running cmd (nil: the image's).
func (e *xEnv) run(t testing.TB, cmd []string, hc *container.HostConfig) string {
	t.Helper()
	id := e.create(t, cmd, hc)
	if err := e.svc.Start(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *xEnv) create(t testing.TB, cmd []string, hc *container.HostConfig) string {
	t.Helper()
	return e.createFrom(t, e.image, cmd, hc)
}

func (e *xEnv) createFrom(t testing.TB, img string, cmd []string, hc *container.HostConfig) string {
	t.Helper()
	if hc == nil {
		hc = &container.HostConfig{}
	}
	if hc.NetworkMode == "" {
		hc.NetworkMode = "none"
	}
	id, _, err := e.svc.Create(context.Background(), CreateRequest{Config: &container.Config{Image: img, Cmd: cmd}, HostConfig: hc})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// exec runs cmd in a running container and returns its output.
func (e *xEnv) exec(t *testing.T, id string, cmd ...string) string {
	t.Helper()
	c, err := e.svc.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	pid := c.State.Pid
	c.mu.Unlock()
	// nsenter keeps the test independent of the exec plumbing.
	args := append([]string{"-t", fmt.Sprint(pid), "-m", "-p", "-u", "-i", "--"}, cmd...)
	out, err := exec.Command("nsenter", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("exec %v: %v\n%s", cmd, err, out)
	}
	return string(out)
}

func (e *xEnv) stop(t *testing.T, id string) {
	t.Helper()
	zero := 0
	if err := e.svc.Stop(context.Background(), id, "KILL", &zero); err != nil && !cerrdefs.IsNotModified(err) {
		t.Fatal(err)
	}
}

// wait waits for a container to exit.
func (e *xEnv) wait(t *testing.T, id string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, err := e.svc.Wait(ctx, id, container.WaitConditionNotRunning)
	if err != nil {
		t.Fatal(err)
	}
	res, ok := <-ch
	if !ok {
		t.Fatal("wait timed out")
	}
	return res.StatusCode
}

// ---- tar helpers ---------------------------------------------------------

type xTarEntry struct {
	hdr  *tar.Header
	data string
}

func xReadTar(t *testing.T, r io.Reader) map[string]xTarEntry {
	t.Helper()
	out := map[string]xTarEntry{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = xTarEntry{hdr: h, data: string(b)}
	}
}

func xNames(m map[string]xTarEntry) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type xTarFile struct {
	name, body, link string
	typ              byte
	mode             int64
}

func xMakeTar(t *testing.T, files ...xTarFile) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: f.mode, Linkname: f.link, ModTime: time.Unix(1600000000, 0)}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(f.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.body))
	}
	tw.Close()
	return &b
}

// ---- unit tests ------------------------------------------------------------

func TestAsAbs(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/passwd": "/etc/passwd",
		"etc":         "/etc",
		"/etc/":       "/etc/",
		"/etc/.":      "/etc/.",
		".":           "/.",
		"/":           "/",
		"/a/../b":     "/b",
	} {
		if got := asAbs(in); got != want {
			t.Errorf("asAbs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFileMode(t *testing.T) {
	if m := fileMode(0o40755); m != os.ModeDir|0o755 {
		t.Errorf("dir: %v", m)
	}
	if m := fileMode(0o120777); m != os.ModeSymlink|0o777 {
		t.Errorf("symlink: %v", m)
	}
	if m := fileMode(0o104755); m != os.ModeSetuid|0o755 {
		t.Errorf("setuid: %v", m)
	}
}

// ---- integration: cp on real containers ------------------------------------

// waitFile waits until p exists in the container.
func (e *xEnv) waitFile(t *testing.T, id, p string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := e.svc.ArchiveStat(context.Background(), id, p); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared in %s", p, id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func xGet(t *testing.T, e *xEnv, id, p string) (*container.PathStat, map[string]xTarEntry) {
	t.Helper()
	st, rc, err := e.svc.ArchiveGet(context.Background(), id, p)
	if err != nil {
		t.Fatalf("xGet %s: %v", p, err)
	}
	defer rc.Close()
	return st, xReadTar(t, rc)
}

// xNoSessionMounts checks no view mount is visible in berthd's namespace.
func xNoSessionMounts(t *testing.T, e *xEnv) {
	t.Helper()
	b, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(b), filepath.Join(e.root, "run", "fs")) {
		t.Errorf("a view mount leaked into the host namespace:\n%s", b)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root, "run", "fs")); len(ents) > 0 {
		t.Errorf("view directories left behind: %v", ents)
	}
}

func TestArchiveRunningContainer(t *testing.T) {
	e := newXEnv(t)
	bind := t.TempDir()
	os.WriteFile(filepath.Join(bind, "onhost"), []byte("from the host\n"), 0o644)
	robind := t.TempDir()
	id := e.run(t, []string{"sh", "-c", "echo hello > /hello; mkdir -p /d/sub; echo x > /d/sub/f; ln -s /etc/passwd /plink; touch /ready; exec sleep 1000"},
		&container.HostConfig{Binds: []string{bind + ":/data", robind + ":/ro:ro"}})
	e.waitFile(t, id, "/ready")
	ctx := context.Background()

	st, files := xGet(t, e, id, "/hello")
	if st.Name != "hello" || st.Size != 6 || st.Mode.IsDir() || files["hello"].data != "hello\n" || len(files) != 1 {
		t.Fatalf("GET /hello: %+v %v", st, xNames(files))
	}
	_, files = xGet(t, e, id, "/d")
	if got := strings.Join(xNames(files), ","); got != "d/,d/sub/,d/sub/f" {
		t.Fatalf("GET /d: %s", got)
	}
	st, files = xGet(t, e, id, "/d/.")
	if got := strings.Join(xNames(files), ","); got != "./,./sub/,./sub/f" || !st.Mode.IsDir() {
		t.Fatalf("GET /d/.: %s %+v", got, st)
	}
	st, err := e.svc.ArchiveStat(ctx, id, "/plink")
	if err != nil || st.LinkTarget != "/etc/passwd" || st.Mode&os.ModeSymlink == 0 || st.Name != "plink" {
		t.Fatalf("HEAD /plink: %+v %v", st, err)
	}
	if _, err := e.svc.ArchiveStat(ctx, id, "/nope"); !cerrdefs.IsNotFound(err) || err.Error() != "Could not find the file /nope in container "+id {
		t.Fatalf("HEAD /nope: %v", err)
	}

	// Binds are seen at their place, as in the container.
	_, files = xGet(t, e, id, "/data/onhost")
	if files["onhost"].data != "from the host\n" {
		t.Fatalf("GET /data/onhost: %v", files)
	}

	// PUT into the rootfs and into a bind.
	if err := e.svc.ArchivePut(ctx, id, "/d", ExtractOptions{}, xMakeTar(t, xTarFile{name: "new.txt", body: "new\n"}, xTarFile{name: "nd/x", body: "deep\n", mode: 0o600})); err != nil {
		t.Fatal(err)
	}
	if out := e.exec(t, id, "cat", "/d/new.txt", "/d/nd/x"); out != "new\ndeep\n" {
		t.Fatalf("in container: %q", out)
	}
	if err := e.svc.ArchivePut(ctx, id, "/data", ExtractOptions{}, xMakeTar(t, xTarFile{name: "in-bind", body: "b\n"})); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(bind, "in-bind")); string(b) != "b\n" {
		t.Fatalf("bind file: %q", b)
	}
	err = e.svc.ArchivePut(ctx, id, "/ro", ExtractOptions{}, xMakeTar(t, xTarFile{name: "x", body: "x"}))
	if !cerrdefs.IsInvalidArgument(err) || err.Error() != "mounted volume is marked read-only" {
		t.Fatalf("PUT into :ro bind: %v", err)
	}
	err = e.svc.ArchivePut(ctx, id, "/hello", ExtractOptions{}, xMakeTar(t, xTarFile{name: "x", body: "x"}))
	if !cerrdefs.IsInvalidArgument(err) || err.Error() != "extraction point is not a directory" {
		t.Fatalf("PUT onto a file: %v", err)
	}
	if err := e.svc.ArchivePut(ctx, id, "/missing", ExtractOptions{}, xMakeTar(t, xTarFile{name: "x", body: "x"})); !cerrdefs.IsNotFound(err) {
		t.Fatalf("PUT into a missing dir: %v", err)
	}
	// noOverwriteDirNonDir refuses to turn a directory into a file.
	err = e.svc.ArchivePut(ctx, id, "/", ExtractOptions{NoOverwriteDirNonDir: true}, xMakeTar(t, xTarFile{name: "d", body: "x"}))
	if err == nil || !strings.Contains(err.Error(), "cannot overwrite directory") {
		t.Fatalf("noOverwriteDirNonDir: %v", err)
	}
	// copyUIDGID with no configured user keeps the tar's owner.
	if err := e.svc.ArchivePut(ctx, id, "/d", ExtractOptions{CopyUIDGID: true}, xMakeTarOwned(t, "owned", 1234, 5678)); err != nil {
		t.Fatal(err)
	}
	if out := e.exec(t, id, "stat", "-c", "%u:%g", "/d/owned"); strings.TrimSpace(out) != "1234:5678" {
		t.Fatalf("owner: %q", out)
	}
	xNoSessionMounts(t, e)
}

func xMakeTarOwned(t *testing.T, name string, uid, gid int) *bytes.Buffer {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o640, Size: 2, Uid: uid, Gid: gid, ModTime: time.Unix(1600000000, 0)})
	tw.Write([]byte("o\n"))
	tw.Close()
	return &b
}

// TestArchiveSymlinkEscapes: a container plants symlinks to xGet cp to read
// or write the host's files; every one of them stays inside the container.
func TestArchiveSymlinkEscapes(t *testing.T) {
	e := newXEnv(t)
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "secret"), []byte("host secret\n"), 0o600)
	hostRel := strings.TrimPrefix(host, "/")
	script := fmt.Sprintf("ln -s / /etc/evil; ln -s ../../../../../../../.. /esc; ln -s %s /hostlink; mkdir /box; touch /ready; exec sleep 1000", host)
	// Later the container makes the host directory's path exist inside
	// itself too: links to it must then reach the container's copy.
	id := e.run(t, []string{"sh", "-c", script}, nil)
	e.waitFile(t, id, "/ready")
	ctx := context.Background()
	hostUntouched := func() {
		t.Helper()
		ents, _ := os.ReadDir(host)
		if len(ents) != 1 || ents[0].Name() != "secret" {
			var n []string
			for _, e := range ents {
				n = append(n, e.Name())
			}
			t.Fatalf("host directory changed: %v", n)
		}
	}

	// GET: each path reaches the host's secret if resolved on the host.
	for _, p := range []string{"/hostlink/secret", "/esc/" + hostRel + "/secret", "/etc/evil/" + hostRel + "/secret", "/etc/evil/../../" + hostRel + "/secret", "/hostlink/"} {
		if _, rc, err := e.svc.ArchiveGet(ctx, id, p); err == nil {
			files := xReadTar(t, rc)
			rc.Close()
			t.Fatalf("GET %s escaped: %v", p, xNames(files))
		} else if !cerrdefs.IsNotFound(err) {
			t.Fatalf("GET %s: %v", p, err)
		}
	}
	// GET of the link itself gives the link, with its target as the
	// container sees it.
	st, files := xGet(t, e, id, "/etc/evil")
	if st.LinkTarget != "/" || files["evil"].hdr.Typeflag != tar.TypeSymlink || files["evil"].hdr.Linkname != "/" {
		t.Fatalf("GET /etc/evil: %+v %v", st, files)
	}
	// "/etc/evil/." follows the link: the container's root, not the host's.
	st, err := e.svc.ArchiveStat(ctx, id, "/etc/evil/.")
	if err != nil || !st.Mode.IsDir() {
		t.Fatalf("HEAD /etc/evil/.: %+v %v", st, err)
	}
	if _, err := e.svc.ArchiveStat(ctx, id, "/esc/"+hostRel+"/secret"); !cerrdefs.IsNotFound(err) {
		t.Fatalf("HEAD through /esc: %v", err)
	}

	// PUT into a directory reached through symlinks: the container's.
	if err := e.svc.ArchivePut(ctx, id, "/etc/evil/box", ExtractOptions{}, xMakeTar(t, xTarFile{name: "a", body: "a\n"})); err != nil {
		t.Fatal(err)
	}
	if out := e.exec(t, id, "cat", "/box/a"); out != "a\n" {
		t.Fatalf("/box/a = %q", out)
	}
	if err := e.svc.ArchivePut(ctx, id, "/esc/box", ExtractOptions{}, xMakeTar(t, xTarFile{name: "b", body: "b\n"})); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ArchivePut(ctx, id, "/hostlink", ExtractOptions{}, xMakeTar(t, xTarFile{name: "pwned", body: "x"})); !cerrdefs.IsNotFound(err) {
		t.Fatalf("PUT /hostlink: %v", err)
	}
	hostUntouched()

	// Tar entries that climb out, or go through links they plant.
	attacks := map[string]*bytes.Buffer{
		"dotdot":       xMakeTar(t, xTarFile{name: "../../../../../../../../" + hostRel + "/pwned", body: "x"}),
		"rel-symlink":  xMakeTar(t, xTarFile{name: "l", typ: tar.TypeSymlink, link: "../../../../../../../../" + hostRel}, xTarFile{name: "l/pwned", body: "x"}),
		"hardlink-out": xMakeTar(t, xTarFile{name: "h", typ: tar.TypeLink, link: "../../../../../../../" + hostRel + "/secret"}),
	}
	for name, tr := range attacks {
		if err := e.svc.ArchivePut(ctx, id, "/box", ExtractOptions{}, tr); err == nil {
			t.Errorf("%s: accepted", name)
		}
		hostUntouched()
	}
	// An absolute symlink is legal, and resolves inside the container.
	e.exec(t, id, "mkdir", "-p", host)
	abs := xMakeTar(t, xTarFile{name: "al", typ: tar.TypeSymlink, link: host}, xTarFile{name: "al/pwned", body: "inside\n"},
		xTarFile{name: "el", typ: tar.TypeSymlink, link: "/"}, xTarFile{name: "el/" + hostRel + "/pwned2", body: "inside2\n"},
		xTarFile{name: "/" + hostRel + "/pwned3", body: "inside3\n"})
	if err := e.svc.ArchivePut(ctx, id, "/box", ExtractOptions{}, abs); err != nil {
		t.Fatal(err)
	}
	hostUntouched()
	if out := e.exec(t, id, "cat", host+"/pwned", host+"/pwned2", "/box/"+hostRel+"/pwned3"); out != "inside\ninside2\ninside3\n" {
		t.Fatalf("in container: %q", out)
	}
	// A link swapped in for the destination's parent between requests.
	e.exec(t, id, "sh", "-c", "rm -rf /box && ln -s "+host+" /box")
	if err := e.svc.ArchivePut(ctx, id, "/box", ExtractOptions{}, xMakeTar(t, xTarFile{name: "pwned4", body: "x"})); err != nil {
		t.Fatal(err) // the container's own directory, created above
	}
	hostUntouched()
	xNoSessionMounts(t, e)
}

func TestArchiveStoppedContainer(t *testing.T) {
	e := newXEnv(t)
	bind := t.TempDir()
	os.WriteFile(filepath.Join(bind, "onhost"), []byte("v\n"), 0o644)
	ctx := context.Background()
	id := e.run(t, []string{"sh", "-c", "echo bye > /bye; mkdir /out"}, &container.HostConfig{Binds: []string{bind + ":/data"}})
	if code := e.wait(t, id); code != 0 {
		t.Fatalf("exit %d", code)
	}
	_, files := xGet(t, e, id, "/bye")
	if files["bye"].data != "bye\n" {
		t.Fatalf("GET /bye: %v", files)
	}
	_, files = xGet(t, e, id, "/data/onhost")
	if files["onhost"].data != "v\n" {
		t.Fatalf("GET /data/onhost: %v", files)
	}
	if err := e.svc.ArchivePut(ctx, id, "/out", ExtractOptions{}, xMakeTar(t, xTarFile{name: "in", body: "in\n"})); err != nil {
		t.Fatal(err)
	}
	_, files = xGet(t, e, id, "/out/in")
	if files["in"].data != "in\n" {
		t.Fatalf("GET /out/in: %v", files)
	}
	// The container sees it when started again.
	id2 := e.run(t, []string{"cat", "/out/in"}, nil)
	_ = id2
	xNoSessionMounts(t, e)

	// A created, never started container.
	id3 := e.create(t, []string{"cat", "/x/y"}, nil)
	if err := e.svc.ArchivePut(ctx, id3, "/", ExtractOptions{}, xMakeTar(t, xTarFile{name: "x/y", body: "y\n"})); err != nil {
		t.Fatal(err)
	}
	_, files = xGet(t, e, id3, "/x/y")
	if files["y"].data != "y\n" {
		t.Fatalf("GET /x/y: %v", files)
	}
	xNoSessionMounts(t, e)
}

// TestArchiveConcurrentStart: a start waits for a session on the stopped
// container's filesystem, so the snapshot is never mounted twice.
func TestArchiveConcurrentStart(t *testing.T) {
	e := newXEnv(t)
	id := e.create(t, []string{"true"}, nil)
	c, _ := e.svc.Get(id)
	f, err := e.svc.openFS(context.Background(), c, true)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{})
	go func() {
		release := e.svc.HoldRootfs(id)
		close(got)
		release()
	}()
	select {
	case <-got:
		t.Fatal("start hold granted while a session is open")
	case <-time.After(200 * time.Millisecond):
	}
	f.Close()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("start hold not granted after the session closed")
	}
}

func TestExport(t *testing.T) {
	e := newXEnv(t)
	bind := t.TempDir()
	os.WriteFile(filepath.Join(bind, "vol-file"), []byte("v"), 0o644)
	id := e.run(t, []string{"sh", "-c", "echo e > /exported; touch /ready; exec sleep 1000"}, &container.HostConfig{Binds: []string{bind + ":/data"}})
	e.waitFile(t, id, "/ready")
	check := func() {
		t.Helper()
		rc, err := e.svc.Export(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		files := xReadTar(t, rc)
		rc.Close()
		if files["exported"].data != "e\n" || files["bin/busybox"].hdr == nil || files["etc/passwd"].hdr == nil || files["bin/"].hdr == nil {
			t.Fatalf("export: %v", xNames(files))
		}
		if _, ok := files["data/vol-file"]; ok {
			t.Fatal("export includes a bind's content")
		}
		if files["bin/sh"].hdr.Typeflag != tar.TypeLink {
			t.Fatalf("bin/sh: %+v", files["bin/sh"].hdr)
		}
	}
	check()
	e.stop(t, id)
	check()
	xNoSessionMounts(t, e)
}

// waitFileRunning waits until the container has more than its first
// process or a second has passed (for commands that fork at once).
func (e *xEnv) waitFileRunning(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if pids, _ := e.svc.containerPids(id); len(pids) >= 2 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
