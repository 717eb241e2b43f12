#!/usr/bin/env bash
# Installs what berth's build, tests and benchmarks need on Debian 12.
# Idempotent: does nothing when everything is present.
set -euo pipefail

pkgs=(runc docker-registry skopeo iptables nftables busybox-static debootstrap
      socat apache2-utils curl jq zstd hyperfine docker.io podman iperf3 wrk)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
GO=go
if ! command -v go >/dev/null; then
	if [[ -x /usr/local/go/bin/go ]]; then
		echo "deps: add /usr/local/go/bin to PATH" >&2
		GO=/usr/local/go/bin/go
	else
		echo "deps: Go 1.26 is required (https://go.dev/dl)" >&2
		exit 1
	fi
fi
# staticcheck for `make lint`, pinned (2026.2.2 builds with Go 1.26), in
# $(go env GOPATH)/bin, where the Makefile looks for it.
STATICCHECK_VERSION=v0.8.2
sc="$("$GO" env GOPATH)/bin/staticcheck"
if ! [[ -x $sc ]] || ! "$sc" -version 2>/dev/null | grep -q "(${STATICCHECK_VERSION#v})"; then
	echo "deps: installing staticcheck $STATICCHECK_VERSION"
	"$GO" install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
# buildx (issue 9 item 1), built from the module proxy into a directory of
# berth's own; the e2e tests point the docker CLI's plugin path at it (or
# not), so builds are exercised both with and without buildx.
BUILDX_VERSION=v0.38.2
BUILDX_DIR=${BUILDX_DIR:-/usr/local/lib/berth/cli-plugins}
if ! [[ -x $BUILDX_DIR/docker-buildx ]] || ! "$BUILDX_DIR/docker-buildx" version 2>/dev/null | grep -q "$BUILDX_VERSION"; then
	echo "deps: installing buildx $BUILDX_VERSION into $BUILDX_DIR"
	mkdir -p "$BUILDX_DIR"
	GOBIN="$BUILDX_DIR" "$GO" install -ldflags "-X github.com/docker/buildx/version.Version=$BUILDX_VERSION" "github.com/docker/buildx/cmd/buildx@$BUILDX_VERSION"
	mv "$BUILDX_DIR/buildx" "$BUILDX_DIR/docker-buildx"
fi
