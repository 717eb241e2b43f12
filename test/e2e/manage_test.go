package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTag: `tag` adds a name (201 on the API, no output on the CLI) and
// moves an existing one.
func TestTag(t *testing.T) {
	a := requireEnv(t).api()
	ng := ensureImage(t, a, "nginx:alpine")
	bb := ensureImage(t, a, "busybox:latest")

	r := a.call(t, "POST", "/images/nginx:alpine/tag?"+url.Values{"repo": {"e2e/apitag"}, "tag": {"v1"}}.Encode(), nil, nil)
	r.wantStatus(t, 201)
	if len(r.Body) != 0 {
		t.Errorf("%s: want an empty body", r)
	}
	wantCommonHeaders(t, r, true)
	if got := inspectImage(t, a, "e2e/apitag:v1"); got.ID != ng.ID {
		t.Errorf("e2e/apitag:v1 is %s, want %s", got.ID, ng.ID)
	}
	removeImage(t, a, "e2e/apitag:v1")

	eachCLI(t, func(t *testing.T, c *CLI) {
		for _, tc := range []struct{ src, dst string }{
			{"nginx:alpine", "e2e/tagged:v1"},
			{shortID(ng.ID), "e2e/tagged:v2"},
			{ng.ID, "e2e/tagged"}, // :latest
			{"nginx:alpine", plainRegistry + "/e2e/tagged:v3"},
		} {
			r := c.ok("tag", tc.src, tc.dst)
			if r.Stdout != "" {
				t.Errorf("tag %s %s: stdout %q, want nothing", tc.src, tc.dst, r.Stdout)
			}
			want := tc.dst
			if !strings.Contains(want[strings.LastIndex(want, "/")+1:], ":") {
				want += ":latest"
			}
			if got := inspectImage(t, a, tc.dst); got.ID != ng.ID || !contains(got.RepoTags, want) {
				t.Errorf("after tag %s %s: %s has Id %s RepoTags %q, want %s and %s", tc.src, tc.dst, tc.dst, got.ID, got.RepoTags, ng.ID, want)
			}
		}
		// Tagging onto an existing name moves it.
		c.ok("tag", "busybox:latest", "e2e/tagged:v1")
		if got := inspectImage(t, a, "e2e/tagged:v1"); got.ID != bb.ID {
			t.Errorf("e2e/tagged:v1 is %s after re-tagging, want %s", got.ID, bb.ID)
		}
		if got := inspectImage(t, a, "nginx:alpine"); contains(got.RepoTags, "e2e/tagged:v1") {
			t.Errorf("nginx:alpine still carries e2e/tagged:v1: %q", got.RepoTags)
		}
		// rmi of one of several tags only untags.
		r := c.ok("rmi", "e2e/tagged:v2")
		if strings.TrimSpace(r.Stdout) != "Untagged: e2e/tagged:v2" {
			t.Errorf("rmi e2e/tagged:v2: %q, want only Untagged: e2e/tagged:v2", r.Stdout)
		}
		if !imageExists(t, a, ng.ID) {
			t.Fatalf("rmi of one tag deleted the image")
		}
		c.ok("rmi", "e2e/tagged:v1", "e2e/tagged", plainRegistry+"/e2e/tagged:v3")
		for _, ref := range []string{"e2e/tagged:v1", "e2e/tagged:latest", plainRegistry + "/e2e/tagged:v3"} {
			if imageExists(t, a, ref) {
				t.Errorf("%s still exists after rmi", ref)
			}
		}
	})
}

