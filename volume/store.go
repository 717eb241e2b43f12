package volume

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/berth/berth/internal/osutil"
	cerrdefs "github.com/containerd/errdefs"
)

// record is a volume's persisted metadata (<root>/<name>/volume.json).
type record struct {
	Name      string            `json:"Name"`
	Driver    string            `json:"Driver"`
	Labels    map[string]string `json:"Labels"`  // nil and {} are kept apart, as Docker shows them
	Options   map[string]string `json:"Options"` // local driver options: type, device, o
	CreatedAt time.Time         `json:"CreatedAt"`
	// Refs are the containers that acquired the volume and have not
	// released it, in order: the volume cannot be removed while any is left.
	Refs []string `json:"Refs,omitempty"`
	// Users are the Refs that currently need the volume mounted (acquired
	// and not unmounted since): a volume with mount options is mounted
	// while any is left.
	Users []string `json:"Users,omitempty"`
	// Populated is set once CopyUp filled the volume, or found it not empty.
	Populated bool `json:"Populated,omitempty"`
}

func (r record) clone() record {
	r.Labels = maps.Clone(r.Labels)
	r.Options = maps.Clone(r.Options)
	r.Refs = slices.Clone(r.Refs)
	r.Users = slices.Clone(r.Users)
	return r
}

// updateLocked applies f to a copy of the record, persists it, and only
// then makes it the entry's record. e.mu is held.
func (e *entry) updateLocked(f func(*record)) error {
	next := e.rec.clone()
	f(&next)
	if err := writeRecord(e.dir, next); err != nil {
		return err
	}
	e.rec = next
	return nil
}

// writeRecord replaces dir/volume.json atomically and durably.
func writeRecord(dir string, rec record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return osutil.WriteFileAtomic(filepath.Join(dir, metaName), append(b, '\n'))
}

// errDamaged is the class of a record that exists and cannot be read.
var errDamaged = errors.New("damaged record")

// damagedSuffix names the copy of a damaged record kept beside its rebuilt
// one.
const damagedSuffix = ".damaged"

func readRecord(dir string) (record, error) {
	var rec record
	b, err := os.ReadFile(filepath.Join(dir, metaName))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("%w: %w", errDamaged, err)
	}
	return rec, nil
}

// adoptRecord makes the record of a volume directory that has a _data
// directory and no readable record. ok is false when the directory has no
// _data: it is not a volume.
func adoptRecord(name, path string) (record, bool) {
	fi, err := os.Lstat(filepath.Join(path, dataDirName))
	if err != nil || !fi.IsDir() {
		return record{}, false
	}
	created := fi.ModTime()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		created = time.Unix(st.Ctim.Unix())
	}
	return record{Name: name, Driver: DriverName, CreatedAt: created.UTC()}, true
}

// createOnDisk assembles a volume in a hidden directory and renames it into
// place, so <root>/<name> never exists without its _data and metadata.
func (s *Service) createOnDisk(rec record) (*entry, error) {
	tmp, err := os.MkdirTemp(s.root, creatingPfx+"*")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(tmp)
		}
	}()
	data := filepath.Join(tmp, dataDirName)
	if err := os.Mkdir(data, 0o755); err != nil {
		return nil, err
	}
	// Docker's modes: the volume's directory only traversable by others,
	// its data open (the umask and MkdirTemp's 0700 are undone).
	if err := os.Chmod(tmp, 0o701); err != nil {
		return nil, err
	}
	if err := os.Chmod(data, 0o755); err != nil {
		return nil, err
	}
	if err := writeRecord(tmp, rec); err != nil {
		return nil, err
	}
	dir := filepath.Join(s.root, rec.Name)
	if err := os.Rename(tmp, dir); err != nil {
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			return nil, cerrdefs.ErrConflict.WithMessage("volume already exists under " + dir)
		}
		return nil, err
	}
	ok = true
	if err := osutil.SyncDir(s.root); err != nil {
		return nil, err
	}
	return &entry{rec: rec, dir: dir}, nil
}

// moveToTrash renames a volume directory out of the namespace in one step.
func (s *Service) moveToTrash(dir, name string) (string, error) {
	suffix, err := randomName()
	if err != nil {
		return "", err
	}
	trash := filepath.Join(s.root, removingPfx+name+"-"+suffix[:12])
	if err := os.Rename(dir, trash); err != nil {
		return "", err
	}
	return trash, osutil.SyncDir(s.root)
}

