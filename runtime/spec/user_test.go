package spec

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
)

func TestResolveUser(t *testing.T) {
	tests := []struct {
		user     string
		groupAdd []string
		uid, gid uint32
		gids     []uint32
		wantErr  string
	}{
		{"", nil, 0, 0, []uint32{0, 10}, ""},
		{"root", nil, 0, 0, []uint32{0, 10}, ""},
		{"0", nil, 0, 0, []uint32{0, 10}, ""},
		{"app", nil, 1000, 1000, []uint32{1000, 10, 50}, ""},
		{"1000", nil, 1000, 1000, []uint32{1000, 10, 50}, ""},
		{"app:staff", nil, 1000, 50, []uint32{50}, ""},    // explicit group: no implicit supplementary groups
		{"app:999", nil, 1000, 999, []uint32{999}, ""},    // numeric group found by gid
		{"app:4242", nil, 1000, 4242, []uint32{4242}, ""}, // numeric group need not exist
		{"1234", nil, 1234, 0, []uint32{0}, ""},           // numeric user need not exist
		{"1234:1234", nil, 1234, 1234, []uint32{1234}, ""},
		{"daemon", []string{"docker", "4000", "staff"}, 1, 1, []uint32{1, 50, 999, 4000}, ""},
		{"", []string{"wheel"}, 0, 0, []uint32{0, 10}, ""},
		{"xyz", nil, 0, 0, nil, "unable to find user xyz: no matching entries in passwd file"},
		{"app:nosuch", nil, 0, 0, nil, "unable to find group nosuch: no matching entries in group file"},
		{"app", []string{"nosuch"}, 0, 0, nil, "Unable to find group nosuch: no matching entries in group file"},
		{"2147483648", nil, 0, 0, nil, "uids and gids must be in range 0-2147483647"},
		{"1:2147483648", nil, 0, 0, nil, "uids and gids must be in range 0-2147483647"},
		{"broken", nil, 0, 0, nil, "unable to find user broken"}, // a malformed line never matches
		{"#", nil, 0, 0, nil, "unable to find user #"},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			u, err := testUsers(tt.user, tt.groupAdd)
			if tt.wantErr != "" {
				wantInvalid(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.UID != tt.uid || u.GID != tt.gid || !slices.Equal(u.AdditionalGids, tt.gids) {
				t.Errorf("got %d:%d %v, want %d:%d %v", u.UID, u.GID, u.AdditionalGids, tt.uid, tt.gid, tt.gids)
			}
		})
	}
}

func TestResolveUserWithoutFiles(t *testing.T) {
	u, err := ResolveUser(nil, nil, "", nil)
	if err != nil || u.UID != 0 || u.GID != 0 {
		t.Errorf("root without passwd: %+v %v", u, err)
	}
	if u, err = ResolveUser(nil, nil, "33:33", nil); err != nil || u.UID != 33 || u.GID != 33 {
		t.Errorf("numeric without passwd: %+v %v", u, err)
	}
	_, err = ResolveUser(nil, nil, "www-data", nil)
	wantInvalid(t, err, "unable to find user www-data: no matching entries in passwd file")
}

func TestRootfsUsers(t *testing.T) {
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(rootfs, "usr/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A file outside the rootfs the image must never reach.
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte("evil:x:0:0::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// /etc/passwd is an absolute symlink: inside the container it means
	// rootfs/usr/lib/passwd, not the host's /usr/lib/passwd.
	if err := os.WriteFile(filepath.Join(rootfs, "usr/lib/passwd"), []byte(testPasswd), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/lib/passwd", filepath.Join(rootfs, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	// /etc/group climbs out with ../..: it stays in the rootfs (and is missing).
	if err := os.Symlink("../../../../../group", filepath.Join(rootfs, "etc/group")); err != nil {
		t.Fatal(err)
	}
	users := RootfsUsers(rootfs)
	u, err := users("app", nil)
	if err != nil {
		t.Fatal(err)
	}
	if u.UID != 1000 || u.GID != 1000 || !slices.Equal(u.AdditionalGids, []uint32{1000}) {
		t.Errorf("app = %+v", u)
	}

	// A symlink that escapes to the outside file is resolved inside.
	if err := os.Remove(filepath.Join(rootfs, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../passwd", filepath.Join(rootfs, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	_, err = users("evil", nil)
	wantInvalid(t, err, "unable to find user evil")

	// Generate uses the rootfs when no resolver is given.
	in := testInput(&container.Config{Cmd: []string{"sh"}, User: "1000:1000"}, nil)
	in.Rootfs, in.Users = rootfs, nil
	s := mustGenerate(t, in)
	if s.Process.User.UID != 1000 || s.Process.User.GID != 1000 {
		t.Errorf("user %+v", s.Process.User)
	}
}