// TestRmi: removing by ID an image with names in several repositories is
// a 409 conflict unless forced; the last name deletes the image.
func TestRmi(t *testing.T) {
	a := requireEnv(t).api()
	img := hubImage(t, "busybox:latest")
	eachCLI(t, func(t *testing.T, c *CLI) {
		removeImageEverywhere(t, a, "busybox:latest") // no names left from elsewhere
		bb := ensureImage(t, a, "busybox:latest")
		sid := shortID(bb.ID)
		c.ok("tag", "busybox:latest", "e2e/one:1")
		c.ok("tag", "busybox:latest", "e2e/two:2")

		// dockerd 20.10: 409 {"message":"conflict: unable to delete e73ac3d7001c (must be forced) - image is referenced in multiple repositories"}
		conflict := "conflict: unable to delete " + sid + " (must be forced) - image is referenced in multiple repositories"
		a.call(t, "DELETE", "/images/"+sid, nil, nil).wantError(t, 409, conflict)
		a.call(t, "DELETE", "/images/"+bb.ID, nil, nil).wantError(t, 409, conflict)
		c.fail([]string{"rmi", sid}, "Error response from daemon: "+conflict)
		if !imageExists(t, a, bb.ID) || !imageExists(t, a, "e2e/one:1") {
			t.Fatalf("a refused rmi removed something")
		}

		r := c.ok("rmi", "e2e/two:2")
		if strings.TrimSpace(r.Stdout) != "Untagged: e2e/two:2" {
			t.Errorf("rmi e2e/two:2: %q, want only Untagged: e2e/two:2", r.Stdout)
		}
		c.fail([]string{"rmi", sid}, conflict) // busybox and e2e/one remain

		r = c.ok("rmi", "-f", sid)
		for _, want := range []string{"Untagged: e2e/one:1", "Untagged: busybox:latest", "Untagged: busybox@" + img.TagDigest, "Deleted: " + bb.ID} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("rmi -f: output does not contain %q", want)
			}
		}
		for _, ref := range []string{bb.ID, "busybox:latest", "e2e/one:1"} {
			if imageExists(t, a, ref) {
				t.Errorf("%s still exists after rmi -f", ref)
			}
		}

		// The only name: untag and delete in one go (API: 200 with a JSON
		// array of {"Untagged"} and {"Deleted"}).
		bb = ensureImage(t, a, "busybox:latest")
		r2 := a.call(t, "DELETE", "/images/busybox:latest", nil, nil).wantStatus(t, 200)
		var items []struct{ Untagged, Deleted string }
		r2.decode(t, &items)
		var untagged, deleted []string
		for _, it := range items {
			if it.Untagged != "" {
				untagged = append(untagged, it.Untagged)
			}
			if it.Deleted != "" {
				deleted = append(deleted, it.Deleted)
			}
		}
		if !contains(untagged, "busybox:latest") || !contains(deleted, bb.ID) {
			t.Errorf("%s: want Untagged busybox:latest and Deleted %s", r2, bb.ID)
		}
	})
}

