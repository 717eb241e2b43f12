package spec

import (
	"errors"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// testHost is a host like this one: no CAP_SYS_RESOURCE, a hard nofile
// limit of 20000, cgroup v1 with swap accounting, 2 CPUs.
var testHost = &Host{
	Caps:       capsFromMask(0x1fffeffffff),
	NofileHard: 20000,
	SwapLimit:  true,
	NumCPU:     2,
}

const testPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
app:x:1000:1000:app:/home/app:/bin/sh
broken:x:notanumber:1::/:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`

const testGroup = `root:x:0:root
daemon:x:1:
wheel:x:10:root,app
app:x:1000:
staff:x:50:app,daemon
docker:x:999:
nogroup:x:65534:
`

func testUsers(user string, groupAdd []string) (specs.User, error) {
	return ResolveUser([]byte(testPasswd), []byte(testGroup), user, groupAdd)
}

// testInput returns an input that generates without touching the disk
// (other than the cwd check on a rootfs that does not exist).
func testInput(cfg *container.Config, hc *container.HostConfig) Input {
	if cfg == nil {
		cfg = &container.Config{Cmd: []string{"sh"}}
	}
	return Input{
		ID:         "0123456789abcdef0123456789abcdef",
		Config:     cfg,
		HostConfig: hc,
		Rootfs:     "/nonexistent-berth-rootfs",
		Users:      testUsers,
		Host:       testHost,
	}
}

func mustGenerate(t *testing.T, in Input) *specs.Spec {
	t.Helper()
	s, err := Generate(in)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return s
}

// wantInvalid checks err is an InvalidArgument error containing msg.
func wantInvalid(t *testing.T, err error, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", msg)
	}
	if !errors.Is(err, cerrdefs.ErrInvalidArgument) {
		t.Errorf("error %q is not InvalidArgument", err)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q, want it to contain %q", err, msg)
	}
}

func findMount(s *specs.Spec, dest string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dest {
			return &s.Mounts[i]
		}
	}
	return nil
}
