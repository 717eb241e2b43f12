package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCrossEngineSaveLoad: an archive from `docker save` on a real dockerd
// loads into berthd, and one from berthd loads into dockerd; both sides
// agree on the image ID (the config digest).
func TestCrossEngineSaveLoad(t *testing.T) {
	requireEnv(t)
	if env.target != "berth" {
		t.Skip("cross-engine: runs in the berth run (berthd and a dockerd side by side)")
	}
	if env.dockerd == "" {
		t.Skip("cross-engine: dockerd is not installed")
	}
	dk, err := startDaemon("docker", daemonOpts{mirror: true})
	if err != nil {
		t.Skipf("cross-engine: dockerd cannot start here: %v", err)
	}
	t.Cleanup(func() {
		if err := dk.cleanup(); err != nil {
			t.Errorf("cleanup dockerd: %v", err)
		}
	})
	berthAPI, dockerAPI := env.d.api(), dk.api()
	dir := t.TempDir()

	t.Run("docker-to-berth", func(t *testing.T) {
		berth, docker := cli(t, "berth"), cliFor(t, "docker", dk)
		want := ensureImage(t, dockerAPI, "busybox:latest")
		f := filepath.Join(dir, "from-docker.tar")
		docker.ok("save", "-o", f, "busybox:latest")
		removeImageEverywhere(t, berthAPI, "busybox:latest")
		r := berth.ok("load", "-i", f)
		if strings.TrimSpace(r.Stdout) != "Loaded image: busybox:latest" {
			t.Errorf("berth load: %q, want Loaded image: busybox:latest", r.Stdout)
		}
		got := inspectImage(t, berthAPI, "busybox:latest")
		if got.ID != want.ID || strings.Join(got.RootFS.Layers, ",") != strings.Join(want.RootFS.Layers, ",") {
			t.Errorf("berthd has %s %q, dockerd %s %q", got.ID, got.RootFS.Layers, want.ID, want.RootFS.Layers)
		}
		if strings.Join(got.Config.Cmd, " ") != strings.Join(want.Config.Cmd, " ") {
			t.Errorf("Config.Cmd: berthd %q, dockerd %q", got.Config.Cmd, want.Config.Cmd)
		}
	})
	t.Run("berth-to-docker", func(t *testing.T) {
		berth, docker := cli(t, "berth"), cliFor(t, "docker", dk)
		want := ensureImage(t, berthAPI, "alpine:3.18")
		f := filepath.Join(dir, "from-berth.tar")
		berth.ok("save", "-o", f, "alpine:3.18")
		removeImageEverywhere(t, dockerAPI, "alpine:3.18")
		r := docker.ok("load", "-i", f)
		if strings.TrimSpace(r.Stdout) != "Loaded image: alpine:3.18" {
			t.Errorf("docker load: %q, want Loaded image: alpine:3.18", r.Stdout)
		}
		got := inspectImage(t, dockerAPI, "alpine:3.18")
		if got.ID != want.ID || strings.Join(got.RootFS.Layers, ",") != strings.Join(want.RootFS.Layers, ",") {
			t.Errorf("dockerd has %s %q, berthd %s %q", got.ID, got.RootFS.Layers, want.ID, want.RootFS.Layers)
		}
		// dockerd can use what it loaded: its history matches berth's.
		var dh, bh []struct{ CreatedBy string }
		dockerAPI.call(t, "GET", "/images/alpine:3.18/history", nil, nil).wantStatus(t, 200).decode(t, &dh)
		berthAPI.call(t, "GET", "/images/alpine:3.18/history", nil, nil).wantStatus(t, 200).decode(t, &bh)
		if fmt.Sprint(dh) != fmt.Sprint(bh) {
			t.Errorf("history: dockerd %v, berthd %v", dh, bh)
		}
	})
}

