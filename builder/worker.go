package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/containerd/containerd/v2/core/diff/apply"
	"github.com/containerd/containerd/v2/pkg/gc"
	"github.com/containerd/containerd/v2/plugins/diff/walking"
	gorunc "github.com/containerd/go-runc"
	"github.com/containerd/platforms"
	"github.com/moby/buildkit/cache/metadata"
	"github.com/moby/buildkit/executor/oci"
	"github.com/moby/buildkit/executor/resources"
	"github.com/moby/buildkit/executor/runcexecutor"
	containerdsnapshot "github.com/moby/buildkit/snapshot/containerd"
	"github.com/moby/buildkit/util/leaseutil"
	"github.com/moby/buildkit/util/network/netproviders"
	"github.com/moby/buildkit/util/winlayers"
	"github.com/moby/buildkit/worker/base"
	wlabel "github.com/moby/buildkit/worker/label"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth/berth/internal/mountutil"
)

// workerDir is the worker's own state under Config.Root: its ID, its
// cache records' metadata, the executor's state and cache mounts' pool.
// Blobs and snapshots are berth's (Stores).
const workerDir = "worker"

// oldWorkerDir held the worker's own content store, snapshots and
// leases before the worker ran on berth's stores; its cache records
// (cache.db, history.db) pointed into it.
const oldWorkerDir = "runc-overlayfs"

// removeOldWorker removes the state of a worker that had stores of its
// own: its content, snapshots (which may hold mounts), leases and the
// cache records pointing into them. The build cache starts empty once.
func removeOldWorker(root string) (bool, error) {
	old := filepath.Join(root, oldWorkerDir)
	if _, err := os.Stat(old); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	for _, p := range []string{filepath.Join(root, "cache.db"), filepath.Join(root, "history.db")} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, err
		}
	}
	return true, mountutil.RemoveAll(old)
}

// workerOpt is BuildKit's worker on berth's stores: blobs in berth's
// content store, snapshots in berth's snapshotter, held by leases in
// berth's lease database and collected by berth's collector; RUN steps
// run by runc on berth's default bridge.
func workerOpt(cfg Config, st *Stores) (wo base.WorkerOpt, retErr error) {
	defer func() {
		if retErr != nil {
			_ = closeWorkerOpt(wo)
			wo = base.WorkerOpt{}
		}
	}()
	root := filepath.Join(cfg.Root, workerDir)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return wo, err
	}
	np, proxy, netMode, err := netproviders.Providers(netproviders.Opt{Mode: "host"})
	if err != nil {
		return wo, err
	}
	wo.ProxyProvider = proxy
	if cfg.Sandboxes != nil {
		np, netMode = networkProviders(cfg.Sandboxes), "bridge"
	}
	if wo.ResourceMonitor, err = resources.NewMonitor(); err != nil {
		return wo, err
	}
	var cmds []string
	if cfg.Runtime != "" {
		cmds = []string{cfg.Runtime}
	}
	exeRoot := filepath.Join(root, "executor")
	if err := endLeftoverSteps(exeRoot, cfg.Runtime); err != nil {
		return wo, err
	}
	exe, err := runcexecutor.New(runcexecutor.Opt{
		Root:              exeRoot,
		CommandCandidates: cmds,
		ProcessMode:       oci.ProcessSandbox,
		ResourceMonitor:   wo.ResourceMonitor,
		ProxyProvider:     proxy,
	}, np)
	if err != nil {
		return wo, err
	}
	labels, err := openLabelStore(filepath.Join(root, "content-labels.db"))
	if err != nil {
		return wo, err
	}
	wo.ContentMetadata = labels
	if wo.MetadataStore, err = metadata.NewStore(filepath.Join(root, "metadata_v2.db")); err != nil {
		return wo, err
	}
	id, err := base.ID(root)
	if err != nil {
		return wo, err
	}
	hostname, err := os.Hostname()
	if err != nil {
		hostname = "unknown"
	}

	resType := "snapshots/" + st.SnapshotterName
	hold := newHold(st.Leases)
	cs := containerdsnapshot.NewContentStore(&buildContent{Store: st.Content, labels: labels, hold: hold}, st.Namespace)
	sn := containerdsnapshot.NewSnapshotter(st.SnapshotterName, &buildSnapshotter{sn: st.Snapshotter, resType: resType, hold: hold}, st.Namespace, nil)
	berthGC := st.GC
	wo = base.WorkerOpt{
		ID:   id,
		Root: root,
		Labels: map[string]string{
			wlabel.Executor:       "oci",
			wlabel.Snapshotter:    st.SnapshotterName,
			wlabel.Hostname:       hostname,
			wlabel.Network:        netMode,
			wlabel.OCIProcessMode: oci.ProcessSandbox.String(),
			wlabel.SELinuxEnabled: strconv.FormatBool(false),
		},
		MetadataStore:    wo.MetadataStore,
		ContentMetadata:  labels,
		NetworkProviders: np,
		ProxyProvider:    proxy,
		Executor:         exe,
		Snapshotter:      sn,
		ContentStore:     cs,
		Applier:          winlayers.NewFileSystemApplierWithWindows(cs, apply.NewFileSystemApplier(cs)),
		Differ:           winlayers.NewWalkingDiffWithWindows(cs, walking.NewWalkingDiff(cs)),
		Platforms:        []ocispec.Platform{platforms.Normalize(platforms.DefaultSpec())},
		LeaseManager:     leaseutil.WithNamespace(&buildLeases{Manager: st.Leases, resType: resType, sn: st.Snapshotter}, st.Namespace),
		GarbageCollect: func(ctx context.Context) (gc.Stats, error) {
			if berthGC == nil {
				return nil, nil
			}
			if err := berthGC(ctx); err != nil {
				return nil, fmt.Errorf("garbage collection: %w", err)
			}
			return nil, nil
		},
		MountPoolRoot:   filepath.Join(root, "cachemounts"),
		ResourceMonitor: wo.ResourceMonitor,
	}
	return wo, nil
}

// closeWorkerOpt closes what workerOpt opened, for a worker that was
// not made (a worker closes them itself).
func closeWorkerOpt(wo base.WorkerOpt) error {
	var errs []error
	if wo.MetadataStore != nil {
		errs = append(errs, wo.MetadataStore.Close())
	}
	if wo.ContentMetadata != nil {
		errs = append(errs, wo.ContentMetadata.Close())
	}
	if wo.ProxyProvider != nil {
		errs = append(errs, wo.ProxyProvider.Close())
	}
	if wo.ResourceMonitor != nil {
		errs = append(errs, wo.ResourceMonitor.Close())
	}
	return errors.Join(errs...)
}

// endLeftoverSteps ends the RUN steps a kill of berthd left behind: the
// executor runs each step as a runc container named after its directory
// under exeRoot, with its root filesystem mounted there. Such a step's
// processes are killed and its container deleted (runc delete --force),
// then its mounts and directory are removed. Nothing else runs steps at
// this point: the worker is not made yet.
func endLeftoverSteps(exeRoot, runtime string) error {
	entries, err := os.ReadDir(exeRoot)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if runtime == "" {
		runtime = "runc"
	}
	r := &gorunc.Runc{Command: runtime}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(exeRoot, e.Name())
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		// Not a container (any more): runc says so; nothing to end.
		_ = r.Delete(ctx, e.Name(), &gorunc.DeleteOpts{Force: true})
		cancel()
		if err := mountutil.Unmount(dir, true); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := mountutil.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
