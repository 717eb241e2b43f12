package cli

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/moby/moby/client"
)

func testBuildCLI(stdin string, env map[string]string) *CLI {
	c := New(strings.NewReader(stdin), &bytes.Buffer{}, &bytes.Buffer{})
	c.Getenv = func(k string) string { return env[k] }
	c.LookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c.opts.configDir = os.TempDir()
	return c
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestBuildSolveOptContexts(t *testing.T) {
	dir := writeFiles(t, map[string]string{"Dockerfile": "FROM scratch\n", "sub/Other.df": "FROM scratch\n"})
	lower := writeFiles(t, map[string]string{"dockerfile": "FROM scratch\n"})

	c := testBuildCLI("", nil)
	so, cleanup, err := c.buildSolveOpt(dir, &buildOptions{})
	defer cleanup()
	if err != nil {
		t.Fatal(err)
	}
	if so.FrontendAttrs["filename"] != "Dockerfile" || so.LocalMounts["context"] == nil || so.LocalMounts["dockerfile"] == nil {
		t.Errorf("dir context: attrs %v, mounts %v", so.FrontendAttrs, so.LocalMounts)
	}
	if so.Exports[0].Type != "moby" {
		t.Errorf("default export %+v, want moby", so.Exports)
	}

	// -f names a file outside the context: its directory is the
	// dockerfile mount, its base name the filename.
	so, cleanup, err = c.buildSolveOpt(dir, &buildOptions{file: filepath.Join(dir, "sub", "Other.df")})
	defer cleanup()
	if err != nil || so.FrontendAttrs["filename"] != "Other.df" {
		t.Errorf("-f: %v, attrs %v", err, so.FrontendAttrs)
	}

	// A lower-case dockerfile is found as docker finds it.
	so, cleanup, err = c.buildSolveOpt(lower, &buildOptions{})
	defer cleanup()
	if err != nil || so.FrontendAttrs["filename"] != "dockerfile" {
		t.Errorf("lower-case: %v, attrs %v", err, so.FrontendAttrs)
	}

	// -f -: the Dockerfile from stdin, into a temporary directory that
	// cleanup removes.
	c = testBuildCLI("FROM busybox\nRUN true\n", nil)
	so, cleanup, err = c.buildSolveOpt(dir, &buildOptions{file: "-"})
	if err != nil {
		t.Fatal(err)
	}
	if so.FrontendAttrs["dockerfilekey"] != "dockerfile" || so.FrontendAttrs["filename"] != "Dockerfile" {
		t.Errorf("-f -: attrs %v", so.FrontendAttrs)
	}
	var tmp string
	_ = so.LocalMounts["dockerfile"].Walk(t.Context(), "", func(p string, _ os.DirEntry, err error) error {
		if p == "Dockerfile" {
			tmp = p
		}
		return err
	})
	if tmp == "" {
		t.Errorf("-f -: no Dockerfile in the dockerfile mount")
	}
	cleanup()

	// A Dockerfile on stdin as the context: an empty context.
	c = testBuildCLI("FROM busybox\n", nil)
	so, cleanup, err = c.buildSolveOpt("-", &buildOptions{})
	defer cleanup()
	if err != nil || so.LocalMounts["context"] == nil || so.LocalMounts["dockerfile"] == nil {
		t.Errorf("stdin Dockerfile: %v, mounts %v", err, so.LocalMounts)
	}

	// A tar on stdin is the context, uploaded in the session.
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	_ = tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: 13})
	_, _ = tw.Write([]byte("FROM scratch\n"))
	_ = tw.Close()
	c = testBuildCLI(tb.String(), nil)
	so, cleanup, err = c.buildSolveOpt("-", &buildOptions{})
	defer cleanup()
	if err != nil || !strings.HasPrefix(so.FrontendAttrs["context"], "http://buildkit-session/") || len(so.LocalMounts) != 0 {
		t.Errorf("stdin tar: %v, attrs %v, mounts %v", err, so.FrontendAttrs, so.LocalMounts)
	}

	for _, tc := range []struct {
		ctx, file, stdin, want string
	}{
		{"/nonexistent/ctx", "", "", `unable to prepare context: path "/nonexistent/ctx" not found`},
		{"-", "-", "", "can't use stdin for both build context and dockerfile"},
		{"-", "Dockerfile", "FROM x\n", "ambiguous Dockerfile source"},
	} {
		c = testBuildCLI(tc.stdin, nil)
		_, cleanup, err = c.buildSolveOpt(tc.ctx, &buildOptions{file: tc.file})
		cleanup()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("context %q -f %q: error %v, want %q", tc.ctx, tc.file, err, tc.want)
		}
	}
}

