package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Volumes and mounts (issue 3, item 4).

// imageWithConfig saves base through the API, changes its image config
// with mutate, and loads it back as tag: an image with a VOLUME, a
// WORKDIR... without a builder. It is removed when the test ends.
func imageWithConfig(t *testing.T, a *apiClient, base, tag string, mutate func(cfg map[string]any)) {
	t.Helper()
	r := a.call(t, "GET", "/images/"+base+"/get", nil, nil).wantStatus(t, 200)
	tr := tar.NewReader(bytes.NewReader(r.Body))
	type entry struct {
		hdr  *tar.Header
		data []byte
	}
	var entries []entry
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("save %s: %v", base, err)
		}
		b, _ := io.ReadAll(tr)
		entries = append(entries, entry{h, b})
		files[h.Name] = b
	}
	var manifest []map[string]any
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("save %s: manifest.json %s: %v", base, files["manifest.json"], err)
	}
	oldCfg := manifest[0]["Config"].(string)
	var cfg map[string]any
	if err := json.Unmarshal(files[oldCfg], &cfg); err != nil {
		t.Fatalf("save %s: config %s: %v", base, oldCfg, err)
	}
	c, _ := cfg["config"].(map[string]any)
	if c == nil {
		c = map[string]any{}
		cfg["config"] = c
	}
	mutate(c)
	newCfg, _ := json.Marshal(cfg)
	sum := sha256.Sum256(newCfg)
	newName := hex.EncodeToString(sum[:]) + ".json"
	manifest[0]["Config"] = newName
	manifest[0]["RepoTags"] = []string{tag}
	newManifest, _ := json.Marshal(manifest)

	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	write := func(name string, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
		tw.Write(data)
	}
	for _, e := range entries {
		switch e.hdr.Name {
		case oldCfg, "manifest.json", "repositories":
			continue
		}
		h := *e.hdr
		tw.WriteHeader(&h)
		tw.Write(e.data)
	}
	write(newName, newCfg)
	write("manifest.json", newManifest)
	tw.Close()
	a.call(t, "POST", "/images/load?quiet=1", out.Bytes(), nil).wantStatus(t, 200)
	if !imageExists(t, a, tag) {
		t.Fatalf("image %s is not there after load", tag)
	}
	t.Cleanup(func() { removeImage(t, a, tag) })
}

// listVolumes returns the names of GET /volumes.
func listVolumes(t *testing.T, a *apiClient) []string {
	t.Helper()
	var out struct {
		Volumes []struct{ Name string }
	}
	a.call(t, "GET", "/volumes", nil, nil).wantStatus(t, 200).decode(t, &out)
	var names []string
	for _, v := range out.Volumes {
		names = append(names, v.Name)
	}
	return names
}

// volumeExists reports whether volume name exists.
func volumeExists(t *testing.T, a *apiClient, name string) bool {
	t.Helper()
	return a.exists(t, "/volumes/"+name)
}

