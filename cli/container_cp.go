package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/go-units"
	goarchive "github.com/moby/go-archive"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/berth/berth/archive"
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

func (c *CLI) copyFromContainer(ctx context.Context, cl *client.Client, opts cpOptions, ctr, srcPath, dstPath string) error {
	if !path.IsAbs(srcPath) {
		srcPath = "/" + srcPath
	}
	// As the docker CLI: the path stays what was asked ("x/." included),
	// a followed symlink's entries are renamed after the link.
	var rebaseName string
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
			srcPath, rebaseName = goarchive.GetRebaseName(srcPath, target)
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
	dstInfo, err := goarchive.CopyInfoDestinationPath(dstPath)
	if err != nil {
		if os.IsNotExist(err) || errors.Is(err, goarchive.ErrNotDirectory) {
			return fmt.Errorf("invalid output path: directory %q does not exist", filepath.Dir(filepath.Clean(dstPath)))
		}
		return err
	}

	res, err := cl.CopyFromContainer(ctx, ctr, client.CopyFromContainerOptions{SourcePath: srcPath})
	if err != nil {
		return err
	}
	defer res.Content.Close()
	srcInfo := goarchive.CopyInfo{Path: srcPath, Exists: true, IsDir: res.Stat.Mode.IsDir(), RebaseName: rebaseName}
	cr := &countingReader{r: res.Content}
	if err := extractCopy(ctx, cr, srcInfo, dstInfo); err != nil {
		return err
	}
	c.copyDone(opts, cr.n, dstPath)
	return nil
}

// extractCopy writes content, the archive of srcInfo from a container,
// at dstInfo as the docker CLI's CopyTo does (go-archive's rebasing onto
// the destination), through the archive package's extractor: every entry
// stays inside the destination directory, files belong to whoever runs
// the copy, device nodes are left out and setuid bits that would change
// owner are dropped.
func extractCopy(ctx context.Context, content io.Reader, srcInfo, dstInfo goarchive.CopyInfo) error {
	if srcInfo.RebaseName != "" {
		_, srcBase := goarchive.SplitPathDirEntry(srcInfo.Path)
		rebased := goarchive.RebaseArchiveEntries(content, srcBase, srcInfo.RebaseName)
		defer rebased.Close()
		content = rebased
	}
	dstDir, prepared, err := goarchive.PrepareArchiveCopy(content, srcInfo, dstInfo)
	if err != nil {
		return err
	}
	defer prepared.Close()
	root, err := os.Open(dstDir)
	if err != nil {
		return err
	}
	defer root.Close()
	return archive.Extract(ctx, root, "/", prepared, archive.ExtractOptions{NoLchown: true, NoOverwriteDirNonDir: true})
}

func (c *CLI) copyToContainer(ctx context.Context, cl *client.Client, opts cpOptions, srcPath, ctr, dstPath, dstArg string) error {
	if !path.IsAbs(dstPath) {
		dstPath = "/" + dstPath
	}
	dstInfo := goarchive.CopyInfo{Path: dstPath}
	dstStat, statErr := cl.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: dstPath})
	if statErr != nil && !cerrdefs.IsNotFound(statErr) {
		return statErr
	}
	// Follow a symlink at the destination to what it points to.
	if statErr == nil && dstStat.Stat.Mode&os.ModeSymlink != 0 {
		target := dstStat.Stat.LinkTarget
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(dstPath), target)
		}
		dstInfo.Path = target
		dstStat, statErr = cl.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: target})
		if statErr != nil && !cerrdefs.IsNotFound(statErr) {
			return statErr
		}
	}
	if statErr == nil {
		dstInfo.Exists, dstInfo.IsDir = true, dstStat.Stat.Mode.IsDir()
	}

	var (
		content io.Reader
		putDir  string
	)
	if srcPath == "-" {
		if !dstInfo.IsDir {
			return fmt.Errorf("destination %q must be a directory", dstArg)
		}
		content, putDir = c.In, dstInfo.Path
	} else {
		// The docker CLI's own way: go-archive's source resolution and
		// tar writer, then its rebasing onto the destination.
		srcInfo, err := goarchive.CopyInfoSourcePath(srcPath, opts.followLink)
		if err != nil {
			return err
		}
		srcArchive, err := goarchive.TarResource(srcInfo)
		if err != nil {
			return err
		}
		defer srcArchive.Close()
		dir, prepared, err := goarchive.PrepareArchiveCopy(srcArchive, srcInfo, dstInfo)
		if err != nil {
			return err
		}
		defer prepared.Close()
		content, putDir = prepared, dir
	}
	cr := &countingReader{r: content}
	_, err := cl.CopyToContainer(ctx, ctr, client.CopyToContainerOptions{
		DestinationPath: putDir, Content: cr, CopyUIDGID: opts.archive,
	})
	if err != nil {
		return err
	}
	if srcPath != "-" {
		c.copyDone(opts, cr.n, dstArg)
	}
	return nil
}
