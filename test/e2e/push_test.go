package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// pushedLayers returns, for each layer line of a push's output, the layer
// ID and its status ("Pushed", "Layer already exists", "Mounted from x").
func pushedLayers(out string) map[string]string {
	m := map[string]string{}
	for _, l := range lines(out) {
		id, status, ok := strings.Cut(l, ": ")
		if !ok || len(id) != 12 || status == "Preparing" || status == "Waiting" {
			continue
		}
		m[id] = status
	}
	return m
}

// layerIDs is what push prints per layer: 12 hex digits of each diff ID.
func layerIDs(img imageInspect) []string {
	var ids []string
	for _, l := range img.RootFS.Layers {
		ids = append(ids, shortID(l))
	}
	return ids
}

// wantPush checks a push's output: the repository line, every layer with
// the given status, and the digest line; it returns the digest.
func wantPush(t *testing.T, r result, repo, tag string, img imageInspect, status string) string {
	t.Helper()
	ls := lines(r.Stdout)
	if len(ls) == 0 || ls[0] != "The push refers to repository ["+repo+"]" {
		t.Errorf("first line %q, want The push refers to repository [%s]\n%s", strings.Join(ls[:min(1, len(ls))], ""), repo, r.Stdout)
	}
	got := pushedLayers(r.Stdout)
	for _, id := range layerIDs(img) {
		if status == "" && got[id] != "" {
			continue // any outcome
		}
		if got[id] != status {
			t.Errorf("layer %s: %q, want %q\n%s", id, got[id], status, r.Stdout)
		}
	}
	last := lastLine(r.Stdout)
	prefix := tag + ": digest: sha256:"
	if !strings.HasPrefix(last, prefix) || !strings.Contains(last, " size: ") {
		t.Fatalf("last line %q, want %s...size: N", last, prefix)
	}
	d, _, _ := strings.Cut(strings.TrimPrefix(last, tag+": digest: "), " ")
	return d
}

// TestPushPulledImage: push an image pulled from the mirror to a registry
// of the test's own, again (nothing uploaded), then to another repository
// of the same registry (mounted); the registry's image has the local ID.
func TestPushPulledImage(t *testing.T) {
	a := requireEnv(t).api()
	img := ensureImage(t, a, "busybox:latest")
	src := hubImage(t, "busybox:latest")
	eachCLI(t, func(t *testing.T, c *CLI) {
		reg := startRegistry(t, registryOpts{})
		repo := reg.Host + "/" + c.name + "/busybox"
		c.ok("tag", "busybox:latest", repo+":1")
		defer removeImage(t, a, repo+":1")
		r := c.ok("push", repo+":1")
		d := wantPush(t, r, repo, "1", img, "Pushed")
		m := registryImage(t, reg.Host, c.name+"/busybox", "1", "")
		if m.ManifestDigest != d {
			t.Errorf("registry has %s, push printed %s", m.ManifestDigest, d)
		}
		if m.ConfigDigest != img.ID {
			t.Errorf("pushed image ID %s, local %s", m.ConfigDigest, img.ID)
		}
		if !slices.Contains(inspectImage(t, a, repo+":1").RepoDigests, repo+"@"+d) {
			t.Errorf("RepoDigests lack %s@%s", repo, d)
		}

		r = c.ok("push", repo+":1")
		if d2 := wantPush(t, r, repo, "1", img, "Layer already exists"); d2 != d {
			t.Errorf("second push digest %s, first %s", d2, d)
		}

		other := reg.Host + "/" + c.name + "/other"
		c.ok("tag", "busybox:latest", other+":2")
		defer removeImage(t, a, other+":2")
		r = c.ok("push", other+":2")
		wantPush(t, r, other, "2", img, "Mounted from "+c.name+"/busybox")

		onlyBerth(t, "dockerd 20.10 writes a new Docker schema 2 manifest on push; berth pushes the pulled manifest unchanged")
		if d != src.ManifestDigest {
			t.Errorf("pushed manifest %s, the source's is %s", d, src.ManifestDigest)
		}
	})
}