// TestSaveLoad: save (file and stdout), rmi, load (file and stdin) gives
// back the same image; an archive of an ID loads untagged.
func TestSaveLoad(t *testing.T) {
	a := requireEnv(t).api()
	img := hubImage(t, "alpine:3.18")
	eachCLI(t, func(t *testing.T, c *CLI) {
		dir := t.TempDir()
		removeImageEverywhere(t, a, "alpine:3.18") // start from a clean pull
		al := ensureImage(t, a, "alpine:3.18")
		if al.ID != img.ConfigDigest {
			t.Fatalf("alpine:3.18 is %s, want %s", al.ID, img.ConfigDigest)
		}
		file := filepath.Join(dir, "alpine.tar")
		if r := c.ok("save", "-o", file, "alpine:3.18"); r.Stdout != "" {
			t.Errorf("save -o: stdout %q, want nothing", r.Stdout)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		wantDockerArchive(t, data, al.ID, []string{"alpine:3.18"}, len(img.Layers))
		stdoutArchive := c.ok("save", "alpine:3.18").Stdout
		wantDockerArchive(t, []byte(stdoutArchive), al.ID, []string{"alpine:3.18"}, len(img.Layers))

		r := c.ok("rmi", "alpine:3.18")
		if !strings.Contains(r.Stdout, "Untagged: alpine:3.18") || !strings.Contains(r.Stdout, "Deleted: "+al.ID) {
			t.Errorf("rmi alpine:3.18: %q, want Untagged: alpine:3.18 and Deleted: %s", r.Stdout, al.ID)
		}
		if imageExists(t, a, al.ID) {
			t.Fatalf("alpine:3.18 still exists after rmi")
		}
		r = c.ok("load", "-i", file)
		if strings.TrimSpace(r.Stdout) != "Loaded image: alpine:3.18" {
			t.Errorf("load -i: %q, want Loaded image: alpine:3.18", r.Stdout)
		}
		got := inspectImage(t, a, "alpine:3.18")
		if got.ID != al.ID || strings.Join(got.RootFS.Layers, ",") != strings.Join(al.RootFS.Layers, ",") {
			t.Errorf("loaded image %s %q, want %s %q", got.ID, got.RootFS.Layers, al.ID, al.RootFS.Layers)
		}

		removeImage(t, a, "alpine:3.18")
		r = c.runStdin([]byte(stdoutArchive), "load")
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != "Loaded image: alpine:3.18" {
			t.Errorf("load < archive: exit %d, %q, want Loaded image: alpine:3.18", r.Code, r.Stdout)
		}

		// An archive of an ID has no names and loads untagged.
		idFile := filepath.Join(dir, "id.tar")
		c.ok("save", "-o", idFile, al.ID)
		data, _ = os.ReadFile(idFile)
		wantDockerArchive(t, data, al.ID, nil, len(img.Layers))
		removeImage(t, a, "alpine:3.18")
		r = c.ok("load", "-i", idFile)
		if strings.TrimSpace(r.Stdout) != "Loaded image ID: "+al.ID {
			t.Errorf("load of an ID archive: %q, want Loaded image ID: %s", r.Stdout, al.ID)
		}
		if got := inspectImage(t, a, al.ID); len(got.RepoTags) != 0 {
			t.Errorf("image loaded from an ID archive has tags %q", got.RepoTags)
		}
		c.ok("tag", al.ID, "alpine:3.18")

		// Garbage is refused and changes nothing.
		before := imageState(t, a)
		bad := writeFile(t, dir, "bad.tar", []byte("this is not a tar archive\n"+strings.Repeat("x", 1024)))
		r = c.run("load", "-i", bad)
		r.wantFailure(t, c.name)
		if strings.TrimSpace(r.Stderr) == "" {
			t.Errorf("load of garbage: empty stderr")
		}
		if after := imageState(t, a); after != before {
			t.Errorf("the image store changed after a failed load:\nbefore:\n%safter:\n%s", before, after)
		}
		c.fail([]string{"save", "-o", filepath.Join(dir, "x.tar"), "nosuch-e2e:1"}, "Error response from daemon: ")
	})

	t.Run("api", func(t *testing.T) {
		removeImageEverywhere(t, a, "alpine:3.18")
		al := ensureImage(t, a, "alpine:3.18")
		r := a.call(t, "GET", "/images/get?names=alpine%3A3.18", nil, nil).wantStatus(t, 200)
		if ct := r.Header.Get("Content-Type"); ct != "application/x-tar" {
			t.Errorf("images/get: Content-Type %q, want application/x-tar", ct)
		}
		wantDockerArchive(t, r.Body, al.ID, []string{"alpine:3.18"}, len(img.Layers))
		r2 := a.call(t, "GET", "/images/alpine:3.18/get", nil, nil).wantStatus(t, 200)
		wantDockerArchive(t, r2.Body, al.ID, []string{"alpine:3.18"}, len(img.Layers))

		removeImage(t, a, "alpine:3.18")
		lr := a.call(t, "POST", "/images/load?quiet=1", r.Body, http.Header{"Content-Type": {"application/x-tar"}}).wantStatus(t, 200)
		if ct := lr.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("images/load: Content-Type %q, want application/json", ct)
		}
		msgs := parseMessages(t, lr.Body)
		if len(msgs) != 1 || msgs[0].Stream != "Loaded image: alpine:3.18\n" {
			t.Errorf(`images/load: %s, want {"stream":"Loaded image: alpine:3.18\n"}`, lr.Body)
		}
		if got := inspectImage(t, a, "alpine:3.18"); got.ID != al.ID {
			t.Errorf("loaded %s, want %s", got.ID, al.ID)
		}
	})
}

// wantDockerArchive checks a docker-archive (docker save) tarball:
// manifest.json names the config (by the image ID) and the layers.
func wantDockerArchive(t *testing.T, data []byte, id string, repoTags []string, layers int) {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("archive: %v", err)
		}
		if h.Typeflag == tar.TypeReg && (h.Name == "manifest.json" || h.Name == "repositories" || strings.HasSuffix(h.Name, ".json") || strings.Contains(h.Name, "blobs/")) && h.Size < 1<<20 {
			b, _ := io.ReadAll(tr)
			files[h.Name] = b
		} else {
			files[h.Name] = nil
		}
	}
	var man []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &man); err != nil || len(man) != 1 {
		t.Fatalf("archive: manifest.json %q: want one entry (%v)", files["manifest.json"], err)
	}
	m := man[0]
	hex := strings.TrimPrefix(id, "sha256:")
	if !strings.Contains(m.Config, hex) {
		t.Errorf("archive: Config %q does not name the image ID %s", m.Config, id)
	}
	if _, ok := files[m.Config]; !ok {
		t.Errorf("archive: the config file %s is missing", m.Config)
	}
	if fmt.Sprint(m.RepoTags) != fmt.Sprint(repoTags) {
		t.Errorf("archive: RepoTags %q, want %q", m.RepoTags, repoTags)
	}
	if len(m.Layers) != layers {
		t.Errorf("archive: %d layers, want %d", len(m.Layers), layers)
	}
	for _, l := range m.Layers {
		if _, ok := files[l]; !ok {
			t.Errorf("archive: layer %s is missing", l)
		}
	}
}

