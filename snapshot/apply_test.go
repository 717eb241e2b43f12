package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/berth/berth/archive"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

func TestChainID(t *testing.T) {
	d1 := digest.FromString("layer1")
	d2 := digest.FromString("layer2")
	if got := ChainID("", d1); got != d1 {
		t.Fatalf("base chain ID = %s, want diff ID", got)
	}
	want := digest.FromString(d1.String() + " " + d2.String())
	if got := ChainID(d1, d2); got != want {
		t.Fatalf("ChainID = %s, want %s", got, want)
	}
}

func TestApplyUnpacksEverything(t *testing.T) {
	s := newTestStore(t)
	dirTime := time.Date(2019, 1, 2, 3, 4, 5, 0, time.UTC)
	linkTime := time.Date(2018, 6, 7, 8, 9, 10, 0, time.UTC)

	setuid := fileEnt("usr/bin/su", "#!su", 0o4755)
	setuid.hdr.Uid, setuid.hdr.Gid = 0, 42
	owned := fileEnt("home/u/file", "hello", 0o640)
	owned.hdr.Uid, owned.hdr.Gid = 1000, 1001
	owned.hdr.ModTime = time.Date(2020, 1, 1, 0, 0, 0, 500, time.UTC)
	owned.hdr.Format = tar.FormatPAX // keep the nanoseconds
	owned.hdr.PAXRecords = map[string]string{
		"SCHILY.xattr.user.comment":        "hi",
		"SCHILY.xattr.trusted.overlay.foo": "must-not-be-set",
	}
	home := dirEnt("home/u/", 0o750)
	home.hdr.Uid, home.hdr.Gid = 1000, 1000
	home.hdr.ModTime = dirTime
	home.hdr.PAXRecords = map[string]string{"SCHILY.xattr.trusted.berth": "dir"}
	tmp := dirEnt("tmp", 0o1777)
	link := symlinkEnt("home/u/link", "../../usr/bin/su")
	link.hdr.Uid, link.hdr.Gid = 1000, 1000
	link.hdr.ModTime = linkTime
	link.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.nope": "skipped quietly"}
	chr := ent{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: testTime}}
	blk := ent{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/sda", Mode: 0o660, Devmajor: 8, Devminor: 0, Gid: 6, ModTime: testTime}}
	fifo := ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600, ModTime: testTime}}

	l := applyTar(t, s, "",
		dirEnt("usr/", 0o755), // note: no usr/bin/ entry: created implicitly
		setuid,
		linkEnt("usr/bin/su2", "usr/bin/su"),
		home, owned, link, tmp, chr, blk, fifo,
		fileEnt("/abs/file", "abs", 0o644),
	)
	d := l.Dir

	st := lstat(t, filepath.Join(d, "usr/bin/su"))
	if st.Mode&0o7777 != 0o4755 || st.Gid != 42 {
		t.Errorf("setuid file: mode %o gid %d", st.Mode&0o7777, st.Gid)
	}
	st2 := lstat(t, filepath.Join(d, "usr/bin/su2"))
	if st2.Ino != st.Ino || st.Nlink != 2 {
		t.Errorf("hardlink: inodes %d/%d nlink %d", st.Ino, st2.Ino, st.Nlink)
	}
	if st := lstat(t, filepath.Join(d, "usr/bin")); st.Mode&0o7777 != 0o755 || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("implicit parent: mode %o", st.Mode)
	}
	st = lstat(t, filepath.Join(d, "home/u/file"))
	if st.Uid != 1000 || st.Gid != 1001 || st.Mode&0o7777 != 0o640 {
		t.Errorf("owned file: %d:%d %o", st.Uid, st.Gid, st.Mode&0o7777)
	}
	if st.Mtim.Sec != owned.hdr.ModTime.Unix() || st.Mtim.Nsec != 500 {
		t.Errorf("file mtime %v", st.Mtim)
	}
	if v, err := getXattr(filepath.Join(d, "home/u/file"), "user.comment"); err != nil || v != "hi" {
		t.Errorf("user xattr = %q, %v", v, err)
	}
	if _, err := getXattr(filepath.Join(d, "home/u/file"), "trusted.overlay.foo"); err == nil {
		t.Errorf("overlay-private xattr from the tar was set")
	}
	if v, err := getXattr(filepath.Join(d, "home/u"), "trusted.berth"); err != nil || v != "dir" {
		t.Errorf("dir xattr = %q, %v", v, err)
	}
	st = lstat(t, filepath.Join(d, "home/u"))
	if st.Mtim.Sec != dirTime.Unix() || st.Uid != 1000 || st.Mode&0o7777 != 0o750 {
		t.Errorf("dir: mtime %d (want %d, restored after its contents) owner %d mode %o", st.Mtim.Sec, dirTime.Unix(), st.Uid, st.Mode&0o7777)
	}
	st = lstat(t, filepath.Join(d, "home/u/link"))
	if target, _ := os.Readlink(filepath.Join(d, "home/u/link")); target != "../../usr/bin/su" {
		t.Errorf("symlink target %q", target)
	}
	if st.Mtim.Sec != linkTime.Unix() || st.Uid != 1000 {
		t.Errorf("symlink: mtime %d uid %d", st.Mtim.Sec, st.Uid)
	}
	if st := lstat(t, filepath.Join(d, "tmp")); st.Mode&0o7777 != 0o1777 {
		t.Errorf("sticky dir mode %o", st.Mode&0o7777)
	}
	st = lstat(t, filepath.Join(d, "dev/null"))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 || st.Mode&0o777 != 0o666 {
		t.Errorf("char device: mode %o rdev %d", st.Mode, st.Rdev)
	}
	st = lstat(t, filepath.Join(d, "dev/sda"))
	if st.Mode&unix.S_IFMT != unix.S_IFBLK || unix.Major(st.Rdev) != 8 || st.Gid != 6 {
		t.Errorf("block device: mode %o rdev %d gid %d", st.Mode, st.Rdev, st.Gid)
	}
	if st := lstat(t, filepath.Join(d, "run/fifo")); st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo: mode %o", st.Mode)
	}
	if b, err := os.ReadFile(filepath.Join(d, "abs/file")); err != nil || string(b) != "abs" {
		t.Errorf("absolute name not taken relative to the root: %q, %v", b, err)
	}

	// Metadata: the snapshot's name, parent and labels.
	info, err := s.Snapshotter().Stat(context.Background(), l.ChainID.String())
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != snapshots.KindCommitted || info.Parent != "" || info.Labels[labelDiffID] != l.DiffID.String() || info.Labels[labelSize] != "12" {
		t.Errorf("snapshot info = %+v", info)
	}
	if l.Size != 12 {
		t.Errorf("size = %d, want 12", l.Size)
	}
	got, err := s.Get(context.Background(), l.ChainID)
	if err != nil || got != l {
		t.Errorf("Get = %+v, %v; want %+v", got, err, l)
	}
	tmpEmpty(t, s)
}

