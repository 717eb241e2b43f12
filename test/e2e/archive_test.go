package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// compress returns b compressed with kind: gzip and zstd in process,
// bzip2 and xz with Debian's tools.
func compress(t *testing.T, kind string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch kind {
	case "identity":
		return b
	case "gzip":
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
	case "zstd":
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(b)
		zw.Close()
	case "bzip2", "xz":
		cmd := exec.Command(kind, "-c")
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s -c: %v (apt-get install %s)", kind, err, map[string]string{"xz": "xz-utils", "bzip2": "bzip2"}[kind])
		}
		return out
	default:
		t.Fatalf("no compression %q", kind)
	}
	return buf.Bytes()
}

// tarOf makes a tar of files (name → content), a directory for names
// ending in "/".
func tarOf(t *testing.T, files ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		name, body := files[i], files[i+1]
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}
		if strings.HasSuffix(name, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

// corrupt keeps the first two thirds of a compressed stream and adds
// garbage: the stream starts well and breaks after some entries.
func corrupt(b []byte) []byte {
	return append(append([]byte(nil), b[:len(b)*2/3]...), bytes.Repeat([]byte{0x5a}, 4096)...)
}

// TestCpCompressedArchive: `docker cp - ctr:/dir` and PUT
// /containers/{id}/archive take gzip, bzip2 and xz bodies (dockerd 20.10;
// zstd too on berth and on newer dockerd), as testcontainers-go and
// docker-py send them; a corrupt body fails and (berth) changes nothing.
func TestCpCompressedArchive(t *testing.T) {
	busybox(t)
	a := env.d.api()
	name, _ := runDetached(t, a, "cpz", nil, "sleep", "300")
	waitRunning(t, a, name)
	big := strings.Repeat("0123456789abcdef", 4096)
	content := tarOf(t, "conf/", "", "conf/app.conf", "listen 80\n", "conf/big", big, "zz-last", "last\n")

	eachCLI(t, func(t *testing.T, c *CLI) {
		for _, kind := range []string{"identity", "gzip", "bzip2", "xz"} {
			dir := "/" + c.name + "-" + kind
			c.ok("exec", name, "mkdir", dir)
			c.runStdin(compress(t, kind, content), "cp", "-", name+":"+dir).wantCode(t, c.name+" cp - ("+kind+")", 0)
			c.ok("exec", name, "cat", dir+"/conf/app.conf", dir+"/zz-last").wantOut(t, c.name+" "+kind, "listen 80\nlast")
		}
	})

	// The raw API, as an SDK sends it.
	put := func(path string, body []byte) *apiResp {
		return a.call(t, "PUT", "/containers/"+name+"/archive?path="+path, body, http.Header{"Content-Type": {"application/x-tar"}})
	}
	get := func(path string) *apiResp {
		return a.call(t, "GET", "/containers/"+name+"/archive?path="+path, nil, nil)
	}
	for _, kind := range []string{"gzip", "bzip2", "xz"} {
		put("/tmp", compress(t, kind, tarOf(t, "api-"+kind+".txt", kind))).wantStatus(t, 200)
		r := get("/tmp/api-"+kind+".txt").wantStatus(t, 200)
		tr := tar.NewReader(bytes.NewReader(r.Body))
		if h, err := tr.Next(); err != nil || h.Name != "api-"+kind+".txt" {
			t.Errorf("PUT %s body: GET gives %v %v", kind, h, err)
		}
	}

	// Corrupt bodies fail with a message (dockerd: 500 "Error processing
	// tar file(...)"; berth: 400).
	for _, kind := range []string{"gzip", "xz"} {
		dir := "/tmp/bad-" + kind
		c := cli(t, "docker")
		c.ok("exec", name, "mkdir", dir)
		r := put(dir, corrupt(compress(t, kind, content)))
		if r.Status < 400 || len(bytes.TrimSpace(r.Body)) == 0 {
			t.Errorf("PUT corrupt %s: %d %q, want an error with a message", kind, r.Status, r.Body)
		}
		c.runStdin(corrupt(compress(t, kind, content)), "cp", "-", name+":"+dir).wantFailure(t, "docker cp - (corrupt "+kind+")")
	}

	// zstd: dockerd 20.10 refuses it (its go-archive lacks it), 23.0 and
	// later take it, as berth does.
	t.Run("zstd", func(t *testing.T) {
		onlyBerth(t, "dockerd 20.10 answers 500 Error processing tar file(exit status 1): unexpected EOF")
		put("/tmp", compress(t, "zstd", tarOf(t, "api-zstd.txt", "zstd"))).wantStatus(t, 200)
		get("/tmp/api-zstd.txt").wantStatus(t, 200)
	})

	t.Run("corrupt changes nothing", func(t *testing.T) {
		onlyBerth(t, "dockerd extracts up to the damage and answers 500, leaving the first entries behind")
		for _, kind := range []string{"gzip", "xz"} {
			dir := "/tmp/bad-" + kind
			r := put(dir, corrupt(compress(t, kind, content)))
			r.wantError(t, 400, "invalid")
			get(dir+"/conf/app.conf").wantStatus(t, 404)
		}
	})
}

// TestLoadCompressed: `docker load -i image.tar.gz` (and .tar.xz, .tar.bz2)
// loads, as dockerd does; POST /images/load takes the compressed body; a
// corrupt one fails and loads nothing.
func TestLoadCompressed(t *testing.T) {
	busybox(t)
	a := env.d.api()
	tag := "e2e/loadz:" + uniq()
	a.call(t, "POST", "/images/busybox:latest/tag?repo=e2e/loadz&tag="+strings.TrimPrefix(tag, "e2e/loadz:"), nil, nil).wantStatus(t, 201)
	t.Cleanup(func() { removeImage(t, a, tag) })
	saved := a.call(t, "GET", "/images/get?names="+tag, nil, nil).wantStatus(t, 200).Body

	eachCLI(t, func(t *testing.T, c *CLI) {
		dir := t.TempDir()
		for _, kind := range []string{"gzip", "xz", "bzip2"} {
			ext := map[string]string{"gzip": "gz", "xz": "xz", "bzip2": "bz2"}[kind]
			file := writeFile(t, dir, "image.tar."+ext, compress(t, kind, saved))
			removeImage(t, a, tag)
			r := c.ok("load", "-i", file)
			if strings.TrimSpace(r.Stdout) != "Loaded image: "+tag {
				t.Errorf("%s load -i image.tar.%s: %q, want Loaded image: %s", c.name, ext, r.Stdout, tag)
			}
			if !imageExists(t, a, tag) {
				t.Errorf("%s load -i image.tar.%s: %s is not there", c.name, ext, tag)
			}
		}
		// Corrupt: a failure with a message, and the store as it was.
		for _, kind := range []string{"gzip", "xz"} {
			removeImage(t, a, tag)
			before := imageState(t, a)
			bad := writeFile(t, dir, "bad."+kind, corrupt(compress(t, kind, saved)))
			r := c.run("load", "-i", bad)
			r.wantFailure(t, c.name+" load -i corrupt "+kind)
			if strings.TrimSpace(r.Stderr) == "" {
				t.Errorf("%s load of a corrupt %s archive: empty stderr", c.name, kind)
			}
			if after := imageState(t, a); after != before {
				t.Errorf("%s: the image store changed after a corrupt %s load:\nbefore:\n%safter:\n%s", c.name, kind, before, after)
			}
		}
	})

	// The raw API with a gzip body.
	removeImage(t, a, tag)
	r := a.call(t, "POST", "/images/load?quiet=1", compress(t, "gzip", saved), http.Header{"Content-Type": {"application/x-tar"}}).wantStatus(t, 200)
	if msgs := parseMessages(t, r.Body); len(msgs) == 0 || strings.TrimSpace(msgs[len(msgs)-1].Stream) != "Loaded image: "+tag {
		t.Errorf("POST /images/load (gzip): %s", r.Body)
	}

	t.Run("zstd", func(t *testing.T) {
		onlyBerth(t, "dockerd 20.10 answers Error processing tar file(exit status 1): archive/tar: invalid tar header; 23.0 and later load it")
		removeImage(t, a, tag)
		a.call(t, "POST", "/images/load?quiet=1", compress(t, "zstd", saved), nil).wantStatus(t, 200)
		if !imageExists(t, a, tag) {
			t.Errorf("zstd load: %s is not there", tag)
		}
	})

	t.Run("corrupt is a 400", func(t *testing.T) {
		onlyBerth(t, "dockerd answers 200 and puts the error in the JSON stream")
		before := imageState(t, a)
		a.call(t, "POST", "/images/load?quiet=1", corrupt(compress(t, "gzip", saved)), nil).wantError(t, 400, "invalid")
		if after := imageState(t, a); after != before {
			t.Errorf("the image store changed after a corrupt load")
		}
	})
}

// readTarEntries reads a whole tar: headers by name, and contents.
func readTarEntries(t *testing.T, b []byte) (map[string]*tar.Header, map[string]string) {
	t.Helper()
	hdrs, data := map[string]*tar.Header{}, map[string]string{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err != nil {
			if err != io.EOF {
				t.Errorf("not a tar: %v", err)
			}
			return hdrs, data
		}
		body, _ := io.ReadAll(tr)
		hdrs[h.Name], data[h.Name] = h, string(body)
	}
}

// TestCpOwnerNames: the tar of `docker cp ctr:path -` names owners as the
// container's own /etc/passwd and /etc/group do (dockerd archives from
// inside the container's root); an owner the container does not know has
// no name.
func TestCpOwnerNames(t *testing.T) {
	busybox(t)
	a := env.d.api()
	name, _ := runDetached(t, a, "cpnames", nil, "sh", "-c",
		"echo 'zed:x:4242:4343::/:/bin/sh' >> /etc/passwd; echo 'zgrp:x:4343:' >> /etc/group; mkdir /d; echo hi > /d/f; chown 4242:4343 /d/f; echo x > /d/nobody; chown 9999:9998 /d/nobody; touch /ready; exec sleep 300")
	if !poll(20*time.Second, func() bool {
		return a.call(t, "HEAD", "/containers/"+name+"/archive?path=/ready", nil, nil).Status == 200
	}) {
		t.Fatal("the container never got ready")
	}
	eachCLI(t, func(t *testing.T, c *CLI) {
		hdrs, data := readTarEntries(t, []byte(c.ok("cp", name+":/d", "-").Stdout))
		for entry, want := range map[string][4]any{
			"d/":       {0, 0, "root", "root"},
			"d/f":      {4242, 4343, "zed", "zgrp"},
			"d/nobody": {9999, 9998, "", ""},
		} {
			h := hdrs[entry]
			if h == nil {
				t.Errorf("%s cp ctr:/d -: no %s in %v", c.name, entry, hdrs)
				continue
			}
			if got := [4]any{h.Uid, h.Gid, h.Uname, h.Gname}; got != want {
				t.Errorf("%s cp ctr:/d -: %s is %v, want uid, gid, uname, gname %v", c.name, entry, got, want)
			}
		}
		if data["d/f"] != "hi\n" {
			t.Errorf("%s cp ctr:/d -: d/f holds %q", c.name, data["d/f"])
		}
	})
}

// TestCpCreatedContainer: cp from a container that was created and never
// started sees the container's own files, and empty /etc/hostname,
// /etc/hosts and /etc/resolv.conf (dockerd's init layer), not an error.
func TestCpCreatedContainer(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		name := ctrName(t, "cpcreated")
		c.ok("create", "--name", name, "busybox", "true")
		hdrs, data := readTarEntries(t, []byte(c.ok("cp", name+":/etc/hostname", "-").Stdout))
		if h := hdrs["hostname"]; h == nil || h.Size != 0 || data["hostname"] != "" || h.Uname != "root" {
			t.Errorf("%s cp created:/etc/hostname -: %v, want one empty file owned by root", c.name, hdrs)
		}
		for _, p := range []string{"/etc/hosts", "/etc/resolv.conf"} {
			r := a.call(t, "GET", "/containers/"+name+"/archive?path="+p, nil, nil).wantStatus(t, 200)
			if _, data := readTarEntries(t, r.Body); data[path.Base(p)] != "" {
				t.Errorf("GET %s of a created container: %q, want empty", p, data[path.Base(p)])
			}
		}
		dir := t.TempDir()
		c.ok("cp", name+":/etc/passwd", dir)
		if b, err := os.ReadFile(filepath.Join(dir, "passwd")); err != nil || !strings.HasPrefix(string(b), "root:") {
			t.Errorf("%s cp created:/etc/passwd: %q %v", c.name, b, err)
		}
		c.ok("rm", name)
	})
}

