package build

import (
	"archive/tar"
	"context"
	"io"
	"path"
	"strings"

	"github.com/berth/berth/archive"
)

// maxDockerfile is the most of a Dockerfile the classic progress reads.
const maxDockerfile = 4 << 20

// dockerfileSniffer passes a context tar through to the builder and, on
// the side, finds the Dockerfile in it so that the classic (version 1)
// progress can number the steps. It reads each byte the builder reads,
// once, and never holds the context.
type dockerfileSniffer struct {
	src io.ReadCloser
	pw  *io.PipeWriter
	// found closes once the finder has found the Dockerfile or given up.
	found chan struct{}
	df    []byte // set before found closes
}

// sniffDockerfile returns a reader over body that, as it is read, looks
// for the entry called name (default Dockerfile).
func sniffDockerfile(body io.ReadCloser, name string) *dockerfileSniffer {
	name = cleanEntry(name)
	if name == "" || name == "." {
		name = "Dockerfile"
	}
	pr, pw := io.Pipe()
	s := &dockerfileSniffer{src: body, pw: pw, found: make(chan struct{})}
	go func() {
		s.df = findEntry(pr, name)
		close(s.found)
		_, _ = io.Copy(io.Discard, pr)
	}()
	return s
}

func (s *dockerfileSniffer) Read(p []byte) (int, error) {
	n, err := s.src.Read(p)
	if n > 0 {
		// The finder drains what it does not need, so this write only
		// fails once Close ended it.
		_, _ = s.pw.Write(p[:n])
	}
	if err != nil {
		s.pw.CloseWithError(err)
	}
	return n, err
}

// Close ends the side reader too.
func (s *dockerfileSniffer) Close() error {
	s.pw.CloseWithError(io.ErrClosedPipe)
	return s.src.Close()
}

// dockerfile returns the Dockerfile once the context has been read past it
// (nil when it was not found or the context is not a tar).
func (s *dockerfileSniffer) dockerfile(ctx context.Context) []byte {
	select {
	case <-s.found:
		return s.df
	case <-ctx.Done():
		return nil
	}
}

func cleanEntry(name string) string {
	return strings.TrimPrefix(path.Clean("/"+strings.ReplaceAll(name, `\`, "/")), "/")
}

// findEntry reads a tar (plain or compressed as a build context may be:
// archive.Decompress) and returns the content of the regular file called
// name.
func findEntry(r io.Reader, name string) []byte {
	in, _, err := archive.Decompress(r)
	if err != nil {
		return nil
	}
	defer in.Close()
	tr := tar.NewReader(in)
	for {
		h, err := tr.Next()
		if err != nil {
			return nil
		}
		if cleanEntry(h.Name) != name || h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxDockerfile))
		if err != nil {
			return nil
		}
		return b
	}
}
