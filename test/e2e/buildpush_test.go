package e2e

import (
	"slices"
	"strings"
	"testing"
)

// TestBuildxPush (issue 10 item 2): with buildx installed, `docker buildx
// build --push`, `-o type=registry` and `--load --push` put the built
// image into a registry that wants credentials, with the ones the client
// stored at login; the image is also in the daemon's store, its
// RepoDigests name what was pushed, and a pull of that digest gives the
// same image, which runs. Without credentials the push fails and the
// registry holds nothing.
//
// berthd's BuildKit pushes itself (the image exporter, credentials from
// the client's session); dockerd 20.10's builder has buildx push through
// POST /images/{name}/push. What the user sees is the same.
func TestBuildxPush(t *testing.T) {
	reg := startRegistry(t, registryOpts{htpasswd: true})
	basic := authUser + ":" + authPassword
	c := cli(t, "docker")
	withBuildx(t, c)
	ctx := writeContext(t, map[string]string{"Dockerfile": mytestDockerfile})
	const path = "e2e/bxpush"
	repo := reg.Host + "/" + path
	t.Cleanup(func() {
		c.run("rmi", "-f", repo+":nocreds", repo+":1", repo+":reg", repo+":both")
	})
	build := func(args ...string) result {
		t.Helper()
		return c.run(append([]string{"buildx", "build"}, buildArgs(append(append([]string{"--progress=plain"}, args...), ctx)...)...)...)
	}
	// imageID is the local image's ID, "" if there is none.
	imageID := func(ref string) string {
		t.Helper()
		r := c.run("image", "inspect", "--format", "{{.Id}}", ref)
		if r.Code != 0 {
			return ""
		}
		return strings.TrimSpace(r.Stdout)
	}
	// wantPushed checks that the registry's tag holds the local image
	// and that the local image names what was pushed as a repo digest.
	wantPushed := func(t *testing.T, tag, id string) regImage {
		t.Helper()
		if tags := registryTags(t, reg.Host, path, basic); !slices.Contains(tags, tag) {
			t.Fatalf("the registry's %s has tags %v, want %s", path, tags, tag)
		}
		m := registryImage(t, reg.Host, path, tag, basic)
		if m.ConfigDigest != id {
			t.Errorf("the registry's %s:%s has config %s, want the built image %s", path, tag, m.ConfigDigest, id)
		}
		rd := c.ok("image", "inspect", "--format", "{{json .RepoDigests}}", repo+":"+tag).Stdout
		if !strings.Contains(rd, repo+"@"+m.TagDigest) {
			t.Errorf("RepoDigests of %s:%s are %s, want %s@%s", repo, tag, strings.TrimSpace(rd), repo, m.TagDigest)
		}
		return m
	}

	// No credentials: the push fails, the registry stays empty.
	r := build("--push", "-t", repo+":nocreds")
	if r.Code == 0 {
		t.Fatalf("buildx build --push to a registry that wants credentials, without any, succeeded:\n%s", r.Stderr)
	}
	if !strings.Contains(r.Stderr, "401 Unauthorized") && !strings.Contains(r.Stderr, "no basic auth credentials") {
		t.Errorf("buildx build --push without credentials: want the registry's refusal, got:\n%s", r.Stderr)
	}
	if tags := registryTags(t, reg.Host, path, basic); len(tags) != 0 {
		t.Errorf("the registry has tags %v after a push without credentials", tags)
	}
	// The build itself was stored before the push failed (both daemons).
	c.run("rmi", repo+":nocreds")

	r = c.runStdin([]byte(authPassword+"\n"), "login", "-u", authUser, "--password-stdin", reg.Host)
	if r.Code != 0 {
		t.Fatalf("login: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	t.Run("push", func(t *testing.T) {
		if r := build("--push", "-t", repo+":1"); r.Code != 0 {
			t.Fatalf("buildx build --push: exit %d\n%s", r.Code, r.Stderr)
		}
		id := imageID(repo + ":1")
		if id == "" {
			t.Fatalf("the image built with --push is not in the daemon's store")
		}
		m := wantPushed(t, "1", id)
		// What was pushed, pulled by its digest, is the same image.
		c.ok("rmi", repo+":1")
		if imageID(id) != "" {
			t.Fatalf("image %s is still there after rmi of its only tag", id)
		}
		c.ok("pull", repo+"@"+m.TagDigest)
		if got := imageID(repo + "@" + m.TagDigest); got != id {
			t.Errorf("pull %s@%s gave image %q, want %s", repo, m.TagDigest, got, id)
		}
		if out := c.ok("run", "--rm", repo+"@"+m.TagDigest).Stdout; out != "Hello from Docker!\n" {
			t.Errorf("the pulled image printed %q", out)
		}
		c.run("rmi", repo+"@"+m.TagDigest)
	})

	t.Run("output registry", func(t *testing.T) {
		if r := build("-o", "type=registry,name="+repo+":reg"); r.Code != 0 {
			t.Fatalf("buildx build -o type=registry: exit %d\n%s", r.Code, r.Stderr)
		}
		m := registryImage(t, reg.Host, path, "reg", basic)
		if out := c.ok("run", "--rm", repo+"@"+m.TagDigest).Stdout; out != "Hello from Docker!\n" {
			t.Errorf("the image pushed by -o type=registry printed %q", out)
		}
	})

	t.Run("load and push", func(t *testing.T) {
		onlyBerth(t, "dockerd 20.10's BuildKit predates several exporters in one build: buildx refuses --load --push there (multiple outputs currently unsupported)")
		if r := build("--load", "--push", "-t", repo+":both"); r.Code != 0 {
			t.Fatalf("buildx build --load --push: exit %d\n%s", r.Code, r.Stderr)
		}
		id := imageID(repo + ":both")
		if id == "" {
			t.Fatalf("--load --push: the image is not in the daemon's store")
		}
		wantPushed(t, "both", id)
		if out := c.ok("run", "--rm", repo+":both").Stdout; out != "Hello from Docker!\n" {
			t.Errorf("the loaded image printed %q", out)
		}
	})

	// A registry behind a token service (Docker Hub's scheme): the push
	// asks for a token with the stored credentials, scoped pull,push.
	t.Run("token registry", func(t *testing.T) {
		ts := newTokenService(t)
		treg := startTokenRegistry(t, ts)
		trepo := treg.Host + "/e2e/bxtoken"
		t.Cleanup(func() { c.run("rmi", "-f", trepo+":1") })
		if r := c.runStdin([]byte(authPassword+"\n"), "login", "-u", authUser, "--password-stdin", treg.Host); r.Code != 0 {
			t.Fatalf("login: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		before := len(ts.log())
		if r := build("--push", "-t", trepo+":1"); r.Code != 0 {
			t.Fatalf("buildx build --push: exit %d\n%s", r.Code, r.Stderr)
		}
		if !tokenAsked(ts.log()[before:], "repository:e2e/bxtoken:pull,push") {
			t.Errorf("no token was asked with credentials for repository:e2e/bxtoken:pull,push: %+v", ts.log()[before:])
		}
		id := imageID(trepo + ":1")
		c.ok("rmi", trepo+":1")
		c.ok("pull", trepo+":1")
		if got := imageID(trepo + ":1"); got != id {
			t.Errorf("pulled back %s, built %s", got, id)
		}
	})

	// A registry whose uploads go to another host (blob storage): the
	// blobs go there, the credentials never do.
	t.Run("redirecting registry", func(t *testing.T) {
		rreg := startRedirectRegistry(t)
		rrepo := rreg.Host + "/e2e/bxredirect"
		t.Cleanup(func() { c.run("rmi", "-f", rrepo+":1") })
		if r := c.runStdin([]byte(authPassword+"\n"), "login", "-u", authUser, "--password-stdin", rreg.Host); r.Code != 0 {
			t.Fatalf("login: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		if r := build("--push", "-t", rrepo+":1"); r.Code != 0 {
			t.Fatalf("buildx build --push: exit %d\n%s", r.Code, r.Stderr)
		}
		hits, _, leaked := rreg.stats()
		if hits == 0 {
			t.Error("no upload went to the storage host")
		}
		if len(leaked) > 0 {
			t.Errorf("credentials sent to the storage host %s: %v", rreg.Storage, leaked)
		}
		if m := registryImage(t, rreg.Host, "e2e/bxredirect", "1", basic); m.ConfigDigest != imageID(rrepo+":1") {
			t.Errorf("the registry's image has config %s, the built one is %s", m.ConfigDigest, imageID(rrepo+":1"))
		}
	})
}
