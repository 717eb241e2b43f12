#!/usr/bin/env bash
# stop.sh - stop the registries started by test/registry/start.sh.
# Kills only the PIDs recorded in ${BERTH_TEST_STATE:-/run/berth-test}/registry-*.pid,
# and only if they still are docker-registry processes.
#   --wipe-auth   also delete the auth registry's storage (it lives in the state dir)
set -euo pipefail

STATE=${BERTH_TEST_STATE:-/run/berth-test}
REGISTRY_BIN=/usr/bin/docker-registry
WIPE_AUTH=0
case "${1:-}" in
  --wipe-auth) WIPE_AUTH=1 ;;
  "") ;;
  *) echo "usage: $0 [--wipe-auth]" >&2; exit 2 ;;
esac

stopped=()
for name in plain auth; do
  f=$STATE/registry-$name.pid
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if [ -n "$pid" ] && [ -e "/proc/$pid/exe" ] &&
    [ "$(readlink "/proc/$pid/exe")" = "$(readlink -f "$REGISTRY_BIN")" ]; then
    kill -TERM "$pid"
    for _ in $(seq 1 100); do # up to ~10 s for a graceful exit
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
    stopped+=("$name:$pid")
  else
    echo "stop.sh: $f: pid ${pid:-?} is not a running docker-registry; removing stale pid file" >&2
  fi
  rm -f "$f"
done
if [ "$WIPE_AUTH" -eq 1 ]; then rm -rf --one-file-system "$STATE/registry-auth-data"; fi
echo "berth-test registries stopped: ${stopped[*]:-none running}"
