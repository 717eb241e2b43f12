package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Record is what berth keeps about one image beside its blobs. The image's
// ID is the digest of its config blob, as in Docker.
type Record struct {
	ID                digest.Digest `json:"id"`
	Manifest          digest.Digest `json:"manifest,omitempty"`
	ManifestMediaType string        `json:"manifestMediaType,omitempty"`
	ManifestSize      int64         `json:"manifestSize,omitempty"`
	// Layers are the compressed blobs, bottom first, matching the config's
	// diff_ids one to one.
	Layers      []LayerRef `json:"layers"`
	RepoTags    []string   `json:"repoTags,omitempty"`
	RepoDigests []string   `json:"repoDigests,omitempty"`
	// ChainID of the top layer ("" for an image with no layers).
	TopChain    digest.Digest `json:"topChain,omitempty"`
	Size        int64         `json:"size"`
	Parent      digest.Digest `json:"parent,omitempty"`
	LastTagTime time.Time     `json:"lastTagTime,omitzero"`
	Added       time.Time     `json:"added"`
}

// LayerRef names one layer of an image.
type LayerRef struct {
	Digest    digest.Digest `json:"digest"`
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	DiffID    digest.Digest `json:"diffID"`
}

var (
	bucketImages = []byte("images")
	bucketRefs   = []byte("refs") // full reference string → image ID
)

// recordStore keeps image records and references in bbolt. Every change is
// one transaction, so a crash never leaves a reference to a missing record.
type recordStore struct {
	db *bolt.DB
}

func openRecordStore(path string) (*recordStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open image metadata %s: %w", path, err)
	}
	return initRecordStore(db)
}

// openRecordStoreChecked is openRecordStore for berthd's start (issue 13
// item 9): a damaged database (one bbolt refuses or panics on, or an empty
// file, which bbolt would silently start anew) is kept aside as
// <path>.damaged and a new one is made. damage says what happened (nil
// when nothing was wrong); err is for what is not damage (another process
// holds the database).
func openRecordStoreChecked(path string) (rs *recordStore, damage, err error) {
	if fi, serr := os.Stat(path); serr == nil && fi.Size() == 0 {
		damage = errors.New("the file is empty")
	} else {
		rs, err = openRecovered(path)
		if err == nil || errors.Is(err, berrors.ErrTimeout) {
			return rs, nil, err
		}
		damage = err
	}
	kept := path + ".damaged"
	if _, serr := os.Lstat(kept); serr == nil {
		kept += "." + time.Now().UTC().Format("20060102T150405")
	}
	if rerr := os.Rename(path, kept); rerr != nil {
		return nil, nil, fmt.Errorf("image metadata %s is damaged (%v) and cannot be moved aside: %w", path, damage, rerr)
	}
	rs, err = openRecordStore(path)
	if err != nil {
		return nil, nil, err
	}
	return rs, fmt.Errorf("%w; the damaged file is kept as %s", damage, kept), nil
}

// openRecovered opens path, turning a panic of bbolt on a garbled file
// into an error.
func openRecovered(path string) (rs *recordStore, err error) {
	defer func() {
		if r := recover(); r != nil {
			rs, err = nil, fmt.Errorf("unreadable: %v", r)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	rs, err = initRecordStore(db)
	if err != nil {
		return nil, err
	}
	// Every record and reference must be readable.
	if err := db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketImages, bucketRefs} {
			if err := tx.Bucket(b).ForEach(func(k, v []byte) error { return nil }); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, err
	}
	return rs, nil
}

func initRecordStore(db *bolt.DB) (*recordStore, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketImages, bucketRefs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &recordStore{db: db}, nil
}

func (s *recordStore) Close() error { return s.db.Close() }

func getRecord(tx *bolt.Tx, id digest.Digest) (*Record, error) {
	v := tx.Bucket(bucketImages).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("image %s: %w", id, cerrdefs.ErrNotFound)
	}
	var r Record
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("image record %s: %w", id, err)
	}
	return &r, nil
}

func putRecord(tx *bolt.Tx, r *Record) error {
	sort.Strings(r.RepoTags)
	sort.Strings(r.RepoDigests)
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketImages).Put([]byte(r.ID), b)
}

// get returns the record with this exact ID.
func (s *recordStore) get(id digest.Digest) (*Record, error) {
	var r *Record
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		r, err = getRecord(tx, id)
		return err
	})
	return r, err
}

