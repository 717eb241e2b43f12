#!/usr/bin/env bash
# bench/net/startcost.sh - what the network adds to a berth container start
# (issue 4, item 7: goal < 5 ms), measured so that machine load cannot fake
# it: `run --rm busybox true` with --network none, the default bridge and a
# user-defined network (which also starts the embedded DNS server),
# interleaved in every round (the order rotating each round), N rounds after
# warm-ups, end to end through the berth CLI. Reported: the median of each
# mode and the median of the per-round differences to none (the paired
# difference cancels load that hits a whole round), with the load average
# before and after.
#
# berthd runs in a network namespace of its own (its bridges and nftables
# table live and die with it), reaching the test registry through a socat
# relay, as in run.sh. Everything started is stopped by PID; the namespace,
# mounts and the temp dir are removed on exit.
#
# Needs root, `make build`, `make registries`, socat, nsenter, ip, bc.
# Knobs: BENCH_NET_RUNS=40 (rounds) BENCH_NET_WARM=5 BENCH_BIN=<dir>
#   BENCH_REGISTRY=127.0.0.1:5000 BENCH_NET_OUT=<markdown file to append to>
#   BENCH_NET_MODES="none bridge user" BENCH_KEEP=1 keeps the temp dir.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${BENCH_BIN:-$ROOT/bin}
RUNS=${BENCH_NET_RUNS:-40}
WARM=${BENCH_NET_WARM:-5}
REG=${BENCH_REGISTRY:-127.0.0.1:5000}
MODES=(${BENCH_NET_MODES:-none bridge user})
OUT=${BENCH_NET_OUT:-}

