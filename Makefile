# berth: the two commands a newcomer needs are `make quickstart` and `make test`.
# Both install what they need on a fresh Debian 12 machine (as root).

GO          ?= go
BIN         := bin
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X github.com/berth/berth/version.Version=$(VERSION) -X github.com/berth/berth/version.GitCommit=$(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
E2E_TIMEOUT ?= 30m
# hack/deps.sh installs staticcheck (STATICCHECK_VERSION) into $(go env GOPATH)/bin.
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: all build deps quickstart test unit fuzz e2e e2e-docker bench bench-pull lint clean registries clients-deps test-clients test-clients-quick crashloop crashloop-docker

all: build

# The shim (one per container) and the CLI (one per command) are static:
# no libc to map and relocate, less memory per container, faster start.
build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/berthd
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/berth ./cmd/berth-shim

deps:
	./hack/deps.sh

registries: deps
	./test/registry/start.sh

# Everything from a fresh machine to a daemon running the walk-through.
quickstart: deps build registries
	./hack/quickstart.sh

# The test command CI runs: lint (gofmt, vet, staticcheck, go.mod tidy),
# unit tests (race), then the e2e suite against a real berthd with real
# runc and a real registry, then the quick part of the real-client tier.
test: deps lint build registries
	$(GO) test -race -count=1 ./...
	$(MAKE) fuzz FUZZTIME=5s
	$(MAKE) e2e
	$(MAKE) test-clients-quick

unit:
	$(GO) test -race -count=1 ./...

# Fuzz targets for the parsers that face untrusted input (issue 12 item
# 12), each FUZZTIME long (`make test` runs each for 5 s); their seed
# corpora are in the targets, plain `go test` runs the seeds. A crasher
# lands in the package's testdata/fuzz/ and fails `go test` until fixed.
FUZZTIME ?= 5m
FUZZ_TARGETS := ./archive:FuzzUnpackLayer ./image:FuzzManifestConfig ./image:FuzzParseReference \
	./image:FuzzApplyChanges ./filters:FuzzParse ./runtime/shim:FuzzProtocol ./internal/stdcopy:FuzzReadFrame
fuzz:
	GO=$(GO) hack/fuzz.sh $(FUZZTIME) $(FUZZ_TARGETS)

e2e: build
	BERTH_E2E_TARGET=berth $(GO) test -count=1 -timeout $(E2E_TIMEOUT) -v ./test/e2e/ -args -target=berth

# The same e2e suite against Debian's real dockerd: proof the expectations are Docker's.
e2e-docker: deps build registries
	BERTH_E2E_TARGET=docker $(GO) test -count=1 -timeout $(E2E_TIMEOUT) -v ./test/e2e/ -args -target=docker

# The crash loop (issue 13, test/e2e/crashloop_test.go) for CRASHLOOP
# (`make test` runs it for 90 s): random operations, kill -9 of berthd and
# of shims, invariants checked after each restart. crashloop-docker runs
# the same loop against dockerd with live-restore, for comparison (set
# DOCKERD_LOCK=/path to serialize it with other dockerd runs).
CRASHLOOP ?= 30m
crashloop: build registries
	BERTH_E2E_TARGET=berth $(GO) test -count=1 -timeout 4h -v -run 'TestCrashLoop$$' ./test/e2e/ -args -target=berth -crashloop=$(CRASHLOOP)

crashloop-docker: deps build registries
	$(if $(DOCKERD_LOCK),flock $(DOCKERD_LOCK)) env BERTH_E2E_TARGET=docker $(GO) test -count=1 -timeout 4h -v -run 'TestCrashLoop$$' ./test/e2e/ -args -target=docker -crashloop=$(CRASHLOOP)

# The real-client tier (test/clients): Compose v5 and docker-compose 1.29,
# testcontainers-go and -node, dockerode, docker-py, each against berthd and
# then against Debian's dockerd, with the same assertions. Set
# DOCKERD_LOCK=/path to serialize the dockerd run with others on the host.
CLIENTS_TIMEOUT ?= 40m
clients-deps:
	./hack/clients-deps.sh

test-clients: deps build registries clients-deps
	cd test/clients && $(GO) test -count=1 -timeout $(CLIENTS_TIMEOUT) -v . -args -target=berth
	cd test/clients && $(if $(DOCKERD_LOCK),flock $(DOCKERD_LOCK)) $(GO) test -count=1 -timeout $(CLIENTS_TIMEOUT) -v . -args -target=docker

# The part of the tier `make test` runs: one Compose, testcontainers-go,
# dockerode and docker-py against berthd (a few minutes).
test-clients-quick: deps build registries clients-deps
	cd test/clients && $(GO) test -count=1 -timeout 15m -v . -args -target=berth -quick

bench: deps build registries
	./bench/run.sh

lint: deps
	gofmt -l . | (! grep .)
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(GO) mod tidy -diff

clean:
	rm -rf $(BIN)
