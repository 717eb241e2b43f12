#!/usr/bin/env bash
# bench/net/run.sh - networking benchmarks of issue 4 (item 7): berthd beside
# a dockerd WITH its networking (docker0, iptables, userland proxy), same host,
# same images, same tools.
#
#   start  `run --rm busybox true`, default bridge vs --network none,
#          BENCH_NET_RUNS rounds with the commands interleaved in each: medians
#          and the median per-round difference, the bridge's added cost per
#          container start (goal < 5 ms on berthd).
#   http   wrk (2 threads, 50 connections, 10 s) against nginx:alpine published
#          with -p: from the host to 127.0.0.1 (userland proxy path on both
#          engines), from another machine to the host's address (kernel DNAT
#          path), and to the container's own address (no NAT: the floor).
#          Median of BENCH_NET_REPS runs.
#   c2c    container-to-container TCP throughput on the default bridge: iperf3
#          (Debian's) run from the host inside each container's network
#          namespace (nsenter --net=/proc/<pid>/ns/net), 5 s, median of reps.
#
# Both engines run inside a network namespace of their own (the "host" here),
# with a second namespace on a veth playing another machine: docker0,
# iptables chains, berth's nftables table and every published port live and
# die with it; the real host's networking is not touched and no packet leaves.
# The daemons reach the test registry through a socat relay (a unix socket
# crosses namespaces). Everything started is stopped by PID; the namespaces,
# mounts and the temp dir are removed on exit.
#
# Needs root, `make build`, `make registries`, and: dockerd containerd wrk
# iperf3 socat jq nsenter ip.
# Writes $BENCH_NET_OUT (default bench/net/results.md) and prints it.
# Knobs: BENCH_NET_SECTIONS="start http c2c" BENCH_NET_RUNS=30 BENCH_NET_REPS=3
#   BENCH_NET_DURATION=10s BENCH_BIN=<dir with berthd berth berth-shim>
#   BENCH_DOCKER_CLI=/usr/local/bin/docker BENCH_REGISTRY=127.0.0.1:5000
#   BENCH_KEEP=1 keeps the logs.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${BENCH_BIN:-$ROOT/bin}
SECTIONS=${BENCH_NET_SECTIONS:-start http c2c}
RUNS=${BENCH_NET_RUNS:-30}
REPS=${BENCH_NET_REPS:-3}
DURATION=${BENCH_NET_DURATION:-10s}
REG=${BENCH_REGISTRY:-127.0.0.1:5000}
OUT=${BENCH_NET_OUT:-$HERE/results.md}
DOCKER_CLI=${BENCH_DOCKER_CLI:-/usr/local/bin/docker}
HOSTADDR=10.231.7.1
CLIENTADDR=10.231.7.2

