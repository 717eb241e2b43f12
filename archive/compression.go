package archive

import (
	"bufio"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/moby/go-archive/compression"
	"github.com/ulikunitz/xz"
)

// Compression is a stream's compression: go-archive's type, so that the
// set and its detection are exactly dockerd's.
type Compression = compression.Compression

// The compressions Decompress recognises (dockerd's set).
const (
	None  = compression.None
	Bzip2 = compression.Bzip2
	Gzip  = compression.Gzip
	Xz    = compression.Xz
	Zstd  = compression.Zstd
)

// Name is c's name in messages ("gzip", "uncompressed" ...).
func Name(c Compression) string {
	switch c {
	case None:
		return "uncompressed"
	case Bzip2:
		return "bzip2"
	case Gzip:
		return "gzip"
	case Xz:
		return "xz"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression %d", int(c))
}

// Detect names the compression of a stream from its first bytes (10 are
// enough): go-archive's detection, so berth accepts what dockerd accepts.
func Detect(head []byte) Compression { return compression.Detect(head) }

// Decompress detects the compression of r by its first bytes and returns
// a reader of the decompressed stream: identity, gzip, bzip2, xz or zstd,
// as dockerd accepts for PUT /containers/{id}/archive and POST
// /images/load. Close releases the decompressor; it does not close r.
//
// A stream that is corrupt or cut short fails a Read with an error of
// class cerrdefs.ErrInvalidArgument ("invalid gzip stream: ..."); an
// error of r itself (a client that went away, a registry connection
// reset) comes back as it is. gzip's and xz's checksums are checked at
// the end of the stream, so read it to io.EOF before trusting it.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	src := &sourceReader{r: r}
	br := bufio.NewReaderSize(src, 64<<10)
	head, err := br.Peek(10)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, None, err
	}
	c := Detect(head)
	var (
		dr    io.Reader
		close func()
	)
	switch c {
	case None:
		return &decompressed{r: br, src: src, kind: c}, c, nil
	case Gzip:
		// klauspost's inflate: the layer fast path of every pull.
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c, src.corrupt(c, err)
		}
		dr, close = zr, func() { zr.Close() }
	case Zstd:
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, c, src.corrupt(c, err)
		}
		dr, close = zr, zr.Close
	case Bzip2:
		dr = bzip2.NewReader(br)
	case Xz:
		zr, err := xz.NewReader(br)
		if err != nil {
			return nil, c, src.corrupt(c, err)
		}
		dr = zr
	default:
		return nil, c, cerrdefs.ErrInvalidArgument.WithMessage("unsupported compression " + Name(c))
	}
	return &decompressed{r: dr, close: close, src: src, kind: c}, c, nil
}

// sourceReader remembers the last error of the compressed stream's own
// reader, so that a decompressor's error can be told apart from it.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// classify returns err as it is when it came from the source (or is the
// end of the stream), otherwise as a corrupt stream.
func (s *sourceReader) classify(c Compression, err error) error {
	if err == nil || err == io.EOF || (s.err != nil && errors.Is(err, s.err)) {
		return err
	}
	return &CorruptError{Compression: c, Err: err}
}

// corrupt is classify for a decompressor that could not even start: the
// end of the stream there means it was cut short.
func (s *sourceReader) corrupt(c Compression, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return s.classify(c, err)
}

// CorruptError is a compressed stream that cannot be decompressed. It is
// of class cerrdefs.ErrInvalidArgument.
type CorruptError struct {
	Compression Compression
	Err         error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("invalid %s stream: %v", Name(e.Compression), e.Err)
}

// Unwrap gives both the class and the decompressor's error.
func (e *CorruptError) Unwrap() []error { return []error{cerrdefs.ErrInvalidArgument, e.Err} }

type decompressed struct {
	r     io.Reader
	close func()
	src   *sourceReader
	kind  Compression
	done  bool
}

func (d *decompressed) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = d.src.classify(d.kind, err)
	}
	return n, err
}

func (d *decompressed) Close() error {
	if !d.done && d.close != nil {
		d.close()
	}
	d.done = true
	return nil
}

// compressBuffer is how much compressed output Compress gathers before
// writing it on. klauspost's deflate hands its output over in pieces of
// about 240 bytes; written straight into a file and a socket (push) that
// was one syscall each, a third of a push's CPU.
const compressBuffer = 256 << 10

// Compress returns a writer that compresses into w with c, as berth makes
// layer blobs: gzip at the default level (klauspost's deflate, the
// speed dockerd gets from pigz) or zstd. The output reaches w in writes
// of up to 256 KiB. Close flushes the stream; it does not close w.
func Compress(w io.Writer, c Compression) (io.WriteCloser, error) {
	if c == None {
		return nopWriteCloser{w}, nil
	}
	bw := bufio.NewWriterSize(w, compressBuffer)
	var zw io.WriteCloser
	switch c {
	case Gzip:
		gw, err := gzip.NewWriterLevel(bw, gzip.DefaultCompression)
		if err != nil {
			return nil, err
		}
		zw = gw
	case Zstd:
		enc, err := zstd.NewWriter(bw)
		if err != nil {
			return nil, err
		}
		zw = enc
	default:
		return nil, fmt.Errorf("berth does not write %s layers: %w", Name(c), cerrdefs.ErrNotImplemented)
	}
	return &bufferedCompressor{WriteCloser: zw, bw: bw}, nil
}

// bufferedCompressor is a compressor writing through a buffer that Close
// flushes after the compressor's own end of stream.
type bufferedCompressor struct {
	io.WriteCloser
	bw *bufio.Writer
}

func (b *bufferedCompressor) Close() error {
	if err := b.WriteCloser.Close(); err != nil {
		return err
	}
	return b.bw.Flush()
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
