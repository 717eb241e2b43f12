package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"net"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// rootfsTar is a tiny root filesystem: static busybox as /bin/sh and a
// file to read.
func rootfsTar(t *testing.T) []byte {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("static busybox (busybox-static) is needed: %v", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, data []byte) {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	add(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	add(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb))}, bb)
	for _, l := range []string{"sh", "cat", "echo"} {
		add(&tar.Header{Name: "bin/" + l, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil)
	}
	add(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	hello := []byte("hello from an imported image\n")
	add(&tar.Header{Name: "etc/hello", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(hello))}, hello)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var imageIDLine = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// TestImport (issue 11 item 6): docker import from stdin, a file (gzip) and
// a URL, with --change, --message, --platform and a name; the output is the
// image ID line; history shows the import entry; bad changes and input are
// refused with nothing created.
func TestImport(t *testing.T) {
	a := requireEnv(t).api()
	plain := rootfsTar(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	dir := t.TempDir()
	gzFile := writeFile(t, dir, "rootfs.tar.gz", gz.Bytes())
	// The URL: a loopback HTTP server.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/rootfs.tar" {
			http.NotFound(w, r)
			return
		}
		w.Write(plain)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	url := "http://" + l.Addr().String() + "/rootfs.tar"

	type hist struct {
		CreatedBy string `json:"CreatedBy"`
		Comment   string `json:"Comment"`
		Size      int64  `json:"Size"`
	}
	history := func(ref string) []hist {
		var h []hist
		a.call(t, "GET", "/images/"+ref+"/history", nil, nil).wantStatus(t, 200).decode(t, &h)
		return h
	}
	eachCLI(t, func(t *testing.T, c *CLI) {
		base := "e2e-import-" + uniq()
		t.Cleanup(func() {
			for _, s := range []string{"stdin", "file", "url", "arm"} {
				removeImage(t, a, base+":"+s)
			}
		})
		// stdin, with every change dockerd takes and a message.
		r := c.runStdin(plain, "import",
			"-c", `CMD ["cat", "/etc/hello"]`, "-c", "ENV A=1", "-c", "ENV B=${A}2 C=${B}3", "-c", "EXPOSE 8080 53/udp",
			"-c", "LABEL k=v", "-c", "USER nobody", "-c", "WORKDIR /srv", "-c", "WORKDIR sub",
			"-c", "VOLUME /data", "-c", "ONBUILD RUN echo built",
			"-c", `ENTRYPOINT ["/bin/sh", "-c"]`, "-m", "imported by e2e", "-", base+":stdin")
		if r.Code != 0 || !imageIDLine.MatchString(strings.TrimSpace(r.Stdout)) {
			t.Fatalf("%s import -: exit %d, stdout %q (stderr %q), want just the image ID", c.name, r.Code, r.Stdout, r.Stderr)
		}
		id := strings.TrimSpace(r.Stdout)
		var img struct {
			ID           string `json:"Id"`
			Architecture string
			Os           string
			Config       struct {
				Cmd, Entrypoint, Env, OnBuild []string
				ExposedPorts, Volumes         map[string]struct{}
				Labels                        map[string]string
				User, WorkingDir              string
			}
		}
		a.call(t, "GET", "/images/"+base+":stdin/json", nil, nil).wantStatus(t, 200).decode(t, &img)
		if img.ID != id || img.Os != "linux" || img.Architecture != "amd64" {
			t.Errorf("%s: inspect Id %s os %s arch %s, want %s linux amd64", c.name, img.ID, img.Os, img.Architecture, id)
		}
		cfg := img.Config
		for what, ok := range map[string]bool{
			"Cmd":          reflect.DeepEqual(cfg.Cmd, []string{"cat", "/etc/hello"}),
			"Entrypoint":   reflect.DeepEqual(cfg.Entrypoint, []string{"/bin/sh", "-c"}),
			"Env":          contains(cfg.Env, "A=1") && contains(cfg.Env, "B=12") && contains(cfg.Env, "C=3"),
			"ExposedPorts": len(cfg.ExposedPorts) == 2 && hasKey(cfg.ExposedPorts, "8080/tcp") && hasKey(cfg.ExposedPorts, "53/udp"),
			"Labels":       cfg.Labels["k"] == "v",
			"User":         cfg.User == "nobody",
			"WorkingDir":   cfg.WorkingDir == "/srv/sub",
			"Volumes":      hasKey(cfg.Volumes, "/data"),
			"OnBuild":      reflect.DeepEqual(cfg.OnBuild, []string{"RUN echo built"}),
		} {
			if !ok {
				t.Errorf("%s import --change: %s wrong in %+v", c.name, what, cfg)
			}
		}
		if h := history(base + ":stdin"); len(h) != 1 || h[0].Comment != "imported by e2e" || h[0].CreatedBy != "" || h[0].Size <= 0 {
			t.Errorf("%s: history %+v, want one entry with the message", c.name, h)
		}
		out := c.ok("history", base+":stdin").Stdout
		if !regexp.MustCompile(`(?m)^[0-9a-f]{12}\s+.+ago\s+[\d.]+[kMG]?B\s+imported by e2e$`).MatchString(out) {
			t.Errorf("%s history:\n%s\nwant the import entry with its comment", c.name, out)
		}

		// A gzip file: the CLI sends it as "-".
		r = c.ok("import", gzFile, base+":file")
		if !imageIDLine.MatchString(strings.TrimSpace(r.Stdout)) {
			t.Errorf("%s import file: stdout %q, want the image ID", c.name, r.Stdout)
		}
		if h := history(base + ":file"); len(h) != 1 || h[0].Comment != "Imported from -" {
			t.Errorf("%s: history of a file import %+v, want \"Imported from -\"", c.name, h)
		}
		c.ok("run", "--rm", base+":file", "cat", "/etc/hello").wantOut(t, c.name+" run imported", "hello from an imported image")

		// A URL: the daemon fetches it.
		r = c.ok("import", url, base+":url")
		ls := lines(r.Stdout)
		if len(ls) < 2 || ls[0] != "Downloading from "+url || !imageIDLine.MatchString(ls[len(ls)-1]) {
			t.Errorf("%s import URL: stdout %q, want Downloading from %s then the ID", c.name, r.Stdout, url)
		}
		if h := history(base + ":url"); len(h) != 1 || h[0].Comment != "Imported from "+url {
			t.Errorf("%s: history of a URL import %+v", c.name, h)
		}

		// Bad input: nothing is created.
		before := imageState(t, a)
		c.runStdin(plain, "import", "-c", "RUN true", "-", base+":bad").wantCode(t, c.name, 1, "run is not a valid change command")
		c.runStdin(plain, "import", "-c", "STOPSIGNAL SIGQUIT", "-", base+":bad").wantCode(t, c.name, 1, "stopsignal is not a valid change command")
		c.runStdin([]byte("this is not a tar archive, not even close, it goes on for a while................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................"), "import", "-", base+":bad").wantCode(t, c.name, 1)
		c.run("import", "http://127.0.0.1:1/nothing.tar", base+":bad").wantCode(t, c.name, 1)
		if after := imageState(t, a); after != before {
			t.Errorf("%s: failed imports changed the image store:\nbefore %s\nafter  %s", c.name, before, after)
		}

		// --platform: dockerd 20.10 takes only its os (an import is always
		// its own architecture there); later dockerd, and berth, take it all.
		c.runStdin(plain, "import", "--platform", "linux/arm64", "-", base+":arm").wantCode(t, c.name, 0)
		onlyBerth(t, "dockerd 20.10 ignores the architecture of import --platform")
		a.call(t, "GET", "/images/"+base+":arm/json", nil, nil).wantStatus(t, 200).decode(t, &img)
		if img.Architecture != "arm64" {
			t.Errorf("%s import --platform linux/arm64: architecture %q", c.name, img.Architecture)
		}
	})
}

func hasKey(m map[string]struct{}, k string) bool { _, ok := m[k]; return ok }