T0=$EPOCHREALTIME
log() { printf '[startcost %6.1fs] %s\n' "$(bc <<<"$EPOCHREALTIME - $T0")" "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}
[[ $(id -u) -eq 0 ]] || die "must run as root"
for c in socat nsenter ip bc curl; do command -v "$c" >/dev/null || die "missing $c"; done
for b in berthd berth berth-shim; do [[ -x $BIN/$b ]] || die "missing $BIN/$b (run make build)"; done
curl -fsS -m 5 -o /dev/null "http://$REG/v2/" || die "registry $REG does not answer (run make registries)"

W=$(mktemp -d /tmp/berth-startcost.XXXXXX)
NS=berth-sc-${W##*.}
NSP=/run/netns/$NS
SOCK=$W/berth.sock
export BERTH_CONFIG=$W/cfg
unset BERTH_HOST DOCKER_HOST
BERTH=("$BIN/berth" -H "unix://$SOCK")
PIDS=()
CLEANED=0
cleanup() {
	local rc=$?
	((CLEANED)) && return
	CLEANED=1
	trap '' INT TERM PIPE
	set +e
	if [[ -S $SOCK ]]; then
		ids=$("${BERTH[@]}" ps -aq 2>/dev/null)
		# shellcheck disable=SC2086
		[[ -n $ids ]] && timeout 60 "${BERTH[@]}" rm -f $ids >/dev/null 2>&1
		"${BERTH[@]}" network rm sc-user >/dev/null 2>&1
	fi
	local i pid
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		pid=${PIDS[i]}
		kill -TERM "$pid" 2>/dev/null || continue
		for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
	done
	findmnt -rn -o TARGET | grep -F "$W/" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
	ip netns del "$NS" 2>/dev/null
	if [[ -n ${BENCH_KEEP:-} ]]; then log "kept $W"; else rm -rf "$W"; fi
	exit "$rc"
}
trap cleanup EXIT INT TERM
bg() {
	local logf=$1
	shift
	"$@" >"$logf" 2>&1 &
	PIDS+=($!)
}

ip netns add "$NS"
ip -n "$NS" link set lo up
bg "$W/relay-host.log" socat "UNIX-LISTEN:$W/reg.sock,fork" "TCP:$REG"
bg "$W/relay-ns.log" nsenter --net="$NSP" socat "TCP-LISTEN:${REG##*:},bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$W/reg.sock"
mkdir -p "$W/cfg"
echo '{}' >"$W/daemon.json"
bg "$W/berthd.log" nsenter --net="$NSP" "$BIN/berthd" --data-root "$W/data" --exec-root "$W/run" \
	-H "unix://$SOCK" --pidfile "$W/pid" --config-file "$W/daemon.json" --registry-mirror "http://$REG" --log-level debug
for _ in $(seq 600); do
	curl -fsS -m 1 --unix-socket "$SOCK" -o /dev/null http://x/_ping 2>/dev/null && break
	sleep 0.1
done
"${BERTH[@]}" pull -q busybox:latest >/dev/null
"${BERTH[@]}" network create sc-user >/dev/null

netarg() {
	case $1 in
	none) echo "--network=none" ;;
	bridge) echo "--network=bridge" ;;
	user) echo "--network=sc-user" ;;
	esac
}
once() { # once MODE -> ms
	local a t0 t1
	a=$(netarg "$1")
	echo "$1" >>"$W/order"
	t0=$EPOCHREALTIME
	"${BERTH[@]}" run --rm "$a" busybox true || die "run --rm $a failed"
	t1=$EPOCHREALTIME
	bc <<<"($t1 - $t0) * 1000"
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "nan"; exit}; if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
log "warm-up: $WARM rounds; then $RUNS interleaved rounds of ${MODES[*]} (load $LOAD0)"
for _ in $(seq "$WARM"); do for m in "${MODES[@]}"; do once "$m" >/dev/null; done; done
declare -A T D
n=${#MODES[@]}
for r in $(seq 0 $((RUNS - 1))); do
	declare -A cur=()
	for k in $(seq 0 $((n - 1))); do # rotate the order each round
		m=${MODES[$(((k + r) % n))]}
		cur[$m]=$(once "$m")
		T[$m]+="${cur[$m]} "
	done
	for m in "${MODES[@]}"; do
		[[ $m == none ]] && continue
		D[$m]+="$(bc <<<"${cur[$m]} - ${cur[none]}") "
	done
	((r % 10 == 9)) && log "  $((r + 1)) rounds"
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
# berthd's own time for each POST /containers/{id}/start (its debug log's
# "api request ... dur="), in run order: network setup plus runc, without
# the CLI, the attach and the wait. Warm-ups dropped.
grep -E 'msg="api request" method=POST path=/v[0-9.]+/containers/[0-9a-f]+/start ' "$W/berthd.log" |
	sed -E 's/.* dur=([^ ]+).*/\1/' |
	awk '{v=$1; if (v ~ /µs$/) {sub(/µs$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; print v}' >"$W/startdur"
[[ $(wc -l <"$W/startdur") -eq $(wc -l <"$W/order") ]] || die "start requests in the log ($(wc -l <"$W/startdur")) do not match the runs ($(wc -l <"$W/order"))"
declare -A S
while read -r m v; do S[$m]+="$v "; done < <(paste -d' ' "$W/order" "$W/startdur" | tail -n $((RUNS * n)))

{
	echo "### run --rm busybox true: --network none vs bridge vs a user-defined network"
	echo
	echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, kernel $(uname -r), berth $(git -C "$ROOT" describe --always --dirty 2>/dev/null); berthd in a network namespace of its own."
	echo "$RUNS rounds after $WARM warm-up rounds, the modes interleaved in every round (order rotating). Load average before: $LOAD0; after: $LOAD1."
	echo
	echo "| mode | run --rm median (ms) | min (ms) | median of per-round (mode − none) (ms) | berthd's start request, median (ms) | its median per-round (mode − none) (ms) |"
	echo "|---|---:|---:|---:|---:|---:|"
	for m in "${MODES[@]}"; do
		med=$(tr ' ' '\n' <<<"${T[$m]}" | grep . | median)
		min=$(tr ' ' '\n' <<<"${T[$m]}" | grep . | sort -g | head -1)
		if [[ $m == none ]]; then d="—"; else d=$(printf '%.1f' "$(tr ' ' '\n' <<<"${D[$m]}" | grep . | median)"); fi
		smed=$(tr ' ' '\n' <<<"${S[$m]}" | grep . | median)
		if [[ $m == none ]]; then sd="—"; else
			sd=$(printf '%.2f' "$(paste -d- <(tr ' ' '\n' <<<"${S[$m]}" | grep .) <(tr ' ' '\n' <<<"${S[none]}" | grep .) | bc -l | median)")
		fi
		printf '| %s | %.1f | %.1f | %s | %.2f | %s |\n' "$m" "$med" "$min" "$d" "$smed" "$sd"
	done
	echo
} >"$W/report.md"
cat "$W/report.md"
[[ -n $OUT ]] && cat "$W/report.md" >>"$OUT"
if [[ -n ${BENCH_NET_RAW:-} ]]; then
	for m in "${MODES[@]}"; do echo "$m ${T[$m]}"; done >"$BENCH_NET_RAW"
	for m in "${MODES[@]}"; do echo "start-$m ${S[$m]}"; done >>"$BENCH_NET_RAW"
fi
exit 0
