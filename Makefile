# berth: the two commands a newcomer needs are `make quickstart` and `make test`.
# Both install what they need on a fresh Debian 12 machine (as root).

GO          ?= go
BIN         := bin
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X github.com/berth/berth/version.Version=$(VERSION) -X github.com/berth/berth/version.GitCommit=$(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
E2E_TIMEOUT ?= 30m
# hack/deps.sh installs staticcheck (STATICCHECK_VERSION) into $(go env GOPATH)/bin.
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: all build deps quickstart test unit e2e e2e-docker bench bench-pull lint clean registries

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
# runc and a real registry.
test: deps lint build registries
	$(GO) test -race -count=1 ./...
	$(MAKE) e2e

unit:
	$(GO) test -race -count=1 ./...

e2e: build
	BERTH_E2E_TARGET=berth $(GO) test -count=1 -timeout $(E2E_TIMEOUT) -v ./test/e2e/ -args -target=berth

# The same e2e suite against Debian's real dockerd: proof the expectations are Docker's.
e2e-docker: deps build registries
	BERTH_E2E_TARGET=docker $(GO) test -count=1 -timeout $(E2E_TIMEOUT) -v ./test/e2e/ -args -target=docker

bench: deps build registries
	./bench/run.sh

lint: deps
	gofmt -l . | (! grep .)
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(GO) mod tidy -diff

clean:
	rm -rf $(BIN)
