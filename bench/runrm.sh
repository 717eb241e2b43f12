#!/bin/sh
# bench/runrm.sh: latency of `berth run --rm --network none IMG true` end to
# end (CLI included), on one private berthd per binary directory, all up at
# once and their runs interleaved (so load drift hits each alike): a
# before/after of berth alone, lighter than run.sh's run section. Prints
# each directory's median, p90 and min in milliseconds.
#   BENCH_BINS="<dir> <dir>..." dirs with berthd, berth, berth-shim (default bin/)
#   BENCH_RUNRM_RUNS=30  BENCH_RUNRM_WARMUP=3  BENCH_IMAGE=127.0.0.1:5000/library/busybox:latest
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BINS=${BENCH_BINS:-$HERE/../bin}
RUNS=${BENCH_RUNRM_RUNS:-30}
WARM=${BENCH_RUNRM_WARMUP:-3}
IMG=${BENCH_IMAGE:-127.0.0.1:5000/library/busybox:latest}
T=$(mktemp -d /tmp/berth-bench-runrm.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
n=0
for b in $BINS; do
	n=$((n + 1))
	d=$T/$n
	mkdir -p "$d"
	"$b/berthd" --data-root "$d/data" --exec-root "$d/exec" -H "unix://$d/berth.sock" --pidfile "$d/berthd.pid" >"$d/berthd.log" 2>&1 &
	PIDS="$PIDS $!"
	echo "$b" >"$d/bin"
done
B() { d=$T/$1; shift; "$(cat "$d/bin")/berth" -H "unix://$d/berth.sock" "$@"; }
for i in $(seq "$n"); do
	k=0; until B "$i" version >/dev/null 2>&1; do k=$((k+1)); [ $k -lt 100 ] || { cat "$T/$i/berthd.log"; exit 1; }; sleep 0.1; done
	B "$i" pull -q "$IMG" >/dev/null
	for w in $(seq "$WARM"); do B "$i" run --rm --network none "$IMG" true; done
done
for r in $(seq "$RUNS"); do
	for i in $(seq "$n"); do
		s=$(date +%s%N)
		B "$i" run --rm --network none "$IMG" true
		e=$(date +%s%N)
		echo $(((e - s) / 1000)) >>"$T/$i/times"
	done
done
for i in $(seq "$n"); do
	sort -n "$T/$i/times" | awk -v b="$(cat "$T/$i/bin")" '{a[NR]=$1} END {printf "%s: median %.1f ms, p90 %.1f ms, min %.1f ms over %d runs\n", b, a[int((NR+1)/2)]/1000, a[int(NR*0.9+0.5)]/1000, a[1]/1000, NR}'
done