func TestBuildFlagsToSolveOpt(t *testing.T) {
	dir := writeFiles(t, map[string]string{"Dockerfile": "FROM scratch\n"})
	c := testBuildCLI("", map[string]string{"FROM_ENV": "e", "EMPTY": ""})
	opts := &buildOptions{
		tags:      []string{"a:1", "b"},
		buildArgs: []string{"X=1", "FROM_ENV", "EMPTY", "UNSET", "EQ=a=b"},
		labels:    []string{"l1=v", "l2"},
		target:    "stage",
		noCache:   true,
		pull:      true,
		network:   "host",
		addHosts:  []string{"h1:10.0.0.1", "h2=::1"},
		platforms: []string{"linux/amd64"},
		shmSize:   "64m",
	}
	so, cleanup, err := c.buildSolveOpt(dir, opts)
	defer cleanup()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"build-arg:X": "1", "build-arg:FROM_ENV": "e", "build-arg:EMPTY": "", "build-arg:EQ": "a=b",
		"label:l1": "v", "label:l2": "", "target": "stage", "no-cache": "", "image-resolve-mode": "pull",
		"force-network-mode": "host", "add-hosts": "h1=10.0.0.1,h2=::1", "platform": "linux/amd64",
		"shm-size": "67108864", "filename": "Dockerfile",
	}
	for k, v := range want {
		if got, ok := so.FrontendAttrs[k]; !ok || got != v {
			t.Errorf("attr %s = %q (set %v), want %q", k, got, ok, v)
		}
	}
	if _, ok := so.FrontendAttrs["build-arg:UNSET"]; ok {
		t.Errorf("--build-arg UNSET (not in the environment) was sent")
	}
	if !slices.Contains(so.AllowedEntitlements, "network.host") {
		t.Errorf("--network=host: entitlements %v", so.AllowedEntitlements)
	}
	if len(so.Exports) != 1 || so.Exports[0].Type != "moby" || so.Exports[0].Attrs["name"] != "a:1,b" {
		t.Errorf("exports %+v", so.Exports)
	}

	for _, tc := range []struct {
		opts buildOptions
		want string
	}{
		{buildOptions{network: "bridge2"}, `network mode "bridge2" not supported`},
		{buildOptions{addHosts: []string{"nohost"}}, "invalid host nohost"},
		{buildOptions{platforms: []string{"linux/amd64,linux/arm64"}}, "Multi-platform build is not supported for the docker driver.\nSwitch to a different driver, or turn on the containerd image store, and try again."},
		{buildOptions{platforms: []string{"linux/amd64", "linux/arm64"}, tags: []string{"x"}}, "Multi-platform build is not supported"},
		{buildOptions{outputs: []string{"type=oci,dest=x"}}, `output type "oci" is not supported`},
		{buildOptions{outputs: []string{"type=local"}}, "dest is required"},
		{buildOptions{outputs: []string{"type=local,dest=a", "type=tar,dest=b"}}, "multiple outputs"},
		{buildOptions{secrets: []string{"src=/x"}}, "secret ID missing"},
		{buildOptions{cacheFrom: []string{"type=local"}}, "src is required"},
	} {
		_, cleanup, err := c.buildSolveOpt(dir, &tc.opts)
		cleanup()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.opts, err, tc.want)
		}
	}
	// Several platforms into a directory or a tar: BuildKit's exporters
	// take them (one subdirectory per platform).
	mp := buildOptions{platforms: []string{"linux/amd64,linux/arm64"}, outputs: []string{"type=local,dest=" + t.TempDir()}}
	so, cleanup, err = c.buildSolveOpt(dir, &mp)
	cleanup()
	if err != nil || so.FrontendAttrs["platform"] != "linux/amd64,linux/arm64" {
		t.Errorf("-o type=local with two platforms: %v, platform %q", err, so.FrontendAttrs["platform"])
	}
}

