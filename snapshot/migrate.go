package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/containerd/containerd/v2/core/snapshots"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
)

// The layout of berth's snapshot store before containerd's snapshotter:
//
//	layers/<chainID hex>/diff/        a layer's files
//	layers/<chainID hex>/layer.json   chainID, diffID, parent chainID, size
//	containers/<key>/{upper,work}/    a container's writable layer
//	containers/<key>/container.json   {"chain": [top chainID ... base], "ephemeral": bool}
//	l/, tmp/                          short links, work in progress
//
// migrate moves every complete layer and container snapshot into the
// snapshotter by renames (no copy): a snapshot is created, its empty fs dir
// replaced by the old diff (or upper) dir, and a layer committed under its
// chain ID. A crash part-way is resumed by the next start: a layer's
// "migrate-" snapshot whose old diff is gone is committed, one whose old
// diff is still there is made again. Layers whose parent is missing (an
// earlier berth could remove a layer under another) and containers on a
// missing layer are left out and logged; they were unusable.
func (s *Store) migrate(ctx context.Context, log *slog.Logger) error {
	layersDir := filepath.Join(s.root, "layers")
	containersDir := filepath.Join(s.root, "containers")
	_, errL := os.Stat(layersDir)
	_, errC := os.Stat(containersDir)
	if errors.Is(errL, fs.ErrNotExist) && errors.Is(errC, fs.ErrNotExist) {
		return nil
	}
	type oldLayer struct {
		ChainID digest.Digest `json:"chainID"`
		DiffID  digest.Digest `json:"diffID"`
		Parent  digest.Digest `json:"parent,omitempty"`
		Size    int64         `json:"size"`
		dir     string
	}
	layers := map[digest.Digest]*oldLayer{}
	entries, err := os.ReadDir(layersDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		dir := filepath.Join(layersDir, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, "layer.json"))
		var l oldLayer
		if err == nil {
			err = json.Unmarshal(b, &l)
		}
		if err != nil || l.ChainID.Validate() != nil || l.ChainID.Encoded() != e.Name() {
			log.Warn("snapshot migration: leaving out a damaged layer", "dir", dir, "err", err)
			continue
		}
		l.dir = dir
		layers[l.ChainID] = &l
	}
	moved, skipped := 0, 0
	// done: chain IDs committed (or found committed).
	var migrateLayer func(l *oldLayer, depth int) error
	migrateLayer = func(l *oldLayer, depth int) error {
		if _, err := s.Get(ctx, l.ChainID); err == nil {
			return os.RemoveAll(l.dir)
		}
		if l.Parent != "" {
			p, ok := layers[l.Parent]
			if _, err := s.Get(ctx, l.Parent); err != nil {
				if !ok || depth > 1000 {
					return fmt.Errorf("layer %s: parent %s: %w", l.ChainID, l.Parent, cerrdefs.ErrNotFound)
				}
				if err := migrateLayer(p, depth+1); err != nil {
					return err
				}
			}
		}
		key := "migrate-" + l.ChainID.Encoded()
		diff := filepath.Join(l.dir, "diff")
		_, diffErr := os.Lstat(diff)
		if info, err := s.sn.Stat(ctx, key); err == nil && info.Kind == snapshots.KindActive {
			if diffErr == nil {
				if err := s.sn.Remove(ctx, key); err != nil {
					return err
				}
			} else {
				return s.commitMigrated(ctx, key, l.ChainID, l.Parent, l.DiffID, l.Size, l.dir)
			}
		}
		if diffErr != nil {
			return fmt.Errorf("layer %s: %w", l.ChainID, diffErr)
		}
		ms, err := s.sn.Prepare(ctx, key, "")
		if err != nil {
			return err
		}
		fsDir := ms[0].Source
		if err := os.Remove(fsDir); err != nil {
			return err
		}
		if err := os.Rename(diff, fsDir); err != nil {
			return err
		}
		return s.commitMigrated(ctx, key, l.ChainID, l.Parent, l.DiffID, l.Size, l.dir)
	}
	for _, l := range layers {
		if err := migrateLayer(l, 0); err != nil {
			if cerrdefs.IsNotFound(err) {
				log.Warn("snapshot migration: leaving out a layer whose parent is missing", "chain", l.ChainID, "err", err)
				skipped++
				continue
			}
			return err
		}
		moved++
	}

	entries, err = os.ReadDir(containersDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	containers := 0
	for _, e := range entries {
		key, dir := e.Name(), filepath.Join(containersDir, e.Name())
		var meta struct {
			Chain     []digest.Digest `json:"chain"`
			Ephemeral bool            `json:"ephemeral,omitempty"`
		}
		b, err := os.ReadFile(filepath.Join(dir, "container.json"))
		if err == nil {
			err = json.Unmarshal(b, &meta)
		}
		if err == nil {
			err = checkKey(key)
		}
		var parent digest.Digest
		if err == nil && len(meta.Chain) > 0 {
			parent = meta.Chain[0]
			_, err = s.Get(ctx, parent)
		}
		if err != nil {
			log.Warn("snapshot migration: leaving out a container snapshot", "key", key, "err", err)
			skipped++
			continue
		}
		if info, err := s.sn.Stat(ctx, key); err == nil && info.Kind == snapshots.KindActive {
			// Made by a migration a crash cut short: again.
			if err := s.sn.Remove(ctx, key); err != nil {
				return err
			}
		}
		var labels map[string]string
		if meta.Ephemeral {
			labels = map[string]string{labelEphemeral: "true"}
		}
		m, err := s.prepare(ctx, key, parent, labels)
		if err != nil {
			return fmt.Errorf("container snapshot %s: %w", key, err)
		}
		work := m.option("workdir")
		for _, d := range [][2]string{{"upper", m.upper()}, {"work", work}} {
			if d[1] == "" {
				continue
			}
			if err := os.RemoveAll(d[1]); err != nil {
				return err
			}
			if err := os.Rename(filepath.Join(dir, d[0]), d[1]); err != nil {
				return fmt.Errorf("container snapshot %s: %w", key, err)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		containers++
	}
	for _, d := range []string{"tmp", "l", "layers", "containers"} {
		if err := os.RemoveAll(filepath.Join(s.root, d)); err != nil {
			return err
		}
	}
	log.Info("snapshot store migrated to containerd's overlay snapshotter layout", "root", s.root, "layers", moved, "containers", containers, "left out", skipped)
	return nil
}

func (s *Store) commitMigrated(ctx context.Context, key string, chainID, parent, diffID digest.Digest, size int64, oldDir string) error {
	labels := map[string]string{labelDiffID: diffID.String(), labelSize: strconv.FormatInt(size, 10)}
	if err := s.sn.Commit(ctx, chainID.String(), key, snapshots.WithParent(parent.String()), snapshots.WithLabels(labels)); err != nil {
		return err
	}
	return os.RemoveAll(oldDir)
}
