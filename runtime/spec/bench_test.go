package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// benchInput is a typical `run --rm busybox true`-like start: an image
// config, a small request, the three /etc files, a rootfs on disk.
func benchInput(b *testing.B) Input {
	rootfs := filepath.Join(b.TempDir(), "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		b.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte(testPasswd), 0o644)
	_ = os.WriteFile(filepath.Join(rootfs, "etc/group"), []byte(testGroup), 0o644)
	img := &dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Cmd: []string{"sh"},
	}}
	return Input{
		ID:         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Image:      img,
		Config:     &container.Config{Cmd: []string{"true"}, Env: []string{"A=1"}},
		HostConfig: &container.HostConfig{Resources: container.Resources{Memory: 64 << 20}},
		Rootfs:     rootfs,
		Mounts: []specs.Mount{
			{Destination: "/etc/resolv.conf", Type: "bind", Source: "/run/berth/x/resolv.conf", Options: []string{"rbind", "rprivate"}},
			{Destination: "/etc/hostname", Type: "bind", Source: "/run/berth/x/hostname", Options: []string{"rbind", "rprivate"}},
			{Destination: "/etc/hosts", Type: "bind", Source: "/run/berth/x/hosts", Options: []string{"rbind", "rprivate"}},
		},
		CgroupsPath: "/berth/x",
		Host:        testHost,
	}
}

// BenchmarkGenerate is the whole conversion, reading the rootfs's passwd
// and group files.
func BenchmarkGenerate(b *testing.B) {
	in := benchInput(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Generate(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGenerateNoIO leaves the user files out: the pure conversion.
func BenchmarkGenerateNoIO(b *testing.B) {
	in := benchInput(b)
	in.Users = testUsers
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Generate(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExecProcess(b *testing.B) {
	in := benchInput(b)
	base, err := Generate(in)
	if err != nil {
		b.Fatal(err)
	}
	ei := ExecInput{Cmd: []string{"sh"}, User: "app", WorkingDir: "/tmp", Host: testHost}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ExecProcess(base, ei); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDefaultSeccompUncached is what the cache saves per start.
func BenchmarkDefaultSeccompUncached(b *testing.B) {
	s := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: DefaultCaps}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := seccompProfileUncached(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMarshal is what writing config.json costs the caller; the
// seccomp profile is most of it.
func BenchmarkMarshal(b *testing.B) {
	in := benchInput(b)
	in.Users = testUsers
	s, err := Generate(in)
	if err != nil {
		b.Fatal(err)
	}
	var n int
	b.ReportAllocs()
	for b.Loop() {
		out, err := json.Marshal(s)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.ReportMetric(float64(n), "bytes")
}