// TestBindMounts: -v /host:/ctr and :ro, --mount type=bind.
func TestBindMounts(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		dir := t.TempDir()
		writeFile(t, dir, "from-host", []byte("host data\n"))
		name := ctrName(t, "bind")
		r := c.ok("run", "--name", name, "-v", dir+":/h", "busybox", "sh", "-c", "cat /h/from-host; echo ctr data > /h/from-ctr")
		r.wantOut(t, c.name, "host data")
		if b, err := os.ReadFile(filepath.Join(dir, "from-ctr")); err != nil || string(b) != "ctr data\n" {
			t.Errorf("%s run -v: the container's write is not on the host: %q %v", c.name, b, err)
		}
		ci := inspectCtr(t, a, name)
		if len(ci.Mounts) != 1 || ci.Mounts[0].Type != "bind" || ci.Mounts[0].Source != dir || ci.Mounts[0].Destination != "/h" || !ci.Mounts[0].RW {
			t.Errorf("inspect Mounts %+v, want one rw bind %s → /h", ci.Mounts, dir)
		}
		if strings.Join(ci.HostConfig.Binds, ",") != dir+":/h" {
			t.Errorf("inspect HostConfig.Binds %q, want [%s:/h]", ci.HostConfig.Binds, dir)
		}

		r = c.run("run", "--rm", "--name", ctrName(t, "bindro"), "-v", dir+":/h:ro", "busybox", "sh", "-c", "cat /h/from-host && touch /h/new")
		r.wantCode(t, c.name, 1, "Read-only file system")
		r.wantOut(t, c.name, "host data")
		if _, err := os.Stat(filepath.Join(dir, "new")); err == nil {
			t.Errorf("%s run -v …:ro: the container wrote to the host", c.name)
		}

		r = c.run("run", "--rm", "--name", ctrName(t, "mountbind"), "--mount", "type=bind,src="+dir+",dst=/m,readonly", "busybox", "sh", "-c", "cat /m/from-host && touch /m/new")
		r.wantCode(t, c.name, 1, "Read-only file system")
		r.wantOut(t, c.name, "host data")
		r = c.ok("run", "--rm", "--name", ctrName(t, "mounttmpfs"), "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m", "busybox", "sh", "-c", "grep ' /t ' /proc/mounts")
		if f := strings.Fields(r.Stdout); len(f) < 4 || f[0] != "tmpfs" || !strings.Contains(f[3], "size=1024k") {
			t.Errorf("%s run --mount type=tmpfs,tmpfs-size=1m: %q, want a 1024k tmpfs on /t", c.name, r.Stdout)
		}
		// Docker: invalid mount config for type "bind": bind source path does not exist: <path>
		missing := filepath.Join(dir, "nosuch")
		c.run("run", "--rm", "--mount", "type=bind,src="+missing+",dst=/x", "busybox", "true").
			wantCode(t, c.name, 125, `invalid mount config for type "bind": bind source path does not exist: `+missing)
	})
}

