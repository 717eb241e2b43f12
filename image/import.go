package image

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/archive"
	"github.com/berth/berth/progress"
)

// ImportRequest is POST /images/create?fromSrc= (docker import): a root
// filesystem as a tar (plain or compressed) becomes a one-layer image.
type ImportRequest struct {
	// Src is "-" (the tar is Body) or a URL to fetch it from; a URL
	// without a scheme is taken as http://.
	Src  string
	Body io.Reader
	// Repo and Tag name the new image ("" for none; Tag defaults to latest).
	Repo, Tag string
	// Message is the history comment (default "Imported from <src>").
	Message string
	// Changes are Dockerfile instructions applied to the config.
	Changes []string
	// Platform is "os[/arch[/variant]]"; default linux/amd64.
	Platform string
}

// Import creates an image from req and returns its ID, writing Docker's
// messages to out: "Downloading from <url>" and "Importing" progress for a
// URL, then the ID. Errors found before anything is read (bad reference,
// platform or change) are returned before any message.
func (s *Service) Import(ctx context.Context, req ImportRequest, out progress.Output) (digest.Digest, error) {
	var tag string
	if req.Repo != "" {
		named, err := reference.ParseNormalizedNamed(req.Repo)
		if err != nil {
			return "", cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		if _, ok := named.(reference.Canonical); ok {
			return "", cerrdefs.ErrInvalidArgument.WithMessage("cannot import digest reference")
		}
		if req.Tag != "" {
			if named, err = reference.WithTag(named, req.Tag); err != nil {
				return "", cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
			}
		}
		tag = reference.TagNameOnly(named).String()
	}
	plat := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	if req.Platform != "" {
		p, err := platforms.Parse(req.Platform)
		if err != nil {
			return "", cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		if p.OS != "linux" {
			return "", cerrdefs.ErrInvalidArgument.WithMessage("operating system is not supported")
		}
		plat = p
	}
	var cfg ImageConfig
	if err := ApplyChanges(&cfg.Config, req.Changes); err != nil {
		return "", err
	}

	src := req.Src
	var body io.Reader
	if src == "-" {
		body = req.Body
	} else {
		if !strings.Contains(src, "://") {
			src = "http://" + src
		}
		u, err := url.Parse(src)
		if err != nil {
			return "", cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		rc, size, err := s.fetchImport(ctx, u)
		if err != nil {
			return "", err
		}
		defer rc.Close()
		_ = progress.Status(out, "", "Downloading from "+u.String())
		body = io.TeeReader(rc, progress.NewReporter(out, "", "Importing", size))
	}
	msg := req.Message
	if msg == "" {
		msg = "Imported from " + src
	}
	tr, _, err := archive.Decompress(body)
	if err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	defer tr.Close()
	created := time.Now().UTC()
	id, err := s.Commit(ctx, CommitRequest{
		Layer:    tr,
		Config:   &cfg,
		History:  ocispec.History{Created: &created, Comment: msg},
		Tag:      tag,
		Platform: &plat,
	})
	if err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	s.emit("import", id.String(), id.String())
	_ = progress.Status(out, "", id.String())
	return id, nil
}

// fetchImport opens the tar at u for import.
func (s *Service) fetchImport(ctx context.Context, u *url.URL) (io.ReadCloser, int64, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return nil, 0, cerrdefs.ErrUnavailable.WithMessage(err.Error())
	}
	if resp.StatusCode >= 400 {
		resp.Body.Close()
		return nil, 0, cerrdefs.ErrUnavailable.WithMessage(fmt.Sprintf("error downloading %s: %s", u, resp.Status))
	}
	return resp.Body, resp.ContentLength, nil
}
