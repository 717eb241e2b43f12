// Package volume is berth's volume service: Docker's "local" volume driver.
//
// A volume lives at <root>/<name>/_data, Docker's layout, beside a metadata
// file <root>/<name>/volume.json (driver, labels, options, creation time, the
// containers using it, and whether it was filled from an image).
//
// # Lifecycle
//
//	Create ─▶ Acquire(ctr) ─▶ CopyUp(image dir) ─▶ Unmount(ctr) ─▶ ... ─▶ Release(ctr) ─▶ Remove / Prune
//	          container       first mount only     container          container
//	          create/start                         stop               rm
//
// Create is idempotent: creating a name that exists returns the existing
// volume unchanged, as Docker does. A volume with references (containers
// that acquired it and were not released: running or stopped) cannot be
// removed or pruned. A volume with driver options type/device/o is mounted
// at its _data while some container that acquired it has not unmounted it
// (see mount.go). References are persisted, so they survive a daemon
// restart; Reconcile then corrects them against the containers that exist.
//
// # Crash safety
//
// Every metadata change is written to a temporary file in the volume's
// directory, fsynced and renamed over volume.json, then the directory is
// fsynced: a reader sees the old or the new record, never a torn one. A new
// volume is assembled in <root>/.creating-* (its _data and its metadata) and
// renamed to <root>/<name> in one step, so a crash never leaves a volume
// without metadata. Removal renames <root>/<name> to <root>/.removing-*
// before deleting the data. New deletes whatever such leftovers it finds.
//
// A JSON file per volume was chosen over bbolt because the metadata and the
// data directory then change together in one rename, which two stores cannot
// do; each volume is self-describing on disk; and the write rate (one small
// file per create, acquire or release) is far below what matters.
package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	volumetypes "github.com/moby/moby/api/types/volume"

	"github.com/berth/berth/filters"
	"github.com/berth/berth/internal/osutil"
)

const (
	// DriverName is the only volume driver berth has.
	DriverName = "local"
	// Scope is the scope of every local volume.
	Scope = "local"
	// AnonymousLabel marks volumes created without a name. Prune removes
	// only these unless asked for all volumes (Docker ≥ 23, API ≥ 1.42).
	AnonymousLabel = "com.docker.volume.anonymous"

	dataDirName = "_data"
	metaName    = "volume.json"
	creatingPfx = ".creating-"
	removingPfx = ".removing-"
)

// Docker's rule for local volume names (names.RestrictedNameChars).
const restrictedNameChars = `[a-zA-Z0-9][a-zA-Z0-9_.-]`

var validName = regexp.MustCompile(`^` + restrictedNameChars + `+$`)

// Service manages local volumes under one root directory. It is safe for
// concurrent use.
type Service struct {
	root string

	mu   sync.Mutex // guards vols and warnings; taken before any entry's mu
	vols map[string]*entry
	// warnings are problems New found with volumes it could not load.
	warnings []string
	// damage are the records New found damaged and rebuilt (Damage).
	damage []string

	pruning atomic.Bool
}

// entry is one volume in memory.
type entry struct {
	// copyMu is held by CopyUp for the whole copy and by Remove, so a volume
	// is never removed, or its name reused, in the middle of a copy.
	// Order: copyMu, then Service.mu, then mu.
	copyMu sync.Mutex

	mu      sync.Mutex // guards the fields below; held only briefly
	rec     record
	dir     string // <root>/<name>
	removed bool
	mounted bool // a type/device/o volume currently mounted at _data
}

func (e *entry) dataPath() string { return filepath.Join(e.dir, dataDirName) }