// TestNamedVolumes: data outlives the container; an empty volume gets the
// image's content at its path; volume create/ls/inspect/rm/prune.
func TestNamedVolumes(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		// volume create / ls / inspect.
		v2 := volName(t, "cli")
		c.ok("volume", "create", "--label", "e2e.v=1", v2).wantOut(t, c.name, v2)
		if ls := lines(c.ok("volume", "ls").Stdout); len(ls) == 0 || !regexp.MustCompile(`^DRIVER\s+VOLUME NAME$`).MatchString(ls[0]) || !contains(ls, "local     "+v2) {
			t.Errorf("%s volume ls: %q, want the header DRIVER VOLUME NAME and the row \"local     %s\"", c.name, ls, v2)
		}
		if q := lines(c.ok("volume", "ls", "-q", "--filter", "label=e2e.v=1").Stdout); strings.Join(q, ",") != v2 {
			t.Errorf("%s volume ls -q --filter label=e2e.v=1: %q, want [%s]", c.name, q, v2)
		}
		var vi []struct {
			Name, Driver, Mountpoint, Scope, CreatedAt string
			Labels                                     map[string]string
		}
		if err := json.Unmarshal([]byte(c.ok("volume", "inspect", v2).Stdout), &vi); err != nil || len(vi) != 1 {
			t.Fatalf("%s volume inspect: %v", c.name, err)
		}
		if vi[0].Name != v2 || vi[0].Driver != "local" || vi[0].Scope != "local" || vi[0].Mountpoint == "" || vi[0].Labels["e2e.v"] != "1" {
			t.Errorf("%s volume inspect: %+v, want the local volume %s with its label", c.name, vi[0], v2)
		}
		if _, err := time.Parse(time.RFC3339, vi[0].CreatedAt); err != nil {
			t.Errorf("volume inspect CreatedAt %q: %v", vi[0].CreatedAt, err)
		}
		missing := "e2e-missing-" + uniq()
		// Docker: Error response from daemon: get <name>: no such volume
		c.fail([]string{"volume", "inspect", missing}, "get "+missing+": no such volume")
		a.call(t, "GET", "/volumes/"+missing, nil, nil).wantError(t, 404, "get "+missing+": no such volume")

		// In use: 409 with Docker's wording.
		user := ctrName(t, "vuser")
		c.ok("create", "--name", user, "-v", v2+":/x", "busybox", "true")
		userID := inspectCtr(t, a, user).ID
		want := "remove " + v2 + ": volume is in use - [" + userID + "]"
		c.fail([]string{"volume", "rm", v2}, "Error response from daemon: "+want)
		a.call(t, "DELETE", "/volumes/"+v2, nil, nil).wantError(t, 409, want)
		c.ok("rm", user)
		c.ok("volume", "rm", v2).wantOut(t, c.name, v2)
		if volumeExists(t, a, v2) {
			t.Errorf("%s volume rm: %s still exists", c.name, v2)
		}

		// prune: which volumes go depends on the API version, as in
		// Docker: up to 1.41 (dockerd 20.10) every unused volume, from 1.42
		// (Docker 23+) only anonymous ones unless --all.
		label := "e2e.vprune=" + uniq()
		unused, used := volName(t, "punused"), volName(t, "pused")
		c.ok("volume", "create", "--label", label, unused)
		c.ok("volume", "create", "--label", label, used)
		holder := ctrName(t, "pholder")
		c.ok("create", "--name", holder, "-v", used+":/x", "busybox", "true")
		allFlag := []string{}
		if !versionLess(pingVersion(t, a), "1.42") {
			r := c.ok("volume", "prune", "-f", "--filter", "label="+label)
			if !volumeExists(t, a, unused) {
				t.Errorf("%s volume prune (API >= 1.42, no --all): the named volume %s went; only anonymous ones may", c.name, unused)
			}
			if strings.Contains(r.Stdout, unused) {
				t.Errorf("%s volume prune (API >= 1.42, no --all): output %q names %s", c.name, r.Stdout, unused)
			}
			allFlag = []string{"--all"}
		}
		r := c.ok(append(append([]string{"volume", "prune", "-f"}, allFlag...), "--filter", "label="+label)...)
		// Docker: "Deleted Volumes:\n<name>\n\nTotal reclaimed space: 0B"
		if !strings.HasPrefix(r.Stdout, "Deleted Volumes:\n"+unused+"\n") || !strings.Contains(r.Stdout, "Total reclaimed space:") {
			t.Errorf("%s volume prune %v: %q, want Deleted Volumes: %s … Total reclaimed space:", c.name, allFlag, r.Stdout, unused)
		}
		if volumeExists(t, a, unused) || !volumeExists(t, a, used) {
			t.Errorf("%s volume prune %v: the unused volume must go and the used one stay", c.name, allFlag)
		}
		// An anonymous volume its container left behind goes with any version.
		anonHolder := ctrName(t, "panon")
		c.ok("create", "--name", anonHolder, "-v", "/anon", "busybox", "true")
		anonVol := inspectCtr(t, a, anonHolder).Mounts[0].Name
		t.Cleanup(func() { rmVolume(t, a, anonVol) })
		c.ok("rm", anonHolder)
		r = c.ok("volume", "prune", "-f")
		if volumeExists(t, a, anonVol) || !strings.Contains(r.Stdout, anonVol) {
			t.Errorf("%s volume prune: the dangling anonymous volume %s is still there (output %q)", c.name, anonVol, r.Stdout)
		}
		if !volumeExists(t, a, used) {
			t.Errorf("%s volume prune removed a volume in use", c.name)
		}

		// Copy-up: an empty volume mounted on /etc is filled with the
		// image's /etc (Docker does it on the first mount).
		etc := volName(t, "etc")
		c.ok("volume", "create", etc)
		c.ok("run", "--rm", "--name", ctrName(t, "copyup"), "-v", etc+":/etc", "busybox", "true")
		r = c.ok("run", "--rm", "--name", ctrName(t, "copyread"), "-v", etc+":/v", "busybox", "sh", "-c", "grep ^root: /v/passwd; echo mine > /v/marker")
		if !strings.HasPrefix(r.Stdout, "root:x:0:0:") {
			t.Errorf("%s: a new volume mounted on /etc does not hold the image's /etc/passwd: %q", c.name, r.Stdout)
		}
		// Not empty any more: no second copy-up over the data.
		c.ok("run", "--rm", "--name", ctrName(t, "copyagain"), "-v", etc+":/etc", "busybox", "cat", "/etc/marker").wantOut(t, c.name, "mine")

		// A volume named in -v that does not exist yet is created, and
		// its data outlives the container.
		vol := volName(t, "named")
		name := ctrName(t, "vwrite")
		c.ok("run", "--name", name, "-v", vol+":/data", "busybox", "sh", "-c", "echo persisted > /data/f")
		ci := inspectCtr(t, a, name)
		if len(ci.Mounts) != 1 || ci.Mounts[0].Type != "volume" || ci.Mounts[0].Name != vol || ci.Mounts[0].Destination != "/data" || ci.Mounts[0].Driver != "local" || !ci.Mounts[0].RW {
			t.Errorf("inspect Mounts %+v, want the local volume %s on /data", ci.Mounts, vol)
		}
		c.ok("rm", name)
		c.ok("run", "--rm", "--name", ctrName(t, "vread"), "-v", vol+":/again", "busybox", "cat", "/again/f").wantOut(t, c.name, "persisted")
		c.ok("run", "--rm", "--name", ctrName(t, "vmount"), "--mount", "type=volume,src="+vol+",dst=/m", "busybox", "cat", "/m/f").wantOut(t, c.name, "persisted")
		// --mount type=volume with a new name creates it too.
		vol2 := volName(t, "mountnew")
		c.ok("run", "--rm", "--name", ctrName(t, "vmountnew"), "--mount", "type=volume,src="+vol2+",dst=/m", "busybox", "true")
		if !volumeExists(t, a, vol2) {
			t.Errorf("%s run --mount type=volume,src=%s: the volume was not created", c.name, vol2)
		}
	})
}