// TestReloadMirrorsSIGHUP: a daemon started without a mirror cannot pull
// Docker Hub names offline; after the mirror is written to its
// --config-file and it gets SIGHUP, it can. dockerd reloads
// registry-mirrors live too, so this runs on both targets.
func TestReloadMirrorsSIGHUP(t *testing.T) {
	requireEnv(t)
	d := startTestDaemon(t, env.target, daemonOpts{mirror: false})
	a := d.api()
	img := hubImage(t, "busybox:latest")
	if m := infoMirrors(t, a); len(m) != 0 {
		t.Fatalf("mirrors %q before the reload, want none", m)
	}
	r, msgs := pullAPI(t, a, "docker.io/library/busybox", "latest", nil)
	if r.Status == 200 && streamError(msgs) == "" {
		t.Skip("this machine reaches Docker Hub: the pull without a mirror worked, so the reload cannot be observed")
	}

	cfg := fmt.Sprintf(`{"registry-mirrors": [%q]}`, mirrorURL)
	if err := os.WriteFile(d.configFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := infoMirrors(t, a)
		if fmt.Sprint(m) == "["+mirrorURL+"/]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP, /info RegistryConfig.Mirrors is %q, want [%s/]", m, mirrorURL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r, msgs = pullAPI(t, a, "docker.io/library/busybox", "latest", nil)
	r.wantStatus(t, 200)
	if e := streamError(msgs); e != "" {
		t.Fatalf("pull after the reload: %s", e)
	}
	if got := inspectImage(t, a, "busybox:latest"); got.ID != img.ConfigDigest {
		t.Errorf("image ID %s, want %s", got.ID, img.ConfigDigest)
	}
	if d.waitExit(0) {
		t.Fatalf("the daemon exited after SIGHUP")
	}
}

func infoMirrors(t *testing.T, a *apiClient) []string {
	t.Helper()
	var info struct{ RegistryConfig struct{ Mirrors []string } }
	a.call(t, "GET", "/info", nil, nil).wantStatus(t, 200).decode(t, &info)
	return info.RegistryConfig.Mirrors
}

// TestMirrorAnyRegistry: berth can mirror registries other than Docker Hub.
func TestMirrorAnyRegistry(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "dockerd's --registry-mirror only mirrors Docker Hub; berth takes HOST=URL for any registry")
	d := startTestDaemon(t, "berth", daemonOpts{args: []string{"--registry-mirror", "registry.invalid=" + mirrorURL}})
	img := hubImage(t, "busybox:latest")
	c := cliFor(t, "docker", d)
	r := c.ok("pull", "registry.invalid/library/busybox:latest")
	if lastLine(r.Stdout) != "registry.invalid/library/busybox:latest" {
		t.Errorf("last line %q", lastLine(r.Stdout))
	}
	if got := inspectImage(t, d.api(), "registry.invalid/library/busybox:latest"); got.ID != img.ConfigDigest {
		t.Errorf("image ID %s, want %s", got.ID, img.ConfigDigest)
	}
}

