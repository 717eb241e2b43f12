// Package testutil builds what integration tests need: a busybox image as
// a docker-archive, made from Debian's busybox-static, with no registry.
package testutil

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// BusyboxArchive returns a docker-archive (as `docker save` writes) of a
// one-layer busybox image tagged tag, with cmd as its Cmd. It skips the
// test when busybox-static is not installed.
func BusyboxArchive(t testing.TB, tag string, cmd []string) []byte {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox-static is not installed")
	}
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
	mtime := time.Unix(1700000000, 0)
	dir := func(name string, mode int64) {
		_ = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: mode, ModTime: mtime})
	}
	file := func(name string, mode int64, data []byte) {
		_ = tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(data)), ModTime: mtime})
		_, _ = tw.Write(data)
	}
	for _, d := range []string{"bin/", "etc/", "root/", "var/", "dev/", "proc/", "sys/"} {
		dir(d, 0o755)
	}
	dir("tmp/", 0o1777)
	file("bin/busybox", 0o755, bin)
	for _, app := range strings.Fields(string(out)) {
		if app == "busybox" {
			continue
		}
		_ = tw.WriteHeader(&tar.Header{Name: "bin/" + app, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777, ModTime: mtime})
	}
	file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
	file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(layer.Bytes())
	diffID := "sha256:" + hex.EncodeToString(sum[:])
	config := map[string]any{
		"architecture": "amd64", "os": "linux", "created": "2025-05-20T00:00:00Z",
		"config":  map[string]any{"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, "Cmd": cmd},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{diffID}},
		"history": []map[string]any{{"created": "2025-05-20T00:00:00Z", "created_by": "ADD busybox /"}, {"created": "2025-05-20T00:00:00Z", "created_by": "CMD", "empty_layer": true}},
	}
	cb, _ := json.Marshal(config)
	csum := sha256.Sum256(cb)
	chex := hex.EncodeToString(csum[:])
	manifest, _ := json.Marshal([]map[string]any{{"Config": chex + ".json", "RepoTags": []string{tag}, "Layers": []string{"layer/layer.tar"}}})
	var archive bytes.Buffer
	aw := tar.NewWriter(&archive)
	for _, f := range []struct {
		name string
		data []byte
	}{{chex + ".json", cb}, {"layer/layer.tar", layer.Bytes()}, {"manifest.json", manifest}} {
		_ = aw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.data)), ModTime: mtime})
		_, _ = aw.Write(f.data)
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	return archive.Bytes()
}
