package image

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/berth/berth/errdefs"
)

// ParseReference parses a user's image reference as Docker does: a name
// without a registry means Docker Hub ("nginx" → "docker.io/library/nginx").
// A name with neither tag nor digest gets ":latest".
func ParseReference(s string) (reference.Named, error) {
	r, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, errdefs.InvalidParameter(refError(s, err))
	}
	return reference.TagNameOnly(r), nil
}

func refError(s string, err error) string {
	msg := err.Error()
	if strings.Contains(msg, "must be lowercase") {
		return fmt.Sprintf("invalid reference format: repository name (%s) must be lowercase", s)
	}
	return msg
}

// ParsePullReference combines the fromImage and tag query parameters of
// POST /images/create. tag may be a tag or a digest ("sha256:...").
func ParsePullReference(fromImage, tag string) (reference.Named, error) {
	r, err := reference.ParseNormalizedNamed(fromImage)
	if err != nil {
		return nil, errdefs.InvalidParameter(refError(fromImage, err))
	}
	if tag != "" {
		if _, isTagged := r.(reference.Tagged); isTagged {
			// Docker takes the separate tag over one inside fromImage.
			r = reference.TrimNamed(r)
		}
		if dgst, derr := digest.Parse(tag); derr == nil {
			r, err = reference.WithDigest(reference.TrimNamed(r), dgst)
		} else {
			r, err = reference.WithTag(r, tag)
		}
		if err != nil {
			return nil, errdefs.InvalidParameter(err.Error())
		}
	}
	return reference.TagNameOnly(r), nil
}

// FamiliarString is the short form users see: "nginx:alpine".
func FamiliarString(r reference.Named) string { return reference.FamiliarString(r) }

// FamiliarName is the short repository name: "nginx", "user/app".
func FamiliarName(r reference.Named) string { return reference.FamiliarName(r) }

// shortID returns the 12-hex-digit form of an image ID.
func shortID(id digest.Digest) string {
	h := id.Encoded()
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