// TestLoadProgress (issue 11 item 7, the load stream): a load that is not
// quiet reports each layer it stores as dockerd does, "Loading layer" with
// the diff ID's first 12 digits and progressDetail {current, total} up to
// the layer file's size in the archive (the docker CLI draws these as bars
// on a terminal); a layer the store already has is not loaded again and
// not reported; quiet=1 reports no layer.
func TestLoadProgress(t *testing.T) {
	busybox(t)
	a := env.d.api()
	c := cli(t, "docker")
	name := "e2e-loadprog-" + uniq()
	tag := "e2e/loadprog:" + uniq()
	c.ok("run", "--name", name, "busybox:latest", "sh", "-c", "echo "+name+" > /loadprog")
	defer c.run("rm", "-f", name)
	c.ok("commit", name, tag)
	t.Cleanup(func() { removeImage(t, a, tag) })
	img := inspectImage(t, a, tag)
	if len(img.RootFS.Layers) < 2 {
		t.Fatalf("committed image has %d layers", len(img.RootFS.Layers))
	}
	saved := a.call(t, "GET", "/images/get?names="+tag, nil, nil).wantStatus(t, 200).Body
	// The archive's layer files and their sizes, in the image's order.
	var manifest []struct{ Layers []string }
	sizes := map[string]int64{}
	tr := tar.NewReader(bytes.NewReader(saved))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		sizes[h.Name] = h.Size
		if h.Name == "manifest.json" {
			b, _ := io.ReadAll(tr)
			if err := json.Unmarshal(b, &manifest); err != nil {
				t.Fatalf("manifest.json: %v", err)
			}
		}
	}
	if len(manifest) != 1 || len(manifest[0].Layers) != len(img.RootFS.Layers) {
		t.Fatalf("archive manifest %+v", manifest)
	}
	top := len(img.RootFS.Layers) - 1
	newID := shortID(img.RootFS.Layers[top])
	newSize := sizes[manifest[0].Layers[top]]

	load := func(quiet string) []jsonMessage {
		t.Helper()
		removeImage(t, a, tag)
		r := a.call(t, "POST", "/images/load?quiet="+quiet, saved, http.Header{"Content-Type": {"application/x-tar"}}).wantStatus(t, 200)
		msgs := parseMessages(t, r.Body)
		if e := streamError(msgs); e != "" {
			t.Fatalf("load quiet=%s: %s", quiet, e)
		}
		return msgs
	}
	var last *jsonMessage
	for _, m := range load("0") {
		if m.Status != "Loading layer" {
			continue
		}
		if m.ID != newID {
			t.Errorf("Loading layer %s: only the layer the store lacks (%s) is loaded", m.ID, newID)
			continue
		}
		if m.ProgressDetail == nil || m.ProgressDetail.Total != newSize || m.Progress == "" {
			t.Errorf("Loading layer message %+v, want progressDetail with total %d and a bar", m, newSize)
		}
		m := m
		last = &m
	}
	if last == nil || last.ProgressDetail == nil || last.ProgressDetail.Current != newSize {
		t.Errorf("no final Loading layer %s message at %d bytes (last %+v)", newID, newSize, last)
	}
	for _, m := range load("1") {
		if m.Status == "Loading layer" {
			t.Errorf("quiet load reported %+v", m)
		}
	}
	if !imageExists(t, a, tag) {
		t.Errorf("%s is not there after the load", tag)
	}
}
