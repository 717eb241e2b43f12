package system

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Runtime is what berthd learns of its OCI runtime at start.
type Runtime struct {
	// Path is the runtime binary's absolute path.
	Path string
	// Name is the runtime's own name for itself ("runc", "crun"...): the
	// first word of its --version output.
	Name string
	// Version is the version it reports ("1.1.5+ds1"), "unknown" if none.
	Version string
	// Commit is runc's "commit:" line (a git description, or a
	// distribution's package version: "1.1.5+ds1-1+deb12u1").
	Commit string
	// Unfixed lists the known runc vulnerabilities this version lacks the
	// fixes for (see runcFixes), nothing for another runtime.
	Unfixed []string
}

// runcFixes are the runc vulnerabilities berthd checks for: container
// escapes through /dev/null masking (CVE-2025-31133), /dev/console
// (CVE-2025-52565) and writes redirected into /proc (CVE-2025-52881),
// fixed upstream in runc 1.2.8, 1.3.3 and 1.4.0-rc.3.
var runcFixes = []string{"CVE-2025-31133", "CVE-2025-52565", "CVE-2025-52881"}

// debianChangelog is where a Debian or Ubuntu runc package says which
// fixes it carries.
const debianChangelog = "/usr/share/doc/runc/changelog.Debian.gz"

// ProbeRuntime finds the runtime binary name (a name in $PATH or a path)
// and asks it its version. A runtime that is missing or cannot be run is
// an error: berthd refuses to start without one. For runc, the version
// says which known vulnerabilities it lacks the fixes for, unless its
// distribution's changelog names them (a backport).
func ProbeRuntime(ctx context.Context, name string) (Runtime, error) {
	if name == "" {
		return Runtime{}, errors.New("no OCI runtime given (--runtime)")
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return Runtime{}, fmt.Errorf("OCI runtime %q: %w", name, err)
	}
	if p, err = filepath.Abs(p); err != nil {
		return Runtime{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, p, "--version").Output()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return Runtime{}, fmt.Errorf("OCI runtime %s cannot be run: %w", p, err)
	}
	rt := parseRuntimeVersion(out)
	rt.Path = p
	if rt.Name == "runc" {
		rt.Unfixed = runcUnfixed(rt.Version, rt.Commit, debianChangelog)
	}
	return rt, nil
}

// parseRuntimeVersion reads `<runtime> --version`: "runc version 1.1.5",
// then "commit: ..." among the following lines.
func parseRuntimeVersion(out []byte) Runtime {
	rt := Runtime{Version: "unknown"}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for first := true; sc.Scan(); first = false {
		line := strings.TrimSpace(sc.Text())
		if first {
			if name, ver, ok := strings.Cut(line, " version "); ok && !strings.Contains(name, " ") {
				rt.Name, rt.Version = name, strings.TrimSpace(ver)
			}
			continue
		}
		if c, ok := strings.CutPrefix(line, "commit:"); ok {
			rt.Commit = strings.TrimSpace(c)
		}
	}
	return rt
}

var runcVersionRE = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)(?:([-~])([0-9A-Za-z.-]+))?(?:\+.*)?$`)

// runcUnfixed lists the runcFixes that runc version lacks. Only a
// version known to predate them counts (an unparsable one, or a
// pre-release other than 1.4.0's release candidates, is given the benefit
// of the doubt); and a Debian-style package whose changelog, for this
// very build (its top entry is commit), names a fix has it.
func runcUnfixed(version, commit, changelog string) []string {
	if !runcPredatesFixes(version) {
		return nil
	}
	named := changelogFixes(changelog, commit)
	var out []string
	for _, cve := range runcFixes {
		if !named[cve] {
			out = append(out, cve)
		}
	}
	return out
}

// runcPredatesFixes reports whether runc version is known to lack the
// runcFixes: before 1.2.8 on 1.2, before 1.3.3 on 1.3, 1.4.0's release
// candidates before rc.3, and every release before 1.2.
func runcPredatesFixes(version string) bool {
	m := runcVersionRE.FindStringSubmatch(version)
	if m == nil {
		return false
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	patch, _ := strconv.Atoi(m[3])
	pre := m[5]
	rc := -1
	if r, ok := strings.CutPrefix(pre, "rc"); ok {
		if n, err := strconv.Atoi(strings.TrimPrefix(r, ".")); err == nil {
			rc = n
		}
	}
	switch {
	case major == 0 || (major == 1 && minor < 2):
		return true // no upstream fix on these branches
	case major > 1 || minor > 4:
		return false
	case pre != "" && rc < 0:
		return false // a development build: no claim either way
	case minor == 2:
		return patch < 8
	case minor == 3:
		return patch < 3
	default: // 1.4
		return patch == 0 && rc >= 0 && rc < 3
	}
}

// changelogFixes returns the CVE IDs that a Debian changelog names, if its
// newest entry is version commit (the package this runc binary came from;
// Debian's builds report their package version as the commit).
func changelogFixes(path, commit string) map[string]bool {
	named := map[string]bool{}
	if commit == "" {
		return named
	}
	f, err := os.Open(path)
	if err != nil {
		return named
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return named
	}
	b, err := io.ReadAll(io.LimitReader(zr, 8<<20))
	if err != nil {
		return named
	}
	top, _, _ := strings.Cut(string(b), "\n")
	// "runc (1.1.5+ds1-1+deb12u1) bookworm-security; urgency=high"
	if _, rest, ok := strings.Cut(top, "("); !ok || !strings.HasPrefix(rest, commit+")") {
		return named
	}
	for _, cve := range runcFixes {
		if bytes.Contains(b, []byte(cve)) {
			named[cve] = true
		}
	}
	return named
}

// Warnings are what berthd says of the runtime in its log and in /info.
func (rt Runtime) Warnings() []string {
	var out []string
	if rt.Version == "unknown" {
		out = append(out, fmt.Sprintf("WARNING: the OCI runtime %s did not tell its version (%s --version)", rt.Path, rt.Path))
	}
	if len(rt.Unfixed) > 0 {
		out = append(out, fmt.Sprintf("WARNING: the OCI runtime %s %s (%s) lacks the fixes for %s: a container can escape to the host through them. Install runc 1.2.8, 1.3.3, 1.4.0 or later, or a distribution build whose changelog names them",
			rt.Name, rt.Version, rt.Path, joinAnd(rt.Unfixed)))
	}
	return out
}

func joinAnd(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