T0=$EPOCHREALTIME
log() { printf '[net-bench %6.1fs] %s\n' "$(bc <<<"$EPOCHREALTIME - $T0")" "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}
has() { [[ " $SECTIONS " == *" $1 "* ]]; }

[[ $(id -u) -eq 0 ]] || die "must run as root"
[[ -x $DOCKER_CLI ]] || DOCKER_CLI=$(command -v docker) || die "no docker CLI"
for c in dockerd containerd wrk iperf3 socat jq nsenter ip bc curl; do
	command -v "$c" >/dev/null || die "missing $c (apt-get install wrk iperf3 socat jq)"
done
for b in berthd berth berth-shim; do [[ -x $BIN/$b ]] || die "missing $BIN/$b (run make build)"; done
curl -fsS -m 5 -o /dev/null "http://$REG/v2/" || die "registry $REG does not answer (run make registries)"

W=$(mktemp -d /tmp/berth-netbench.XXXXXX)
TAG=${W##*.}
NS=berth-nb-$TAG   # the "host"
CNS=berth-nb-$TAG-c # another machine
NSP=/run/netns/$NS
CNSP=/run/netns/$CNS
BSOCK=$W/berth.sock
DSOCK=$W/docker.sock
mkdir -p "$W"/{berth,docker,res,cfg}
export DOCKER_CONFIG=$W/cfg BERTH_CONFIG=$W/cfg
unset DOCKER_HOST BERTH_HOST DOCKER_CONTEXT
BERTH=("$BIN/berth" -H "unix://$BSOCK")
DOCKER=("$DOCKER_CLI" -H "unix://$DSOCK")
PIDS=()
CLEANED=0

in_ns() { nsenter --net="$NSP" "$@"; }
in_cns() { nsenter --net="$CNSP" "$@"; }

cleanup() {
	local rc=$?
	((CLEANED)) && return
	CLEANED=1
	trap '' INT TERM PIPE
	set +e
	log "cleaning up"
	local ids
	if [[ -S $BSOCK ]]; then
		ids=$("${DOCKER_CLI}" -H "unix://$BSOCK" ps -aq 2>/dev/null)
		# shellcheck disable=SC2086
		[[ -n $ids ]] && timeout 120 "${DOCKER_CLI}" -H "unix://$BSOCK" rm -f $ids >/dev/null 2>&1
	fi
	if [[ -S $DSOCK ]]; then
		ids=$("${DOCKER[@]}" ps -aq 2>/dev/null)
		# shellcheck disable=SC2086
		[[ -n $ids ]] && timeout 120 "${DOCKER[@]}" rm -f $ids >/dev/null 2>&1
	fi
	local i pid
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do # last started, first stopped
		pid=${PIDS[i]}
		kill -TERM "$pid" 2>/dev/null || continue
		for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
	done
	# mounts under $W, deepest first
	findmnt -rn -o TARGET | grep -F "$W/" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
	ip netns del "$CNS" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	if [[ -n ${BENCH_KEEP:-} ]]; then log "kept $W"; else rm -rf "$W"; fi
	exit "$rc"
}
trap cleanup EXIT INT TERM

bg() { # bg LOG CMD...: start in the background, remember the PID
	local logf=$1
	shift
	"$@" >"$logf" 2>&1 &
	PIDS+=($!)
}

wait_sock() { # wait_sock SOCK NAME
	for _ in $(seq 600); do
		curl -fsS -m 1 --unix-socket "$1" -o /dev/null http://x/_ping 2>/dev/null && return 0
		sleep 0.1
	done
	die "$2 did not answer on $1"
}

# ------------------------------------------------------------------ sandbox
log "sandbox: netns $NS (host) and $CNS (another machine)"
ip netns add "$NS"
ip netns add "$CNS"
ip -n "$NS" link set lo up
ip -n "$CNS" link set lo up
ip -n "$NS" link add h0 type veth peer name eth0 netns "$CNS"
ip -n "$NS" addr add $HOSTADDR/24 dev h0
ip -n "$NS" link set h0 up
ip -n "$CNS" addr add $CLIENTADDR/24 dev eth0
ip -n "$CNS" link set eth0 up
# the registry, as 127.0.0.1:${REG##*:} inside the sandbox
bg "$W/relay-host.log" socat "UNIX-LISTEN:$W/reg.sock,fork" "TCP:$REG"
bg "$W/relay-ns.log" nsenter --net="$NSP" socat "TCP-LISTEN:${REG##*:},bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$W/reg.sock"

# ------------------------------------------------------------------ daemons
log "starting berthd and a networking dockerd in the sandbox"
echo '{}' >"$W/berth/daemon.json"
bg "$W/berthd.log" nsenter --net="$NSP" "$BIN/berthd" --data-root "$W/berth/data" --exec-root "$W/berth/run" \
	-H "unix://$BSOCK" --pidfile "$W/berth/pid" --config-file "$W/berth/daemon.json" --registry-mirror "http://$REG"
cat >"$W/docker/containerd.toml" <<EOF
version = 2
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$W/docker/ctd.sock"
[debug]
  address = ""
[metrics]
  address = ""
EOF
bg "$W/containerd.log" containerd --config "$W/docker/containerd.toml" --root "$W/docker/ctd-root" --state "$W/docker/ctd-state"
for _ in $(seq 300); do [[ -S $W/docker/ctd.sock ]] && break; sleep 0.1; done
echo '{}' >"$W/docker/daemon.json"
bg "$W/dockerd.log" nsenter --net="$NSP" dockerd --data-root "$W/docker/data" --exec-root "$W/docker/run" \
	-H "unix://$DSOCK" --pidfile "$W/docker/pid" --config-file "$W/docker/daemon.json" \
	--containerd "$W/docker/ctd.sock" --registry-mirror "http://$REG"
wait_sock "$BSOCK" berthd
wait_sock "$DSOCK" dockerd
for e in berth docker; do
	cli=("$DOCKER_CLI" -H "unix://$W/$e.sock")
	"${cli[@]}" pull -q busybox:latest >/dev/null
	"${cli[@]}" pull -q nginx:alpine >/dev/null
done
BV=$("$BIN/berthd" --version 2>/dev/null | head -1 || true)
DV=$(dockerd --version)

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "nan"; exit}; if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { bc -l <<<"scale=3; $1 / $2" 2>/dev/null || echo nan; }

REPORT=$W/res/report.md
{
	echo "# Networking benchmarks (issue 4, item 7)"
	echo
	echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, kernel $(uname -r); berthd ${BV:-?} ($(git -C "$ROOT" describe --always --dirty 2>/dev/null)), $DV."
	echo "Both engines in one network namespace of their own; another namespace on a veth is \"another machine\"."
	echo "Load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) (numbers from a busy host are noisy; compare the engines, interleaved, not runs)."
	echo
} >"$REPORT"

# ------------------------------------------------------------------ start
if has start; then
	# Interleaved, not hyperfine's one command after the other: each round
	# runs the four commands (order rotating), so load from other work hits
	# bridge and none alike; the per-round difference cancels what hits a
	# whole round. See also startcost.sh (berth only, + a user network).
	log "start: run --rm busybox true, bridge vs --network none ($RUNS interleaved rounds after 3 warm-ups)"
	SNAMES=(berth-bridge berth-none docker-bridge docker-none)
	start_cmd() {
		case $1 in
		berth-bridge) "${BERTH[@]}" run --rm busybox true ;;
		berth-none) "${BERTH[@]}" run --rm --network none busybox true ;;
		docker-bridge) "${DOCKER[@]}" run --rm busybox true ;;
		docker-none) "${DOCKER[@]}" run --rm --network none busybox true ;;
		esac
	}
	start_ms() {
		local t0=$EPOCHREALTIME
		start_cmd "$1" >/dev/null 2>"$W/res/start.err" || { cat "$W/res/start.err" >&2; die "$1 failed"; }
		bc <<<"($EPOCHREALTIME - $t0) * 1000"
	}
	for _ in 1 2 3; do for c in "${SNAMES[@]}"; do start_ms "$c" >/dev/null; done; done
	declare -A ST SD
	for r in $(seq 0 $((RUNS - 1))); do
		declare -A cur=()
		for k in 0 1 2 3; do
			c=${SNAMES[$(((k + r) % 4))]}
			cur[$c]=$(start_ms "$c")
			ST[$c]+="${cur[$c]} "
		done
		SD[berth]+="$(bc <<<"${cur[berth-bridge]} - ${cur[berth-none]}") "
		SD[docker]+="$(bc <<<"${cur[docker-bridge]} - ${cur[docker-none]}") "
	done
	smed() { tr ' ' '\n' <<<"$1" | grep . | median; }
	{
		echo "## Container start: default bridge vs --network none"
		echo
		echo "\`run --rm busybox true\` end to end through each engine's CLI (berth CLI → berthd, docker CLI → dockerd); $RUNS rounds after 3 warm-ups, the four commands interleaved in every round (order rotating). Load average after: $(cut -d' ' -f1-3 /proc/loadavg)."
		echo
		echo "| engine | bridge median (ms) | none median (ms) | median of per-round (bridge − none) (ms) |"
		echo "|---|---:|---:|---:|"
		printf '| berthd | %.1f | %.1f | **%.1f** |\n' "$(smed "${ST[berth-bridge]}")" "$(smed "${ST[berth-none]}")" "$(smed "${SD[berth]}")"
		printf '| dockerd | %.1f | %.1f | %.1f |\n' "$(smed "${ST[docker-bridge]}")" "$(smed "${ST[docker-none]}")" "$(smed "${SD[docker]}")"
		echo
		echo "Goal: the bridge adds < 5 ms to a berth container start."
		echo
	} >>"$REPORT"
