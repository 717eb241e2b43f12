package snapshot

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containerd/containerd/v2/core/snapshots"
	"golang.org/x/sys/unix"
)

func TestKernelAtLeast(t *testing.T) {
	for _, c := range []struct {
		release string
		want    bool
	}{
		{"5.10.0", true}, {"5.9.16", false}, {"6.1.0-13-amd64", true}, {"6.18.44-fc-v595", true},
		{"4.19.0-27-amd64", false}, {"5.10", true}, {"5.10-rc1", true}, {"5", false}, {"", false}, {"x.y", false},
	} {
		if got := kernelAtLeast(c.release, 5, 10); got != c.want {
			t.Errorf("kernelAtLeast(%q, 5, 10) = %v, want %v", c.release, got, c.want)
		}
	}
}

// A --rm container's layer: volatile overlay, mountable again after a
// clean unmount (overlayfs' marker would refuse that), same content as a
// durable one.
func TestVolatileMountsRemount(t *testing.T) {
	if !volatileSupported() {
		t.Skip("kernel before 5.10: no volatile overlay")
	}
	s := newTestStore(t)
	ctx := context.Background()
	base := applyTar(t, s, "", fileEnt("a", "A", 0o644))
	if _, err := s.PrepareEphemeral(ctx, "rm1", base.ChainID); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		m, err := s.VolatileMounts(ctx, "rm1")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(m.Options, "volatile") {
			t.Fatalf("options %q lack volatile", m.Options)
		}
		target := t.TempDir()
		if err := m.Mount(target); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if got := readString(t, filepath.Join(target, "a")); got != "A" {
			t.Errorf("a = %q", got)
		}
		if err := os.WriteFile(filepath.Join(target, "new"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := unix.Unmount(target, 0); err != nil {
			t.Fatal(err)
		}
	}
	m, err := s.Mounts(ctx, "rm1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(m.option("workdir"), "work", "incompat", "volatile")); err != nil {
		t.Fatalf("no volatile marker after a volatile mount (is the option ignored?): %v", err)
	}
	if readString(t, filepath.Join(upperOf(t, s, "rm1"), "new")) != "x" {
		t.Error("write through the volatile mount is not in the upper dir")
	}
	if err := s.RemoveContainer(ctx, "rm1"); err != nil {
		t.Fatal(err)
	}
}

func TestRemoveUnused(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	base := applyTar(t, s, "", fileEnt("a", "A", 0o644))
	for _, k := range []string{"keep1", "gone1", "gone2"} {
		if _, err := s.PrepareEphemeral(ctx, k, base.ChainID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Prepare(ctx, "durable1", base.ChainID); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{"gone1": true, "durable1": false} {
		info, err := s.active(ctx, key)
		if err != nil || (info.Labels[labelEphemeral] == "true") != want {
			t.Errorf("%s: labels %v (%v), want ephemeral %v", key, info.Labels, err, want)
		}
	}
	if err := s.RemoveUnused(ctx, func(k string) bool { return k == "keep1" }); err != nil {
		t.Fatal(err)
	}
	var names []string
	err := s.walk(ctx, func(ctx context.Context, info snapshots.Info) error {
		if info.Kind == snapshots.KindActive {
			names = append(names, info.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"keep1"}) {
		t.Fatalf("containers left: %q, want [keep1]", names)
	}
	// The layer is free again once no snapshot uses it.
	if err := s.RemoveContainer(ctx, "keep1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, base.ChainID); err != nil {
		t.Fatalf("layer still in use after the leftovers went: %v", err)
	}
}