func TestApplyWhiteouts(t *testing.T) {
	s := newTestStore(t)
	wh := fileEnt("etc/.wh.passwd", "", 0o600)
	wh.hdr.Uid, wh.hdr.Gid = 0, 0
	l := applyTar(t, s, "",
		dirEnt("etc/", 0o755),
		fileEnt("etc/old", "x", 0o644),
		fileEnt("etc/.wh.old", "", 0o600), // later whiteout replaces the file
		wh,
		dirEnt("var/cache/", 0o755),
		fileEnt("var/cache/.wh..wh..opq", "", 0o600),
		fileEnt("var/cache/new", "n", 0o644),
		fileEnt("opq-implicit/.wh..wh..opq", "", 0o600), // dir created on demand
		fileEnt("x/.wh..wh.plnk", "", 0o600),            // aufs bookkeeping, ignored
	)
	for _, name := range []string{"etc/passwd", "etc/old"} {
		st := lstat(t, filepath.Join(l.Dir, name))
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s: not a 0/0 char device: mode %o rdev %d", name, st.Mode, st.Rdev)
		}
	}
	for _, name := range []string{"etc/.wh.passwd", "var/cache/.wh..wh..opq", "x/.wh..wh.plnk"} {
		if _, err := os.Lstat(filepath.Join(l.Dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s exists", name)
		}
	}
	for _, dir := range []string{"var/cache", "opq-implicit"} {
		if v, err := getXattr(filepath.Join(l.Dir, dir), archive.OpaqueXattr); err != nil || v != "y" {
			t.Errorf("%s opaque xattr = %q, %v", dir, v, err)
		}
	}
	if l.Size != 1 {
		t.Errorf("size = %d, want 1 (replaced file not counted)", l.Size)
	}
}

