package system

import (
	"context"
	"errors"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
)

type fakeUsage struct {
	calls map[string]int
}

func (f *fakeUsage) ImageDiskUsage(context.Context) (int64, []image.Summary, error) {
	f.calls["image"]++
	return 300, []image.Summary{{ID: "sha256:a", Size: 200, SharedSize: 100, Containers: -1}, {ID: "sha256:b", Size: 100, SharedSize: 100, Containers: -1}}, nil
}

func (f *fakeUsage) ContainerDiskUsage(context.Context) ([]container.Summary, error) {
	f.calls["container"]++
	return []container.Summary{{ID: "c1", ImageID: "sha256:a", SizeRw: 5}, {ID: "c2", ImageID: "sha256:a"}}, nil
}

func (f *fakeUsage) DiskUsage(context.Context) ([]volume.Volume, error) {
	f.calls["volume"]++
	return []volume.Volume{{Name: "v", UsageData: &volume.UsageData{Size: 7, RefCount: 1}}}, nil
}

func TestDiskUsageCountsContainersPerImage(t *testing.T) {
	f := &fakeUsage{calls: map[string]int{}}
	d := &DiskUsage{Images: f, Containers: f, Volumes: f}
	rep, err := d.Usage(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.LayersSize != 300 || len(rep.Images) != 2 || len(rep.Containers) != 2 || len(rep.Volumes) != 1 {
		t.Fatalf("report %+v", rep)
	}
	if rep.Images[0].Containers != 2 || rep.Images[1].Containers != 0 {
		t.Errorf("containers per image: %d, %d, want 2, 0", rep.Images[0].Containers, rep.Images[1].Containers)
	}
	if rep.BuildCache == nil || len(rep.BuildCache) != 0 {
		t.Errorf("no builder: BuildCache %v, want an empty list", rep.BuildCache)
	}
}

func TestDiskUsageTypes(t *testing.T) {
	f := &fakeUsage{calls: map[string]int{}}
	d := &DiskUsage{Images: f, Containers: f, Volumes: f}
	rep, err := d.Usage(context.Background(), []string{ObjectVolume})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Images != nil || rep.Containers != nil || rep.BuildCache != nil || len(rep.Volumes) != 1 {
		t.Errorf("type=volume: %+v", rep)
	}
	if f.calls["image"] != 0 || f.calls["container"] != 0 {
		t.Errorf("type=volume asked the other stores: %v", f.calls)
	}
	if _, err := d.Usage(context.Background(), []string{"bogus"}); !errors.Is(err, cerrdefs.ErrInvalidArgument) {
		t.Errorf("type=bogus: %v, want an invalid parameter", err)
	}
}