// TestBadReferences: invalid names are refused with 400 and Docker's
// wording, and nothing changes.
func TestBadReferences(t *testing.T) {
	a := requireEnv(t).api()
	ensureImage(t, a, "busybox:latest")
	before := imageState(t, a)
	// What dockerd 20.10 answers, verbatim:
	//   fromImage=UPPER/x&tag=latest  400 {"message":"invalid reference format: repository name must be lowercase"}
	//   fromImage=a:b:c               400 {"message":"invalid reference format"}
	//   fromImage=x@sha256:zz         400 {"message":"invalid reference format"}
	//   fromImage=x&tag=sha256:zz     400 {"message":"invalid tag format"}
	//   GET /images/UPPER/x/json      400 {"message":"no such image: UPPER/x: invalid reference format: repository name must be lowercase"}
	//   GET /images/a:b:c/json        400 {"message":"no such image: a:b:c: invalid reference format"}
	for _, tc := range []struct{ query, msg string }{
		{"fromImage=UPPER%2Fx&tag=latest", "invalid reference format: repository name must be lowercase"},
		{"fromImage=a%3Ab%3Ac", "invalid reference format"},
		{"fromImage=x%40sha256%3Azz", "invalid reference format"},
		{"fromImage=x&tag=sha256%3Azz", "invalid tag format"},
	} {
		r := a.call(t, "POST", "/images/create?"+tc.query, nil, http.Header{"X-Registry-Auth": {"e30="}})
		if msg := r.wantError(t, 400); msg != tc.msg {
			t.Errorf("%s: message %q, want %q", r, msg, tc.msg)
		}
	}
	a.call(t, "GET", "/images/UPPER/x/json", nil, nil).wantError(t, 400, "invalid reference format: repository name must be lowercase")
	a.call(t, "GET", "/images/a:b:c/json", nil, nil).wantError(t, 400, "invalid reference format")

	eachCLI(t, func(t *testing.T, c *CLI) {
		// The docker CLI checks a:b:c and x@sha256:zz itself ("invalid
		// reference format", no daemon call) and sends UPPER/x, getting
		// "Error response from daemon: invalid reference format: repository
		// name must be lowercase".
		c.fail([]string{"pull", "UPPER/x"}, "invalid reference format: repository name must be lowercase")
		c.fail([]string{"pull", "a:b:c"}, "invalid reference format")
		c.fail([]string{"pull", "x@sha256:zz"}, "invalid reference format")
		c.fail([]string{"tag", "busybox:latest", "a:b:c"}, "invalid reference format")
		c.fail([]string{"tag", "busybox:latest", "UPPER/x"}, "invalid reference format: repository name must be lowercase")
		c.fail([]string{"image", "inspect", "UPPER/x"}, "invalid reference format: repository name must be lowercase")
	})
	if after := imageState(t, a); after != before {
		t.Errorf("the image store changed after invalid requests:\nbefore:\n%safter:\n%s", before, after)
	}

	t.Run("tag-status", func(t *testing.T) {
		// dockerd 20.10: 500 {"message":"invalid reference format: repository name must be lowercase"}
		r := a.call(t, "POST", "/images/busybox:latest/tag?repo=UPPER%2Fx&tag=1", nil, nil)
		if r.Status < 400 || r.message() != "invalid reference format: repository name must be lowercase" {
			t.Errorf("%s: want Docker's message", r)
		}
		onlyBerth(t, "dockerd 20.10 answers 500 to a tag request with an invalid repository; a bad name is the client's error (400)")
		r.wantStatus(t, 400)
	})
}
