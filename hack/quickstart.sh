#!/usr/bin/env bash
# quickstart.sh: start berthd (if it is not running) with the local test
# registry as the Docker Hub mirror, then run the tutorial walk-through
# (../shared/MISSION.md) with the berth CLI, step by step, reporting each.
# `make quickstart` installs, builds and starts the registries first.
set -uo pipefail
cd "$(dirname "$0")/.."

SOCK=${BERTH_SOCK:-/run/berth/berth.sock}
export BERTH_HOST=unix://$SOCK
BERTH=./bin/berth
LOG=${BERTH_LOG:-/var/log/berthd.log}

if ! curl -sf --unix-socket "$SOCK" http://berth/_ping >/dev/null 2>&1; then
	echo "starting berthd (log: $LOG)"
	./bin/berthd -H "unix://$SOCK" --registry-mirror http://127.0.0.1:5000 >>"$LOG" 2>&1 &
	for _ in $(seq 100); do
		curl -sf --unix-socket "$SOCK" http://berth/_ping >/dev/null 2>&1 && break
		sleep 0.1
	done
fi
curl -sf --unix-socket "$SOCK" http://berth/_ping >/dev/null || { echo "berthd did not start; see $LOG" >&2; exit 1; }
echo "berthd is serving $BERTH_HOST (point docker at it: export DOCKER_HOST=$BERTH_HOST)"

ok=0 failed=0
step() {
	echo
	echo "\$ berth $*"
	if "$BERTH" "$@"; then ok=$((ok + 1)); else echo "!! step failed: berth $*"; failed=$((failed + 1)); fi
}
check() {
	local what=$1
	shift
	echo
	echo "\$ $what"
	if "$@"; then ok=$((ok + 1)); else echo "!! step failed: $what"; failed=$((failed + 1)); fi
}

"$BERTH" rm -f demo-nginx >/dev/null 2>&1 || true
step pull nginx:alpine
step run --name demo-nginx -d -p 8080:80 nginx:alpine
step ps
step ps -a
check "curl http://localhost:8080" sh -c 'curl -sf --retry 5 --retry-connrefused --retry-delay 0 http://localhost:8080 | head -5'
step images
step inspect --format '{{.Name}} {{.State.Status}} {{.Config.Image}}' demo-nginx
step logs demo-nginx
step exec demo-nginx sh -c 'echo "a shell inside: $(hostname)"'
step history nginx:alpine
step stop demo-nginx
step rm demo-nginx

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/mytest" "$work/mypython"
printf 'FROM alpine:3.18\nRUN echo "Hello from Docker!" > /hello.txt\nCMD ["cat", "/hello.txt"]\n' >"$work/mytest/Dockerfile"
printf 'print("Hello from Python inside Docker!")\n' >"$work/mypython/app.py"
printf 'FROM python:3.11-slim\nWORKDIR /app\nCOPY app.py .\nCMD ["python", "app.py"]\n' >"$work/mypython/Dockerfile"
step build -t mytest:1.0 "$work/mytest"
step run --rm mytest:1.0
step history mytest:1.0
step build -t mypython:1.0 "$work/mypython"
step run --rm mypython:1.0
check "berth login -u printfchamp --password-stdin 127.0.0.1:5001" sh -c "echo secret123 | $BERTH login -u printfchamp --password-stdin 127.0.0.1:5001"
step tag mytest:1.0 127.0.0.1:5001/printfchamp/mytest:1.0
step push 127.0.0.1:5001/printfchamp/mytest:1.0
# As on another machine: the pushed image is not here before the pull.
"$BERTH" rmi 127.0.0.1:5001/printfchamp/mytest:1.0 >/dev/null 2>&1 || true
step pull 127.0.0.1:5001/printfchamp/mytest:1.0
step run --rm 127.0.0.1:5001/printfchamp/mytest:1.0

echo
echo "walk-through: $ok steps passed, $failed failed"
[ "$failed" -eq 0 ]
