package image

import (
	"errors"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// ParseReference parses a user's image reference as Docker does: a name
// without a registry means Docker Hub ("nginx" → "docker.io/library/nginx").
// A name with neither tag nor digest gets ":latest".
func ParseReference(s string) (reference.Named, error) {
	r, err := parseNormalized(s)
	if err != nil {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	return reference.TagNameOnly(r), nil
}

// errUppercase is Docker's daemon-side wording for a name with capitals.
const errUppercase = "invalid reference format: repository name must be lowercase"

// parseNormalized parses like reference.ParseNormalizedNamed, but refuses
// capitals anywhere in the repository path, as Docker's daemon does (the
// library would take "UPPER/x" for a registry host named UPPER).
func parseNormalized(s string) (reference.Named, error) {
	name := s
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	// A registry host may have capitals ("HOST.EXAMPLE.COM:443/x"): the
	// first component is one when it has a '.' or ':' or is localhost
	// (dockerd 20.10's rule; "UPPER/x" is a Docker Hub name).
	repo := name
	if i := strings.IndexByte(name, '/'); i >= 0 && (strings.ContainsAny(name[:i], ".:") || name[:i] == "localhost") {
		repo = name[i+1:]
	}
	if strings.ToLower(repo) != repo {
		return nil, errors.New(errUppercase)
	}
	// The library also takes a digest's algorithm without a tag before it
	// ("x@SHA256:...") for part of the repository name.
	if i := strings.IndexByte(s, '@'); i >= 0 && !strings.Contains(s[strings.LastIndexByte(s[:i], '/')+1:i], ":") {
		if alg, _, _ := strings.Cut(s[i+1:], ":"); strings.ToLower(alg) != alg {
			return nil, errors.New(errUppercase)
		}
	}
	r, err := reference.ParseNormalizedNamed(s)
	if errors.Is(err, reference.ErrNameContainsUppercase) {
		return nil, errors.New(errUppercase)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// ParsePullReference combines the fromImage and tag query parameters of
// POST /images/create. tag may be a tag or a digest ("sha256:...").
func ParsePullReference(fromImage, tag string) (reference.Named, error) {
	r, err := parseNormalized(fromImage)
	if err != nil {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	if tag != "" {
		if _, isTagged := r.(reference.Tagged); isTagged {
			// Docker takes the separate tag over one inside fromImage.
			r = reference.TrimNamed(r)
		}
		if dgst, derr := digest.Parse(tag); derr == nil {
			r, err = reference.WithDigest(reference.TrimNamed(r), dgst)
		} else if strings.HasPrefix(tag, "sha256:") {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage("invalid tag format")
		} else {
			r, err = reference.WithTag(r, tag)
		}
		if err != nil {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage("invalid tag format")
		}
	}
	return reference.TagNameOnly(r), nil
}

// ParsePushReference combines the name in the path of POST
// /images/{name}/push with its tag parameter: a tagged reference, or the
// bare repository when tag is empty (every tag is pushed).
func ParsePushReference(name, tag string) (reference.Named, error) {
	r, err := parseNormalized(name)
	if err != nil {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	if _, ok := r.(reference.Digested); ok {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("cannot push a digest reference")
	}
	if tag == "" {
		if t, ok := r.(reference.Tagged); ok {
			tag = t.Tag()
		}
	}
	r = reference.TrimNamed(r)
	if tag == "" {
		return r, nil
	}
	tagged, err := reference.WithTag(r, tag)
	if err != nil {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage("invalid tag format")
	}
	return tagged, nil
}

// shortID returns the 12-hex-digit form of an image ID.
func shortID(id digest.Digest) string { return truncateID(id.Encoded()) }

// truncateID is the 12-character form of a hex ID (an image's or a
// container's).
func truncateID(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
