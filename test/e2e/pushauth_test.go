package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPushTokenRegistry: a registry behind a token service (Docker's token
// authentication, JWTs the registry verifies): login checks the password
// at the token service, push asks for pull,push on the target and pull
// on a mount source, and the pushed image pulls back by digest with the
// same ID.
func TestPushTokenRegistry(t *testing.T) {
	a := requireEnv(t).api()
	img := ensureImage(t, a, "busybox:latest")
	eachCLI(t, func(t *testing.T, c *CLI) {
		ts := newTokenService(t)
		reg := startTokenRegistry(t, ts)
		repo := reg.Host + "/" + c.name + "/busybox"
		c.ok("tag", "busybox:latest", repo+":1")
		defer removeImage(t, a, repo+":1")

		// Docker's wording, as Docker Hub users know it.
		r := c.runStdin([]byte("wrongpass\n"), "login", "-u", authUser, "--password-stdin", reg.Host)
		r.wantFailure(t, c.name, `Error response from daemon: Get "http://`+reg.Host+`/v2/": unauthorized: incorrect username or password`)
		if strings.Contains(r.Stdout, "Login Succeeded") {
			t.Errorf("login with a wrong password printed Login Succeeded")
		}
		wantNoStoredCredentials(t, c, reg.Host)
		if r := c.runStdin([]byte(authPassword+"\n"), "login", "-u", authUser, "--password-stdin", reg.Host); r.Code != 0 || !strings.Contains(r.Stdout, "Login Succeeded") {
			t.Fatalf("login: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}

		before := len(ts.log())
		r = c.ok("push", repo+":1")
		d := wantPush(t, r, repo, "1", img, "Pushed")
		if !tokenAsked(ts.log()[before:], "repository:"+c.name+"/busybox:pull,push") {
			t.Errorf("no token was asked for repository:%s/busybox:pull,push: %+v", c.name, ts.log()[before:])
		}

		other := reg.Host + "/" + c.name + "/other"
		c.ok("tag", "busybox:latest", other+":1")
		defer removeImage(t, a, other+":1")
		before = len(ts.log())
		r = c.ok("push", other+":1")
		wantPush(t, r, other, "1", img, "Mounted from "+c.name+"/busybox")
		if !tokenAsked(ts.log()[before:], "repository:"+c.name+"/busybox:pull") {
			t.Errorf("the mount's token lacks pull on the source: %+v", ts.log()[before:])
		}

		// Pull back by digest: the same image.
		removeImage(t, a, repo+":1")
		r = c.ok("pull", repo+"@"+d)
		if got := inspectImage(t, a, repo+"@"+d); got.ID != img.ID {
			t.Errorf("pulled back %s, pushed %s", got.ID, img.ID)
		}
		c.ok("tag", "busybox:latest", repo+":1")
		c.ok("logout", reg.Host)

		onlyBerth(t, "dockerd 20.10 asks the token service again for every push")
		before = len(ts.log())
		c.runStdin([]byte(authPassword+"\n"), "login", "-u", authUser, "--password-stdin", reg.Host)
		c.ok("push", repo+":1")
		n := len(ts.log()) - before
		c.ok("push", repo+":1")
		if again := len(ts.log()) - before - n; again != 0 {
			t.Errorf("the second push asked the token service %d more times; the token has not expired", again)
		}
	})
}

// tokenAsked reports whether a token was granted, for credentials, with
// scope among its scopes (actions in any order: dockerd asks "push,pull").
func tokenAsked(reqs []tokenRequest, scope string) bool {
	norm := func(sc string) string {
		i := strings.LastIndex(sc, ":")
		if i < 0 {
			return sc
		}
		actions := strings.Split(sc[i+1:], ",")
		slices.Sort(actions)
		return sc[:i+1] + strings.Join(actions, ",")
	}
	for _, r := range reqs {
		for _, sc := range r.Scopes {
			for _, one := range strings.Fields(sc) {
				if norm(one) == norm(scope) && r.Auth && r.OK {
					return true
				}
			}
		}
	}
	return false
}

// TestPushRedirectRegistry: a registry that sends uploads and downloads
// to another host (its blob storage): the blobs go there, the credentials
// never do, and the image pulls back by digest.
func TestPushRedirectRegistry(t *testing.T) {
	a := requireEnv(t).api()
	img := ensureImage(t, a, "busybox:latest")
	eachCLI(t, func(t *testing.T, c *CLI) {
		reg := startRedirectRegistry(t)
		repo := reg.Host + "/" + c.name + "/busybox"
		c.ok("tag", "busybox:latest", repo+":1")
		defer removeImage(t, a, repo+":1")
		if r := c.runStdin([]byte(authPassword+"\n"), "login", "-u", authUser, "--password-stdin", reg.Host); r.Code != 0 {
			t.Fatalf("login: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		r := c.ok("push", repo+":1")
		d := wantPush(t, r, repo, "1", img, "Pushed")
		hits, _, leaked := reg.stats()
		if hits == 0 {
			t.Fatal("no upload went to the storage host")
		}
		if len(leaked) > 0 {
			t.Errorf("credentials sent to the storage host %s: %v", reg.Storage, leaked)
		}

		removeImage(t, a, repo+":1")
		removeImageEverywhere(t, a, "busybox:latest")
		defer ensureImage(t, a, "busybox:latest")
		c.ok("pull", repo+"@"+d)
		if got := inspectImage(t, a, repo+"@"+d); got.ID != img.ID {
			t.Errorf("pulled back %s, pushed %s", got.ID, img.ID)
		}
		_, redirected, leaked := reg.stats()
		if redirected == 0 {
			t.Error("no download was redirected")
		}
		if len(leaked) > 0 {
			t.Errorf("credentials sent to the storage host %s: %v", reg.Storage, leaked)
		}
		c.ok("tag", repo+"@"+d, repo+":1")
		c.ok("logout", reg.Host)
	})
}

// wantNoStoredCredentials checks that c's config file holds nothing for host.
func wantNoStoredCredentials(t *testing.T, c *CLI, host string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.cfgDir, "config.json"))
	if err == nil && strings.Contains(string(b), host) {
		t.Errorf("%s stored credentials for %s after a failed login:\n%s", c.name, host, b)
	}
}

// setEnv sets (or, with v "", removes) one variable of c's environment.
func (c *CLI) setEnv(k, v string) {
	out := c.env[:0:0]
	for _, e := range c.env {
		if !strings.HasPrefix(e, k+"=") {
			out = append(out, e)
		}
	}
	if v != "" {
		out = append(out, k+"="+v)
	}
	c.env = out
}

// TestCredentialsInterop: the berth and docker CLIs share docker's config
// file ($DOCKER_CONFIG, else ~/.docker): what one stores the other uses and
// removes, in "auths" or through a credential helper (credsStore).
func TestCredentialsInterop(t *testing.T) {
	a := requireEnv(t).api()
	img := ensureImage(t, a, "busybox:latest")
	reg := startRegistry(t, registryOpts{htpasswd: true})
	shared := t.TempDir()
	docker, berth := cli(t, "docker"), cli(t, "berth")
	docker.setEnv("DOCKER_CONFIG", shared)
	berth.setEnv("BERTH_CONFIG", "")
	berth.setEnv("DOCKER_CONFIG", shared)
	helperDir := filepath.Join(env.repoRoot, "test", "credhelper")
	store := t.TempDir()
	for _, c := range []*CLI{docker, berth} {
		c.cfgDir = shared
		c.setEnv("PATH", helperDir+":"+os.Getenv("PATH"))
		c.setEnv("BERTH_TEST_CREDS", store)
	}
	repo := reg.Host + "/interop/busybox"
	docker.ok("tag", "busybox:latest", repo+":1")
	defer removeImage(t, a, repo+":1")
	login := func(c *CLI) {
		t.Helper()
		if r := c.runStdin([]byte(authPassword+"\n"), "login", "-u", authUser, "--password-stdin", reg.Host); r.Code != 0 {
			t.Fatalf("%s login: exit %d\n%s%s", c.name, r.Code, r.Stdout, r.Stderr)
		}
	}

	for _, round := range []struct {
		name      string
		config    string
		in, out   *CLI
		plaintext bool
	}{
		{"docker stores, berth uses", `{}`, docker, berth, true},
		{"berth stores, docker uses", `{}`, berth, docker, true},
		{"berth stores in a helper, docker uses", `{"credsStore":"berthtest"}`, berth, docker, false},
		{"docker stores in a helper, berth uses", `{"credsStore":"berthtest"}`, docker, berth, false},
	} {
		t.Run(round.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(shared, "config.json"), []byte(round.config), 0o600); err != nil {
				t.Fatal(err)
			}
			login(round.in)
			cfg, _ := os.ReadFile(filepath.Join(shared, "config.json"))
			if got := strings.Contains(string(cfg), `"auth":`); got != round.plaintext {
				t.Errorf("plain-text credentials in config.json: %v, want %v:\n%s", got, round.plaintext, cfg)
			}
			ents, _ := os.ReadDir(store)
			if helperHas := len(ents) > 0; helperHas == round.plaintext {
				t.Errorf("the helper holds %d entries (plaintext %v)", len(ents), round.plaintext)
			}
			wantPush(t, round.out.ok("push", repo+":1"), repo, "1", img, "")
			round.out.ok("logout", reg.Host)
			round.in.fail([]string{"push", repo + ":1"}, "no basic auth credentials")
			if ents, _ := os.ReadDir(store); len(ents) != 0 {
				t.Errorf("the helper still holds %d entries after logout", len(ents))
			}
		})
	}
}

// TestLoginPrompt: without -u/-p on a terminal, login asks for the
// username, then the password without echoing it.
func TestLoginPrompt(t *testing.T) {
	requireEnv(t)
	reg := startRegistry(t, registryOpts{htpasswd: true})
	eachCLI(t, func(t *testing.T, c *CLI) {
		tm := newTerm(t, c, "login", reg.Host)
		if !tm.waitScreen(regexp.MustCompile(`(?m)^Username: *$`), 20*time.Second) {
			t.Fatalf("no username prompt:\n%s", tm.screen())
		}
		tm.typeLine(authUser)
		if !tm.waitScreen(regexp.MustCompile(`(?m)^Password: *$`), 20*time.Second) {
			t.Fatalf("no password prompt:\n%s", tm.screen())
		}
		tm.typeLine(authPassword)
		if code := tm.exitCode(30 * time.Second); code != 0 {
			t.Fatalf("login: exit %d\n%s", code, tm.screen())
		}
		screen := tm.screen()
		if !strings.Contains(screen, "Login Succeeded") {
			t.Errorf("no Login Succeeded:\n%s", screen)
		}
		if strings.Contains(screen, authPassword) {
			t.Errorf("the password was echoed:\n%s", screen)
		}
		b, _ := os.ReadFile(filepath.Join(c.cfgDir, "config.json"))
		if !strings.Contains(string(b), reg.Host) {
			t.Errorf("nothing stored for %s:\n%s", reg.Host, b)
		}
	})
}
