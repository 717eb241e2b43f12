package image

import (
	"encoding/json"
	"slices"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// Distribution sources: for each blob, the repositories it was pulled
// from or pushed to, by registry. A push offers the registry a
// cross-repository mount from one of them before uploading ("Mounted from
// library/busybox"), as dockerd does with its distribution metadata and
// containerd with its containerd.io/distribution.source.<registry> labels.
//
// They live in the image metadata database, bucket "sources":
// blob digest → {"registry host": ["repo/path", ...]}, most recent first.

var bucketSources = []byte("sources")

// maxSourcesPerRegistry bounds what is kept per blob and registry.
const maxSourcesPerRegistry = 8

type blobSources map[string][]string

// addSources records that every blob in blobs is in repository named
// (its registry and path).
func (s *recordStore) addSources(named reference.Named, blobs []digest.Digest) error {
	domain, path := reference.Domain(named), reference.Path(named)
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSources)
		if err != nil {
			return err
		}
		for _, d := range blobs {
			src := blobSources{}
			if v := b.Get([]byte(d)); v != nil {
				_ = json.Unmarshal(v, &src)
			}
			repos := slices.DeleteFunc(src[domain], func(r string) bool { return r == path })
			repos = append([]string{path}, repos...)
			if len(repos) > maxSourcesPerRegistry {
				repos = repos[:maxSourcesPerRegistry]
			}
			src[domain] = repos
			v, err := json.Marshal(src)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(d), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// sourcesIn returns the repositories of registry domain that blob d is
// known to be in, most recent first.
func (s *recordStore) sourcesIn(d digest.Digest, domain string) []string {
	var out []string
	_ = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSources)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(d))
		if v == nil {
			return nil
		}
		var src blobSources
		if json.Unmarshal(v, &src) == nil {
			out = src[domain]
		}
		return nil
	})
	return out
}

// addDigestRef points a digest reference ("repo@sha256:...") at image id.
func (s *recordStore) addDigestRef(ref string, id digest.Digest) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if _, err := getRecord(tx, id); err != nil {
			return err
		}
		return setRefTx(tx, ref, id, true)
	})
}

// recordPullSources notes that rec's blobs are in ref's repository, under
// its canonical name (a pull through a mirror still names docker.io), as
// dockerd and containerd record them.
func (s *Service) recordPullSources(ref reference.Named, rec *Record) {
	blobs := []digest.Digest{rec.ID}
	for _, l := range rec.Layers {
		blobs = append(blobs, l.Digest)
	}
	if err := s.records.addSources(reference.TrimNamed(ref), blobs); err != nil {
		s.log.Warn("pull: record distribution sources", "ref", ref.String(), "err", err)
	}
}