// lookupRef returns the image a full reference string points to.
func (s *recordStore) lookupRef(ref string) (digest.Digest, bool) {
	var id digest.Digest
	_ = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketRefs).Get([]byte(ref)); v != nil {
			id = digest.Digest(v)
		}
		return nil
	})
	return id, id != ""
}

// list returns every record.
func (s *recordStore) list() ([]*Record, error) {
	var out []*Record
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("image record %s: %w", k, err)
			}
			out = append(out, &r)
			return nil
		})
	})
	return out, err
}

// matchPrefix returns the IDs starting with hex prefix p.
func (s *recordStore) matchPrefix(p string) []digest.Digest {
	var out []digest.Digest
	_ = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketImages).Cursor()
		pre := []byte("sha256:" + p)
		for k, _ := c.Seek(pre); k != nil && strings.HasPrefix(string(k), string(pre)); k, _ = c.Next() {
			out = append(out, digest.Digest(k))
		}
		return nil
	})
	return out
}

// addImage stores r (or merges into the existing record with the same ID)
// and points each of refs at it, moving refs away from older images. It
// returns the IDs of images that lost their last reference, now dangling.
func (s *recordStore) addImage(r *Record, tags, digests []string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		existing, err := getRecord(tx, r.ID)
		if err == nil {
			r.RepoTags = existing.RepoTags
			r.RepoDigests = existing.RepoDigests
			r.Added = existing.Added
			r.LastTagTime = existing.LastTagTime
			if r.Manifest == "" {
				r.Manifest, r.ManifestMediaType, r.ManifestSize = existing.Manifest, existing.ManifestMediaType, existing.ManifestSize
			}
		}
		if err := putRecord(tx, r); err != nil {
			return err
		}
		for _, t := range tags {
			if err := setRefTx(tx, t, r.ID, false); err != nil {
				return err
			}
		}
		for _, d := range digests {
			if err := setRefTx(tx, d, r.ID, true); err != nil {
				return err
			}
		}
		return nil
	})
}

// setRefTx points ref at id, removing it from the image it pointed at before.
func setRefTx(tx *bolt.Tx, ref string, id digest.Digest, isDigest bool) error {
	refs := tx.Bucket(bucketRefs)
	if old := refs.Get([]byte(ref)); old != nil && digest.Digest(old) != id {
		if prev, err := getRecord(tx, digest.Digest(old)); err == nil {
			prev.RepoTags = remove(prev.RepoTags, ref)
			prev.RepoDigests = remove(prev.RepoDigests, ref)
			if err := putRecord(tx, prev); err != nil {
				return err
			}
		}
	}
	if err := refs.Put([]byte(ref), []byte(id)); err != nil {
		return err
	}
	r, err := getRecord(tx, id)
	if err != nil {
		return err
	}
	if isDigest {
		r.RepoDigests = addUnique(r.RepoDigests, ref)
	} else {
		r.RepoTags = addUnique(r.RepoTags, ref)
		r.LastTagTime = time.Now().UTC()
	}
	return putRecord(tx, r)
}

// tag points ref at id.
func (s *recordStore) tag(ref string, id digest.Digest) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if _, err := getRecord(tx, id); err != nil {
			return err
		}
		return setRefTx(tx, ref, id, false)
	})
}

// untag removes ref, returning the image it pointed at.
func (s *recordStore) untag(ref string) (digest.Digest, error) {
	var id digest.Digest
	err := s.db.Update(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRefs).Get([]byte(ref))
		if v == nil {
			return fmt.Errorf("reference %s: %w", ref, cerrdefs.ErrNotFound)
		}
		id = digest.Digest(v)
		if err := tx.Bucket(bucketRefs).Delete([]byte(ref)); err != nil {
			return err
		}
		r, err := getRecord(tx, id)
		if err != nil {
			return nil
		}
		r.RepoTags = remove(r.RepoTags, ref)
		r.RepoDigests = remove(r.RepoDigests, ref)
		return putRecord(tx, r)
	})
	return id, err
}

// deleteImage removes the record and every reference to it.
func (s *recordStore) deleteImage(id digest.Digest) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		r, err := getRecord(tx, id)
		if err != nil {
			return err
		}
		for _, ref := range append(append([]string{}, r.RepoTags...), r.RepoDigests...) {
			if err := tx.Bucket(bucketRefs).Delete([]byte(ref)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketImages).Delete([]byte(id))
	})
}

func addUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func remove(list []string, s string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}
