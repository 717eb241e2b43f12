// Package image is berth's image service: pull from registries, the local
// image records and references, inspect, history, tag, remove, prune, save
// and load. Blobs live in the content store, unpacked layers in the
// snapshot store; this package ties them together with bbolt records.
package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	ccontent "github.com/containerd/containerd/v2/core/content"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"

	"github.com/berth/berth/content"
	"github.com/berth/berth/leases"
	"github.com/berth/berth/snapshot"
)

// Config wires a Service.
type Config struct {
	// Root holds the image metadata database.
	Root      string
	Content   ccontent.Store
	Snapshots *snapshot.Store
	// Leases keep what is in flight from GC. Nil: the service opens its
	// own lease database under Root (tests).
	Leases   *leases.Store
	Registry RegistryConfig
	Version  string
	Logger   *slog.Logger
	// Containers says which containers use an image or stand on a layer,
	// so neither is removed from under them; nil: none do (tests).
	Containers Containers
	// Events receives image events; nil: none are published.
	Events EventPublisher
}

// Containers is what the image service asks the container service
// (container.Store implements it).
type Containers interface {
	// ImageUsage lists the containers using an image.
	ImageUsage(id digest.Digest) (running, stopped []string)
	// LayerUsage lists the layer chains containers stand on.
	LayerUsage() []digest.Digest
}

// Service manages images.
type Service struct {
	root      string
	damage    []string // what was found damaged at start (Damage)
	records   *recordStore
	content   ccontent.Store
	snapshots *snapshot.Store
	leases    *leases.Store
	ownLeases bool // leases was opened by New: Close closes it
	transport http.RoundTripper
	version   string
	log       *slog.Logger

	regMu sync.RWMutex
	reg   RegistryConfig

	// opMu serialises reference changes with deletions and prunes.
	// Lock order: opMu > orphanMu; opMu > leases.Store's collection lock.
	opMu sync.Mutex

	// orphans are the layers the last collection kept only because a
	// container stands on them (their image removed): removing such a
	// container collects (ReleaseLayer).
	orphanMu sync.Mutex
	orphans  map[digest.Digest]bool

	// tokens are registry bearer tokens, kept until they expire.
	tokens tokenCache

	containers Containers // nil: none
	events     EventPublisher

	// flights shares concurrent downloads of one layer (layerflight.go);
	// blobStall overrides defaultBlobStall (tests).
	flights   layerFlights
	blobStall time.Duration
}

// EventPublisher receives image events (pull, tag, untag, delete, load...).
type EventPublisher interface {
	Publish(typ, action, id string, attrs map[string]string)
}

func (s *Service) emit(action, id, name string) {
	if s.events != nil {
		s.events.Publish("image", action, id, map[string]string{"name": name})
	}
}

// Damage is what New found damaged, for /info's Warnings.
func (s *Service) Damage() []string { return s.damage }

// New opens the image service.
func New(cfg Config) (*Service, error) {
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	dbPath := filepath.Join(cfg.Root, "images.db")
	rs, damaged, err := openRecordStoreChecked(dbPath)
	if err != nil {
		return nil, err
	}
	var damage []string
	if damaged != nil {
		msg := fmt.Sprintf("image: the image database %s was damaged (%v): a new one was made; images must be pulled, loaded or built again (their layers and containers are kept)", dbPath, damaged)
		cfg.Logger.Error(msg)
		damage = append(damage, msg)
	}
	ls, own := cfg.Leases, false
	if ls == nil {
		if ls, err = leases.Open(context.Background(), filepath.Join(cfg.Root, "leases.db")); err != nil {
			rs.Close()
			return nil, err
		}
		own = true
	}
	return &Service{
		leases:     ls,
		ownLeases:  own,
		damage:     damage,
		root:       cfg.Root,
		records:    rs,
		content:    cfg.Content,
		snapshots:  cfg.Snapshots,
		transport:  newTransport(),
		version:    cfg.Version,
		log:        cfg.Logger,
		reg:        cfg.Registry,
		containers: cfg.Containers,
		events:     cfg.Events,
	}, nil
}