fi

# ------------------------------------------------------------------ http
wrk_run() { # wrk_run NS URL -> "req/s p50_ms"
	local out
	out=$(nsenter --net="$1" wrk -t2 -c50 -d"$DURATION" --latency "$2" 2>&1) || { echo "$out" >&2; echo "nan nan"; return; }
	local rps p50
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p50=$(awk '$1=="50%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; print v}' <<<"$out")
	if grep -q "Non-2xx\|Socket errors" <<<"$out"; then log "wrk $2: $(grep -E 'Non-2xx|Socket errors' <<<"$out")"; fi
	echo "$rps $p50"
}
if has http; then
	log "http: nginx:alpine published on both engines; wrk -t2 -c50 -d$DURATION, $REPS reps"
	"${BERTH[@]}" run -d --name nb-nginx -p 8080:80 nginx:alpine >/dev/null
	"${DOCKER[@]}" run -d --name nb-nginx -p 8081:80 nginx:alpine >/dev/null
	BIP=$("${DOCKER_CLI}" -H "unix://$BSOCK" inspect -f '{{.NetworkSettings.IPAddress}}' nb-nginx)
	DIP=$("${DOCKER[@]}" inspect -f '{{.NetworkSettings.IPAddress}}' nb-nginx)
	for u in "$NSP http://127.0.0.1:8080/" "$NSP http://127.0.0.1:8081/" "$CNSP http://$HOSTADDR:8080/" "$CNSP http://$HOSTADDR:8081/"; do
		for _ in $(seq 100); do nsenter --net="${u%% *}" curl -fsS -m 1 -o /dev/null "${u#* }" && break; sleep 0.1; done
	done
	declare -A RPS LAT
	paths=("loopback:127.0.0.1 (userland proxy):$NSP:127.0.0.1:8080:127.0.0.1:8081"
		"dnat:host address from another machine (kernel DNAT):$CNSP:$HOSTADDR:8080:$HOSTADDR:8081"
		"direct:container address from the host (no NAT, the floor):$NSP:$BIP:80:$DIP:80")
	for rep in $(seq "$REPS"); do
		for p in "${paths[@]}"; do
			IFS=: read -r key _ ns ba bp da dp <<<"$p"
			for e in berth docker; do # interleaved
				if [[ $e == berth ]]; then url=http://$ba:$bp/; else url=http://$da:$dp/; fi
				read -r r l <<<"$(wrk_run "$ns" "$url")"
				RPS[$key.$e]+="$r "
				LAT[$key.$e]+="$l "
				log "  rep $rep $key $e: $r req/s, p50 $l ms"
			done
		done
	done
	{
		echo "## HTTP through a published port (nginx:alpine)"
		echo
		echo "wrk -t2 -c50 -d$DURATION --latency, median of $REPS runs (interleaved). Same image, same host, same wrk."
		echo
		echo "| path | berthd req/s | dockerd req/s | berth/docker | berthd p50 (ms) | dockerd p50 (ms) |"
		echo "|---|---:|---:|---:|---:|---:|"
		for p in "${paths[@]}"; do
			IFS=: read -r key label _ <<<"$p"
			br=$(tr ' ' '\n' <<<"${RPS[$key.berth]}" | grep . | median)
			dr=$(tr ' ' '\n' <<<"${RPS[$key.docker]}" | grep . | median)
			bl=$(tr ' ' '\n' <<<"${LAT[$key.berth]}" | grep . | median)
			dl=$(tr ' ' '\n' <<<"${LAT[$key.docker]}" | grep . | median)
			printf '| %s | %.0f | %.0f | **%.2f** | %.2f | %.2f |\n' "$label" "$br" "$dr" "$(ratio "$br" "$dr")" "$bl" "$dl"
		done
		echo
		echo "Goal: published-port throughput at least Docker's."
		echo
	} >>"$REPORT"
	"${BERTH[@]}" rm -f nb-nginx >/dev/null
	"${DOCKER[@]}" rm -f nb-nginx >/dev/null
