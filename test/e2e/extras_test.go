package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// stats, top, cp, export, diff, commit (issue 3, items 3 and 5).

// TestStatsAndTop: stats --no-stream and top read the container's cgroup
// and processes.
func TestStatsAndTop(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		name := ctrName(t, "stats")
		c.ok("run", "-d", "--name", name, "--memory", "64m", "busybox", "sleep", "300")
		id := waitRunning(t, a, name).ID

		r := c.ok("stats", "--no-stream", name)
		ls := lines(r.Stdout)
		if len(ls) != 2 || !regexp.MustCompile(`^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE / LIMIT\s+MEM %\s+NET I/O\s+BLOCK I/O\s+PIDS$`).MatchString(ls[0]) {
			t.Fatalf("%s stats --no-stream: %q, want Docker's header and one row", c.name, ls)
		}
		if !regexp.MustCompile(`^` + id[:12] + `\s+` + name + `\s+[0-9.]+%\s+[0-9.]+[KMG]?i?B / 64MiB\s+[0-9.]+%\s+.+\s+1$`).MatchString(ls[1]) {
			t.Errorf("%s stats --no-stream: row %q, want %s %s … / 64MiB … 1 (PIDS)", c.name, ls[1], id[:12], name)
		}
		r = c.ok("stats", "--no-stream", "--format", "{{.Name}}|{{.PIDs}}", name)
		r.wantOut(t, c.name, name+"|1")

		r = c.ok("top", name)
		ls = lines(r.Stdout)
		if len(ls) != 2 || !regexp.MustCompile(`^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$`).MatchString(ls[0]) || !strings.HasSuffix(ls[1], "sleep 300") || !strings.HasPrefix(ls[1], "root ") {
			t.Errorf("%s top: %q, want the ps -ef header and root … sleep 300", c.name, ls)
		}
		c.ok("stop", "-t", "0", name)
		// Docker: Error response from daemon: Container <id> is not running
		c.fail([]string{"top", name}, "Container "+id+" is not running")
	})

	// The API.
	name, id := runDetached(t, a, "statsapi", map[string]any{"HostConfig": map[string]any{"Memory": 64 << 20}}, "sleep", "300")
	waitRunning(t, a, id)
	var st struct {
		Read        string `json:"read"`
		ID          string `json:"id"`
		Name        string `json:"name"`
		MemoryStats struct {
			Usage uint64 `json:"usage"`
			Limit uint64 `json:"limit"`
		} `json:"memory_stats"`
		CPUStats struct {
			CPUUsage struct {
				TotalUsage uint64 `json:"total_usage"`
			} `json:"cpu_usage"`
			SystemUsage uint64 `json:"system_cpu_usage"`
			OnlineCPUs  int    `json:"online_cpus"`
		} `json:"cpu_stats"`
		PidsStats struct {
			Current uint64 `json:"current"`
		} `json:"pids_stats"`
	}
	a.call(t, "GET", "/containers/"+id+"/stats?stream=false", nil, nil).wantStatus(t, 200).decode(t, &st)
	if st.ID != id || st.Name != "/"+name || st.MemoryStats.Limit != 64<<20 || st.MemoryStats.Usage == 0 || st.PidsStats.Current != 1 ||
		st.CPUStats.CPUUsage.TotalUsage == 0 || st.CPUStats.OnlineCPUs != hostCPUs(t) {
		t.Errorf("stats?stream=false: %+v, want id, /name, memory limit 64MiB with some usage, 1 pid, cpu usage, online_cpus %d", st, hostCPUs(t))
	}
	if _, err := time.Parse(time.RFC3339Nano, st.Read); err != nil {
		t.Errorf("stats read %q: %v", st.Read, err)
	}
	var top struct {
		Titles    []string
		Processes [][]string
	}
	a.call(t, "GET", "/containers/"+id+"/top", nil, nil).wantStatus(t, 200).decode(t, &top)
	if len(top.Titles) == 0 || top.Titles[len(top.Titles)-1] != "CMD" || len(top.Processes) != 1 || top.Processes[0][len(top.Processes[0])-1] != "sleep 300" {
		t.Errorf("top: %+v, want one process sleep 300 under the CMD title", top)
	}
}

