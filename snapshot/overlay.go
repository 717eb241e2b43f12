package snapshot

import (
	"context"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/core/snapshots/storage"
	"github.com/containerd/continuity/fs"
	"golang.org/x/sys/unix"
)

// snapshotter is containerd's overlay snapshotter with one change: Commit
// measures the snapshot's disk usage (a walk of every file) before its
// write transaction, not inside it. containerd's Commit walks inside the
// transaction, and since bbolt has one writer at a time, every Prepare,
// Commit and Remove of every other snapshot (the parallel layers of a
// pull, a container start) waited for the walk of a whole layer.
type snapshotter struct {
	snapshots.Snapshotter
	cleaner snapshots.Cleaner
	ms      *storage.MetaStore
	root    string // the snapshotter's root: metadata.db, snapshots/
}

func (o *snapshotter) upperPath(id string) string {
	return filepath.Join(o.root, "snapshots", id, "fs")
}

// Commit is containerd's overlay Commit (the active snapshot key becomes
// the committed snapshot name, with its disk usage recorded), with the
// usage measured before the write transaction. Should key have been
// removed and prepared again in between (another snapshot ID), the usage
// is measured again inside the transaction.
func (o *snapshotter) Commit(ctx context.Context, name, key string, opts ...snapshots.Opt) error {
	var id string
	if err := o.ms.WithTransaction(ctx, false, func(ctx context.Context) error {
		var err error
		id, _, _, err = storage.GetInfo(ctx, key)
		return err
	}); err != nil {
		return err
	}
	usage, err := fs.DiskUsage(ctx, o.upperPath(id))
	if err != nil {
		return err
	}
	return o.ms.WithTransaction(ctx, true, func(ctx context.Context) error {
		id2, _, _, err := storage.GetInfo(ctx, key)
		if err != nil {
			return err
		}
		if id2 != id {
			if usage, err = fs.DiskUsage(ctx, o.upperPath(id2)); err != nil {
				return err
			}
		}
		_, err = storage.CommitActive(ctx, key, name, snapshots.Usage(usage), opts...)
		return err
	})
}

// Cleanup removes the directories of snapshots whose metadata is gone.
func (o *snapshotter) Cleanup(ctx context.Context) error { return o.cleaner.Cleanup(ctx) }

// fsTopDirFlag is ext2/3/4's FS_TOPDIR_FL ("chattr +T").
const fsTopDirFlag = 0x00020000

// markTopDir asks ext4's inode allocator (Orlov) to spread the directories
// created in dir over the filesystem's block groups rather than packing
// them into dir's own group, as it does for /home. Each layer and each
// container gets a directory of its own under snapshots/ (and unpack/), and
// its files are allocated in that directory's group. Without this, every
// new layer lands in the group where the layers removed in the last
// minutes were, and on an ext4 without a journal the allocator then scans
// past every recently freed inode for each file it creates
// (recently_deleted()): unpacking a few thousand files after an rmi took
// seconds. Filesystems other than ext2/3/4 refuse or ignore the flag,
// which is fine: it is a placement hint only.
func markTopDir(dir string) {
	f, err := os.Open(dir)
	if err != nil {
		return
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil || flags&fsTopDirFlag != 0 {
		return
	}
	_ = unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags|fsTopDirFlag))
}