// TestAnonymousVolumes: -v /data and an image's VOLUME make anonymous
// volumes; rm -v and --rm remove them, plain rm keeps them.
func TestAnonymousVolumes(t *testing.T) {
	busybox(t)
	a := env.d.api()
	img := "e2e/withvolume:" + uniq()
	imageWithConfig(t, a, "busybox:latest", img, func(c map[string]any) {
		c["Volumes"] = map[string]any{"/imgvol": map[string]any{}}
	})
	eachCLI(t, func(t *testing.T, c *CLI) {
		anon := func(ref string) []string {
			t.Helper()
			var names []string
			for _, m := range inspectCtr(t, a, ref).Mounts {
				if m.Type != "volume" || !hexIDRE.MatchString(m.Name) || m.Driver != "local" {
					t.Errorf("mount %+v is not an anonymous local volume (64-hex name)", m)
					continue
				}
				names = append(names, m.Name)
				vn := m.Name
				t.Cleanup(func() { rmVolume(t, a, vn) })
			}
			return names
		}
		name := ctrName(t, "anon")
		c.ok("run", "--name", name, "-v", "/data", "busybox", "sh", "-c", "echo x > /data/f")
		vols := anon(name)
		if len(vols) != 1 || inspectCtr(t, a, name).Mounts[0].Destination != "/data" {
			t.Fatalf("run -v /data: mounts %+v, want one anonymous volume on /data", inspectCtr(t, a, name).Mounts)
		}
		c.ok("rm", "-v", name)
		if volumeExists(t, a, vols[0]) {
			t.Errorf("%s rm -v: the anonymous volume %s is still there", c.name, vols[0])
		}

		name = ctrName(t, "anonkeep")
		c.ok("create", "--name", name, "-v", "/data", "busybox", "true")
		vols = anon(name)
		c.ok("rm", name)
		if len(vols) != 1 || !volumeExists(t, a, vols[0]) {
			t.Errorf("%s rm without -v removed the anonymous volume %v", c.name, vols)
		}

		// The image's VOLUME.
		name = ctrName(t, "imgvol")
		c.ok("run", "--name", name, img, "sh", "-c", "grep -c ' /imgvol ' /proc/mounts")
		vols = anon(name)
		if ms := inspectCtr(t, a, name).Mounts; len(ms) != 1 || ms[0].Destination != "/imgvol" {
			t.Errorf("a container of an image with VOLUME /imgvol: mounts %+v", ms)
		}
		c.ok("rm", "-v", name)
		for _, v := range vols {
			if volumeExists(t, a, v) {
				t.Errorf("%s rm -v: the image VOLUME's volume %s is still there", c.name, v)
			}
		}

		// --rm removes anonymous volumes too.
		name = ctrName(t, "anonrm")
		before := listVolumes(t, a)
		c.ok("run", "--rm", "--name", name, "--mount", "type=volume,dst=/x", "-v", "/y", "busybox", "true")
		if after := listVolumes(t, a); len(after) != len(before) {
			t.Errorf("%s run --rm with anonymous volumes: volumes %d before, %d after", c.name, len(before), len(after))
		}
	})
}
