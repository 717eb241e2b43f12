package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeRunc writes a runc wrapper that reports version (and commit) to
// --version and hands every other call to the host's runc.
func fakeRunc(t *testing.T, version, commit string) string {
	t.Helper()
	real, err := exec.LookPath("runc")
	if err != nil {
		t.Fatalf("runc: %v", err)
	}
	p := filepath.Join(t.TempDir(), "runc")
	script := "#!/bin/sh\nif [ \"$1\" = --version ]; then printf 'runc version " + version + "\\ncommit: " + commit + "\\nspec: 1.2.1\\n'; exit 0; fi\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRuntimeVersionReported (issue 12, item 7): info and version report
// the OCI runtime's version as dockerd does (RuncCommit, the runc
// component); berthd also warns, in info and in its log, when that runc
// lacks the fixes for CVE-2025-31133, CVE-2025-52565 and CVE-2025-52881,
// and never for a version that has them; a runtime that is missing or not
// executable stops it at start with a clear error.
func TestRuntimeVersionReported(t *testing.T) {
	d := requireEnv(t)
	out, err := exec.Command("runc", "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	var commit string
	for _, l := range lines(string(out)) {
		if c, ok := strings.CutPrefix(l, "commit: "); ok {
			commit = c
		}
	}
	c := cliFor(t, "docker", d)
	if got := strings.TrimSpace(c.ok("info", "--format", "{{.RuncCommit.ID}}").Stdout); got != commit {
		t.Errorf("info RuncCommit.ID = %q, want runc's commit %q", got, commit)
	}
	// Before API 1.49 each Commit also has Expected, the same (moby's
	// TestInfoBinaryCommits).
	type commits struct{ RuncCommit, ContainerdCommit, InitCommit map[string]*string }
	var old commits
	d.api().call(t, "GET", "/v1.41/info", nil, nil).wantStatus(t, 200).decode(t, &old)
	for what, m := range map[string]map[string]*string{"RuncCommit": old.RuncCommit, "ContainerdCommit": old.ContainerdCommit, "InitCommit": old.InitCommit} {
		if m["ID"] == nil || m["Expected"] == nil || *m["Expected"] != *m["ID"] {
			t.Errorf("GET /v1.41/info: %s %v, want an ID and the same Expected", what, m)
		}
	}
	if old.RuncCommit["ID"] != nil && *old.RuncCommit["ID"] != commit {
		t.Errorf("GET /v1.41/info: RuncCommit.ID %q, want %q", *old.RuncCommit["ID"], commit)
	}
	var v struct {
		Components []struct {
			Name    string
			Version string
			Details map[string]string
		}
	}
	if err := json.Unmarshal([]byte(c.ok("version", "--format", "{{json .Server}}").Stdout), &v); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, comp := range v.Components {
		if comp.Name == "runc" {
			found = true
			if comp.Details["GitCommit"] != commit || !strings.Contains(string(out), "version "+comp.Version) {
				t.Errorf("version's runc component %+v, want the version and commit of %q", comp, out)
			}
		}
	}
	if !found {
		t.Errorf("version has no runc component: %+v", v.Components)
	}

	onlyBerth(t, "dockerd 20.10 neither checks its runtime's version nor refuses a missing one at start")
	var cur commits
	d.api().call(t, "GET", "/v1.49/info", nil, nil).wantStatus(t, 200).decode(t, &cur)
	if _, ok := cur.RuncCommit["Expected"]; ok || cur.RuncCommit["ID"] == nil {
		t.Errorf("GET /v1.49/info: RuncCommit %v, want an ID and no Expected (gone at 1.49)", cur.RuncCommit)
	}
	for _, tc := range []struct {
		version, commit string
		warn            bool
	}{
		{"1.2.5", "v1.2.5-0-g59923ef", true},
		{"1.3.3", "v1.3.3-0-gd842d77", false},
		{"1.4.0-rc.3", "v1.4.0-rc.3-0-g1ac6fe2", false},
	} {
		rd := startTestDaemon(t, "berth", daemonOpts{args: []string{"--runtime", fakeRunc(t, tc.version, tc.commit)}})
		info := cliFor(t, "docker", rd).ok("info", "--format", "{{json .Warnings}}").Stdout
		hasInfo := strings.Contains(info, "CVE-2025-31133, CVE-2025-52565 and CVE-2025-52881")
		hasLog := strings.Contains(rd.logTail(200), "CVE-2025-52881")
		if hasInfo != tc.warn || hasLog != tc.warn {
			t.Errorf("runc %s: warning in info %v, in the log %v; want %v\ninfo: %s", tc.version, hasInfo, hasLog, tc.warn, info)
		}
		rd.cleanup()
	}
	notExec := filepath.Join(t.TempDir(), "runc")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
	for _, bad := range []string{filepath.Join(t.TempDir(), "no-runc"), notExec} {
		bd, err := spawnDaemon("berth", daemonOpts{args: []string{"--runtime", bad}})
		if err != nil {
			t.Fatal(err)
		}
		if !bd.waitExit(readyTimeout) {
			bd.cleanup()
			t.Fatalf("berthd --runtime %s did not exit", bad)
		}
		log := bd.logTail(10)
		if bd.exitCode() == 0 || !strings.Contains(log, "OCI runtime") || !strings.Contains(log, bad) {
			t.Errorf("berthd --runtime %s: exit %d, log:\n%s\nwant a refusal naming the runtime", bad, bd.exitCode(), log)
		}
		bd.cleanup()
	}
}