func TestApplyLaterEntryWins(t *testing.T) {
	s := newTestStore(t)
	l := applyTar(t, s, "",
		fileEnt("f", "first", 0o644),
		fileEnt("f", "second", 0o600),
		fileEnt("d/child", "c", 0o644),
		fileEnt("d", "file replaces dir", 0o644),
		fileEnt("g", "g", 0o644),
		dirEnt("g/", 0o700),
		fileEnt("g/in", "in", 0o644),
		dirEnt("h/", 0o700),
		dirEnt("h/", 0o755), // dir over dir merges, later metadata wins
		fileEnt("s", "s", 0o644),
		symlinkEnt("s", "f"),
		symlinkEnt("t", "f"),
		fileEnt("t", "file replaces symlink, not written through it", 0o644),
	)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(l.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if read("f") != "second" || lstat(t, filepath.Join(l.Dir, "f")).Mode&0o777 != 0o600 {
		t.Error("f not replaced")
	}
	if read("d") != "file replaces dir" {
		t.Error("d not replaced")
	}
	if read("g/in") != "in" {
		t.Error("g not replaced by dir")
	}
	if lstat(t, filepath.Join(l.Dir, "h")).Mode&0o777 != 0o755 {
		t.Error("h metadata not updated")
	}
	if target, _ := os.Readlink(filepath.Join(l.Dir, "s")); target != "f" {
		t.Error("s not replaced by symlink")
	}
	if read("f") != "second" || read("t") != "file replaces symlink, not written through it" {
		t.Error("t written through symlink")
	}
	if want := int64(len("second") + len("file replaces dir") + len("in") + len("file replaces symlink, not written through it")); l.Size != want {
		t.Errorf("size = %d, want %d", l.Size, want)
	}
}

func TestApplyDigestMismatch(t *testing.T) {
	s := newTestStore(t)
	b, _ := makeTar(t, fileEnt("a", "a", 0o644))
	wrong := digest.FromString("something else")
	_, err := s.Apply(context.Background(), "", wrong, bytes.NewReader(b))
	if !cerrdefs.IsInvalidArgument(err) {
		t.Fatalf("err = %v, want invalid parameter", err)
	}
	if _, err := s.Get(context.Background(), wrong); !cerrdefs.IsNotFound(err) {
		t.Fatalf("Get after mismatch: %v", err)
	}
	if ls, _ := s.List(context.Background()); len(ls) != 0 {
		t.Fatalf("layers left: %v", ls)
	}
	tmpEmpty(t, s)
}

func TestApplyDigestCoversPadding(t *testing.T) {
	s := newTestStore(t)
	// GNU tar pads archives to 10 KiB records; the digest covers it all.
	b, _ := makeTar(t, fileEnt("a", "a", 0o644))
	b = append(b, make([]byte, 10240-len(b)%10240)...)
	d := digest.FromBytes(b)
	if _, err := s.Apply(context.Background(), "", d, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}

func TestApplyTruncatedGzip(t *testing.T) {
	s := newTestStore(t)
	b, d := makeTar(t, fileEnt("big", string(bytes.Repeat([]byte("0123456789"), 100000)), 0o644))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(b)
	zw.Close()
	cut := gz.Bytes()[:gz.Len()/2]

	rc, c, err := archive.Decompress(bytes.NewReader(cut))
	if err != nil || c != archive.Gzip {
		t.Fatalf("Decompress = %v, %v", c, err)
	}
	defer rc.Close()
	_, err = s.Apply(context.Background(), "", d, rc)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want unexpected EOF", err)
	}
	if _, err := s.Get(context.Background(), d); !cerrdefs.IsNotFound(err) {
		t.Fatalf("layer left behind: %v", err)
	}
	tmpEmpty(t, s)
}

func TestApplyCorruptTar(t *testing.T) {
	s := newTestStore(t)
	b, _ := makeTar(t, fileEnt("a", "a", 0o644))
	b[100] ^= 0xff // header mode field: checksum no longer matches
	_, err := s.Apply(context.Background(), "", digest.FromBytes(b), bytes.NewReader(b))
	if err == nil {
		t.Fatal("corrupt tar applied")
	}
	tmpEmpty(t, s)
}

// cancelReader cancels a context once n bytes have been read.
type cancelReader struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= n
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestApplyCancel(t *testing.T) {
	s := newTestStore(t)
	var ents []ent
	for i := range 200 {
		ents = append(ents, fileEnt("f"+string(rune('a'+i%26))+"/"+digest.FromBytes([]byte{byte(i)}).Encoded()[:8], string(bytes.Repeat([]byte{'x'}, 10000)), 0o644))
	}
	b, d := makeTar(t, ents...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := s.Apply(ctx, "", d, &cancelReader{r: bytes.NewReader(b), n: len(b) / 3, cancel: cancel})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := s.Get(context.Background(), d); !cerrdefs.IsNotFound(err) {
		t.Fatalf("layer left behind: %v", err)
	}
	tmpEmpty(t, s)
}

func TestApplyDedupe(t *testing.T) {
	s := newTestStore(t)
	b, d := makeTar(t, fileEnt("a", "a", 0o644))
	ctx := context.Background()
	l1, err := s.Apply(ctx, "", d, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(b)
	l2, err := s.Apply(ctx, "", d, r)
	if err != nil || l2 != l1 {
		t.Fatalf("second Apply = %+v, %v", l2, err)
	}
	if r.Len() != 0 {
		t.Fatalf("stream not drained: %d bytes left", r.Len())
	}
	// A wrong stream for an existing layer is still reported.
	other, _ := makeTar(t, fileEnt("b", "b", 0o644))
	if _, err := s.Apply(ctx, "", d, bytes.NewReader(other)); !cerrdefs.IsInvalidArgument(err) {
		t.Fatalf("mismatching stream for existing layer: %v", err)
	}
}

func TestApplyConcurrentSameLayer(t *testing.T) {
	s := newTestStore(t)
	var ents []ent
	for i := range 300 {
		ents = append(ents, fileEnt(digest.FromBytes([]byte{byte(i), byte(i >> 8)}).Encoded()[:10], "data", 0o644))
	}
	b, d := makeTar(t, ents...)
	var wg sync.WaitGroup
	layers := make([]Layer, 6)
	errs := make([]error, 6)
	for i := range layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			layers[i], errs[i] = s.Apply(context.Background(), "", d, bytes.NewReader(b))
		}()
	}
	wg.Wait()
	for i := range layers {
		// A second unpack would have failed to rename over the first.
		if errs[i] != nil || layers[i] != layers[0] {
			t.Fatalf("Apply %d = %+v, %v", i, layers[i], errs[i])
		}
	}
	tmpEmpty(t, s)
}

func TestApplyAnyOrderInParallel(t *testing.T) {
	s := newTestStore(t)
	b1, d1 := makeTar(t, fileEnt("base", "1", 0o644))
	b2, d2 := makeTar(t, fileEnt("top", "2", 0o644), fileEnt(".wh.base", "", 0o600))
	c1 := ChainID("", d1)
	var wg sync.WaitGroup
	var err1, err2 error
	wg.Add(2)
	go func() { defer wg.Done(); _, err2 = s.Apply(context.Background(), c1, d2, bytes.NewReader(b2)) }()
	go func() { defer wg.Done(); _, err1 = s.Apply(context.Background(), "", d1, bytes.NewReader(b1)) }()
	wg.Wait()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	top, err := s.Get(context.Background(), ChainID(c1, d2))
	if err != nil || top.Parent != c1 || top.DiffID != d2 {
		t.Fatalf("top = %+v, %v", top, err)
	}
	ls, _ := s.List(context.Background())
	if len(ls) != 2 {
		t.Fatalf("List = %v", ls)
	}
}

func TestApplyInvalidArguments(t *testing.T) {
	s := newTestStore(t)
	if _, err := s.Apply(context.Background(), "", "sha256:nope", bytes.NewReader(nil)); !cerrdefs.IsInvalidArgument(err) {
		t.Fatalf("bad diffID: %v", err)
	}
	if _, err := s.Apply(context.Background(), "../x", digest.FromString("x"), bytes.NewReader(nil)); !cerrdefs.IsInvalidArgument(err) {
		t.Fatalf("bad parent: %v", err)
	}
}

func TestNewStoreCleansTmp(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	s, err := NewStore(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	// An Apply a crash cut short.
	ms, err := s.sn.Prepare(context.Background(), applyPrefix+"123", "")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(ms[0].Source, "half"), 0o755)
	s.Close()
	s, err = NewStore(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tmpEmpty(t, s)
	if _, err := os.Stat(ms[0].Source); !os.IsNotExist(err) {
		t.Fatalf("leftover of an apply still there: %v", err)
	}
}

// TestNewStoreCleansUnpacks: an unpack a crash cut short (a directory
// under unpack/) and a layer directory moved into snapshots/ by a commit
// whose transaction never completed are both gone after a restart, and
// the next Apply works.
func TestNewStoreCleansUnpacks(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	s, err := NewStore(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	base, _ := makeTar(t, fileEnt("a", "a", 0o644))
	if _, err := s.Apply(ctx, "", digestOf(base), bytes.NewReader(base)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, d := range []string{"unpack/apply-123/fs/half", "snapshots/2/fs/half"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s, err = NewStore(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tmpEmpty(t, s)
	next, _ := makeTar(t, fileEnt("b", "b", 0o644))
	l, err := s.Apply(ctx, digestOf(base), digestOf(next), bytes.NewReader(next))
	if err != nil {
		t.Fatalf("apply after the crash: %v", err)
	}
	if _, err := os.Stat(filepath.Join(l.Dir, "half")); !os.IsNotExist(err) {
		t.Fatalf("the new layer holds the crashed one's file: %v", err)
	}
}

// TestCommitDirFailureLeavesNothing: when the commit transaction fails
// after the layer's directory was moved into snapshots/ (here: the name
// is taken), the directory goes back and nothing is recorded.
func TestCommitDirFailureLeavesNothing(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	base, _ := makeTar(t, fileEnt("a", "a", 0o644))
	l, err := s.Apply(ctx, "", digestOf(base), bytes.NewReader(base))
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(s.tmpDir(), applyPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "fs"), 0o755); err != nil {
		t.Fatal(err)
	}
	err = s.commitDir(ctx, dir, l.ChainID, "", snapshots.Usage{}, nil)
	if !cerrdefs.IsAlreadyExists(err) {
		t.Fatalf("commit over an existing layer: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "fs")); err != nil {
		t.Fatalf("directory not moved back: %v", err)
	}
	os.RemoveAll(dir)
	tmpEmpty(t, s)
}

// TestSnapshotDirsSpread: on ext4, snapshots/ and unpack/ carry the Orlov
// allocator's top-directory flag (see markTopDir).
func TestSnapshotDirsSpread(t *testing.T) {
	s := newTestStore(t)
	var st unix.Statfs_t
	if err := unix.Statfs(s.root, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.EXT4_SUPER_MAGIC {
		t.Skipf("not on ext4 (magic %#x)", st.Type)
	}
	for _, d := range []string{s.snapshotsDir(), s.tmpDir()} {
		f, err := os.Open(d)
		if err != nil {
			t.Fatal(err)
		}
		flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if flags&fsTopDirFlag == 0 {
			t.Errorf("%s: flags %#x lack FS_TOPDIR_FL", d, flags)
		}
	}
}

// TestFirstPrepareAfterCrash: a crash during the very first Prepare of a
// new store leaves that snapshot's directory renamed to the ID its
// uncommitted transaction took (snapshots/1) while the metadata has no
// snapshot at all; the reopened store clears it, so the next Prepare, which
// takes ID 1 again, does not fail with "file exists" (seen as a pull after
// kill -9 failing in TestKillDuringPull).
func TestFirstPrepareAfterCrash(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	s, err := NewStore(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	left := filepath.Join(root, "snapshots", "1", "fs")
	if err := os.MkdirAll(left, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(left, "half"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = NewStore(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ms, err := s.sn.Prepare(context.Background(), applyPrefix+"first", "")
	if err != nil {
		t.Fatalf("first Prepare after the crash: %v", err)
	}
	if _, err := os.Stat(filepath.Join(ms[0].Source, "half")); !os.IsNotExist(err) {
		t.Fatalf("the new snapshot holds the crashed one's file: %v", err)
	}
}

func TestGetListRemove(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	if _, err := s.Get(ctx, digest.FromString("nope")); !cerrdefs.IsNotFound(err) {
		t.Fatalf("Get missing: %v", err)
	}
	if err := s.Remove(ctx, digest.FromString("nope")); !cerrdefs.IsNotFound(err) {
		t.Fatalf("Remove missing: %v", err)
	}
	l1 := applyTar(t, s, "", fileEnt("a", "a", 0o644))
	l2 := applyTar(t, s, l1.ChainID, fileEnt("b", "b", 0o644))
	ls, err := s.List(ctx)
	if err != nil || len(ls) != 2 {
		t.Fatalf("List = %v, %v", ls, err)
	}
	// A layer another stands on stays.
	if err := s.Remove(ctx, l1.ChainID); !cerrdefs.IsConflict(err) {
		t.Fatalf("Remove of a parent: %v", err)
	}
	if err := s.Remove(ctx, l2.ChainID); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, l1.ChainID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, l1.ChainID); !cerrdefs.IsNotFound(err) {
		t.Fatalf("Get removed: %v", err)
	}
	if _, err := os.Stat(l1.Dir); !os.IsNotExist(err) {
		t.Fatal("layer dir still there")
	}
	tmpEmpty(t, s)
}

func TestApplyIgnoresUmask(t *testing.T) {
	s := newTestStore(t)
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	l := applyTar(t, s, "", fileEnt("a/b/c", "c", 0o644), dirEnt("d/", 0o775))
	for name, want := range map[string]uint32{".": 0o755, "a": 0o755, "a/b": 0o755, "a/b/c": 0o644, "d": 0o775} {
		if got := lstat(t, filepath.Join(l.Dir, name)).Mode & 0o7777; got != want {
			t.Errorf("%s: mode %o, want %o", name, got, want)
		}
	}
	if _, err := s.Prepare(context.Background(), "c", l.ChainID); err != nil {
		t.Fatal(err)
	}
	if got := lstat(t, upperOf(t, s, "c")).Mode & 0o7777; got != 0o755 {
		t.Errorf("upper: mode %o, want 755", got)
	}
}

func TestApplyRootEntry(t *testing.T) {
	s := newTestStore(t)
	root := dirEnt("./", 0o750)
	root.hdr.Uid, root.hdr.Gid = 5, 6
	root.hdr.ModTime = time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)
	l := applyTar(t, s, "", root, fileEnt("f", "f", 0o644))
	st := lstat(t, l.Dir)
	if st.Mode&0o7777 != 0o750 || st.Uid != 5 || st.Gid != 6 || st.Mtim.Sec != root.hdr.ModTime.Unix() {
		t.Fatalf("root: mode %o owner %d:%d mtime %d", st.Mode&0o7777, st.Uid, st.Gid, st.Mtim.Sec)
	}
	b, d := makeTar(t, fileEnt(".", "not a dir", 0o644))
	if _, err := s.Apply(context.Background(), "", d, bytes.NewReader(b)); !cerrdefs.IsInvalidArgument(err) {
		t.Fatalf("non-directory root entry: %v", err)
	}
}
