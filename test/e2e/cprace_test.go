package e2e

import (
	"archive/tar"
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCpSymlinkSwapRace (issue 12, "keep passing"): while the container
// swaps a directory with symlinks to a directory of the host (absolute,
// and relative with enough ".." to climb out of a host-side rootfs path),
// archive reads never return the host's file and archive writes never
// land in the host's directory: paths resolve inside the container only,
// whatever it does meanwhile (the CVE-2018-15664 class).
func TestCpSymlinkSwapRace(t *testing.T) {
	busybox(t)
	a := env.d.api()
	host := t.TempDir()
	if err := os.Chmod(host, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("HOSTSECRET\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	up := strings.Repeat("../", 30)
	swap := `mkdir -p /d && echo INSIDE > /d/f
while :; do
  mv /d /d.real; ln -s ` + host + ` /d; rm /d
  ln -s ` + up + host[1:] + ` /d; rm /d
  mv /d.real /d
done`
	name := ctrName(t, "cprace")
	// The API calls are the test; the CLI only starts the container.
	func(c *CLI) {
		c.ok("run", "-d", "--name", name, "busybox", "sh", "-c", swap)
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		tw.WriteHeader(&tar.Header{Name: "planted", Mode: 0o644, Size: 2})
		tw.Write([]byte("x\n"))
		tw.Close()
		inside := 0
		for range 60 {
			r := a.call(t, "GET", "/containers/"+name+"/archive?path=/d/f", nil, nil)
			if r.Status == http.StatusOK {
				_, data := readTarEntries(t, r.Body)
				if strings.Contains(data["f"], "HOSTSECRET") {
					t.Fatalf("reading /d/f from the container returned the host's %s/f", host)
				}
				if data["f"] == "INSIDE\n" {
					inside++
				}
			}
			a.call(t, "PUT", "/containers/"+name+"/archive?path=/d", tb.Bytes(), http.Header{"Content-Type": {"application/x-tar"}})
			if _, err := os.Lstat(filepath.Join(host, "planted")); err == nil {
				t.Fatalf("writing into the container's /d created %s/planted on the host", host)
			}
		}
		if inside == 0 {
			t.Logf("%s: no read of /d/f met the real directory in 60 tries", c.name)
		}
		c.ok("rm", "-f", name)
	}(cli(t, cliNames[0]))
}
