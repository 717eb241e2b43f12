#!/bin/sh
# bench/commit.sh: time of `berth commit` of a stopped container whose
# writable layer holds a 100 MB change (random data, so compression has
# work), on a private berthd. Prints each run's seconds and the median.
#   BENCH_BIN=<dir with berthd, berth, berth-shim> (default bin/)
#   BENCH_COMMIT_RUNS=5  BENCH_COMMIT_MB=100  BENCH_IMAGE=127.0.0.1:5000/library/busybox:latest
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BENCH_BIN:-$HERE/../bin}
RUNS=${BENCH_COMMIT_RUNS:-5}
MB=${BENCH_COMMIT_MB:-100}
IMG=${BENCH_IMAGE:-127.0.0.1:5000/library/busybox:latest}
T=$(mktemp -d /tmp/berth-bench-commit.XXXXXX)
SOCK=unix://$T/berth.sock
"$BIN/berthd" --data-root "$T/data" --exec-root "$T/exec" -H "$SOCK" --pidfile "$T/berthd.pid" >"$T/berthd.log" 2>&1 &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT INT TERM
B() { "$BIN/berth" -H "$SOCK" "$@"; }
i=0; until B version >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 100 ] || { cat "$T/berthd.log"; exit 1; }; sleep 0.1; done
B pull -q "$IMG" >/dev/null
times=""
for r in $(seq "$RUNS"); do
	B run --name "c$r" "$IMG" sh -c "head -c ${MB}m /dev/urandom > /big" >/dev/null
	s=$(date +%s.%N)
	B commit "c$r" "bench/commit:$r" >/dev/null
	e=$(date +%s.%N)
	t=$(echo "$e - $s" | bc)
	echo "commit $r: ${t}s"
	times="$times $t"
	B rm "c$r" >/dev/null
done
echo "$times" | tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print "median: " a[int((NR+1)/2)] "s over " NR " runs of a " '"$MB"' " MB change"}'