// TestCp: docker cp in both directions, archive HEAD/GET/PUT, confined to
// the container's root even through symlinks the container planted.
func TestCp(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		name := ctrName(t, "cp")
		c.ok("run", "-d", "--name", name, "busybox", "sh", "-c", "echo in-ctr > /tmp/f; ln -s / /rootlink; ln -s /etc /etclink; sleep 300")
		id := waitRunning(t, a, name).ID
		waitFile := func(p string) {
			t.Helper()
			if !poll(10*time.Second, func() bool { return c.run("exec", name, "test", "-e", p).Code == 0 }) {
				t.Fatalf("%s never appeared in the container", p)
			}
		}
		waitFile("/etclink")

		dir := t.TempDir()
		c.ok("cp", name+":/tmp/f", dir)
		if b, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(b) != "in-ctr\n" {
			t.Errorf("%s cp ctr:/tmp/f dir: %q %v", c.name, b, err)
		}
		c.ok("cp", name+":/etclink/hostname", filepath.Join(dir, "hn"))
		if b, _ := os.ReadFile(filepath.Join(dir, "hn")); strings.TrimSpace(string(b)) != id[:12] {
			t.Errorf("%s cp ctr:/etclink/hostname: %q, want the container's hostname %s", c.name, b, id[:12])
		}
		// Into the container: a file and a directory.
		src := filepath.Join(dir, "src")
		os.MkdirAll(filepath.Join(src, "sub"), 0o755)
		writeFile(t, src, "top.txt", []byte("top\n"))
		writeFile(t, filepath.Join(src, "sub"), "deep.txt", []byte("deep\n"))
		c.ok("cp", src, name+":/copied")
		c.ok("exec", name, "cat", "/copied/top.txt", "/copied/sub/deep.txt").wantOut(t, c.name, "top\ndeep")

		// Through a symlink to / the container planted: it lands in the
		// container's /tmp, never the host's.
		owned := "e2e-owned-" + uniq()
		writeFile(t, dir, owned, []byte("owned\n"))
		c.ok("cp", filepath.Join(dir, owned), name+":/rootlink/tmp/")
		if _, err := os.Stat("/tmp/" + owned); err == nil {
			os.Remove("/tmp/" + owned)
			t.Errorf("%s cp through the container's /rootlink -> / symlink wrote the HOST's /tmp/%s", c.name, owned)
		}
		c.ok("exec", name, "cat", "/tmp/"+owned).wantOut(t, c.name, "owned")

		// Docker: Error response from daemon: Could not find the file /nosuch in container <name>
		c.fail([]string{"cp", name + ":/nosuch", dir}, "Could not find the file /nosuch in container "+name)
	})

	// The archive endpoints.
	name, id := runDetached(t, a, "archive", nil, "sh", "-c", "printf hello > /tmp/f; sleep 300")
	waitRunning(t, a, id)
	if !poll(10*time.Second, func() bool {
		return a.call(t, "HEAD", "/containers/"+id+"/archive?path=/tmp/f", nil, nil).Status == 200
	}) {
		t.Fatalf("HEAD archive?path=/tmp/f never answered 200")
	}
	r := a.call(t, "HEAD", "/containers/"+name+"/archive?path=/tmp/f", nil, nil)
	var stat struct {
		Name       string `json:"name"`
		Size       int64  `json:"size"`
		Mode       uint32 `json:"mode"`
		LinkTarget string `json:"linkTarget"`
	}
	if b, err := base64.StdEncoding.DecodeString(r.Header.Get("X-Docker-Container-Path-Stat")); err != nil || json.Unmarshal(b, &stat) != nil || stat.Name != "f" || stat.Size != 5 {
		t.Errorf("HEAD archive: X-Docker-Container-Path-Stat %q, want base64 JSON {name f, size 5}", r.Header.Get("X-Docker-Container-Path-Stat"))
	}
	r = a.call(t, "GET", "/containers/"+name+"/archive?path=/tmp/f", nil, nil).wantStatus(t, 200)
	tr := tar.NewReader(bytes.NewReader(r.Body))
	if h, err := tr.Next(); err != nil || h.Name != "f" {
		t.Errorf("GET archive: first entry %v %v, want f", h, err)
	} else if b, _ := io.ReadAll(tr); string(b) != "hello" {
		t.Errorf("GET archive: f holds %q", b)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "put.txt", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("put"))
	tw.Close()
	a.call(t, "PUT", "/containers/"+name+"/archive?path=/tmp", buf.Bytes(), http.Header{"Content-Type": {"application/x-tar"}}).wantStatus(t, 200)
	r = a.call(t, "GET", "/containers/"+name+"/archive?path=/tmp/put.txt", nil, nil).wantStatus(t, 200)
	tr = tar.NewReader(bytes.NewReader(r.Body))
	if _, err := tr.Next(); err != nil {
		t.Errorf("the PUT file is not there: %v", err)
	} else if b, _ := io.ReadAll(tr); string(b) != "put" {
		t.Errorf("the PUT file holds %q", b)
	}
	// dockerd: 404 Could not find the file /nosuch in container <name>
	a.call(t, "GET", "/containers/"+name+"/archive?path=/nosuch", nil, nil).wantError(t, 404, "Could not find the file /nosuch in container "+name)
}