// TestPushAllTags: push -a pushes every local tag of the repository, in
// order; a tag with -a is refused by the CLI.
func TestPushAllTags(t *testing.T) {
	a := requireEnv(t).api()
	reg := startRegistry(t, registryOpts{})
	busybox := ensureImage(t, a, "busybox:latest")
	alpine := ensureImage(t, a, "alpine:3.18")
	eachCLI(t, func(t *testing.T, c *CLI) {
		repo := reg.Host + "/" + c.name + "/all"
		c.ok("tag", "busybox:latest", repo+":a")
		c.ok("tag", "alpine:3.18", repo+":b")
		defer removeImage(t, a, repo+":a")
		defer removeImage(t, a, repo+":b")
		r := c.ok("push", "--all-tags", repo)
		out := r.Stdout
		ia := strings.Index(out, "a: digest: ")
		ib := strings.Index(out, "b: digest: ")
		if ia < 0 || ib < 0 || ia > ib {
			t.Fatalf("want tag a then tag b pushed:\n%s", out)
		}
		for _, id := range layerIDs(alpine) {
			if !strings.Contains(out, id+": ") {
				t.Errorf("layer %s of alpine not in the output", id)
			}
		}
		_ = busybox
		tags := registryTags(t, reg.Host, c.name+"/all", "")
		slices.Sort(tags)
		if !slices.Equal(tags, []string{"a", "b"}) {
			t.Errorf("registry tags %v, want [a b]", tags)
		}
		c.fail([]string{"push", "-a", repo + ":a"}, "tag can't be used with --all-tags/-a")
	})
}

// TestPushErrors: what does not exist locally, a registry that is down,
// a platform the image does not have.
func TestPushErrors(t *testing.T) {
	a := requireEnv(t).api()
	reg := startRegistry(t, registryOpts{})
	ensureImage(t, a, "busybox:latest")
	eachCLI(t, func(t *testing.T, c *CLI) {
		repo := reg.Host + "/" + c.name + "/nosuch"
		r := c.fail([]string{"push", repo + ":1"}, "An image does not exist locally with the tag: "+repo)
		if lastLine(r.Stdout) != "The push refers to repository ["+repo+"]" {
			t.Errorf("stdout %q", r.Stdout)
		}
		c.ok("tag", "busybox:latest", repo+":1")
		defer removeImage(t, a, repo+":1")
		c.fail([]string{"push", repo + ":2"}, "tag does not exist: "+repo+":2")

		down := fmt.Sprintf("127.0.0.1:%d/%s/down", freePort(t), c.name)
		c.ok("tag", "busybox:latest", down+":1")
		defer removeImage(t, a, down+":1")
		r = c.fail([]string{"push", down + ":1"}, "connect: connection refused")
		if r.Elapsed > 30*time.Second {
			t.Errorf("push to a registry that is down took %s", r.Elapsed)
		}
		if strings.Contains(r.Stdout, "Pushed") {
			t.Errorf("push to a registry that is down said Pushed:\n%s", r.Stdout)
		}
	})
	t.Run("platform", func(t *testing.T) {
		onlyBerth(t, `dockerd 20.10 speaks API 1.41: the docker CLI refuses --platform itself ("--platform" requires API version 1.46)`)
		repo := reg.Host + "/plat/busybox"
		c := cli(t, "docker")
		c.ok("tag", "busybox:latest", repo+":1")
		defer removeImage(t, a, repo+":1")
		c.fail([]string{"push", "--platform", "linux/arm64", repo + ":1"},
			"image with reference "+repo+":1 was found but does not match the specified platform: wanted linux/arm64, actual: linux/amd64")
		r := c.ok("push", "--platform", "linux/amd64", repo+":1")
		if !strings.Contains(r.Stdout, "1: digest: sha256:") {
			t.Errorf("push --platform linux/amd64:\n%s", r.Stdout)
		}
	})
}

