// Package archive is berth's one place for tar archives and their
// compression: layer diffs (pull, load, commit, build), docker cp in both
// directions, docker export, volume copy-up and the CLI's cp.
//
//   - TarDir, Stream and Writer write a directory tree (a container's
//     files, an overlayfs upper dir, an image directory) as a tar: with
//     WriterOptions.Layer, overlayfs whiteouts become AUFS ".wh." entries
//     and opaque directories ".wh..wh..opq", every xattr but overlayfs' own
//     is kept; without it (cp, export) only security.capability, as
//     dockerd. Headers carries owners, permission bits, whole-second
//     mtimes, hard links, and (Names) user and group names looked up in the
//     archived tree's own passwd and group, as dockerd's cp writes them.
//   - UnpackLayer unpacks a layer diff into a fresh directory, whiteouts
//     becoming overlayfs whiteouts.
//   - Extract writes a tar into a directory inside a root under dockerd's
//     cp rules (PUT archive, the CLI's cp, volume copy-up), with the
//     owner, device and xattr policy of the caller.
//   - Decompress detects and undoes identity, gzip, bzip2, xz and zstd
//     (dockerd's set); Compress makes gzip or zstd layer blobs.
//   - OpenInRoot, ResolveInRoot and MkdirAllInRoot resolve paths inside a
//     root (a container's "/") without ever leaving it.
//
// archivetest is the escape suite every entry point of every user runs.
//
// # What comes from the field, and what berth keeps
//
// From github.com/moby/go-archive (v0.2.0, dockerd's own archive code):
// the compression type and its detection (compression.Detect, so berth
// accepts exactly what dockerd accepts), the whiteout names, and, in the
// CLI, the docker CLI's whole cp plumbing (CopyInfoSourcePath,
// TarResource, CopyInfoDestinationPath, PrepareArchiveCopy,
// RebaseArchiveEntries), so `berth cp` resolves sources and destinations
// and writes its upload tar exactly as `docker cp` does.
//
// From github.com/cyphar/filepath-securejoin (v0.7.0, runc's): pathrs-lite's
// OpenatInRoot, MkdirAllHandle and Reopen, on which every lookup in a root
// is built (openat2 RESOLVE_IN_ROOT where the kernel has it, a checked
// walk where it does not, and a hardened /proc for reopening).
//
// What berth keeps of its own, and why:
//
//   - go-archive's Unpack, Untar and ApplyLayer resolve paths as strings
//     (Lstat, then open by name) and are only safe inside dockerd's
//     chrootarchive, which re-roots a helper thread or process per
//     archive; they also log through a global logger, take no context and
//     create and remove with RemoveAll by path. Extract gets the same
//     confinement from RESOLVE_IN_ROOT handles with *at calls on them: no
//     chroot, no re-exec, cancellable, and safe against a container that
//     swaps a directory for a symlink while it runs.
//   - UnpackLayer is the layer fast path every pull streams through while
//     the blob downloads and its digest is checked (see image/pull.go): it
//     writes with raw *at calls through a cache of parent-directory
//     handles from os.Root (the standard library's confinement beneath a
//     directory: a symlink or ".." that would leave the layer directory,
//     an absolute symlink included, fails the lookup; that is right for a
//     layer, whose absolute symlinks mean the container's root, not the
//     layer's), sets metadata on the open fd, and leaves durability to one
//     syncfs by the caller. go-archive's
//     per-entry Lstat, RemoveAll and path-based chown/chmod/chtimes cost
//     several times the system calls per file.
//   - go-archive's tar writer (TarWithOptions) walks paths with
//     filepath.WalkDir and logs and skips the files it fails to read, so
//     a layer could silently lose files; it follows no symlinks but opens
//     by path, which a running container can redirect. Writer walks
//     directory fds with *at calls, stops at the first error, and copies
//     exactly the size it announced.
//   - go-archive's DecompressStream execs unpigz or xz, takes no context
//     and returns unclassified errors. Decompress uses klauspost's gzip
//     and zstd (the pull fast path), the standard library's bzip2 and
//     ulikunitz/xz (pure Go, as containers/image uses), and reports a
//     corrupt stream as cerrdefs.ErrInvalidArgument, apart from errors of
//     the stream's own source.
package archive
