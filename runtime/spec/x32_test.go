package spec

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"runtime"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// On a kernel without the x32 ABI the seccomp filter leaves x32 out, for
// the default profile and a custom one; elsewhere it keeps Docker's three
// architectures. The cached default profile is never shared between the two.
func TestSeccompWithoutX32(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("x32 is an x86-64 matter")
	}
	noX32 := *testHost
	noX32.NoX32 = true
	custom := `{"defaultAction":"SCMP_ACT_ERRNO","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]}],"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`
	for _, c := range []struct {
		name string
		host *Host
		opts []string
		want []specs.Arch
	}{
		{"default, x32 kernel", testHost, nil, []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}},
		{"default, no x32", &noX32, nil, []specs.Arch{specs.ArchX86_64, specs.ArchX86}},
		{"default, x32 kernel again", testHost, nil, []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}},
		{"custom, no x32", &noX32, []string{"seccomp=" + custom}, []specs.Arch{specs.ArchX86_64, specs.ArchX86}},
		{"custom, x32 kernel", testHost, []string{"seccomp=" + custom}, []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}},
	} {
		in := testInput(nil, &container.HostConfig{SecurityOpt: c.opts})
		in.Host = c.host
		s := mustGenerate(t, in)
		if s.Linux.Seccomp == nil {
			t.Fatalf("%s: no seccomp filter", c.name)
		}
		if got := s.Linux.Seccomp.Architectures; !slices.Equal(got, c.want) {
			t.Errorf("%s: architectures %v, want %v", c.name, got, c.want)
		}
	}
}

// The probe agrees with the kernel's configuration where it is readable: a
// kernel built without CONFIG_X86_X32_ABI serves no x32 system call.
func TestX32Probe(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("x32 is an x86-64 matter")
	}
	f, err := os.Open("/proc/config.gz")
	if err != nil {
		t.Skip("no /proc/config.gz")
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(cfg, []byte("\nCONFIG_X86_X32_ABI=y")) {
		t.Skip("kernel built with x32: whether it serves x32 depends on the boot")
	}
	if x32Syscalls() {
		t.Error("probe says x32 system calls are served by a kernel built without CONFIG_X86_X32_ABI")
	}
	if !DetectHost().NoX32 {
		t.Error("DetectHost().NoX32 is false on a kernel without x32")
	}
}
