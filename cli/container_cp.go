package cli

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

type cpOptions struct {
	followLink bool
	archive    bool
	quiet      bool
}

// newCpCommand is "berth cp".
func newCpCommand(c *CLI) *cobra.Command {
	var opts cpOptions
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\t" + binaryName + " cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Long: `Copy files/folders between a container and the local filesystem

Use '-' as the source to read a tar archive from stdin
and extract it to a directory destination in a container.
Use '-' as the destination to stream a tar archive of a
container source to stdout.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCp(cmd.Context(), c, opts, args[0], args[1])
		},
	}
	aliases(cmd, "container cp", "cp")
	flags := cmd.Flags()
	flags.BoolVarP(&opts.followLink, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	flags.BoolVarP(&opts.archive, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	flags.BoolVarP(&opts.quiet, "quiet", "q", false, "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached")
	return cmd
}

// splitCpArg splits "CONTAINER:PATH"; a local path is returned with an
// empty container. Paths starting with "/" or "." are always local.
func splitCpArg(arg string) (ctr, p string) {
	if filepath.IsAbs(arg) || strings.HasPrefix(arg, ".") {
		return "", arg
	}
	ctr, p, ok := strings.Cut(arg, ":")
	if !ok || strings.Contains(ctr, "/") {
		return "", arg
	}
	return ctr, p
}

func runCp(ctx context.Context, c *CLI, opts cpOptions, src, dst string) error {
	srcCtr, srcPath := splitCpArg(src)
	dstCtr, dstPath := splitCpArg(dst)
	switch {
	case srcCtr == "" && dstCtr == "":
		return errors.New("must specify at least one container source")
	case srcCtr != "" && dstCtr != "":
		return errors.New("copying between containers is not supported")
	}
	if srcPath == "" || dstPath == "" {
		return errors.New("filepath can not be empty")
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	if srcCtr != "" {
		err = c.copyFromContainer(ctx, cl, opts, srcCtr, srcPath, dstPath)
	} else {
		err = c.copyToContainer(ctx, cl, opts, srcPath, dstCtr, dstPath, dst)
	}
	return interrupted(ctx, err)
}

// countingReader counts the bytes of the tar stream for the final
// "Successfully copied" line.
type countingReader struct {
	r io.Reader
	n int64
}

func (cr *countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.n += int64(n)
	return n, err
}

func (c *CLI) copyDone(opts cpOptions, n int64, to string) {
	if opts.quiet || !c.Err.IsTerminal() {
		return
	}
	fmt.Fprintf(c.Err, "Successfully copied %s to %s\n", units.HumanSizeWithPrecision(float64(n), 3), to)
}

func hasTrailingSep(p string) bool { return strings.HasSuffix(p, "/") }

func isContentsOnly(p string) bool {
	return strings.HasSuffix(p, "/.") || p == "."
}

func (c *CLI) copyFromContainer(ctx context.Context, cl *client.Client, opts cpOptions, ctr, srcPath, dstPath string) error {
	if !path.IsAbs(srcPath) {
		srcPath = "/" + srcPath
	}
	if opts.followLink {
		st, err := cl.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: srcPath})
		if err != nil {
			return err
		}
		if st.Stat.Mode&os.ModeSymlink != 0 {
			target := st.Stat.LinkTarget
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(srcPath), target)
			}
			srcPath = target
		}
	}

	if dstPath == "-" {
		res, err := cl.CopyFromContainer(ctx, ctr, client.CopyFromContainerOptions{SourcePath: srcPath})
		if err != nil {
			return err
		}
		defer res.Content.Close()
		_, err = io.Copy(c.Out, res.Content)
		return err
	}

	// Check the destination before asking for anything.
	dstInfo, dstErr := os.Stat(dstPath)
	if dstErr != nil {
		if !os.IsNotExist(dstErr) {
			return dstErr
		}
		parent := filepath.Dir(filepath.Clean(dstPath))
		if pi, err := os.Stat(parent); err != nil || !pi.IsDir() {
			return fmt.Errorf("invalid output path: directory %q does not exist", parent)
		}
	}

	res, err := cl.CopyFromContainer(ctx, ctr, client.CopyFromContainerOptions{SourcePath: srcPath})
	if err != nil {
		return err
	}
	defer res.Content.Close()
	srcIsDir := res.Stat.Mode.IsDir()
	contentsOnly := srcIsDir && isContentsOnly(srcPath)

	var (
		baseDir  string // where entries are extracted
		rootName string // the name the archive's root entry gets ("" = strip it)
	)
	switch {
	case dstErr == nil && dstInfo.IsDir():
		baseDir = dstPath
		if contentsOnly {
			rootName = ""
		} else {
			rootName = path.Base(srcPath)
		}
	case dstErr == nil:
		if srcIsDir {
			return errors.New("cannot copy directory")
		}
		baseDir, rootName = filepath.Dir(dstPath), filepath.Base(dstPath)
	default:
		if hasTrailingSep(dstPath) && !srcIsDir {
			return errors.New("no such directory")
		}
		clean := filepath.Clean(dstPath)
		baseDir, rootName = filepath.Dir(clean), filepath.Base(clean)
		if contentsOnly {
			if err := os.Mkdir(clean, res.Stat.Mode.Perm()|0o700); err != nil {
				return err
			}
			baseDir, rootName = clean, ""
		}
	}
	cr := &countingReader{r: res.Content}
	if err := extractTar(cr, baseDir, rootName); err != nil {
		return err
	}
	c.copyDone(opts, cr.n, dstPath)
	return nil
}

// extractTar writes the entries of r under dir. The first path component
// of every entry (the archive's root) is replaced by rootName, or dropped
// when rootName is empty. Entries never escape dir.
func extractTar(r io.Reader, dir, rootName string) error {
	tr := tar.NewReader(r)
	root := ""
	asRoot := os.Geteuid() == 0
	type dirTime struct {
		path  string
		mtime time.Time
	}
	var dirs []dirTime
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if name == "" {
			name = "."
		}
		first, rest, _ := strings.Cut(name, "/")
		if root == "" {
			root = first
		}
		var rel string
		switch {
		case first != root:
			rel = name
		case rootName == "":
			rel = rest
		case rest == "":
			rel = rootName
		default:
			rel = rootName + "/" + rest
		}
		if rel == "" || rel == "." {
			continue
		}
		target := filepath.Join(dir, filepath.FromSlash(rel))
		if !strings.HasPrefix(target, filepath.Clean(dir)+string(filepath.Separator)) && target != filepath.Clean(dir) {
			return fmt.Errorf("invalid archive entry: %s", hdr.Name)
		}
		// Never write through a symlink planted by an earlier entry.
		if parent := filepath.Dir(target); parent != filepath.Clean(dir) {
			if err := checkNoSymlinks(filepath.Clean(dir), parent); err != nil {
				return err
			}
		}
		mode := os.FileMode(hdr.Mode).Perm() | os.FileMode(hdr.Mode)&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if fi, err := os.Lstat(target); err == nil && !fi.IsDir() {
				if err := os.Remove(target); err != nil {
					return err
				}
			}
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			_ = os.Chmod(target, tarMode(hdr))
			dirs = append(dirs, dirTime{target, hdr.ModTime})
		case tar.TypeReg: // the reader turns legacy TypeRegA into TypeReg
			if fi, err := os.Lstat(target); err == nil && fi.IsDir() {
				return fmt.Errorf("cannot overwrite directory %q with non-directory", target)
			}
			_ = os.Remove(target)
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			_ = os.Chmod(target, tarMode(hdr))
		case tar.TypeSymlink:
			_ = os.Remove(target)
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			linkRel := strings.TrimPrefix(path.Clean("/"+hdr.Linkname), "/")
			lf, lrest, _ := strings.Cut(linkRel, "/")
			if lf == root {
				if rootName == "" {
					linkRel = lrest
				} else if lrest == "" {
					linkRel = rootName
				} else {
					linkRel = rootName + "/" + lrest
				}
			}
			src := filepath.Join(dir, filepath.FromSlash(linkRel))
			if !strings.HasPrefix(src, filepath.Clean(dir)+string(filepath.Separator)) {
				return fmt.Errorf("invalid hardlink: %s", hdr.Linkname)
			}
			_ = os.Remove(target)
			if err := os.Link(src, target); err != nil {
				return err
			}
		case tar.TypeFifo:
			_ = os.Remove(target)
			if err := syscall.Mkfifo(target, uint32(mode)); err != nil {
				return err
			}
		case tar.TypeChar, tar.TypeBlock:
			if !asRoot {
				continue
			}
			_ = os.Remove(target)
			typ := uint32(syscall.S_IFCHR)
			if hdr.Typeflag == tar.TypeBlock {
				typ = syscall.S_IFBLK
			}
			dev := int((hdr.Devmajor&0xfff)<<8 | hdr.Devminor&0xff | (hdr.Devminor&0xfff00)<<12)
			if err := syscall.Mknod(target, typ|uint32(mode), dev); err != nil {
				return err
			}
		case tar.TypeXGlobalHeader:
			continue
		default:
			continue
		}
		if asRoot {
			_ = os.Lchown(target, hdr.Uid, hdr.Gid)
			if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeDir {
				_ = os.Chmod(target, tarMode(hdr))
			}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
		case tar.TypeSymlink:
			ts := []unix.Timespec{unix.NsecToTimespec(hdr.ModTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
			_ = unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW)
		default:
			_ = os.Chtimes(target, hdr.ModTime, hdr.ModTime)
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Chtimes(dirs[i].path, dirs[i].mtime, dirs[i].mtime)
	}
	return nil
}

func tarMode(hdr *tar.Header) os.FileMode {
	m := os.FileMode(hdr.Mode).Perm()
	if hdr.Mode&04000 != 0 {
		m |= os.ModeSetuid
	}
	if hdr.Mode&02000 != 0 {
		m |= os.ModeSetgid
	}
	if hdr.Mode&01000 != 0 {
		m |= os.ModeSticky
	}
	return m
}

// checkNoSymlinks fails when a directory between base and p is a symlink.
func checkNoSymlinks(base, p string) error {
	rel, err := filepath.Rel(base, p)
	if err != nil {
		return err
	}
	cur := base
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if err != nil {
			return nil
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("invalid archive entry: path %s goes through a symlink", cur)
		}
	}
	return nil
}

func (c *CLI) copyToContainer(ctx context.Context, cl *client.Client, opts cpOptions, srcPath, ctr, dstPath, dstArg string) error {
	if !path.IsAbs(dstPath) {
		dstPath = "/" + dstPath
	}
	dstStat, statErr := cl.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: dstPath})
	if statErr != nil && !cerrdefs.IsNotFound(statErr) {
		return statErr
	}
	dstExists := statErr == nil
	// Follow a symlink at the destination to what it points to.
	if dstExists && dstStat.Stat.Mode&os.ModeSymlink != 0 {
		target := dstStat.Stat.LinkTarget
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(dstPath), target)
		}
		if st, err := cl.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: target}); err == nil {
			dstPath, dstStat = target, st
		}
	}

	if srcPath == "-" {
		if !dstExists || !dstStat.Stat.Mode.IsDir() {
			return fmt.Errorf("destination %q must be a directory", dstArg)
		}
		cr := &countingReader{r: c.In}
		_, err := cl.CopyToContainer(ctx, ctr, client.CopyToContainerOptions{
			DestinationPath: dstPath, Content: cr, CopyUIDGID: opts.archive,
		})
		return err
	}

	var (
		srcInfo fs.FileInfo
		err     error
	)
	if opts.followLink {
		srcInfo, err = os.Stat(srcPath)
	} else {
		srcInfo, err = os.Lstat(srcPath)
	}
	if err != nil {
		return err
	}
	srcIsDir := srcInfo.IsDir()
	contentsOnly := srcIsDir && isContentsOnly(srcPath)

	var putDir, rootName string
	switch {
	case dstExists && dstStat.Stat.Mode.IsDir():
		putDir = dstPath
		if !contentsOnly {
			rootName = filepath.Base(filepath.Clean(srcPath))
		}
	case dstExists:
		if srcIsDir {
			return errors.New("cannot copy directory")
		}
		putDir, rootName = path.Dir(dstPath), path.Base(dstPath)
	default:
		if hasTrailingSep(dstPath) && !srcIsDir {
			return errors.New("no such directory")
		}
		clean := path.Clean(dstPath)
		putDir, rootName = path.Dir(clean), path.Base(clean)
	}

	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeTar(pw, srcPath, rootName, opts.followLink))
	}()
	cr := &countingReader{r: pr}
	_, err = cl.CopyToContainer(ctx, ctr, client.CopyToContainerOptions{
		DestinationPath: putDir, Content: cr, CopyUIDGID: opts.archive,
	})
	pr.Close()
	if err != nil {
		return err
	}
	c.copyDone(opts, cr.n, dstArg)
	return nil
}

// writeTar archives src. The root entry is named rootName; with an empty
// rootName only the contents of the directory src are archived. With
// followRoot a symlink given as src is archived as what it points to.
func writeTar(w io.Writer, src, rootName string, followRoot bool) error {
	tw := tar.NewWriter(w)
	src = filepath.Clean(src)
	inodes := map[uint64]string{}
	add := func(p, name string, fi fs.FileInfo) error {
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			link = l
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = name
		if fi.IsDir() && !strings.HasSuffix(hdr.Name, "/") {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		hdr.Format = tar.FormatPAX
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode().IsRegular() && st.Nlink > 1 {
			if first, ok := inodes[st.Ino]; ok {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
				hdr.Size = 0
			} else {
				inodes[st.Ino] = name
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}

	rootInfo, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if followRoot && rootInfo.Mode()&os.ModeSymlink != 0 {
		if rootInfo, err = os.Stat(src); err != nil {
			return err
		}
	}
	if !rootInfo.IsDir() {
		if err := add(src, rootName, rootInfo); err != nil {
			return err
		}
		return tw.Close()
	}
	walkRoot := src
	if followRoot {
		if r, err := filepath.EvalSymlinks(src); err == nil {
			walkRoot = r
		}
	}
	err = filepath.WalkDir(walkRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(walkRoot, p)
		if err != nil {
			return err
		}
		var name string
		switch {
		case rel == "." && rootName == "":
			return nil
		case rel == ".":
			name = rootName
		case rootName == "":
			name = filepath.ToSlash(rel)
		default:
			name = rootName + "/" + filepath.ToSlash(rel)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if rel == "." {
			fi = rootInfo
		}
		return add(p, name, fi)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
