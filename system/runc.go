package system

import (
	"os/exec"
	"strings"
)

// runcVersion returns the version the runtime binary reports.
func runcVersion(path string) string {
	if path == "" {
		path = "runc"
	}
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		return "unknown"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(strings.TrimPrefix(first, "runc version"))
}
