package system

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRuncPredatesFixes(t *testing.T) {
	for v, want := range map[string]bool{
		"1.1.5+ds1": true, "1.1.15": true, "1.0.0-rc93": true, "0.1.1": true, "v1.1.12": true,
		"1.2.0": true, "1.2.0-rc.1": true, "1.2.7": true, "1.2.8": false, "1.2.9": false, "1.2.8+ds1": false,
		"1.3.0": true, "1.3.0-rc.2": true, "1.3.2": true, "1.3.3": false, "1.3.4": false,
		"1.4.0-rc.1": true, "1.4.0-rc.2": true, "1.4.0~rc.2+ds1": true, "1.4.0-rc.3": false, "1.4.0": false, "1.4.1": false,
		"1.5.0": false, "1.10.2": false, "2.0.0": false,
		"1.3.2-dev": false, "1.1.0-dev": true, "unknown": false, "": false, "main": false,
	} {
		if got := runcPredatesFixes(v); got != want {
			t.Errorf("runc %q: predates the fixes = %v, want %v", v, got, want)
		}
	}
}

func TestParseRuntimeVersion(t *testing.T) {
	out := "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\ngo: go1.19.8\nlibseccomp: 2.5.4\n"
	got := parseRuntimeVersion([]byte(out))
	if got.Name != "runc" || got.Version != "1.1.5+ds1" || got.Commit != "1.1.5+ds1-1+deb12u1" {
		t.Errorf("Debian's runc: %+v", got)
	}
	if got := parseRuntimeVersion([]byte("crun version 1.8.1\ncommit: f8a096be060b22ccd3d5f3ebe44108517fbf6c30\nrundir: /run/crun\n")); got.Name != "crun" || got.Version != "1.8.1" {
		t.Errorf("crun: %+v", got)
	}
	if got := parseRuntimeVersion([]byte("usage: nothing here\n")); got.Version != "unknown" || got.Name != "" {
		t.Errorf("no version: %+v", got)
	}
}

func writeChangelog(t *testing.T, text string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(text))
	zw.Close()
	p := filepath.Join(t.TempDir(), "changelog.Debian.gz")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRuncUnfixedDistroBackport(t *testing.T) {
	none := filepath.Join(t.TempDir(), "missing.gz")
	if got := runcUnfixed("1.1.5+ds1", "1.1.5+ds1-1+deb12u1", none); !reflect.DeepEqual(got, runcFixes) {
		t.Errorf("1.1.5 without a changelog: %q, want all of %q", got, runcFixes)
	}
	// A backport that names two of the three.
	cl := writeChangelog(t, "runc (1.1.5+ds1-1+deb12u2) bookworm-security; urgency=high\n\n  * CVE-2025-31133: ...\n  * CVE-2025-52565: ...\n\n -- x\n\nrunc (1.1.5+ds1-1+deb12u1) bookworm-security; urgency=high\n")
	if got := runcUnfixed("1.1.5+ds1", "1.1.5+ds1-1+deb12u2", cl); !reflect.DeepEqual(got, []string{"CVE-2025-52881"}) {
		t.Errorf("backport of two: %q, want CVE-2025-52881 only", got)
	}
	// The changelog of another build says nothing of this binary.
	if got := runcUnfixed("1.1.5+ds1", "1.1.5+ds1-1+deb12u1", cl); len(got) != 3 {
		t.Errorf("changelog of another version: %q, want all three", got)
	}
	if got := runcUnfixed("1.3.3", "v1.3.3-0-gd842d77", none); got != nil {
		t.Errorf("1.3.3: %q, want none", got)
	}
}

// TestProbeRuntime: a runtime that is missing, not executable or a
// directory is an error; a runc that reports a fixed version gets no
// warning, an old one the warning.
func TestProbeRuntime(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	notExec := filepath.Join(dir, "runc-noexec")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
	for _, bad := range []string{filepath.Join(dir, "nope"), notExec, dir, "no-such-runtime-in-path"} {
		if _, err := ProbeRuntime(ctx, bad); err == nil {
			t.Errorf("ProbeRuntime(%q): no error", bad)
		}
	}
	fake := func(name, out string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\nprintf '"+out+"'\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rt, err := ProbeRuntime(ctx, fake("runc-new", `runc version 1.3.3\ncommit: v1.3.3-0-gd842d77\n`))
	if err != nil || rt.Version != "1.3.3" || rt.Commit != "v1.3.3-0-gd842d77" || len(rt.Warnings()) != 0 {
		t.Errorf("runc 1.3.3: %+v %v, warnings %q", rt, err, rt.Warnings())
	}
	rt, err = ProbeRuntime(ctx, fake("runc-old", `runc version 1.2.5\ncommit: v1.2.5-0-g59923ef\n`))
	if err != nil || len(rt.Warnings()) != 1 || !strings.Contains(rt.Warnings()[0], "CVE-2025-31133, CVE-2025-52565 and CVE-2025-52881") {
		t.Errorf("runc 1.2.5: %+v %v, warnings %q", rt, err, rt.Warnings())
	}
	if !filepath.IsAbs(rt.Path) {
		t.Errorf("Path %q is not absolute", rt.Path)
	}
}