fi

# ------------------------------------------------------------------ c2c
if has c2c; then
	log "c2c: iperf3 between two containers on each engine's default bridge, $REPS reps"
	declare -A C2C
	for e in berth docker; do
		cli=("$DOCKER_CLI" -H "unix://$W/$e.sock")
		"${cli[@]}" run -d --name nb-a busybox sleep 3600 >/dev/null
		"${cli[@]}" run -d --name nb-b busybox sleep 3600 >/dev/null
	done
	for rep in $(seq "$REPS"); do
		for e in berth docker; do
			cli=("$DOCKER_CLI" -H "unix://$W/$e.sock")
			pa=$("${cli[@]}" inspect -f '{{.State.Pid}}' nb-a)
			pb=$("${cli[@]}" inspect -f '{{.State.Pid}}' nb-b)
			ipa=$("${cli[@]}" inspect -f '{{.NetworkSettings.IPAddress}}' nb-a)
			nsenter --net="/proc/$pa/ns/net" iperf3 -s -1 -B "$ipa" >"$W/iperf-s.log" 2>&1 &
			spid=$!
			for _ in $(seq 50); do nsenter --net="/proc/$pa/ns/net" ss -Hltn | grep -q ":5201" && break; sleep 0.1; done
			bps=$(nsenter --net="/proc/$pb/ns/net" iperf3 -c "$ipa" -t 5 -J | jq '.end.sum_received.bits_per_second / 1e9')
			wait "$spid" 2>/dev/null || true
			C2C[$e]+="$bps "
			log "  rep $rep $e: $bps Gbit/s"
		done
	done
	bg_=$(tr ' ' '\n' <<<"${C2C[berth]}" | grep . | median)
	dg_=$(tr ' ' '\n' <<<"${C2C[docker]}" | grep . | median)
	{
		echo "## Container to container (default bridge)"
		echo
		echo "iperf3 -t 5 (TCP, one stream), client and server each in a container's network namespace; median of $REPS."
		echo
		echo "| engine | Gbit/s |"
		echo "|---|---:|"
		printf '| berthd | %.2f |\n| dockerd | %.2f |\n| berth/docker | **%.2f** |\n' "$bg_" "$dg_" "$(ratio "$bg_" "$dg_")"
		echo
	} >>"$REPORT"
	for e in berth docker; do "$DOCKER_CLI" -H "unix://$W/$e.sock" rm -f nb-a nb-b >/dev/null; done
fi

cp "$REPORT" "$OUT"
cat "$REPORT"
log "wrote $OUT"