// deleteTree deletes dir, refusing when anything is mounted inside it.
func deleteTree(dir string) error {
	mps, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	if len(mps) > 0 {
		return fmt.Errorf("refusing to delete %s: %s is mounted", dir, mps[0])
	}
	return os.RemoveAll(dir)
}

// load reads every volume under the root and cleans up leftovers.
func (s *Service) load() error {
	des, err := os.ReadDir(s.root)
	if err != nil {
		return err
	}
	for _, de := range des {
		name := de.Name()
		path := filepath.Join(s.root, name)
		if !de.IsDir() {
			continue
		}
		if strings.HasPrefix(name, creatingPfx) || strings.HasPrefix(name, removingPfx) {
			// An interrupted create or remove: never a visible volume.
			if err := deleteTree(path); err != nil {
				s.warnings = append(s.warnings, fmt.Sprintf("cleaning up %s: %v", path, err))
			}
			continue
		}
		if !validName.MatchString(name) {
			continue // not ours
		}
		e, err := s.loadOne(name, path)
		if err != nil {
			s.warnings = append(s.warnings, fmt.Sprintf("volume %s: %v", name, err))
			continue
		}
		if e != nil {
			s.vols[name] = e
		}
	}
	return nil
}

// loadOne loads the volume in path. It returns nil, nil for a directory that
// is not a volume.
func (s *Service) loadOne(name, path string) (*entry, error) {
	// Temporary files of metadata writes that never got renamed (named
	// volume.json.tmp-* before osutil wrote them).
	osutil.RemoveTemps(filepath.Join(path, metaName))
	if tmps, err := filepath.Glob(filepath.Join(path, metaName+".tmp-*")); err == nil {
		for _, t := range tmps {
			_ = os.Remove(t)
		}
	}
	rec, err := readRecord(path)
	if err == nil && rec.Name != name {
		err = fmt.Errorf("%w: it names volume %q", errDamaged, rec.Name)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A directory with _data but no metadata: a volume made by Docker or
		// by hand. Adopt it, as Docker's local driver does.
		r, ok := adoptRecord(name, path)
		if !ok {
			return nil, nil
		}
		if err := writeRecord(path, r); err != nil {
			return nil, err
		}
		rec = r
	case errors.Is(err, errDamaged):
		// The record is damaged, the volume is not: a local volume is its
		// _data. Adopt it as above (labels and options are lost; the
		// containers holding it are found again by Reconcile) and keep the
		// damaged record beside it.
		meta := filepath.Join(path, metaName)
		r, ok := adoptRecord(name, path)
		if !ok {
			return nil, err
		}
		if data, rerr := os.ReadDir(filepath.Join(path, dataDirName)); rerr == nil && len(data) > 0 {
			r.Populated = true
		}
		damaged, rerr := os.ReadFile(meta)
		if rerr == nil {
			rerr = osutil.WriteFileAtomic(meta+damagedSuffix, damaged)
		}
		if rerr != nil {
			return nil, errors.Join(err, rerr)
		}
		if werr := writeRecord(path, r); werr != nil {
			return nil, errors.Join(err, werr)
		}
		rec = r
		s.damage = append(s.damage, fmt.Sprintf("volume %s: its record %s was damaged (%v): rebuilt from its data, without its labels and options; the damaged record is kept as %s",
			name, meta, strings.TrimPrefix(err.Error(), errDamaged.Error()+": "), meta+damagedSuffix))
	case err != nil:
		return nil, err
	}
	if rec.Driver == "" {
		rec.Driver = DriverName
	}
	e := &entry{rec: rec, dir: path}
	if needsMount(rec.Options) {
		mounted, err := isMountPoint(e.dataPath())
		if err != nil {
			return nil, err
		}
		e.mounted = mounted
		// Mounted but nobody uses it: berthd stopped between dropping the
		// last user and unmounting.
		if mounted && len(rec.Users) == 0 {
			if err := unmountAll(e.dataPath()); err != nil {
				return nil, err
			}
			e.mounted = false
		}
	}
	return e, nil
}
