package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
)

const (
	// defaultBlobStall is how long a layer's body may deliver nothing
	// before its connection is dropped and the download resumed.
	defaultBlobStall = 30 * time.Second
	// maxBlobResumes is how many times in a row a layer download may
	// break off (or stall) without a byte of progress before the pull
	// fails.
	maxBlobResumes = 5
)

// blobSource fetches the layers of one resolved repository. The first
// request for a layer is go-containerregistry's; a body that stalls or
// breaks off is resumed with a Range request from the byte reached, on a
// client authenticated for the repository the first time one is needed.
type blobSource struct {
	repo  name.Repository
	auth  authn.Authenticator
	rt    http.RoundTripper // unauthenticated transport to the registry
	stall time.Duration
	log   *slog.Logger

	once   sync.Once
	client *http.Client
	err    error
}

func (s *Service) newBlobSource(res *resolved) *blobSource {
	stall := s.blobStall
	if stall <= 0 {
		stall = defaultBlobStall
	}
	reg := res.endpoint.repo.Registry
	return &blobSource{
		repo:  res.endpoint.repo,
		auth:  res.auth,
		rt:    credentialGuard{inner: s.transport, registry: reg.RegistryStr(), insecure: reg.Scheme() == "http"},
		stall: stall,
		log:   s.log,
	}
}

// httpClient is the client for Range requests, authenticated once.
func (b *blobSource) httpClient(ctx context.Context) (*http.Client, error) {
	b.once.Do(func() {
		auth := b.auth
		if auth == nil {
			auth = authn.Anonymous
		}
		// Authentication outlives the ctx of the layer that first needs it.
		rt, err := transport.NewWithContext(context.WithoutCancel(ctx), b.repo.Registry, auth, b.rt, []string{b.repo.Scope(transport.PullScope)})
		b.client, b.err = &http.Client{Transport: rt}, err
	})
	return b.client, b.err
}

// open returns layer l's compressed bytes (size of them, digest d),
// resumed where the connection broke off or stalled. The bytes are not
// verified here: the content store does that when the blob is committed.
func (b *blobSource) open(ctx context.Context, l v1.Layer, d digest.Digest, size int64) (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	r := &resumeReader{ctx: ctx, src: b, d: d, size: size, body: rc}
	r.timer = time.AfterFunc(time.Hour, r.onStall)
	r.timer.Stop()
	return r, nil
}

// resumeReader reads a blob across broken connections. Read is called
// from one goroutine; onStall from the timer's, hence mu.
type resumeReader struct {
	ctx   context.Context
	src   *blobSource
	d     digest.Digest
	size  int64
	off   int64 // bytes of the blob delivered so far
	skip  int64 // bytes still to drop from a registry that ignored Range
	fails int   // breaks in a row without progress
	timer *time.Timer

	mu      sync.Mutex
	body    io.ReadCloser
	cancel  context.CancelFunc // of the request behind body, if ours
	stalled bool
}

func (r *resumeReader) onStall() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stalled = true
	r.dropLocked()
}

func (r *resumeReader) dropLocked() {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	if r.cancel != nil {
		r.cancel()
		r.cancel = nil
	}
}

func (r *resumeReader) Read(p []byte) (int, error) {
	for {
		r.mu.Lock()
		body := r.body
		r.mu.Unlock()
		if body == nil {
			if r.off >= r.size {
				return 0, io.EOF
			}
			if err := r.reopen(); err != nil {
				if err := r.broke(err); err != nil {
					return 0, err
				}
				continue
			}
			r.mu.Lock()
			body = r.body
			r.mu.Unlock()
		}
		r.timer.Reset(r.src.stall)
		n, err := body.Read(p)
		r.timer.Stop()
		if n > 0 {
			r.fails = 0
		}
		if r.skip > 0 && n > 0 {
			k := min(int64(n), r.skip)
			copy(p, p[k:n])
			n -= int(k)
			r.skip -= k
		}
		r.off += int64(n)
		if err == nil {
			return n, nil
		}
		r.mu.Lock()
		stalled := r.stalled
		r.stalled = false
		r.mu.Unlock()
		if stalled {
			err = fmt.Errorf("no data for %s", r.src.stall)
		}
		switch {
		case r.off >= r.size:
			// All there: EOF, or go-containerregistry's verdict on it.
			return n, err
		case r.ctx.Err() != nil:
			return n, r.ctx.Err()
		}
		if err := r.broke(err); err != nil {
			return n, err
		}
		if n > 0 {
			return n, nil
		}
	}
}

// broke closes the current body after err and waits before the next
// attempt, or gives up after maxBlobResumes breaks without progress.
func (r *resumeReader) broke(err error) error {
	r.mu.Lock()
	r.dropLocked()
	r.mu.Unlock()
	r.fails++
	if r.fails > maxBlobResumes {
		return fmt.Errorf("download of %s broke off %d times at byte %d of %d: %w", r.d, r.fails, r.off, r.size, err)
	}
	r.src.log.Info("layer download broke off, resuming", "digest", r.d, "offset", r.off, "size", r.size, "err", err)
	wait := time.NewTimer(time.Duration(100<<min(r.fails-1, 4)) * time.Millisecond)
	defer wait.Stop()
	select {
	case <-wait.C:
		return nil
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
}

// reopen asks for the blob from r.off on.
func (r *resumeReader) reopen() error {
	client, err := r.src.httpClient(r.ctx)
	if err != nil {
		return err
	}
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", r.src.repo.Scheme(), r.src.repo.RegistryStr(), r.src.repo.RepositoryStr(), r.d)
	rctx, cancel := context.WithCancel(r.ctx)
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		cancel()
		return err
	}
	if r.off > 0 {
		// Closed, as go-containerregistry's registry wants it.
		req.Header.Set("Range", "bytes="+strconv.FormatInt(r.off, 10)+"-"+strconv.FormatInt(r.size-1, 10))
	}
	// Until the body is handed over, a registry that answers nothing
	// (headers or an error's body) is given up on as a stalled body is.
	waited := time.AfterFunc(r.src.stall, cancel)
	defer waited.Stop()
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		return err
	}
	skip := int64(0)
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if !strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(r.off, 10)+"-") {
			resp.Body.Close()
			cancel()
			return fmt.Errorf("registry answered range %d- with %q", r.off, resp.Header.Get("Content-Range"))
		}
	case http.StatusOK:
		skip = r.off // the registry ignores Range: drop what is there
	default:
		err := transport.CheckError(resp, http.StatusOK, http.StatusPartialContent)
		resp.Body.Close()
		cancel()
		if err == nil {
			err = errors.New(resp.Status)
		}
		return err
	}
	r.mu.Lock()
	r.body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, r.size-r.off+skip), resp.Body}
	r.cancel = cancel
	r.skip = skip
	r.stalled = false
	r.mu.Unlock()
	return nil
}

func (r *resumeReader) Close() error {
	r.timer.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropLocked()
	return nil
}