// Close releases the metadata database.
func (s *Service) Close() error {
	err := s.records.Close()
	if s.ownLeases {
		err = errors.Join(err, s.leases.Close())
	}
	return err
}

// SetRegistryConfig replaces the registry settings (SIGHUP reload).
func (s *Service) SetRegistryConfig(c RegistryConfig) {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	s.reg = c
}

func (s *Service) registryConfig() RegistryConfig {
	s.regMu.RLock()
	defer s.regMu.RUnlock()
	return s.reg
}

// RegistryServiceConfigTyped is the registry section of /info.
func (s *Service) RegistryServiceConfigTyped() *registry.ServiceConfig {
	return s.registryConfig().ServiceConfig()
}

// Count returns the number of images.
func (s *Service) Count() int {
	recs, _ := s.records.list()
	return len(recs)
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// isHexPrefix reports whether s could be a short image ID.
func isHexPrefix(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Descendants returns ids and every image built on one of them (commits
// and classic builds record their parent image), as dockerd's ps filter
// ancestor= walks the image graph down.
func (s *Service) Descendants(ids []digest.Digest) (map[digest.Digest]bool, error) {
	out := map[digest.Digest]bool{}
	for _, id := range ids {
		out[id] = true
	}
	recs, err := s.records.list()
	if err != nil {
		return nil, err
	}
	children := map[digest.Digest][]digest.Digest{}
	for _, r := range recs {
		if r.Parent != "" {
			children[r.Parent] = append(children[r.Parent], r.ID)
		}
	}
	queue := append([]digest.Digest(nil), ids...)
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		for _, c := range children[id] {
			if !out[c] {
				out[c] = true
				queue = append(queue, c)
			}
		}
	}
	return out, nil
}

// Resolve finds the image a user's name refers to: a full or short ID,
// or a reference (with ":latest" implied). Not found is Docker's
// "No such image: <familiar ref>".
func (s *Service) Resolve(ctx context.Context, nameOrID string) (*Record, error) {
	if d, err := digest.Parse(nameOrID); err == nil {
		if r, err := s.records.get(d); err == nil {
			return r, nil
		}
		if ids := s.records.matchPrefix(d.Encoded()); len(ids) == 1 {
			return s.records.get(ids[0])
		}
		return nil, cerrdefs.ErrNotFound.WithMessage("No such image: " + nameOrID)
	}
	if strings.HasPrefix(nameOrID, "sha256:") && isHexPrefix(strings.TrimPrefix(nameOrID, "sha256:")) {
		if ids := s.records.matchPrefix(strings.TrimPrefix(nameOrID, "sha256:")); len(ids) == 1 {
			return s.records.get(ids[0])
		}
		return nil, cerrdefs.ErrNotFound.WithMessage("No such image: " + nameOrID)
	}
	ref, perr := parseNormalized(nameOrID)
	if perr == nil {
		ref = reference.TagNameOnly(ref)
		if id, ok := s.records.lookupRef(ref.String()); ok {
			return s.records.get(id)
		}
	}
	if isHexPrefix(nameOrID) {
		ids := s.records.matchPrefix(nameOrID)
		if len(ids) == 1 {
			return s.records.get(ids[0])
		}
		if len(ids) > 1 && len(nameOrID) < 64 {
			return nil, cerrdefs.ErrNotFound.WithMessage("No such image: " + nameOrID)
		}
	}
	if perr != nil {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("no such image: %s: %v", nameOrID, perr))
	}
	return nil, cerrdefs.ErrNotFound.WithMessage("No such image: " + reference.FamiliarString(ref))
}

// Config returns the parsed image config of r.
func (s *Service) Config(ctx context.Context, r *Record) (*ImageConfig, error) {
	b, err := content.ReadBlob(ctx, s.content, r.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s config: %w", shortID(r.ID), err)
	}
	var c ImageConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("image %s config: %w", shortID(r.ID), err)
	}
	return &c, nil
}

// ChainIDs returns the chain ID of each layer of c, bottom first.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	var parent digest.Digest
	for i, d := range diffIDs {
		parent = snapshot.ChainID(parent, d)
		out[i] = parent
	}
	return out
}
