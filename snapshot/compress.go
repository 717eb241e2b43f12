package snapshot

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is a layer blob's compression.
type Compression int

// The compressions Decompress recognises.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

var (
	gzipMagic = []byte{0x1f, 0x8b, 0x08}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Decompress detects the compression of r by its magic bytes and returns a
// reader of the decompressed stream. Close releases the decompressor; it
// does not close r. A stream that is cut short shows up as an
// io.ErrUnexpectedEOF from Read; gzip checksums are verified at its end.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, Uncompressed, err
	}
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, Gzip, cerrdefs.ErrInvalidArgument.WithMessage("gzip: " + err.Error())
		}
		return zr, Gzip, nil
	case bytes.HasPrefix(magic, zstdMagic):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, Zstd, cerrdefs.ErrInvalidArgument.WithMessage("zstd: " + err.Error())
		}
		return zstdReadCloser{zr}, Zstd, nil
	}
	return io.NopCloser(br), Uncompressed, nil
}

type zstdReadCloser struct{ *zstd.Decoder }

func (z zstdReadCloser) Close() error {
	z.Decoder.Close()
	return nil
}