// New opens (creating it if needed) the volume root and loads every volume
// in it. Leftovers of interrupted operations are deleted. A directory that
// has a _data directory but no metadata (a volume made by Docker, for
// example) is adopted as a volume without labels or options.
func New(root string) (*Service, error) {
	if root == "" {
		return nil, fmt.Errorf("volume root is empty")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := osutil.MkdirPrivate(abs, osutil.PrivateMode); err != nil {
		return nil, err
	}
	// Mount points are compared with /proc/self/mountinfo, which shows
	// resolved paths.
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, err
	}
	s := &Service{root: abs, vols: map[string]*entry{}}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// Root returns the directory volumes live in.
func (s *Service) Root() string { return s.root }

// Create creates a volume, or returns the volume of that name if it exists
// (unchanged: its labels and options stay as first created, like Docker).
// An empty name creates an anonymous volume with a random 64-hex name and
// the AnonymousLabel. driver must be "" or "local". opts are the local
// driver's options: type, device and o (see mount.go).
func (s *Service) Create(ctx context.Context, name, driver string, labels, opts map[string]string) (*volumetypes.Volume, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if name == "" {
		var err error
		if name, err = randomName(); err != nil {
			return nil, err
		}
		labels = maps.Clone(labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[AnonymousLabel] = ""
	}
	if driver != "" && driver != DriverName {
		return nil, cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("create %s: error looking up volume plugin %s: plugin %q not found", name, driver, driver))
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.vols[name]; e != nil {
		e.mu.Lock()
		v, ok := e.apiLocked(), !e.removed
		e.mu.Unlock()
		if ok {
			return v, nil
		}
	}
	if err := validateName(name); err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	if err := validateOpts(opts); err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	rec := record{
		Name:      name,
		Driver:    DriverName,
		Labels:    maps.Clone(labels),
		Options:   maps.Clone(opts),
		CreatedAt: time.Now().UTC(),
	}
	e, err := s.createOnDisk(rec)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	s.vols[name] = e
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.apiLocked(), nil
}

// validateName applies the local driver's rules, with Docker's wording.
func validateName(name string) error {
	if len(name) == 1 {
		return cerrdefs.ErrInvalidArgument.WithMessage("volume name is too short, names should be at least two alphanumeric characters")
	}
	if !validName.MatchString(name) {
		return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%q includes invalid characters for a local volume name, only %q are allowed. If you intended to pass a host directory, use absolute path", name, restrictedNameChars))
	}
	return nil
}

func randomName() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// lookup returns the live entry for name, or Docker's "no such volume".
// The caller gets the entry unlocked; it must re-check removed under e.mu.
func (s *Service) lookup(op, name string) (*entry, error) {
	s.mu.Lock()
	e := s.vols[name]
	s.mu.Unlock()
	if e == nil {
		return nil, noSuchVolume(op, name)
	}
	return e, nil
}

func noSuchVolume(op, name string) error {
	return cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("%s %s: no such volume", op, name))
}

// Get returns the volume called name.
func (s *Service) Get(ctx context.Context, name string) (*volumetypes.Volume, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e, err := s.lookup("get", name)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed {
		return nil, noSuchVolume("get", name)
	}
	return e.apiLocked(), nil
}

// snapshot is a consistent copy of one volume's state, for filtering.
type snapshot struct {
	e    *entry
	rec  record
	refs int
	api  *volumetypes.Volume
}

func (s *Service) snapshots() []snapshot {
	s.mu.Lock()
	es := make([]*entry, 0, len(s.vols))
	for _, e := range s.vols {
		es = append(es, e)
	}
	s.mu.Unlock()
	out := make([]snapshot, 0, len(es))
	for _, e := range es {
		e.mu.Lock()
		if !e.removed {
			out = append(out, snapshot{e: e, rec: e.rec.clone(), refs: len(e.rec.Refs), api: e.apiLocked()})
		}
		e.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rec.Name < out[j].rec.Name })
	return out
}

// List returns the volumes that match args (keys dangling, driver, label,
// name; Docker's semantics), sorted by name, and warnings about volumes
// that could not be loaded.
func (s *Service) List(ctx context.Context, args filters.Args) ([]volumetypes.Volume, []string, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	m, err := newListMatcher(args)
	if err != nil {
		return nil, nil, err
	}
	out := []volumetypes.Volume{}
	for _, sn := range s.snapshots() {
		if m.match(sn) {
			out = append(out, *sn.api)
		}
	}
	s.mu.Lock()
	warnings := append(slices.Clone(s.warnings), s.damage...)
	s.mu.Unlock()
	return out, warnings, nil
}

// Damage describes the records New found damaged and rebuilt, each naming
// its file (for the daemon's log and /info's warnings).
func (s *Service) Damage() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.damage)
}

// Remove deletes a volume and its data. A volume in use by a container is a
// conflict naming the containers. A missing volume is "not found" unless
// force is set; force also deletes the volume when unmounting its
// type/device/o mount or deleting its data fails (Docker's purge on error).
func (s *Service) Remove(ctx context.Context, name string, force bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e, err := s.lookup("get", name)
	if err != nil {
		if force {
			return nil
		}
		return err
	}
	_, err = s.remove(e, force)
	if cerrdefs.IsNotFound(err) && force {
		return nil
	}
	return err
}

