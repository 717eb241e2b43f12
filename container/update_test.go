package container

import (
	"context"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"

	rtspec "github.com/berth/berth/runtime/spec"
)

func TestMergeResources(t *testing.T) {
	cur := container.Resources{}
	if err := mergeResources(&cur, &container.Resources{Memory: 100 << 20}); !cerrdefs.IsConflict(err) ||
		err.Error() != "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time" {
		t.Fatalf("memory without swap on an unlimited container: %v", err)
	}
	if err := mergeResources(&cur, &container.Resources{Memory: 100 << 20, MemorySwap: 200 << 20, CPUShares: 512}); err != nil {
		t.Fatal(err)
	}
	if cur.Memory != 100<<20 || cur.MemorySwap != 200<<20 || cur.CPUShares != 512 {
		t.Fatalf("%+v", cur)
	}
	// Below the recorded swap: fine alone.
	if err := mergeResources(&cur, &container.Resources{Memory: 150 << 20}); err != nil || cur.Memory != 150<<20 {
		t.Fatalf("%v %+v", err, cur)
	}
	// A container made with -m only: swap is twice the memory.
	cur = container.Resources{Memory: 100 << 20}
	if err := mergeResources(&cur, &container.Resources{Memory: 150 << 20}); err != nil || cur.MemorySwap != 200<<20 {
		t.Fatalf("-m only: %v %+v", err, cur)
	}
	cur = container.Resources{CPUPeriod: 100000}
	if err := mergeResources(&cur, &container.Resources{NanoCPUs: 1e9}); !cerrdefs.IsConflict(err) {
		t.Fatalf("nano vs period: %v", err)
	}
}

func TestCheckUpdate(t *testing.T) {
	host := &rtspec.Host{NumCPU: 2, SwapLimit: true}
	for _, c := range []struct {
		r   container.Resources
		msg string
	}{
		{container.Resources{Memory: 1 << 20}, "Minimum memory limit allowed is 6MB"},
		{container.Resources{NanoCPUs: 3e9}, "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"},
		{container.Resources{CpusetCpus: "5"}, "Requested CPUs are not available - requested 5, available: 0-1"},
		{container.Resources{CpusetCpus: "x"}, "Invalid value x for cpuset cpus"},
		{container.Resources{CpusetCpus: "0-100000"}, "Invalid value 0-100000 for cpuset cpus"}, // as at create
		{container.Resources{CpusetMems: "a"}, "Invalid value a for cpuset mems"},
		{container.Resources{BlkioWeight: 5}, "Range of blkio weight is from 10 to 1000"},
	} {
		r := c.r
		if _, err := checkUpdate(host, &r); !cerrdefs.IsInvalidArgument(err) || err.Error() != c.msg {
			t.Errorf("%+v: %v, want %q", c.r, err, c.msg)
		}
	}
}

// TestCheckUpdateDiscardsUnsupported: on a host whose cgroups lack the
// controllers, update drops the limits with Docker's warnings, as create
// does; a dropped memory limit leaves the container's swap limit as it was
// (not "unlimited").
func TestCheckUpdateDiscardsUnsupported(t *testing.T) {
	host := &rtspec.Host{NumCPU: 2, SwapLimit: true}
	t.Cleanup(rtspec.OverrideCgroupSupport(host, rtspec.CgroupSupport{}))

	// The 6MB check still comes first.
	if _, err := checkUpdate(host, &container.Resources{Memory: 1 << 20}); err == nil || err.Error() != "Minimum memory limit allowed is 6MB" {
		t.Fatalf("1MB: %v", err)
	}

	pids := int64(100)
	r := container.Resources{
		Memory: 100 << 20, MemorySwap: 300 << 20, MemoryReservation: 50 << 20,
		CPUShares: 512, CPUPeriod: 100000, CPUQuota: 50000, CpusetCpus: "0",
		PidsLimit: &pids, BlkioWeight: 500,
	}
	warnings, err := checkUpdate(host, &r)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.",
		"Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.",
		"Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.",
		"Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.",
		"Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.",
		"Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.",
		"Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
	}
	if strings.Join(warnings, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(want, "\n"))
	}
	if !reflect.DeepEqual(r, container.Resources{}) {
		t.Errorf("left after the discard: %+v, want nothing", r)
	}

	// Merged into a container made with -m 64m --memory-swap 128m: every
	// limit stays as it was, swap included.
	cur := container.Resources{Memory: 64 << 20, MemorySwap: 128 << 20, CPUShares: 256, PidsLimit: &pids}
	before := cur
	if err := mergeResources(&cur, &r); err != nil {
		t.Fatal(err)
	}
	if cur.Memory != before.Memory || cur.MemorySwap != before.MemorySwap || cur.CPUShares != before.CPUShares || cur.PidsLimit != before.PidsLimit {
		t.Errorf("after the merge: %+v, want %+v", cur, before)
	}

	// Only the memory controller missing (and so swap accounting): the
	// other limits go through, and there is no swap warning on top.
	partial := &rtspec.Host{NumCPU: 2}
	t.Cleanup(rtspec.OverrideCgroupSupport(partial, rtspec.CgroupSupport{CPU: true, Cpuset: true, Pids: true, IO: true}))
	r = container.Resources{Memory: 100 << 20, CPUShares: 512}
	warnings, err = checkUpdate(partial, &r)
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "memory limit") {
		t.Fatalf("memory alone unsupported: %q %v", warnings, err)
	}
	if r.Memory != 0 || r.MemorySwap != 0 || r.CPUShares != 512 {
		t.Errorf("memory alone unsupported: %+v", r)
	}

	// The blkio controller without a weight file (mq-deadline, no BFQ):
	// the weight goes with Docker's warning, before its range is checked.
	noWeight := &rtspec.Host{NumCPU: 2, SwapLimit: true}
	t.Cleanup(rtspec.OverrideCgroupSupport(noWeight, rtspec.CgroupSupport{Memory: true, CPU: true, Cpuset: true, Pids: true, IO: true, IOThrottle: true}))
	for _, weight := range []uint16{300, 5} {
		r = container.Resources{BlkioWeight: weight, CPUShares: 512}
		warnings, err = checkUpdate(noWeight, &r)
		if err != nil || !slices.Equal(warnings, []string{"Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."}) || r.BlkioWeight != 0 || r.CPUShares != 512 {
			t.Errorf("weight %d without a weight file: %q %v %+v", weight, warnings, err, r)
		}
	}

	// Every controller there: nothing is dropped, no warning.
	r = container.Resources{Memory: 100 << 20, MemorySwap: 300 << 20, CPUShares: 512}
	if warnings, err := checkUpdate(&rtspec.Host{NumCPU: 2, SwapLimit: true}, &r); err != nil || len(warnings) != 0 || r.Memory != 100<<20 || r.MemorySwap != 300<<20 {
		t.Errorf("full support: %q %v %+v", warnings, err, r)
	}
}