// TestPushBasicAuth: a registry with htpasswd: without credentials the
// push fails after Preparing; login then push works; the stream's aux
// message carries Tag, Digest and Size.
func TestPushBasicAuth(t *testing.T) {
	a := requireEnv(t).api()
	reg := startRegistry(t, registryOpts{htpasswd: true})
	img := ensureImage(t, a, "busybox:latest")
	eachCLI(t, func(t *testing.T, c *CLI) {
		reg := startRegistry(t, registryOpts{htpasswd: true})
		repo := reg.Host + "/" + c.name + "/busybox"
		c.ok("tag", "busybox:latest", repo+":1")
		defer removeImage(t, a, repo+":1")
		c.fail([]string{"push", repo + ":1"}, "no basic auth credentials")

		r := c.runStdin([]byte("wrongpass\n"), "login", "-u", authUser, "--password-stdin", reg.Host)
		r.wantFailure(t, c.name, "login attempt to http://"+reg.Host+"/v2/ failed with status: 401 Unauthorized")
		wantNoStoredCredentials(t, c, reg.Host)
		r = c.runStdin([]byte(authPassword+"\n"), "login", "-u", authUser, "--password-stdin", reg.Host)
		if r.Code != 0 || !strings.Contains(r.Stdout, "Login Succeeded") {
			t.Fatalf("login: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		r = c.ok("push", repo+":1")
		wantPush(t, r, repo, "1", img, "Pushed")
		c.ok("logout", reg.Host)
	})

	// The API: the stream, message by message.
	repo := reg.Host + "/api/busybox"
	a.call(t, "POST", "/images/busybox:latest/tag?repo="+repo+"&tag=7", nil, nil).wantStatus(t, 201)
	defer removeImage(t, a, repo+":7")

	// A wrong password: Docker's unauthorized error in the stream, and
	// nothing reaches the registry.
	bad := http.Header{"X-Registry-Auth": {registryAuth(authUser, "wrongpass", reg.Host)}}
	resp := a.call(t, "POST", "/images/"+repo+"/push?tag=7", nil, bad).wantStatus(t, 200)
	if e := streamError(parseMessages(t, resp.Body)); !strings.Contains(e, "unauthorized") {
		t.Errorf("push with a wrong password: stream error %q, want Docker's unauthorized", e)
	}
	if tags := registryTags(t, reg.Host, "api/busybox", authUser+":"+authPassword); len(tags) != 0 {
		t.Errorf("the registry has tags %v after a push with a wrong password", tags)
	}

	hdr := http.Header{"X-Registry-Auth": {registryAuth(authUser, authPassword, reg.Host)}}
	resp = a.call(t, "POST", "/images/"+repo+"/push?tag=7", nil, hdr).wantStatus(t, 200)
	msgs := parseMessages(t, resp.Body)
	if e := streamError(msgs); e != "" {
		t.Fatalf("push: %s", e)
	}
	if msgs[0].Status != "The push refers to repository ["+repo+"]" {
		t.Errorf("first message %+v", msgs[0])
	}
	for _, l := range strings.Split(string(resp.Body), "\n") {
		if strings.Contains(l, `"id":`) && !strings.Contains(l, `"progressDetail":{`) {
			t.Errorf("per-layer message without progressDetail: %s", l)
		}
	}
	last := msgs[len(msgs)-1]
	var aux struct {
		Tag    string
		Digest string
		Size   int
	}
	if last.Aux == nil || json.Unmarshal(last.Aux, &aux) != nil || aux.Tag != "7" || !strings.HasPrefix(aux.Digest, "sha256:") || aux.Size == 0 {
		t.Fatalf("last message %+v, want aux {Tag, Digest, Size}", last)
	}
	if want := fmt.Sprintf("7: digest: %s size: %d", aux.Digest, aux.Size); msgs[len(msgs)-2].Status != want {
		t.Errorf("digest message %q, want %q", msgs[len(msgs)-2].Status, want)
	}
	if m := registryImage(t, reg.Host, "api/busybox", "7", authUser+":"+authPassword); m.ManifestDigest != aux.Digest || m.ConfigDigest != img.ID {
		t.Errorf("registry: %s %s, want %s %s", m.ManifestDigest, m.ConfigDigest, aux.Digest, img.ID)
	}
}

// TestPushTerminal: on a terminal each layer's line is rewritten in place
// (Preparing, Pushing..., then Pushed), and both CLIs leave the same
// screen.
func TestPushTerminal(t *testing.T) {
	a := requireEnv(t).api()
	img := ensureImage(t, a, "alpine:3.18")
	screens := map[string]string{}
	eachCLI(t, func(t *testing.T, c *CLI) {
		reg := startRegistry(t, registryOpts{})
		repo := reg.Host + "/term/alpine"
		c.ok("tag", "alpine:3.18", repo+":1")
		defer removeImage(t, a, repo+":1")
		tm := newTerm(t, c, "push", repo+":1")
		if code := tm.exitCode(60 * time.Second); code != 0 {
			t.Fatalf("push in a terminal: exit %d\n%s", code, tm.screen())
		}
		var got []string
		for _, l := range lines(tm.screen()) {
			got = append(got, strings.ReplaceAll(l, reg.Host, "REGISTRY"))
		}
		ids := layerIDs(img)
		want := []string{"The push refers to repository [REGISTRY/term/alpine]"}
		for i := len(ids) - 1; i >= 0; i-- {
			want = append(want, ids[i]+": Pushed")
		}
		if len(got) != len(want)+1 || !slices.Equal(got[:len(want)], want) || !strings.HasPrefix(got[len(want)], "1: digest: sha256:") {
			t.Fatalf("screen:\n%s\nwant:\n%s\n1: digest: ...", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		screens[c.name] = strings.Join(got, "\n")
	})
	if screens["berth"] != "" && screens["docker"] != "" && screens["berth"] != screens["docker"] {
		t.Errorf("the CLIs' screens differ:\nberth:\n%s\ndocker:\n%s", screens["berth"], screens["docker"])
	}
}

// TestPushLoadedImage: an image loaded from a docker save archive has no
// compressed layers; push compresses them on the way up, and the registry
// gets an image that pulls back with the same ID. The second push finds
// every layer there.
func TestPushLoadedImage(t *testing.T) {
	a := requireEnv(t).api()
	img := ensureImage(t, a, "alpine:3.18")
	eachCLI(t, func(t *testing.T, c *CLI) {
		reg := startRegistry(t, registryOpts{})
		archive := filepath.Join(t.TempDir(), "alpine.tar")
		c.ok("save", "-o", archive, "alpine:3.18")
		removeImageEverywhere(t, a, "alpine:3.18")
		defer func() {
			removeImageEverywhere(t, a, "alpine:3.18")
			ensureImage(t, a, "alpine:3.18")
		}()
		c.ok("load", "-i", archive)
		repo := reg.Host + "/" + c.name + "/loaded"
		c.ok("tag", "alpine:3.18", repo+":1")
		defer removeImage(t, a, repo+":1")
		d := wantPush(t, c.ok("push", repo+":1"), repo, "1", img, "Pushed")
		m := registryImage(t, reg.Host, c.name+"/loaded", "1", "")
		if m.ManifestDigest != d || m.ConfigDigest != img.ID {
			t.Errorf("registry: %s %s, want %s %s", m.ManifestDigest, m.ConfigDigest, d, img.ID)
		}
		for i, mt := range m.LayerTypes {
			if !strings.HasSuffix(mt, "gzip") {
				t.Errorf("layer %d pushed as %s, want gzip", i, mt)
			}
		}
		if d2 := wantPush(t, c.ok("push", repo+":1"), repo, "1", img, "Layer already exists"); d2 != d {
			t.Errorf("second push %s, first %s", d2, d)
		}
	})
}
