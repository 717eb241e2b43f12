// Package version holds berth's version, set at build time with
// -ldflags "-X github.com/berth/berth/version.Version=...".
package version

// Version and GitCommit describe this build.
var (
	Version   = "0.1.0-dev"
	GitCommit = "unknown"
)