func TestUpdateRunningContainer(t *testing.T) {
	e := newXEnv(t)
	id := e.run(t, []string{"sleep", "1000"}, &container.HostConfig{Resources: container.Resources{Memory: 64 << 20}})
	ctx := context.Background()
	limit := func() string {
		b, _ := os.ReadFile(e.svc.memoryLimitFile(id))
		return strings.TrimSpace(string(b))
	}
	if got := limit(); got != "67108864" {
		t.Fatalf("initial limit %s", got)
	}
	pids := int64(50)
	warnings, err := e.svc.Update(ctx, id, container.UpdateConfig{
		Resources:     container.Resources{Memory: 96 << 20, MemorySwap: 192 << 20, CPUShares: 512, PidsLimit: &pids},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	if warnings == nil {
		t.Fatal("warnings must be a list")
	}
	if got := limit(); got != "100663296" {
		t.Fatalf("limit after update %s", got)
	}
	if b, _ := os.ReadFile(e.svc.cgroupDir(id, "pids") + "/pids.max"); strings.TrimSpace(string(b)) != "50" {
		t.Fatalf("pids.max %q", b)
	}
	resp, err := e.svc.Inspect(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	hc := resp.HostConfig
	if hc.Memory != 96<<20 || hc.MemorySwap != 192<<20 || hc.CPUShares != 512 || *hc.PidsLimit != 50 || hc.RestartPolicy.Name != container.RestartPolicyOnFailure {
		t.Fatalf("record: %+v", hc.Resources)
	}
	// Persisted: a reloaded service sees it.
	c, _ := loadContainer(e.svc.dir(id))
	if c.HostConfig.Memory != 96<<20 {
		t.Fatal("not saved")
	}
	// Docker's refusals.
	if _, err := e.svc.Update(ctx, id, container.UpdateConfig{Resources: container.Resources{Memory: 300 << 20}}); !cerrdefs.IsConflict(err) ||
		!strings.HasPrefix(err.Error(), "Cannot update container "+id+": Memory limit should be smaller") {
		t.Fatalf("memory above swap: %v", err)
	}
	if _, err := e.svc.Update(ctx, id, container.UpdateConfig{Resources: container.Resources{Memory: 1}}); !cerrdefs.IsInvalidArgument(err) {
		t.Fatalf("tiny memory: %v", err)
	}
	if _, err := e.svc.Update(ctx, "nope", container.UpdateConfig{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("missing: %v", err)
	}
	// --pids-limit -1 lifts the limit of the running container.
	unlimited := int64(-1)
	if _, err := e.svc.Update(ctx, id, container.UpdateConfig{Resources: container.Resources{PidsLimit: &unlimited}}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(e.svc.cgroupDir(id, "pids") + "/pids.max"); strings.TrimSpace(string(b)) != "max" {
		t.Fatalf("pids.max after --pids-limit -1: %q", b)
	}
	// A stopped container is updated for its next start.
	e.stop(t, id)
	if _, err := e.svc.Update(ctx, id, container.UpdateConfig{Resources: container.Resources{Memory: 80 << 20}}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := limit(); got != "83886080" {
		t.Fatalf("limit after restart %s", got)
	}
}
