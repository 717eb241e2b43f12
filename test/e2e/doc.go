// Package e2e is berth's end-to-end suite. It drives a real daemon through
// both the berth CLI and the official docker CLI, and through the raw
// Engine API on the daemon's unix socket.
//
// The suite states Docker's behaviour: the same assertions run against
// berthd and against Debian's real dockerd 20.10, and pass on dockerd.
// Where berth deliberately does better than Docker, the assertion is
// guarded by onlyBerth(t, "why").
//
//	go test ./test/e2e/ -args -target=berth    # make e2e
//	go test ./test/e2e/ -args -target=docker   # make e2e-docker
//
// It needs root, bin/berthd and bin/berth (make build), and the test
// registries on 127.0.0.1:5000 and 127.0.0.1:5001 (make registries).
// Without -target (and without $BERTH_E2E_TARGET) every test is skipped,
// so `go test ./...` stays a unit-test run.
package e2e