// remove takes the volume out of the service and deletes its data. removed
// reports whether the volume left the service (its data may still be on
// disk if deleting it failed; New finishes the job).
func (s *Service) remove(e *entry, force bool) (removed bool, err error) {
	e.copyMu.Lock()
	defer e.copyMu.Unlock()
	e.mu.Lock()
	name := e.rec.Name
	if e.removed {
		e.mu.Unlock()
		return false, noSuchVolume("get", name)
	}
	if len(e.rec.Refs) > 0 {
		refs := slices.Clone(e.rec.Refs)
		e.mu.Unlock()
		return false, cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("remove %s: volume is in use - [%s]", name, strings.Join(refs, ", ")))
	}
	// Nothing may stay mounted inside a directory about to be deleted:
	// deleting through a bind mount would delete the host's files.
	if err := unmountAllUnder(e.dir); err != nil && !force {
		e.mu.Unlock()
		return false, fmt.Errorf("remove %s: %w", name, err)
	}
	e.mounted = false
	trash, err := s.moveToTrash(e.dir, name)
	if err != nil {
		e.mu.Unlock()
		return false, fmt.Errorf("remove %s: %w", name, err)
	}
	e.removed = true
	e.mu.Unlock()

	s.mu.Lock()
	if s.vols[name] == e {
		delete(s.vols, name)
	}
	s.mu.Unlock()

	// The volume is gone from the API's point of view; the data follows. A
	// failure leaves a .removing-* directory that New deletes later.
	if err := deleteTree(trash); err != nil && !force {
		return true, fmt.Errorf("remove %s: %w", name, err)
	}
	return true, nil
}

// Prune removes unused local volumes without driver options that match
// args (keys label, label!, all). Unless all is true, only anonymous
// volumes are candidates, as in Docker ≥ 23. Volumes in use are kept.
func (s *Service) Prune(ctx context.Context, args filters.Args) (*volumetypes.PruneReport, error) {
	if !s.pruning.CompareAndSwap(false, true) {
		return nil, cerrdefs.ErrConflict.WithMessage("a prune operation is already running")
	}
	defer s.pruning.Store(false)
	m, err := newPruneMatcher(args)
	if err != nil {
		return nil, err
	}
	rep := &volumetypes.PruneReport{VolumesDeleted: []string{}}
	for _, sn := range s.snapshots() {
		if ctx.Err() != nil {
			break
		}
		if sn.refs > 0 || len(sn.rec.Options) > 0 || !m.match(sn) {
			continue
		}
		size, _ := dirSize(ctx, sn.e.dataPath())
		// remove re-checks the references under the lock: a container may
		// have acquired the volume since the snapshot.
		if ok, err := s.remove(sn.e, false); err != nil || !ok {
			continue
		}
		rep.VolumesDeleted = append(rep.VolumesDeleted, sn.rec.Name)
		rep.SpaceReclaimed += uint64(size)
	}
	return rep, nil
}

// Size returns the disk space used by a volume's data, counting each
// hard-linked file once, as Docker's `system df` does.
func (s *Service) Size(ctx context.Context, name string) (int64, error) {
	e, err := s.lookup("get", name)
	if err != nil {
		return 0, err
	}
	e.mu.Lock()
	removed, path := e.removed, e.dataPath()
	e.mu.Unlock()
	if removed {
		return 0, noSuchVolume("get", name)
	}
	return dirSize(ctx, path)
}

// DiskUsage returns the volumes `system df` reports: local volumes without
// driver options (those are not really local data), each with UsageData
// (Size -1 when it cannot be measured, RefCount the containers using it).
func (s *Service) DiskUsage(ctx context.Context) ([]volumetypes.Volume, error) {
	out := []volumetypes.Volume{}
	for _, sn := range s.snapshots() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if len(sn.rec.Options) > 0 {
			continue
		}
		size, err := dirSize(ctx, sn.e.dataPath())
		if err != nil {
			size = -1
		}
		v := *sn.api
		v.UsageData = &volumetypes.UsageData{Size: size, RefCount: int64(sn.refs)}
		out = append(out, v)
	}
	return out, nil
}

// apiLocked converts the entry to the Engine API's shape. e.mu is held.
func (e *entry) apiLocked() *volumetypes.Volume {
	return &volumetypes.Volume{
		// Docker formats the time in the daemon's zone, to the second.
		CreatedAt:  e.rec.CreatedAt.Local().Format(time.RFC3339),
		Driver:     e.rec.Driver,
		Labels:     maps.Clone(e.rec.Labels),
		Mountpoint: e.dataPath(),
		Name:       e.rec.Name,
		Options:    maps.Clone(e.rec.Options),
		Scope:      Scope,
	}
}
