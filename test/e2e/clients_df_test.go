package e2e

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// dfJSON is GET /system/df as API versions before 1.52 answer it.
type dfJSON struct {
	LayersSize int64
	Images     []struct {
		ID         string `json:"Id"`
		RepoTags   []string
		Size       int64
		SharedSize int64
		Containers int64
	}
	Containers []struct {
		ID         string `json:"Id"`
		Names      []string
		SizeRw     int64
		SizeRootFs int64
	}
	Volumes []struct {
		Name      string
		UsageData *struct {
			Size     int64
			RefCount int64
		}
	}
	BuildCache json.RawMessage
}

// TestSystemDf (issue 11 item 4): GET /system/df reports images (size,
// shared size, containers using them), containers (SizeRw, SizeRootFs),
// volumes (size, ref count) and the build cache with Docker's sizes, and
// `system df [-v]` renders them as docker does.
func TestSystemDf(t *testing.T) {
	a := requireEnv(t).api()
	bb := ensureImage(t, a, "busybox:latest")
	al := ensureImage(t, a, "alpine:3.18") // shares busybox's only layer
	vol := volName(t, "df")
	name := ctrName(t, "df")
	// 1 MiB in the volume, 2 MiB in the container's writable layer.
	createCtr(t, a, name, map[string]any{
		"Image":      "busybox:latest",
		"Cmd":        []string{"sh", "-c", "dd if=/dev/zero of=/data/f bs=1024 count=1024 && dd if=/dev/zero of=/big bs=1024 count=2048"},
		"HostConfig": map[string]any{"Binds": []string{vol + ":/data"}},
	})
	startCtr(t, a, name)
	if c := waitExited(t, a, name, 30*time.Second); c.State.ExitCode != 0 {
		t.Fatalf("the writer exited %d", c.State.ExitCode)
	}
	var df dfJSON
	a.call(t, "GET", "/system/df", nil, nil).wantStatus(t, 200).decode(t, &df)
	if df.LayersSize <= 0 {
		t.Errorf("LayersSize %d, want the layers' total", df.LayersSize)
	}
	imgs := map[string]int{}
	for i, im := range df.Images {
		imgs[im.ID] = i
		if im.SharedSize < 0 || im.SharedSize > im.Size {
			t.Errorf("image %s %v: SharedSize %d out of [0, Size %d]", im.ID, im.RepoTags, im.SharedSize, im.Size)
		}
	}
	bi, ok1 := imgs[bb.ID]
	ai, ok2 := imgs[al.ID]
	if !ok1 || !ok2 {
		t.Fatalf("df lists neither busybox nor alpine:3.18: %+v", df.Images)
	}
	busy, alp := df.Images[bi], df.Images[ai]
	if busy.Size != bb.Size || busy.SharedSize != busy.Size {
		t.Errorf("busybox: Size %d SharedSize %d, want Size %d (as inspect) all shared with alpine:3.18", busy.Size, busy.SharedSize, bb.Size)
	}
	// alpine's own layer is shared too once an image built FROM alpine:3.18
	// is in the store (earlier build tests leave some; dockerd then shows
	// its unique size as 0B as well), so only the lower bound is fixed.
	if alp.SharedSize < busy.Size || alp.SharedSize > alp.Size || alp.Size <= busy.Size {
		t.Errorf("alpine:3.18: Size %d SharedSize %d, want busybox's layer (%d) shared and a layer of its own", alp.Size, alp.SharedSize, busy.Size)
	}
	if busy.Containers < 1 || alp.Containers < 0 {
		t.Errorf("containers using busybox %d, alpine %d: want >= 1 and >= 0", busy.Containers, alp.Containers)
	}
	const mib = 1 << 20
	found := false
	for _, c := range df.Containers {
		if len(c.Names) == 0 || c.Names[0] != "/"+name {
			continue
		}
		found = true
		if c.SizeRw < 2*mib || c.SizeRw > 2*mib+64<<10 {
			t.Errorf("container SizeRw %d, want the 2 MiB it wrote", c.SizeRw)
		}
		if c.SizeRootFs != c.SizeRw+bb.Size {
			t.Errorf("container SizeRootFs %d, want SizeRw %d + the image's %d", c.SizeRootFs, c.SizeRw, bb.Size)
		}
	}
	if !found {
		t.Errorf("df does not list container %s", name)
	}
	found = false
	for _, v := range df.Volumes {
		if v.Name != vol {
			continue
		}
		found = true
		if v.UsageData == nil || v.UsageData.Size != mib || v.UsageData.RefCount != 1 {
			t.Errorf("volume %s UsageData %+v, want Size %d RefCount 1", vol, v.UsageData, mib)
		}
	}
	if !found {
		t.Errorf("df does not list volume %s", vol)
	}
	if s := strings.TrimSpace(string(df.BuildCache)); s != "null" && s != "[]" && !strings.HasPrefix(s, "[{") {
		t.Errorf("BuildCache %s, want a list", s)
	}
	table := regexp.MustCompile(`(?m)^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE\n` +
		`Images\s+\d+\s+\d+\s+[\d.]+[kMG]?B\s+[\d.]+[kMG]?B \(\d+%\)\n` +
		`Containers\s+\d+\s+\d+\s+[\d.]+[kMG]?B\s+[\d.]+[kMG]?B \(\d+%\)\n` +
		`Local Volumes\s+\d+\s+\d+\s+[\d.]+[kMG]?B\s+[\d.]+[kMG]?B \(\d+%\)\n` +
		`Build Cache\s+\d+\s+\d+\s+[\d.]+[kMG]?B\s+[\d.]+[kMG]?B\s*$`)
	eachCLI(t, func(t *testing.T, c *CLI) {
		out := c.ok("system", "df").Stdout
		if !table.MatchString(out) {
			t.Errorf("%s system df:\n%s\nwant docker's table", c.name, out)
		}
		out = c.ok("system", "df", "-v").Stdout
		for _, re := range []string{
			`(?m)^Images space usage:\n\nREPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\s+SHARED SIZE\s+UNIQUE SIZE\s+CONTAINERS$`,
			`(?m)^busybox\s+latest\s+` + shortID(bb.ID) + `\s+.+\s+[\d.]+[kMG]?B\s+[\d.]+[kMG]?B\s+0B\s+[1-9]\d*$`,
			`(?m)^Containers space usage:\n\nCONTAINER ID\s+IMAGE\s+COMMAND\s+LOCAL VOLUMES\s+SIZE\s+CREATED\s+STATUS\s+NAMES$`,
			`(?m)^[0-9a-f]{12}\s+busybox:latest\s+".*"\s+1\s+2\.1MB\s+.+\s+Exited \(0\) .+\s+` + name + `$`,
			`(?m)^Local Volumes space usage:\n\nVOLUME NAME\s+LINKS\s+SIZE$`,
			`(?m)^` + vol + `\s+1\s+1\.049MB$`,
			`(?m)^Build cache usage: [\d.]+[kMG]?B`,
		} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("%s system df -v: no match for %s in\n%s", c.name, re, out)
			}
		}
	})
	// Only some kinds (API 1.42+): the others are left out.
	onlyBerth(t, "dockerd 20.10 serves API 1.41 at most")
	var part map[string]json.RawMessage
	a.call(t, "GET", "/v1.42/system/df?type=volume", nil, nil).wantStatus(t, 200).decode(t, &part)
	if v := string(part["Images"]); v != "" && v != "null" {
		t.Errorf("df?type=volume lists images: %s", v)
	}
	if v := string(part["Volumes"]); !strings.Contains(v, vol) {
		t.Errorf("df?type=volume does not list %s: %s", vol, v)
	}

}

// TestSystemPrune (issue 11 item 4): `system prune -f` removes stopped
// containers and exits 0 (it ends with POST /build/prune). On a daemon of
// its own: a prune must not take other tests' objects.
func TestSystemPrune(t *testing.T) {
	requireEnv(t)
	d := startTestDaemon(t, env.target, daemonOpts{mirror: true})
	a := d.api()
	ensureImage(t, a, "busybox:latest")
	for _, name := range cliNames {
		t.Run(name, func(t *testing.T) {
			c := cliFor(t, name, d)
			id := strings.TrimSpace(c.ok("create", "busybox", "true").Stdout)
			noteContainer(id)
			r := c.ok("system", "prune", "-f")
			if !strings.Contains(r.Stdout, "Deleted Containers:\n"+id) || !regexp.MustCompile(`(?m)^Total reclaimed space: [\d.]+[kMG]?B$`).MatchString(r.Stdout) {
				t.Errorf("%s system prune -f:\n%s\nwant the container deleted and the total", name, r.Stdout)
			}
			if ctrExists(t, a, id) {
				t.Errorf("container %s survived system prune", id)
			}
		})
	}
}