func TestBuildExports(t *testing.T) {
	for _, tc := range []struct {
		opts     buildOptions
		typ      string
		attrs    map[string]string
		dir      string
		toStdout bool
	}{
		{buildOptions{}, "moby", map[string]string{}, "", false},
		{buildOptions{tags: []string{"x"}, load: true, push: true}, "moby", map[string]string{"name": "x", "push": "true"}, "", false},
		{buildOptions{outputs: []string{"out"}}, "local", map[string]string{}, "out", false},
		{buildOptions{outputs: []string{"type=local,dest=d"}}, "local", map[string]string{}, "d", false},
		{buildOptions{outputs: []string{"-"}}, "tar", map[string]string{}, "", true},
		{buildOptions{outputs: []string{"type=registry"}, tags: []string{"r/x"}}, "moby", map[string]string{"name": "r/x", "push": "true"}, "", false},
	} {
		exps, err := buildExports(&tc.opts)
		if err != nil {
			t.Errorf("%+v: %v", tc.opts, err)
			continue
		}
		if len(exps) != 1 || exps[0].Type != tc.typ || !reflect.DeepEqual(exps[0].Attrs, tc.attrs) || exps[0].OutputDir != tc.dir || (exps[0].Output != nil) != tc.toStdout {
			t.Errorf("%+v: exports %+v", tc.opts, exps)
		}
	}
}

func TestParseSecret(t *testing.T) {
	for in, want := range map[string][2]string{ // id=... -> FilePath, Env
		"id=a,src=/f":         {"/f", ""},
		"id=a,source=/f":      {"/f", ""},
		"id=a,env=V":          {"", "V"},
		"id=a":                {"", "a"},
		"id=a,type=env,src=V": {"", "V"},
	} {
		s, err := parseSecret(in)
		if err != nil || s.ID != "a" || s.FilePath != want[0] || s.Env != want[1] {
			t.Errorf("%s: %+v %v, want file %q env %q", in, s, err, want[0], want[1])
		}
	}
	if _, err := parseSecret("id=a,bogus=1"); err == nil {
		t.Errorf("an unknown key was accepted")
	}
}

func TestBuildDisplayMode(t *testing.T) {
	for _, tc := range []struct {
		progress string
		quiet    bool
		want     progressui.DisplayMode
		wantQ    bool
		err      string
	}{
		{"auto", false, progressui.AutoMode, false, ""},
		{"plain", false, progressui.PlainMode, false, ""},
		{"tty", false, progressui.TtyMode, false, ""},
		{"quiet", false, progressui.QuietMode, true, ""},
		{"none", false, progressui.QuietMode, false, ""},
		{"auto", true, progressui.QuietMode, true, ""},
		{"plain", true, "", true, "progress=plain and quiet cannot be used together"},
		{"fancy", false, "", false, "invalid progress mode fancy"},
	} {
		o := buildOptions{progress: tc.progress, quiet: tc.quiet}
		m, err := buildDisplayMode(&o)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s/%v: error %v, want %q", tc.progress, tc.quiet, err, tc.err)
			}
			continue
		}
		if err != nil || m != tc.want || o.quiet != tc.wantQ {
			t.Errorf("%s/%v: %q quiet=%v %v", tc.progress, tc.quiet, m, o.quiet, err)
		}
	}
}

func TestIsArchive(t *testing.T) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	_ = tw.WriteHeader(&tar.Header{Name: "a", Mode: 0o644})
	_ = tw.Close()
	if !isArchive(tb.Bytes()) || !isArchive([]byte{0x1f, 0x8b, 8, 0}) {
		t.Errorf("a tar or gzip is not an archive")
	}
	if isArchive([]byte("FROM busybox\nRUN true\n")) {
		t.Errorf("a Dockerfile is an archive")
	}
}

func TestBuilderPruneFilters(t *testing.T) {
	f := client.Filters{}
	f.Add("until", "24h")
	f.Add("id", "abc")
	f.Add("type", "regular")
	keep, exprs, err := builderPruneFilters(f)
	if err != nil || keep.Hours() != 24 || len(exprs) != 1 {
		t.Fatalf("keep %v exprs %v err %v", keep, exprs, err)
	}
	parts := strings.Split(exprs[0], ",")
	slices.Sort(parts)
	if !reflect.DeepEqual(parts, []string{"id~=abc", "type==regular"}) {
		t.Errorf("filter expressions %v", parts)
	}
	f = client.Filters{}
	f.Add("until", "1h")
	f.Add("unused-for", "1h")
	if _, _, err := builderPruneFilters(f); err == nil {
		t.Errorf("until with unused-for accepted")
	}
	f = client.Filters{}
	f.Add("until", "yesterday")
	if _, _, err := builderPruneFilters(f); err == nil {
		t.Errorf("a bad duration accepted")
	}
}