// TestSecondDaemonSameDataRoot: a second berthd on a data root in use
// exits non-zero with a clear error, and the first keeps serving.
func TestSecondDaemonSameDataRoot(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "dockerd has no data-root lock of its own; berth refuses to share a data root")
	d2, err := spawnDaemon("berth", daemonOpts{dataRoot: env.d.dataRoot, mirror: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d2.cleanup(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if !d2.waitExit(30 * time.Second) {
		t.Fatalf("a second berthd on %s is still running after 30s; it must refuse to start", env.d.dataRoot)
	}
	if code := d2.exitCode(); code == 0 {
		t.Errorf("the second berthd exited 0, want non-zero")
	}
	if log := d2.logTail(20); !strings.Contains(log, "in use") {
		t.Errorf("the second berthd's error does not say the data root is in use:\n%s", log)
	}
	pingVersion(t, env.d.api())
	if _, err := os.Stat(env.d.sock); err != nil {
		t.Errorf("the first daemon's socket is gone: %v", err)
	}
}

// TestKillDuringPull: berthd is killed with SIGKILL while it downloads
// bench/big; restarted on the same data root, the next pull succeeds, the
// image is whole, no ingest or temporary file is left and every stored
// blob matches its digest.
func TestKillDuringPull(t *testing.T) {
	requireEnv(t)
	onlyBerth(t, "berth's crash-safety promise (issue 2): kill -9 mid-pull, restart, pull again")
	img := hubImage(t, "bench/big:latest")
	b := startTestDaemon(t, "berth", daemonOpts{mirror: true})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	resp, err := b.api().stream(ctx, "POST", "/images/create?fromImage=docker.io%2Fbench%2Fbig&tag=latest", nil, http.Header{"X-Registry-Auth": {"e30="}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("pull: %s %s", resp.Status, body)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var m jsonMessage
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("the pull stream ended before any Downloading progress: %v", err)
		}
		if m.Error != "" {
			t.Fatalf("pull failed: %s", m.Error)
		}
		if m.Status == "Downloading" {
			t.Logf("kill -9 berthd (pid %d) at the first Downloading message: layer %s %s", b.pid(), m.ID, m.Progress)
			break
		}
	}
	b.kill9()
	resp.Body.Close()

	b2 := b.restartT(t, daemonOpts{mirror: true})
	a := b2.api()
	if exists := imageExists(t, a, "bench/big:latest"); exists {
		t.Errorf("bench/big:latest exists after a pull killed mid-download")
	}
	wantNoLeftovers(t, b.dataRoot) // the restarted daemon cleared the interrupted work
	r, msgs := pullAPI(t, a, "docker.io/bench/big", "latest", nil)
	r.wantStatus(t, 200)
	if e := streamError(msgs); e != "" {
		t.Fatalf("pull after restart: %s", e)
	}
	if n := len(msgs); n == 0 || msgs[n-1].Status != "Status: Downloaded newer image for bench/big:latest" {
		t.Errorf("pull after restart: last message %+v", msgs[max(0, len(msgs)-1):])
	}
	got := inspectImage(t, a, "bench/big:latest")
	if got.ID != img.ConfigDigest || strings.Join(got.RootFS.Layers, ",") != strings.Join(img.Config.RootFS.DiffIDs, ",") {
		t.Errorf("bench/big:latest is %s %q, want %s %q", got.ID, got.RootFS.Layers, img.ConfigDigest, img.Config.RootFS.DiffIDs)
	}
	if len(img.Layers) < 2 {
		t.Errorf("registry: bench/big has %d layers, the test wants several", len(img.Layers))
	}
	wantNoLeftovers(t, b.dataRoot)
	t.Logf("verified %d stored blobs against their digests", wantBlobsMatchDigests(t, b.dataRoot))
}

// wantNoLeftovers fails if work-in-progress directories (ingest, tmp) hold
// anything, or temporary files lie around, under root.
func wantNoLeftovers(t *testing.T, root string) {
	t.Helper()
	tmpName := regexp.MustCompile(`(?i)(\.tmp$|\.partial$|^tmp-|\.part$)`)
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		parts := strings.Split(rel, string(filepath.Separator))
		for _, part := range parts[:len(parts)-1] {
			switch strings.ToLower(part) {
			case "ingest", "tmp", "temp":
				t.Errorf("leftover under the data root: %s", rel)
				return nil
			}
		}
		if tmpName.MatchString(de.Name()) {
			t.Errorf("leftover temporary file under the data root: %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// wantBlobsMatchDigests hashes every file stored under a "sha256"
// directory with a 64-hex name and checks it matches.
func wantBlobsMatchDigests(t *testing.T, root string) int {
	t.Helper()
	hexName := regexp.MustCompile(`^[0-9a-f]{64}$`)
	n := 0
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !de.Type().IsRegular() || !hexName.MatchString(de.Name()) || filepath.Base(filepath.Dir(p)) != "sha256" {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		n++
		if got := hex.EncodeToString(h.Sum(nil)); got != de.Name() {
			t.Errorf("corrupt blob %s: content hashes to %s", p, got)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if n == 0 {
		t.Errorf("found no blob stored as .../sha256/<hex> under %s to verify", root)
	}
	return n
}
