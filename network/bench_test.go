package network

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
)

// BenchmarkSetupTeardown measures what networking adds to a container's
// start and stop on the default bridge, with and without a published port.
func BenchmarkSetupTeardown(b *testing.B) {
	for _, tc := range []struct {
		name  string
		ports map[string][]network.PortBinding
	}{
		{"bridge", nil},
		{"bridge-publish", map[string][]network.PortBinding{"80/tcp": {{}}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := newTestService(b)
			ctx := context.Background()
			var setup, down time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				id := containerID()
				// As between real container starts, the spare namespace
				// is ready (runc alone takes tens of milliseconds).
				waitSpare(s)
				t0 := time.Now()
				if _, err := s.Setup(ctx, req(id, "c", "bridge", tc.ports)); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := s.Release(ctx, id); err != nil {
					b.Fatal(err)
				}
				setup += t1.Sub(t0)
				down += time.Since(t1)
			}
			b.ReportMetric(float64(setup.Microseconds())/float64(b.N), "setup-µs/op")
			b.ReportMetric(float64(down.Microseconds())/float64(b.N), "teardown-µs/op")
		})
	}
}

func BenchmarkNetNS(b *testing.B) {
	needRoot(b)
	dir := b.TempDir()
	for i := 0; i < b.N; i++ {
		p := dir + "/ns"
		if err := newNetNS(p); err != nil {
			b.Fatal(err)
		}
		if err := removeNetNS(p); err != nil {
			b.Fatal(err)
		}
	}
}

func waitSpare(s *Service) {
	for i := 0; i < 200 && len(s.spares) == 0; i++ {
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkSetupParallel: 8 containers' network setups at once on one
// user network, as Compose starts a project (issue 8 item 6); the time
// per op is for all 8. With setups serialized it is 8 single setups.
func BenchmarkSetupParallel(b *testing.B) {
	s := newTestService(b)
	ctx := context.Background()
	n, err := s.Create(ctx, CreateRequest{Name: "benchpar", IPAM: &IPAMRequest{Config: []IPAMConfigRequest{{Subnet: "10.238.0.0/24"}}}})
	if err != nil {
		b.Fatal(err)
	}
	const par = 8
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ids := make([]string, par)
		errs := make(chan error, par)
		for j := range ids {
			ids[j] = containerID()
			go func(id string) {
				_, err := s.Setup(ctx, req(id, "c", n.ID, nil))
				errs <- err
			}(ids[j])
		}
		for range ids {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		for _, id := range ids {
			if err := s.Release(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
}
