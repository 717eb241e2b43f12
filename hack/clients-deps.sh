#!/usr/bin/env bash
# Installs the real clients of berth's client tier (test/clients), idempotently:
#   - Debian's docker-compose 1.29 and python3-docker (apt)
#   - Compose v5, built from its module on the Go module proxy as a docker CLI
#     plugin (`go install` refuses the module: its go.mod has exclude directives)
#   - dockerode and testcontainers-node (npm ci in test/clients/node)
#   - the Ryuk stand-in (test/clients/ryuk) that testcontainers starts
# Binaries are cached in ${BERTH_TEST_CACHE:-/var/cache/berth-test}/clients.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

COMPOSE_VERSION=v5.6.0
CACHE=${BERTH_TEST_CACHE:-/var/cache/berth-test}/clients
mkdir -p "$CACHE"
log() { printf '[clients-deps %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

pkgs=(docker-compose python3-docker tmux)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v node >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if ((node_major < 20)); then
	echo "clients-deps: node $node_major is too old for testcontainers 11 (needs 20)" >&2
	exit 1
fi

# Compose v5 as a docker CLI plugin.
stamp=$CACHE/docker-compose.version
if [[ ! -x $CACHE/docker-compose || "$(cat "$stamp" 2>/dev/null)" != "$COMPOSE_VERSION" ]]; then
	log "building Compose $COMPOSE_VERSION from the Go module proxy (about a minute)"
	dir=$(GOFLAGS=-mod=mod go mod download -json "github.com/docker/compose/v5@$COMPOSE_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	[[ -d $dir ]] || { echo "clients-deps: go mod download of compose failed" >&2; exit 1; }
	(cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-X github.com/docker/compose/v5/internal.Version=$COMPOSE_VERSION" -o "$CACHE/docker-compose.tmp" ./cmd)
	mv -f "$CACHE/docker-compose.tmp" "$CACHE/docker-compose"
	printf '%s\n' "$COMPOSE_VERSION" >"$stamp"
fi

# The Ryuk stand-in: rebuilt when its source changes.
sum=$(sha256sum test/clients/ryuk/main.go test/clients/go.sum | sha256sum | cut -c1-16)
if [[ ! -x $CACHE/ryuk || "$(cat "$CACHE/ryuk.version" 2>/dev/null)" != "$sum" ]]; then
	log "building the Ryuk stand-in"
	(cd test/clients && CGO_ENABLED=0 go build -trimpath -o "$CACHE/ryuk.tmp" ./ryuk)
	mv -f "$CACHE/ryuk.tmp" "$CACHE/ryuk"
	printf '%s\n' "$sum" >"$CACHE/ryuk.version"
fi

# dockerode and testcontainers-node, as locked.
lock=test/clients/node/package-lock.json
if [[ ! -d test/clients/node/node_modules || "$(cat test/clients/node/node_modules/.berth-lock 2>/dev/null)" != "$(sha256sum <"$lock")" ]]; then
	log "npm ci (dockerode, testcontainers)"
	(cd test/clients/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	sha256sum <"$lock" >test/clients/node/node_modules/.berth-lock
fi

# The Go test module's dependencies (testcontainers-go).
(cd test/clients && go mod download)
log "ready: compose $COMPOSE_VERSION, docker-compose $(dpkg-query -W -f='${Version}' docker-compose), python3-docker $(dpkg-query -W -f='${Version}' python3-docker), node $(node --version)"
