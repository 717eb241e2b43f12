package archive

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path"
)

// Spool decompresses r (identity, gzip, bzip2, xz or zstd) into an unlinked
// temporary file in dir and checks, on the way, that it is one whole,
// well-formed tar that Extract's rules accept: every header readable,
// every entry's data there, the compressed stream's checksum right, no
// name, relative symlink target or hard link target leading out of the
// destination. It returns the file rewound, for Extract; close it when
// done. A body that fails any of that is an error of class
// cerrdefs.ErrInvalidArgument and has changed nothing: a corrupt or cut
// upload never leaves half of its files behind.
func Spool(ctx context.Context, r io.Reader, dir string) (*os.File, error) {
	dr, _, err := Decompress(r)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	f, err := os.CreateTemp(dir, "spool-")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	tr := tar.NewReader(io.TeeReader(&ctxReader{ctx: ctx, r: dr}, f))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, InvalidTar(err)
		}
		if err := checkEntry(hdr); err != nil {
			return nil, err
		}
	}
	// The rest (padding, anything after the end marker) goes too, so a
	// corrupt compressed tail is noticed.
	if _, err := io.Copy(f, &ctxReader{ctx: ctx, r: dr}); err != nil {
		return nil, InvalidTar(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	ok = true
	return f, nil
}

// checkEntry applies Extract's lexical rules to one header, wherever the
// tar is extracted: they only depend on where the entry is in the tar.
func checkEntry(hdr *tar.Header) error {
	const dest = "/"
	name := path.Clean(hdr.Name)
	switch {
	case climbs(dest, name, dest):
		return breakout("%q is outside of the destination", hdr.Name)
	case hdr.Typeflag == tar.TypeSymlink && !path.IsAbs(hdr.Linkname) && climbs(path.Dir(path.Join(dest, name)), hdr.Linkname, dest):
		return breakout("invalid symlink %q -> %q", hdr.Name, hdr.Linkname)
	case hdr.Typeflag == tar.TypeLink && (climbs(dest, hdr.Linkname, dest) || path.Clean(hdr.Linkname) == "." || path.Clean(hdr.Linkname) == "/"):
		return breakout("invalid hardlink %q -> %q", hdr.Name, hdr.Linkname)
	}
	return nil
}

// ctxReader stops a copy once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