// TestDiffExportCommit: diff lists the writable layer's changes, export
// streams the container's file system, commit makes an image of it.
func TestDiffExportCommit(t *testing.T) {
	busybox(t)
	a := env.d.api()
	eachCLI(t, func(t *testing.T, c *CLI) {
		name := ctrName(t, "diff")
		c.ok("run", "--name", name, "busybox", "sh", "-c", "echo data > /tmp/newfile; rm /etc/group; mkdir /newdir")

		got := lines(c.ok("diff", name).Stdout)
		for _, want := range []string{"C /etc", "D /etc/group", "A /newdir", "C /tmp", "A /tmp/newfile"} {
			if !contains(got, want) {
				t.Errorf("%s diff: %q lacks %q", c.name, got, want)
			}
		}
		var changes []struct {
			Path string
			Kind int
		}
		a.call(t, "GET", "/containers/"+name+"/changes", nil, nil).wantStatus(t, 200).decode(t, &changes)
		kinds := map[string]int{}
		for _, ch := range changes {
			kinds[ch.Path] = ch.Kind
		}
		// Kind: 0 modified, 1 added, 2 deleted.
		if kinds["/tmp/newfile"] != 1 || kinds["/etc/group"] != 2 || kinds["/etc"] != 0 {
			t.Errorf("changes: %v, want /tmp/newfile 1, /etc/group 2, /etc 0", changes)
		}

		out := filepath.Join(t.TempDir(), "export.tar")
		c.ok("export", "-o", out, name)
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		tr := tar.NewReader(f)
		for {
			h, err := tr.Next()
			if err != nil {
				if err != io.EOF {
					t.Errorf("%s export: not a tar: %v", c.name, err)
				}
				break
			}
			names[strings.TrimPrefix(h.Name, "./")] = true
			if strings.TrimPrefix(h.Name, "./") == "tmp/newfile" {
				if b, _ := io.ReadAll(tr); string(b) != "data\n" {
					t.Errorf("%s export: tmp/newfile holds %q", c.name, b)
				}
			}
		}
		f.Close()
		for _, want := range []string{"bin/sh", "tmp/newfile", "newdir/", "etc/hostname"} {
			if !names[want] && !names[strings.TrimSuffix(want, "/")] {
				t.Errorf("%s export: the archive lacks %s", c.name, want)
			}
		}
		if names["etc/group"] {
			t.Errorf("%s export: etc/group, deleted in the container, is in the archive", c.name)
		}

		img := "e2e/committed:" + uniq()
		t.Cleanup(func() { removeImage(t, a, img) })
		r := c.ok("commit", "--change", `CMD ["cat", "/tmp/newfile"]`, name, img)
		if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(strings.TrimSpace(r.Stdout)) {
			t.Errorf("%s commit: %q, want sha256:<id>", c.name, r.Stdout)
		}
		c.ok("run", "--rm", "--name", ctrName(t, "fromcommit"), img).wantOut(t, c.name, "data")
		base := inspectImage(t, a, "busybox:latest")
		ci := inspectImage(t, a, img)
		if len(ci.RootFS.Layers) != len(base.RootFS.Layers)+1 || strings.Join(ci.Config.Cmd, " ") != "cat /tmp/newfile" {
			t.Errorf("%s commit: image layers %d (base %d) Cmd %q, want one more layer and the new CMD", c.name, len(ci.RootFS.Layers), len(base.RootFS.Layers), ci.Config.Cmd)
		}
	})
}
