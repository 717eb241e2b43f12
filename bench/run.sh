#!/usr/bin/env bash
# bench/run.sh - berth against Debian's dockerd and podman, in one invocation
# (`make bench`). Speed goals live here, never in pass/fail tests.
#
#   pull  cold pull of $REG/bench/big:latest (~115 MB gzip, 6 layers) and
#         docker.io/library/nginx:alpine (through each engine's docker.io
#         mirror), each engine's own CLI, runs interleaved; the image and its
#         layers are removed, and checked gone on disk, before every run.
#         Wall time and the engine's CPU time.                  (issue 2, item 9)
#   run   `run --rm busybox true` end to end, engines interleaved each round:
#         berthd through the berth CLI and the docker CLI, dockerd, podman,
#         and two references: bare `runc run` of the same busybox rootfs with
#         `runc spec`'s config (the floor) and with berthd's own OCI spec.
#                                                               (issue 3, item 10)
#   push  first push of a fresh image (6 layers, ~127 MB of /usr files: a generated docker-save
#         archive loaded into each engine, so each compresses its layers) to a
#         registry of the benchmark's own, then a push of the same image with
#         its top layer changed; new content every run; each engine's own CLI,
#         runs interleaved. Wall time, CPU time, and what the second push
#         uploaded (layers reported pushed, bytes the registry gained).
#                                                               (issue 10, item 7)
#   net   bench/net/run.sh (networking, issue 4 item 7), its report folded in.
#   build cold and fully cached builds of the walk-through's mytest and
#         mypython and of a four-stage Dockerfile with a 5,000-file context:
#         berth build, docker buildx and classic docker build against berthd,
#         buildx and classic against dockerd, podman build; engines
#         interleaved.                                          (issue 9, item 9)
#   mem   N `run -d busybox sleep 600` on berthd: berthd's RSS before/after,
#         every berth-shim's RSS, Pss and private memory (smaps_rollup); for
#         comparison a few containers' containerd-shim (dockerd) and conmon
#         (podman).                                             (issue 3, item 10)
#
# Every engine is a private instance: own data root (on a fresh loop-mounted
# ext4 by default, see setup_fs), exec root and socket (on a tmpfs), cgroup
# parent, containerd namespace, podman root/runroot/tmpdir and config files;
# berthd and dockerd run in a network namespace of their own (see
# setup_netns). Everything started here is stopped by PID and everything
# created (containers, mounts, loop device, netns, cgroups, files) is removed
# on exit, even on failure or ^C. Needs root, `make build`, `make registries`.
# A berthd failure during a timed run is counted, reported and retried, so
# that one bug does not hide every number.
#
# Writes $BENCH_OUT (default bench/results/latest.md) and prints it.
# Knobs (environment): BENCH_SECTIONS="pull push run net build mem"  BENCH_PULL_RUNS=5
#   BENCH_PUSH_RUNS=3 BENCH_PUSH_LAYERS=6 BENCH_PUSH_MB=20 (MiB per layer)
#   BENCH_PUSH_ENGINES="berth docker podman" (dockerd is the ratio's reference)
#   BENCH_RUN_RUNS=20  BENCH_RUN_WARMUP=3  BENCH_RUN_TIMEOUT=20s
#   BENCH_RUN_RETRIES=5  BENCH_MEM_N=100  BENCH_MEM_CMP_N=10
#   BENCH_NET_RUNS=20 BENCH_NET_REPS=2 BENCH_NET_DURATION=5s (bench/net/run.sh)
#   BENCH_BUILD_RUNS=5 BENCH_BUILD_ENGINES="berth buildx-berthd classic-berthd
#     buildx-dockerd classic-dockerd podman" BENCH_BUILDX=<docker-buildx plugin>
#   BENCH_FS=ext4|host|tmpfs (what holds the data roots, see setup_fs)
#   BENCH_BIN=<dir with berthd, berth, berth-shim> (default bin/)
#   BENCH_DOCKER_CLI=/usr/local/bin/docker  BENCH_REGISTRY=127.0.0.1:5000
#   BENCH_KEEP=1 keeps the temp dir's logs (daemons are stopped regardless)
#   BENCH_BERTHD_ARGS="--log-level debug" extra berthd flags
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BIN=${BENCH_BIN:-$ROOT/bin}
SECTIONS=${BENCH_SECTIONS:-pull push run net build mem}
PULL_RUNS=${BENCH_PULL_RUNS:-5}
PUSH_RUNS=${BENCH_PUSH_RUNS:-3}
PUSH_LAYERS=${BENCH_PUSH_LAYERS:-6}
PUSH_MB=${BENCH_PUSH_MB:-20}
read -r -a PUSH_ENGINES <<<"${BENCH_PUSH_ENGINES:-berth docker podman}"
RUN_RUNS=${BENCH_RUN_RUNS:-20}
BUILD_RUNS=${BENCH_BUILD_RUNS:-5}
RUN_WARMUP=${BENCH_RUN_WARMUP:-3}
MEM_N=${BENCH_MEM_N:-100}
MEM_CMP_N=${BENCH_MEM_CMP_N:-10}
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-20s} # a run this slow is killed and counted as failed
RUN_RETRIES=${BENCH_RUN_RETRIES:-5}   # failed runs tolerated per command
REG=${BENCH_REGISTRY:-127.0.0.1:5000}
OUT=${BENCH_OUT:-$HERE/results/latest.md}
FS=${BENCH_FS:-ext4}
DOCKER_CLI=${BENCH_DOCKER_CLI:-/usr/local/bin/docker}
read -r -a BERTHD_EXTRA <<<"${BENCH_BERTHD_ARGS:-}"

BIG=$REG/bench/big:latest
NGINX=docker.io/library/nginx:alpine
BUSYBOX=docker.io/library/busybox:latest
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

T0=$EPOCHREALTIME
log() { printf '[bench %6.1fs] %s\n' "$(bc <<<"$EPOCHREALTIME - $T0")" "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}
has_section() { [[ " $SECTIONS " == *" $1 "* ]]; }

[[ $(id -u) -eq 0 ]] || die "must run as root"
[[ -x $DOCKER_CLI ]] || DOCKER_CLI=$(command -v docker) || die "no docker CLI"
for c in dockerd podman runc jq curl bc go mkfs.ext4 losetup findmnt getconf nsenter ip socat docker-registry; do
	command -v "$c" >/dev/null || die "missing $c (run ./hack/deps.sh)"
done
for b in berthd berth berth-shim; do
	[[ -x $BIN/$b ]] || die "missing $BIN/$b (run make build)"
done
curl -fsS -m 5 -o /dev/null "http://$REG/v2/bench/big/manifests/latest" \
	-H 'Accept: application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json' ||
	die "registry $REG does not serve bench/big:latest (run make registries)"

# ------------------------------------------------------------------ workspace
W=$(mktemp -d /tmp/berth-bench.XXXXXX)
TAG=berth-bench-${W##*.}              # cgroup parents, containerd namespace
# $W/data: every engine's persistent data (data roots, podman's graph root, the
#   floor's rootfs), on the filesystem chosen by BENCH_FS (see setup_fs).
# $W/run: a tmpfs, like /run: exec roots, sockets, runc state, podman's runroot.
# $W itself: configs, logs, results.
DATA=$W/data
RUN=$W/run
BSOCK=$RUN/berth.sock
BDATA=$DATA/berth
BEXEC=$RUN/berth
DSOCK=$RUN/docker.sock
DDATA=$DATA/docker
DEXEC=$RUN/docker
PDIR=$W/podman # config files
PROOT=$DATA/podman
PRUNROOT=$RUN/podman
PTMP=$RUN/podman-tmp
RUNC_ROOT=$RUN/runc
FLOOR=$DATA/runc # busybox rootfs and one bundle per run
RES=$W/results # key=value lines and JSON, turned into the report at the end
mkdir -p "$W"/{berth,docker,logs,dockercfg,berthcfg} "$PDIR/net" "$RES" "$DATA" "$RUN"
export DOCKER_CONFIG=$W/dockercfg BERTH_CONFIG=$W/berthcfg
echo '{}' >"$DOCKER_CONFIG/config.json" # podman reads it too, and fails if it is missing
# podman (and skopeo) read only our config files
export CONTAINERS_REGISTRIES_CONF=$PDIR/registries.conf CONTAINERS_CONF=$PDIR/containers.conf \
	CONTAINERS_STORAGE_CONF=$PDIR/storage.conf
unset DOCKER_HOST BERTH_HOST DOCKER_CONTEXT

BERTHD_PID='' DOCKERD_PID='' PUSH_REG_PID='' PUSH_REG=''
CLEANED=0

# ------------------------------------------------------------------ cleanup
# pid_is PID EXE-SUBSTRING: PID is alive and its executable matches
pid_is() { [[ -n $1 && -e /proc/$1/exe ]] && [[ $(readlink "/proc/$1/exe" 2>/dev/null) == *"$2"* ]]; }

# procs_matching EXE-SUBSTRING CMDLINE-SUBSTRING: PIDs of our processes
procs_matching() {
	local p
	for p in /proc/[0-9]*; do
		pid_is "${p#/proc/}" "$1" || continue
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "$2" && echo "${p#/proc/}"
	done
}

stop_pid() { # stop_pid PID NAME: SIGTERM, wait up to 30 s, then SIGKILL
	local pid=$1 i
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	log "$2 (pid $pid) ignored SIGTERM for 30 s; SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
}

# berth_shim_pids [ID...]: the shims of the given containers (default: of
# every container with a state dir); berthd's layout, container/service.go
berth_shim_pids() {
	local f pid id files=()
	if (($#)); then
		for id in "$@"; do files+=("$BEXEC/c/${id:0:16}/shim.pid"); done
	else
		files=("$BEXEC"/c/*/shim.pid)
	fi
	for f in "${files[@]}"; do
		[[ -f $f ]] || continue
		read -r pid _ <"$f" || [[ -n $pid ]] # "PID START-TIME", no newline
		if pid_is "$pid" berth-shim; then echo "$pid"; fi
	done
}

BERTH=("$BIN/berth" -H "unix://$BSOCK")      # berth CLI → berthd
DBERTH=("$DOCKER_CLI" -H "unix://$BSOCK")    # docker CLI → berthd
DOCKER=("$DOCKER_CLI" -H "unix://$DSOCK")    # docker CLI → dockerd
PODMAN=(podman --root "$PROOT" --runroot "$PRUNROOT" --tmpdir "$PTMP"
	--runtime runc --cgroup-manager cgroupfs --events-backend file)
berth_() { "${BERTH[@]}" "$@"; }
dberth_() { "${DBERTH[@]}" "$@"; }
docker_() { "${DOCKER[@]}" "$@"; }
podman_() { "${PODMAN[@]}" "$@"; }

cleanup() {
	local rc=$?
	((CLEANED)) && return
	CLEANED=1
	# Finish even if stderr's reader is gone (| head) or a step fails.
	trap '' INT TERM PIPE
	set +e
	log "cleaning up"
	if ((rc != 0)); then # keep what explains a failure: shim logs and exit records
		local d b
		for d in "$BEXEC"/c/*/; do
			[[ -d $d ]] || continue
			b=${d%/}
			b=$W/logs/shims/${b##*/}
			mkdir -p "$b"
			cp -a "$d"*.log "$d"*.json "$b/" 2>/dev/null || true
		done
	fi
	# berthd: containers first (the shims outlive berthd), then the daemon.
	if [[ -S $BSOCK ]] && kill -0 "${BERTHD_PID:-0}" 2>/dev/null; then
		local ids
		ids=$(dberth_ ps -aq 2>/dev/null || true)
		if [[ -n $ids ]]; then
			# shellcheck disable=SC2086 # one word per ID
			timeout 120 "${DBERTH[@]}" rm -f $ids >/dev/null 2>&1 || true
		fi
	fi
	stop_pid "$BERTHD_PID" berthd
	local pid
	for pid in $(procs_matching berth-shim "$BEXEC/"); do # containers berthd could not remove
		log "killing leftover berth-shim $pid"
		kill -KILL "$pid" 2>/dev/null || true
	done
	if [[ -d $BEXEC/runc ]]; then
		local id
		for id in $(runc --root "$BEXEC/runc" list -q 2>/dev/null); do
			runc --root "$BEXEC/runc" delete -f "$id" >/dev/null 2>&1 || true
		done
	fi
	if [[ -S $DSOCK ]] && kill -0 "${DOCKERD_PID:-0}" 2>/dev/null; then
		local ids
		ids=$(docker_ ps -aq 2>/dev/null || true)
		if [[ -n $ids ]]; then
			# shellcheck disable=SC2086
			timeout 120 "${DOCKER[@]}" rm -f $ids >/dev/null 2>&1 || true
		fi
	fi
	stop_pid "$DOCKERD_PID" dockerd # stops the containerd it started
	if [[ -f $PDIR/containers.conf ]]; then
		timeout 120 "${PODMAN[@]}" rm -af -t 0 >/dev/null 2>&1 || true
		# podman has no daemon; this drops its storage's mounts and images
		timeout 60 "${PODMAN[@]}" system reset -f >/dev/null 2>&1 || true
	fi
	if [[ -d $RUNC_ROOT ]]; then
		local id
		for id in $(runc --root "$RUNC_ROOT" list -q 2>/dev/null); do
			runc --root "$RUNC_ROOT" delete -f "$id" >/dev/null 2>&1 || true
		done
	fi
	stop_pid "$PUSH_REG_PID" docker-registry
	local p
	for p in "${RELAY_PIDS[@]}"; do stop_pid "$p" socat; done
	if [[ -e /run/netns/$NS ]]; then
		ip netns del "$NS" 2>/dev/null || log "cannot delete network namespace $NS"
	fi
	# Mounts under $W (the engines' leftovers, then $DATA and $RUN), deepest first.
	local m
	while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
	done < <(awk -v w="$W/" 'index($5, w) == 1 || $5 == substr(w, 1, length(w) - 1) {print $5}' /proc/self/mountinfo | sort -r)
	# Our cgroups (dockerd's, podman's and runc's parents) in every hierarchy.
	local d
	for d in /sys/fs/cgroup/"$TAG"-* /sys/fs/cgroup/*/"$TAG"-*; do
		[[ -d $d ]] || continue
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || log "cannot remove cgroup $d"
	done
	if [[ -f $W/data.img ]] && [[ -n $(losetup -j "$W/data.img" 2>/dev/null) ]]; then
		losetup -j "$W/data.img" | cut -d: -f1 | xargs -r -n1 losetup -d 2>/dev/null || log "cannot detach the loop device of $W/data.img"
	fi
	if awk -v w="$W/" 'index($5, w) == 1 {f = 1} END {exit !f}' /proc/self/mountinfo; then
		log "mounts remain under $W; not deleting it"
	elif [[ ${BENCH_KEEP:-0} == 1 || $rc -ne 0 ]]; then
		rm -rf "${DATA:?}" "$RUN" "$W/data.img"
		log "logs kept in $W"
	else
		rm -rf "${W:?}"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ helpers
TOOL=$W/benchtool
(cd "$ROOT" && go build -o "$TOOL" ./bench/benchtool) || die "cannot build bench/benchtool"

put() { printf '%s=%s\n' "$1" "$2" >>"$RES/kv"; } # put KEY VALUE
get() { awk -F= -v k="$1" '$1 == k {v = substr($0, length(k) + 2)} END {print v}' "$RES/kv"; }

# wait_ready NAME PID LOG COMMAND...: poll COMMAND until it succeeds (30 s)
wait_ready() {
	local name=$1 pid=$2 logf=$3 i
	shift 3
	for ((i = 0; i < 300; i++)); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -20 "$logf" >&2
			die "$name exited during start-up (log: $logf)"
		fi
		sleep 0.1
	done
	tail -20 "$logf" >&2
	die "$name did not answer within 30 s (log: $logf)"
}

# rss_kib PID
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }

# ------------------------------------------------------------------ filesystems
# BENCH_FS picks what holds $DATA:
#   ext4  (default) a fresh journaled ext4 in a sparse file on a loop device:
#         what /var/lib/docker sits on on a typical host, and isolated from
#         other work on this machine's disk
#   host  a plain directory under /tmp (on this VM: ext4 without a journal,
#         where creating a file can take ~1 ms of CPU, see results/)
#   tmpfs memory: the engines' own CPU cost, no filesystem in the way
setup_fs() {
	mount -t tmpfs -o size=2g,mode=0755 "$TAG-run" "$RUN"
	case $FS in
	ext4)
		truncate -s "${BENCH_FS_SIZE:-16G}" "$W/data.img"
		mkfs.ext4 -q -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "$W/data.img"
		mount -o loop "$W/data.img" "$DATA"
		;;
	tmpfs) mount -t tmpfs -o size=8g,mode=0755 "$TAG-data" "$DATA" ;;
	host) ;;
	*) die "BENCH_FS=$FS: want ext4, host or tmpfs" ;;
	esac
	FS_DESC=$(findmnt -no FSTYPE,OPTIONS --target "$DATA" | cut -c1-120)
	log "data on $FS ($FS_DESC); exec roots on tmpfs"
}

# ------------------------------------------------------------------ network namespace
# berthd and dockerd run in a network namespace of their own, as do podman's
# pulls: berthd makes its bridge (berth0) and nftables table ("berth") there,
# not beside the host's or another berthd's (a second berthd on one network
# namespace resets the first one's table; see results/). The registry on the
# host's loopback is reached through a socat relay over a unix socket (it
# adds nothing measurable: a 48 MB blob takes the same ~50 ms either way).
# A veth pair gives the namespace a "host address" ($NS_ADDR) for the
# published-port benchmark.
NS=$TAG
NS_ADDR=10.213.0.1
IN_NS=(nsenter "--net=/run/netns/$NS")
RELAY_PIDS=()
setup_netns() {
	local port=${REG##*:} i
	ip netns add "$NS"
	"${IN_NS[@]}" ip link set lo up
	# (no dummy driver in every kernel: a veth pair with both ends here)
	"${IN_NS[@]}" ip link add bench0 type veth peer name bench1
	"${IN_NS[@]}" ip addr add "$NS_ADDR/24" dev bench0
	"${IN_NS[@]}" ip link set bench0 up
	"${IN_NS[@]}" ip link set bench1 up
	socat -b 262144 "UNIX-LISTEN:$RUN/registry.sock,fork,unlink-early" "TCP:$REG" </dev/null >"$W/logs/relay-host.log" 2>&1 &
	RELAY_PIDS+=($!)
	"${IN_NS[@]}" socat -b 262144 "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$RUN/registry.sock" \
		</dev/null >"$W/logs/relay-ns.log" 2>&1 &
	RELAY_PIDS+=($!)
	for ((i = 0; i < 50; i++)); do
		"${IN_NS[@]}" curl -fsS -m 2 -o /dev/null "http://$REG/v2/" 2>/dev/null && return 0
		sleep 0.1
	done
	die "the registry relay into network namespace $NS does not answer"
}

# ------------------------------------------------------------------ engines
start_berthd() {
	echo '{}' >"$W/berth/daemon.json"
	"${IN_NS[@]}" "$BIN/berthd" --config-file "$W/berth/daemon.json" --data-root "$BDATA" --exec-root "$BEXEC" \
		-H "unix://$BSOCK" --pidfile "$W/berth/pid" --registry-mirror "http://$REG" \
		"${BERTHD_EXTRA[@]}" >"$W/logs/berthd.log" 2>&1 </dev/null &
	BERTHD_PID=$!
	wait_ready berthd "$BERTHD_PID" "$W/logs/berthd.log" berth_ version
	pid_is "$BERTHD_PID" berthd || die "berthd pid $BERTHD_PID is not berthd"
	put berthd_rss_start_kib "$(rss_kib "$BERTHD_PID")"
	log "berthd up (pid $BERTHD_PID)"
}

# start_dockerd: in $NS, without networking (--bridge none, no iptables)
start_dockerd() {
	local extra=(--bridge none --iptables=false --ip-masq=false)
	echo '{}' >"$W/docker/daemon.json"
	if [[ -S /run/containerd/containerd.sock ]]; then
		log "note: /run/containerd/containerd.sock exists; dockerd would use it, so it gets its own namespace $TAG"
	fi
	"${IN_NS[@]}" dockerd --config-file "$W/docker/daemon.json" --data-root "$DDATA" --exec-root "$DEXEC" \
		-H "unix://$DSOCK" --pidfile "$W/docker/pid" --registry-mirror "http://$REG" \
		--insecure-registry "$REG" --cgroup-parent "/$TAG-docker" \
		--containerd-namespace "$TAG" --containerd-plugins-namespace "$TAG-plugins" \
		"${extra[@]}" >"$W/logs/dockerd.log" 2>&1 </dev/null &
	DOCKERD_PID=$!
	wait_ready dockerd "$DOCKERD_PID" "$W/logs/dockerd.log" docker_ version
	pid_is "$DOCKERD_PID" dockerd || die "dockerd pid $DOCKERD_PID is not dockerd"
	log "dockerd up (pid $DOCKERD_PID)"
}

setup_podman() {
	cat >"$PDIR/registries.conf" <<-EOF
		unqualified-search-registries = ["docker.io"]
		short-name-mode = "permissive"
		[[registry]]
		prefix = "$REG"
		location = "$REG"
		insecure = true
		[[registry]]
		prefix = "docker.io"
		location = "docker.io"
		[[registry.mirror]]
		location = "$REG"
		insecure = true
	EOF
	cat >"$PDIR/containers.conf" <<-EOF
		[network]
		network_config_dir = "$PDIR/net"
		[engine]
		runtime = "runc"
		cgroup_manager = "cgroupfs"
		events_logger = "file"
		events_logfile_path = "$PDIR/events.log"
		tmp_dir = "$PTMP"
	EOF
	cat >"$PDIR/storage.conf" <<-EOF
		[storage]
		driver = "overlay"
		graphroot = "$PROOT"
		runroot = "$PRUNROOT"
	EOF
	podman_ info >/dev/null 2>"$W/logs/podman-info.log" || die "podman info failed (see $W/logs/podman-info.log)"
}

# The floor: busybox's rootfs unpacked once, straight from the registry (the
# same image the engines run); one tiny bundle per run (config only, root.path
# pointing at the shared rootfs) so that every run has its own cgroup, like an
# engine's container. Bare `runc spec` otherwise: its own namespaces
# (network included), read-only root, no seccomp.
setup_runc_floor() {
	local n=$1 rootfs=$FLOOR/rootfs m l i accept
	accept='application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json'
	mkdir -p "$rootfs"
	m=$(curl -fsS -H "Accept: $accept" "http://$REG/v2/library/busybox/manifests/latest") ||
		die "cannot fetch busybox's manifest from $REG"
	for l in $(jq -r '.layers[].digest' <<<"$m"); do
		curl -fsS "http://$REG/v2/library/busybox/blobs/$l" | tar -xzf - -C "$rootfs" ||
			die "cannot unpack busybox layer $l"
	done
	(cd "$FLOOR" && runc spec && mv config.json spec.json)
	for ((i = 1; i <= n; i++)); do
		mkdir -p "$FLOOR/b/$i"
		jq --arg root "$rootfs" --arg cg "/$TAG-runc/floor-$i" \
			'.root.path = $root | .process.args = ["true"] | .process.terminal = false | .linux.cgroupsPath = $cg' \
			"$FLOOR/spec.json" >"$FLOOR/b/$i/config.json"
	done
	runc --root "$RUNC_ROOT" run --bundle "$FLOOR/b/1" "$TAG-check" </dev/null >/dev/null ||
		die "bare runc run of busybox failed"
}

# A second reference: bare runc with the very OCI spec berthd generates (its
# seccomp profile, capabilities, masked paths, device rules, mounts), taken
# from a running berthd container's bundle, on the floor's rootfs; only the
# bind mounts of that container's own /etc/hosts, hostname and resolv.conf
# are dropped. berthd's time minus this row is the engine's own overhead.
BERTH_SPEC=0
setup_runc_berth_spec() {
	local n=$1 id cfg i
	id=$(dberth_ run -d --network none busybox sleep 60 </dev/null) || die "berthd: run -d failed"
	cfg=$BEXEC/c/${id:0:16}/config.json # berthd's layout (container/service.go stateDir)
	if [[ -f $cfg ]]; then
		cp "$cfg" "$FLOOR/berth-spec.json"
		BERTH_SPEC=1
	else
		log "run: no bundle config at $cfg; skipping the runc-berth-spec reference"
	fi
	dberth_ rm -f "$id" >/dev/null
	((BERTH_SPEC)) || return 0
	for ((i = 1; i <= n; i++)); do
		mkdir -p "$FLOOR/bs/$i"
		jq --arg root "$FLOOR/rootfs" --arg cg "/$TAG-runc/bspec-$i" --arg b "$BDATA/" --arg e "$BEXEC/" \
			'.root.path = $root | .process.args = ["true"] | .process.terminal = false | .linux.cgroupsPath = $cg
			 | .mounts |= map(select((.source | startswith($b) or startswith($e)) | not))' \
			"$FLOOR/berth-spec.json" >"$FLOOR/bs/$i/config.json"
	done
	runc --root "$RUNC_ROOT" run --bundle "$FLOOR/bs/1" "$TAG-check-bs" </dev/null >/dev/null ||
		die "bare runc run with berthd's spec failed"
}

# ------------------------------------------------------------------ pull
# gone_berth / gone_docker / gone_podman: no image, no layer, no blob left
gone_berth() {
	[[ -z $(berth_ images -aq) ]] &&
		[[ -z $(find "$BDATA/snapshots/layers" -mindepth 1 -maxdepth 1 2>/dev/null) ]] &&
		[[ -z $(find "$BDATA/content/blobs" -type f 2>/dev/null) ]]
}
gone_docker() {
	[[ -z $(docker_ images -aq) ]] &&
		[[ -z $(find "$DDATA/overlay2" -mindepth 1 -maxdepth 1 ! -name l 2>/dev/null) ]] &&
		[[ -z $(find "$DDATA/image/overlay2/layerdb/sha256" -mindepth 1 -maxdepth 1 2>/dev/null) ]]
}
gone_podman() {
	local layers
	layers=$(jq length "$PROOT/overlay-layers/layers.json" 2>/dev/null || true) # empty file: ""
	[[ -z $(podman_ images -aq) ]] &&
		[[ -z $(find "$PROOT/overlay" -mindepth 1 -maxdepth 1 ! -name l ! -name '.*' 2>/dev/null) ]] &&
		[[ ${layers:-0} == 0 ]]
}
remove_image() { # remove_image ENGINE REF
	case $1 in
	berth) berth_ rmi -f "$2" >/dev/null 2>&1 || true ;;
	docker) docker_ rmi -f "$2" >/dev/null 2>&1 || true ;;
	podman)
		podman_ rmi -f "$2" >/dev/null 2>&1 || true
		podman_ image prune -af >/dev/null 2>&1 || true
		;;
	esac
	"gone_$1" || die "$1 still holds layers of $2 after rmi"
}
pull_cmd() { # pull_cmd ENGINE REF: the engine's own CLI, bounded in time; its CPU seconds to $RES/cli-cpu
	local cli
	case $1 in
	berth) cli=("${BERTH[@]}") ;;
	docker) cli=("${DOCKER[@]}") ;;
	podman) cli=("${IN_NS[@]}" "${PODMAN[@]}") ;;
	esac
	timeout 600 "$TOOL" run -o "$RES/cli-cpu" "${cli[@]}" pull "$2"
}
# daemon_ticks ENGINE: CPU clock ticks used so far by the engine's daemons
# (berthd; dockerd and its containerd; podman has none), reaped children included
daemon_ticks() {
	local pids=() p sum=0
	case $1 in
	berth) pids=("$BERTHD_PID") ;;
	docker) mapfile -t pids < <(echo "$DOCKERD_PID"; procs_matching containerd "$DEXEC/containerd") ;;
	esac
	for p in "${pids[@]}"; do
		sum=$((sum + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat")))
	done
	echo "$sum"
}

bench_pull() {
	local engines=(berth docker podman) r k e img key t0 t1 n c0 c1 hz
	hz=$(getconf CLK_TCK)
	n=${#engines[@]}
	log "pull: $PULL_RUNS cold runs of $BIG and $NGINX per engine, interleaved"
	for e in "${engines[@]}"; do "gone_$e" || die "$e is not empty before the pull benchmark"; done
	for ((r = 0; r < PULL_RUNS; r++)); do
		for img in "$BIG" "$NGINX"; do
			for ((k = 0; k < n; k++)); do
				e=${engines[(k + r) % n]}
				key=$([[ $img == "$BIG" ]] && echo big || echo nginx)
				sync
				c0=$(daemon_ticks "$e")
				t0=$EPOCHREALTIME
				pull_cmd "$e" "$img" >>"$W/logs/pull-$e.log" 2>&1 </dev/null ||
					die "$e pull $img failed (log: $W/logs/pull-$e.log)"
				t1=$EPOCHREALTIME
				c1=$(daemon_ticks "$e")
				echo "$t1 - $t0" | bc >>"$RES/pull-$key-$e"
				# CPU seconds: the daemons' plus the CLI's own
				awk -v d=$((c1 - c0)) -v hz="$hz" '{print d / hz + $1 + $2}' "$RES/cli-cpu" >>"$RES/pull-$key-$e.cpu"
				remove_image "$e" "$img"
			done
		done
		log "pull: run $((r + 1))/$PULL_RUNS: big $(for e in "${engines[@]}"; do printf '%s %.2fs ' "$e" "$(tail -1 "$RES/pull-big-$e")"; done)"
	done
	for key in big nginx; do
		for e in "${engines[@]}"; do
			read -r med min max cnt < <("$TOOL" stats <"$RES/pull-$key-$e")
			put "pull_${key}_${e}_median" "$med"
			put "pull_${key}_${e}_min" "$min"
			put "pull_${key}_${e}_max" "$max"
			put "pull_${key}_${e}_n" "$cnt"
			put "pull_${key}_${e}_runs" "$(paste -sd' ' "$RES/pull-$key-$e" | xargs printf '%.2f ')"
			read -r med min max cnt < <("$TOOL" stats <"$RES/pull-$key-$e.cpu")
			put "pull_${key}_${e}_cpu" "$med"
		done
	done
}

# ------------------------------------------------------------------ push
# A registry of the benchmark's own (Debian's docker-registry, storage on
# $DATA), on a free loopback port, relayed into $NS like $REG.
setup_push_registry() {
	local port='' p i
	for p in $(seq 5310 5399); do
		curl -s -m 1 -o /dev/null "http://127.0.0.1:$p/" && continue
		[[ $? == 7 ]] && { port=$p; break; }
	done
	[[ -n $port ]] || die "push: no free port in 5310-5399 for the push registry"
	PUSH_REG=127.0.0.1:$port
	cat >"$W/push-registry.yml" <<-EOF
		version: 0.1
		log:
		  level: warn
		storage:
		  filesystem:
		    rootdirectory: $DATA/push-registry
		  delete:
		    enabled: true
		http:
		  addr: $PUSH_REG
		  secret: berth-bench
	EOF
	docker-registry serve "$W/push-registry.yml" </dev/null >"$W/logs/push-registry.log" 2>&1 &
	PUSH_REG_PID=$!
	wait_ready docker-registry "$PUSH_REG_PID" "$W/logs/push-registry.log" curl -fsS -m 2 -o /dev/null "http://$PUSH_REG/v2/"
	socat -b 262144 "UNIX-LISTEN:$RUN/push-registry.sock,fork,unlink-early" "TCP:$PUSH_REG" </dev/null >"$W/logs/relay-push-host.log" 2>&1 &
	RELAY_PIDS+=($!)
	"${IN_NS[@]}" socat -b 262144 "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$RUN/push-registry.sock" \
		</dev/null >"$W/logs/relay-push-ns.log" 2>&1 &
	RELAY_PIDS+=($!)
	for ((i = 0; i < 50; i++)); do
		"${IN_NS[@]}" curl -fsS -m 2 -o /dev/null "http://$PUSH_REG/v2/" 2>/dev/null && return 0
		sleep 0.1
	done
	die "the push registry relay into network namespace $NS does not answer"
}
push_cli() { # push_cli ENGINE SUBCOMMAND ARGS...: the engine's own CLI
	case $1 in
	berth) shift; "${BERTH[@]}" "$@" ;;
	docker) shift; "${DOCKER[@]}" "$@" ;;
	podman) shift; "${IN_NS[@]}" "${PODMAN[@]}" "$@" ;;
	esac
}
push_timed() { # push_timed ENGINE REF LOG: a timed push; CPU to $RES/cli-cpu
	local cli extra=()
	case $1 in
	berth) cli=("${BERTH[@]}") ;;
	docker) cli=("${DOCKER[@]}") ;;
	podman) cli=("${IN_NS[@]}" "${PODMAN[@]}"); extra=(--tls-verify=false) ;;
	esac
	timeout 900 "$TOOL" run -o "$RES/cli-cpu" "${cli[@]}" push "${extra[@]}" "$2" >"$3" 2>&1 </dev/null
}
# pushed_layers ENGINE LOG: layers the push uploaded, by its own report
pushed_layers() {
	case $1 in
	podman) grep 'Copying blob' "$2" | grep -vc 'skipped' || true ;;
	*) grep -c ': Pushed' "$2" || true ;;
	esac
}
registry_bytes() { du -sb "$DATA/push-registry" 2>/dev/null | cut -f1 || echo 0; }

bench_push() {
	local engines=("${PUSH_ENGINES[@]}") r k e n ref seed t0 t1 c0 c1 hz b0 b1 logf tag med min max cnt
	hz=$(getconf CLK_TCK)
	n=${#engines[@]}
	setup_push_registry
	log "push: $PUSH_RUNS runs per engine of a fresh $PUSH_LAYERS-layer image ($PUSH_MB MiB per layer) to $PUSH_REG, then with its top layer changed"
	for ((r = 0; r < PUSH_RUNS; r++)); do
		for ((k = 0; k < n; k++)); do
			e=${engines[(k + r) % n]}
			seed=$((100 * (r + 1) + k + 1)) # new content for every engine and run
			ref=$PUSH_REG/bench/push-$e-$r
			"$TOOL" image -o "$W/push-a.tar" -tag "$ref:1" -layers "$PUSH_LAYERS" -mb "$PUSH_MB" -seed "$seed"
			"$TOOL" image -o "$W/push-b.tar" -tag "$ref:2" -layers "$PUSH_LAYERS" -mb "$PUSH_MB" -seed "$seed" -change-top
			push_cli "$e" load -i "$W/push-a.tar" >>"$W/logs/push-$e.log" 2>&1 </dev/null || die "$e: load failed (log: $W/logs/push-$e.log)"
			push_cli "$e" load -i "$W/push-b.tar" >>"$W/logs/push-$e.log" 2>&1 </dev/null || die "$e: load failed (log: $W/logs/push-$e.log)"
			rm -f "$W/push-a.tar" "$W/push-b.tar"
			for tag in 1 2; do
				logf=$W/logs/push-$e-$r-$tag.log
				sync
				b0=$(registry_bytes)
				c0=$(daemon_ticks "$e")
				t0=$EPOCHREALTIME
				push_timed "$e" "$ref:$tag" "$logf" || die "$e push $ref:$tag failed (log: $logf)"
				t1=$EPOCHREALTIME
				c1=$(daemon_ticks "$e")
				b1=$(registry_bytes)
				echo "$t1 - $t0" | bc >>"$RES/push-$tag-$e"
				awk -v d=$((c1 - c0)) -v hz="$hz" '{print d / hz + $1 + $2}' "$RES/cli-cpu" >>"$RES/push-$tag-$e.cpu"
				pushed_layers "$e" "$logf" >>"$RES/push-$tag-$e.layers"
				echo $((b1 - b0)) >>"$RES/push-$tag-$e.bytes"
			done
			push_cli "$e" rmi -f "$ref:1" "$ref:2" >/dev/null 2>&1 </dev/null || true
			[[ $e == podman ]] && { podman_ image prune -af >/dev/null 2>&1 || true; }
		done
		log "push: run $((r + 1))/$PUSH_RUNS: first $(for e in "${engines[@]}"; do printf '%s %.2fs ' "$e" "$(tail -1 "$RES/push-1-$e")"; done)| second $(for e in "${engines[@]}"; do printf '%s %.2fs (%s layer(s)) ' "$e" "$(tail -1 "$RES/push-2-$e")" "$(tail -1 "$RES/push-2-$e.layers")"; done)"
	done
	for tag in 1 2; do
		for e in "${engines[@]}"; do
			read -r med min max cnt < <("$TOOL" stats <"$RES/push-$tag-$e")
			put "push_${tag}_${e}_median" "$med"
			put "push_${tag}_${e}_min" "$min"
			put "push_${tag}_${e}_max" "$max"
			put "push_${tag}_${e}_runs" "$(paste -sd' ' "$RES/push-$tag-$e" | xargs printf '%.2f ')"
			read -r med _ < <("$TOOL" stats <"$RES/push-$tag-$e.cpu")
			put "push_${tag}_${e}_cpu" "$med"
			put "push_${tag}_${e}_layers" "$(paste -sd' ' "$RES/push-$tag-$e.layers")"
			read -r med _ < <("$TOOL" stats <"$RES/push-$tag-$e.bytes")
			put "push_${tag}_${e}_bytes" "$med"
		done
	done
}

# ------------------------------------------------------------------ run
BERTH_CLI_RUN=''
# detect_berth_cli_run: sets BERTH_CLI_RUN=1 if the berth CLI can run containers
detect_berth_cli_run() {
	[[ -z $BERTH_CLI_RUN ]] || return 0
	BERTH_CLI_RUN=0
	berth_ pull -q busybox >/dev/null 2>&1 || berth_ pull busybox >/dev/null
	if berth_ run --rm --network none busybox true </dev/null >/dev/null 2>"$W/logs/berth-cli-run.log"; then
		BERTH_CLI_RUN=1
	else
		log "the berth CLI cannot run containers yet ($(head -c 200 "$W/logs/berth-cli-run.log" | tr '\n' ' ')); using the docker CLI against berthd"
	fi
	put berth_cli_run "$BERTH_CLI_RUN"
}
bench_run() {
	local total=$((RUN_RUNS + RUN_WARMUP)) cmds=()
	log "run: preparing (busybox on every engine, runc bundles)"
	berth_ pull -q busybox >/dev/null 2>&1 || berth_ pull busybox >/dev/null
	docker_ pull -q busybox >/dev/null
	"${IN_NS[@]}" "${PODMAN[@]}" pull -q "$BUSYBOX" >/dev/null
	setup_runc_floor "$total"
	setup_runc_berth_spec "$total"
	detect_berth_cli_run
	if ((BERTH_CLI_RUN)); then
		cmds+=("berth-cli=$BIN/berth -H unix://$BSOCK run --rm --network none busybox true")
	fi
	dberth_ run --rm --network none busybox true </dev/null >/dev/null || die "docker CLI → berthd: run failed"
	cmds+=(
		"docker-cli→berthd=$DOCKER_CLI -H unix://$BSOCK run --rm --network none busybox true"
		"dockerd=$DOCKER_CLI -H unix://$DSOCK run --rm --network none busybox true"
		"podman=${PODMAN[*]} run --rm --network none ${ULIMITS[*]} --cgroup-parent /$TAG-podman $BUSYBOX true"
		"runc-floor=runc --root $RUNC_ROOT run --bundle $FLOOR/b/{n} $TAG-{id}"
	)
	if ((BERTH_SPEC)); then
		cmds+=("runc-berth-spec=runc --root $RUNC_ROOT run --bundle $FLOOR/bs/{n} $TAG-bs-{id}")
	fi
	log "run: $RUN_WARMUP warm-up + $RUN_RUNS timed rounds of: ${cmds[*]%%=*}"
	"$TOOL" time -runs "$RUN_RUNS" -warmup "$RUN_WARMUP" -timeout "$RUN_TIMEOUT" -retries "$RUN_RETRIES" \
		-json "$RES/run.json" "${cmds[@]}" || die "run benchmark failed"
	local name
	for name in $(jq -r '.[].name' "$RES/run.json"); do
		put "run_${name}_failures" "$(jq -r --arg n "$name" '.[] | select(.name == $n) | .failures' "$RES/run.json")"
		put "run_${name}_first_error" "$(jq -r --arg n "$name" '.[] | select(.name == $n) | .errors[0] // ""' "$RES/run.json")"
		put "run_${name}_median" "$(jq -r --arg n "$name" '.[] | select(.name == $n) | .median' "$RES/run.json")"
		put "run_${name}_min" "$(jq -r --arg n "$name" '.[] | select(.name == $n) | .min' "$RES/run.json")"
		put "run_${name}_max" "$(jq -r --arg n "$name" '.[] | select(.name == $n) | .max' "$RES/run.json")"
		put "run_${name}_n" "$(jq -r --arg n "$name" '.[] | select(.name == $n) | .n' "$RES/run.json")"
	done
}

# ------------------------------------------------------------------ mem
bench_mem() {
	local i pids run=(dberth_) via="docker CLI" t0 tries err failed=0
	detect_berth_cli_run
	if ((BERTH_CLI_RUN)); then
		run=(berth_)
		via="berth CLI"
	fi
	local left
	left=$(dberth_ ps -aq)
	if [[ -n $left ]]; then # from failed runs above
		log "mem: removing $(wc -w <<<"$left") container(s) left on berthd by failed runs (at most 20 s)"
		# shellcheck disable=SC2086 # one word per ID
		timeout 20 "${DBERTH[@]}" rm -f $left >/dev/null 2>&1 || log "mem: berthd did not remove them in 20 s; going on"
	fi
	put berthd_rss_before_kib "$(rss_kib "$BERTHD_PID")"
	put berthd_pss_before_kib "$(pss_kib "$BERTHD_PID")"
	put mem_cli "$via"
	log "mem: starting $MEM_N sleep containers on berthd ($via)"
	t0=$EPOCHREALTIME
	for ((i = 1; i <= MEM_N; i++)); do
		# A failed start is counted and reported, the container removed and
		# the run retried (twice), so that one berthd bug does not hide the
		# memory numbers.
		for ((tries = 0; ; tries++)); do
			if "${run[@]}" run -d --network none busybox sleep 600 >/dev/null 2>"$W/logs/mem-run.err" </dev/null; then
				break
			fi
			err=$(tr '\n' ' ' <"$W/logs/mem-run.err")
			failed=$((failed + 1))
			log "mem: run -d #$i failed: $err"
			[[ -n $(get mem_first_error) ]] || put mem_first_error "$err"
			((tries < 2)) || die "berthd: run -d #$i failed three times"
			# shellcheck disable=SC2046 # one word per ID
			timeout 20 "${DBERTH[@]}" rm -f $(dberth_ ps -aq --filter status=created) >/dev/null 2>&1 || true
		done
	done
	put mem_start_seconds "$(bc <<<"$EPOCHREALTIME - $t0")"
	put mem_failed_starts "$failed"
	sleep 2 # let the shims settle (GC, lazily touched pages)
	local running
	mapfile -t running < <(dberth_ ps -q --no-trunc --filter status=running)
	((${#running[@]} == MEM_N)) || die "berthd runs ${#running[@]} containers, not $MEM_N"
	mapfile -t pids < <(berth_shim_pids "${running[@]}")
	((${#pids[@]} == MEM_N)) || die "found ${#pids[@]} berth-shim processes for $MEM_N containers"
	put berthd_rss_with_kib "$(rss_kib "$BERTHD_PID")"
	put berthd_pss_with_kib "$(pss_kib "$BERTHD_PID")"
	"$TOOL" mem -json "$RES/mem-berth.json" "${pids[@]}" >/dev/null
	put shim_berth_n "${#pids[@]}"
	mem_put berth "$RES/mem-berth.json"
	log "mem: removing them"
	t0=$EPOCHREALTIME
	dberth_ rm -f "${running[@]}" >/dev/null
	put mem_rm_seconds "$(bc <<<"$EPOCHREALTIME - $t0")"
	sleep 1
	[[ -z $(berth_shim_pids "${running[@]}") ]] || die "berth-shim processes remain after rm -f"
	put berthd_rss_after_kib "$(rss_kib "$BERTHD_PID")"

	if ((MEM_CMP_N > 0)); then
		log "mem: $MEM_CMP_N containers each on dockerd and podman for comparison"
		for ((i = 1; i <= MEM_CMP_N; i++)); do
			docker_ run -d --network none busybox sleep 600 >/dev/null </dev/null
			podman_ run -d --network none "${ULIMITS[@]}" --cgroup-parent "/$TAG-podman" "$BUSYBOX" sleep 600 >/dev/null </dev/null
		done
		sleep 2
		mapfile -t pids < <(procs_matching containerd-shim "-namespace $TAG ")
		"$TOOL" mem -json "$RES/mem-docker.json" "${pids[@]}" >/dev/null
		put shim_docker_n "${#pids[@]}"
		mem_put docker "$RES/mem-docker.json"
		mapfile -t pids < <(procs_matching conmon "$PRUNROOT/")
		"$TOOL" mem -json "$RES/mem-podman.json" "${pids[@]}" >/dev/null
		put shim_podman_n "${#pids[@]}"
		mem_put podman "$RES/mem-podman.json"
		# shellcheck disable=SC2046
		docker_ rm -f $(docker_ ps -aq) >/dev/null
		podman_ rm -af -t 0 >/dev/null
	fi
}
mem_put() { # mem_put ENGINE JSON
	local k
	for k in rss pss private; do
		put "shim_$1_median_${k}_kib" "$(jq ".median.${k}_kib" "$2")"
		put "shim_$1_sum_${k}_kib" "$(jq ".sum.${k}_kib" "$2")"
	done
}

# ------------------------------------------------------------------ net
# Issue 4's networking numbers come from bench/net/run.sh (its own daemons and
# network namespaces; see there), run here with knobs that fit this script's
# time budget, its report folded into ours. A failure there is reported, not
# fatal.
NET_STATUS=""
bench_net() {
	local script=$HERE/net/run.sh
	if [[ ! -x $script ]]; then
		NET_STATUS="skipped: no bench/net/run.sh"
		log "net: $NET_STATUS"
		return 0
	fi
	log "net: bench/net/run.sh (networking benchmarks of issue 4; its log: $W/logs/net.log)"
	if BENCH_BIN=$BIN BENCH_DOCKER_CLI=$DOCKER_CLI BENCH_REGISTRY=$REG BENCH_NET_OUT=$RES/net.md \
		BENCH_NET_RUNS=${BENCH_NET_RUNS:-20} BENCH_NET_REPS=${BENCH_NET_REPS:-2} \
		BENCH_NET_DURATION=${BENCH_NET_DURATION:-5s} timeout 900 "$script" >"$W/logs/net.out" 2>"$W/logs/net.log"; then
		NET_STATUS=ok
	else
		NET_STATUS="bench/net/run.sh failed (exit $?); last lines of its log: $(tail -3 "$W/logs/net.log" | tr '\n' ' ' | cut -c1-400)"
		log "net: $NET_STATUS"
	fi
}

# ------------------------------------------------------------------ build
# Issue 9 item 9. Three builds: the walk-through's mytest (FROM alpine:3.18,
# RUN, CMD) and mypython (FROM python:3.11-slim, WORKDIR, COPY, CMD), and a
# multi-stage Dockerfile of four independent stages (each copies its quarter
# of a 5,000-file context and runs `sleep 1`; a last stage copies their
# results): run one after another the four would take at least 4 s.
# Each, cold (base image in the store, build cache and result removed first)
# then fully cached (the same build again), through: berth build → berthd,
# docker buildx → berthd (docker driver), docker classic (DOCKER_BUILDKIT=0,
# POST /build) → berthd, docker buildx → dockerd 20.10 (its BuildKit),
# docker classic → dockerd, podman build. Engines interleaved each round.
BUILD_KINDS=(mytest mypython multi)
build_engines() { echo "${BENCH_BUILD_ENGINES:-berth buildx-berthd classic-berthd buildx-dockerd classic-dockerd podman}"; }
setup_build_contexts() {
	local b=$W/build i s
	mkdir -p "$b/mytest" "$b/mypython" "$b/multi"
	cat >"$b/mytest/Dockerfile" <<-'EOD'
		FROM alpine:3.18
		RUN echo "Hello from Docker!" > /hello.txt
		CMD ["cat", "/hello.txt"]
	EOD
	cat >"$b/mypython/Dockerfile" <<-'EOD'
		FROM python:3.11-slim
		WORKDIR /app
		COPY app.py .
		CMD ["python", "app.py"]
	EOD
	echo 'print("Hello from Python!")' >"$b/mypython/app.py"
	# Each stage's RUN notes when it started and ended (the host's uptime:
	# /proc/uptime is not namespaced), so the image tells whether the
	# stages ran at once (build_parallelism).
	{
		for s in 1 2 3 4; do
			printf 'FROM alpine:3.18 AS s%s\nCOPY src/%s /src\n' "$s" "$s"
			printf 'RUN a=$(cut -d" " -f1 /proc/uptime) && sleep 1 && find /src -type f | wc -l > /n%s && echo "$a $(cut -d" " -f1 /proc/uptime)" > /t%s\n\n' "$s" "$s"
		done
		printf 'FROM alpine:3.18\n'
		for s in 1 2 3 4; do printf 'COPY --from=s%s /n%s /t%s /\n' "$s" "$s" "$s"; done
		printf 'CMD ["cat", "/n1", "/n2", "/n3", "/n4", "/t1", "/t2", "/t3", "/t4"]\n'
	} >"$b/multi/Dockerfile"
	for s in 1 2 3 4; do
		mkdir -p "$b/multi/src/$s"
		for ((i = 0; i < 1250; i++)); do echo "file $s/$i" >"$b/multi/src/$s/f$i.txt"; done
	done
	# buildx as a docker CLI plugin for the buildx rows (the classic rows set DOCKER_BUILDKIT=0)
	mkdir -p "$DOCKER_CONFIG/cli-plugins"
	ln -sf "$BUILDX" "$DOCKER_CONFIG/cli-plugins/docker-buildx"
}
# build_cli ENGINE: the command line that builds on ENGINE (context and -t appended)
build_cli() {
	case $1 in
	berth) BCMD=("${BERTH[@]}" build --progress=plain) ;;
	buildx-berthd) BCMD=("${DBERTH[@]}" buildx build --progress=plain --load) ;;
	classic-berthd) BCMD=(env DOCKER_BUILDKIT=0 "${DBERTH[@]}" build) ;;
	# the bench's dockerd has no bridge (--bridge none): its RUN steps use the host's network
	buildx-dockerd) BCMD=("${DOCKER[@]}" buildx build --progress=plain --load --network host) ;;
	classic-dockerd) BCMD=(env DOCKER_BUILDKIT=0 "${DOCKER[@]}" build --network host) ;;
	podman) BCMD=("${IN_NS[@]}" "${PODMAN[@]}" build --network host --cgroup-parent "/$TAG-podman" "${ULIMITS[@]}") ;;
	esac
}
# build_clean ENGINE TAG: result and build cache gone (base images kept)
build_clean() {
	case $1 in
	berth | buildx-berthd | classic-berthd)
		dberth_ rmi -f "$2" >/dev/null 2>&1 || true
		dberth_ image prune -f >/dev/null 2>&1 || true
		berth_ builder prune -af >/dev/null 2>&1 || true
		;;
	buildx-dockerd | classic-dockerd)
		docker_ rmi -f "$2" >/dev/null 2>&1 || true
		docker_ image prune -f >/dev/null 2>&1 || true
		docker_ builder prune -af >/dev/null 2>&1 || true
		;;
	podman)
		podman_ rmi -f "$2" >/dev/null 2>&1 || true
		podman_ image prune -f >/dev/null 2>&1 || true
		;;
	esac
}
build_ticks() { # build_ticks ENGINE: the daemon's CPU ticks (see daemon_ticks)
	case $1 in
	*-berthd | berth) daemon_ticks berth ;;
	*-dockerd) daemon_ticks docker ;;
	*) echo 0 ;;
	esac
}
# build_timed ENGINE KIND MODE: one timed build; wall seconds and CPU appended to $RES
build_timed() {
	local e=$1 kind=$2 mode=$3 tag=bench-build-$2:$1 logf c0 c1 t0 t1 hz
	hz=$(getconf CLK_TCK)
	logf=$W/logs/build-$e-$kind.log
	build_cli "$e"
	echo "=== $mode $(date -u +%T)" >>"$logf"
	sync
	c0=$(build_ticks "$e")
	t0=$EPOCHREALTIME
	if ! timeout 600 "$TOOL" run -o "$RES/cli-cpu" "${BCMD[@]}" -t "$tag" "$W/build/$kind" >>"$logf" 2>&1 </dev/null; then
		echo "$e $kind $mode" >>"$RES/build-failures"
		log "build: $e $kind $mode FAILED (log: $logf)"
		return 0
	fi
	t1=$EPOCHREALTIME
	c1=$(build_ticks "$e")
	echo "$t1 - $t0" | bc >>"$RES/build-$kind-$mode-$e"
	awk -v d=$((c1 - c0)) -v hz="$hz" '{print d / hz + $1 + $2}' "$RES/cli-cpu" >>"$RES/build-$kind-$mode-$e.cpu"
}
bench_build() {
	local engines e r k n kind mode med min max cnt img
	read -r -a engines <<<"$(build_engines)"
	n=${#engines[@]}
	BUILDX=${BENCH_BUILDX:-/usr/local/lib/berth/cli-plugins/docker-buildx}
	[[ -x $BUILDX ]] || die "build: no buildx at $BUILDX (hack/deps.sh installs it; BENCH_BUILDX picks another)"
	setup_build_contexts
	log "build: base images on every engine"
	for img in alpine:3.18 python:3.11-slim; do
		berth_ pull -q "$img" >/dev/null 2>&1 || berth_ pull "$img" >/dev/null
		docker_ pull -q "$img" >/dev/null
		"${IN_NS[@]}" "${PODMAN[@]}" pull -q "docker.io/library/$img" >/dev/null
	done
	log "build: $BUILD_RUNS rounds of ${BUILD_KINDS[*]}, each cold then cached, on: ${engines[*]}"
	for ((r = 0; r < BUILD_RUNS; r++)); do
		for kind in "${BUILD_KINDS[@]}"; do
			for ((k = 0; k < n; k++)); do
				e=${engines[(k + r) % n]}
				build_clean "$e" "bench-build-$kind:$e"
				build_timed "$e" "$kind" cold
				build_timed "$e" "$kind" cached
			done
		done
		log "build: round $((r + 1))/$BUILD_RUNS: mytest cold $(for e in "${engines[@]}"; do printf '%s %.2fs ' "$e" "$(tail -1 "$RES/build-mytest-cold-$e" 2>/dev/null || echo 0)"; done)"
	done
	# each image printing its line: the builds made what they should
	for kind in "${BUILD_KINDS[@]}"; do
		put "build_${kind}_check" "$(dberth_ run --rm --network none "bench-build-$kind:berth" 2>&1 | head -4 | tr '\n' ' ' | cut -c1-80)"
	done
	for e in "${engines[@]}"; do build_parallelism "$e"; done
	for kind in "${BUILD_KINDS[@]}"; do
		for mode in cold cached; do
			for e in "${engines[@]}"; do
				[[ -s $RES/build-$kind-$mode-$e ]] || continue
				read -r med min max cnt < <("$TOOL" stats <"$RES/build-$kind-$mode-$e")
				put "build_${kind}_${mode}_${e}_median" "$med"
				put "build_${kind}_${mode}_${e}_min" "$min"
				put "build_${kind}_${mode}_${e}_max" "$max"
				put "build_${kind}_${mode}_${e}_n" "$cnt"
				read -r med _ < <("$TOOL" stats <"$RES/build-$kind-$mode-$e.cpu")
				put "build_${kind}_${mode}_${e}_cpu" "$med"
			done
		done
	done
}
# build_parallelism ENGINE: from the last multi image ENGINE built (its
# last cold build's RUN steps), each stage's RUN start and end: span = last
# end - first start, sum = the four RUNs' durations; span close to one RUN
# means they ran at once, close to sum one after another.
build_parallelism() {
	local e=$1 out
	case $e in
	berth | *-berthd) out=$(dberth_ run --rm --network none "bench-build-multi:$e" 2>/dev/null) ;;
	*-dockerd) out=$(docker_ run --rm --network none "bench-build-multi:$e" 2>/dev/null) ;;
	podman) out=$("${PODMAN[@]}" run --rm --network none "${ULIMITS[@]}" --cgroup-parent "/$TAG-podman" "bench-build-multi:$e" 2>/dev/null) ;;
	esac
	out=$(awk 'NF == 2 {if (!n || $1 < s) s = $1; if ($2 > f) f = $2; sum += $2 - $1; n++}
		END {if (n == 4) printf "%.2f %.2f", f - s, sum}' <<<"$out")
	[[ -n $out ]] || { log "build: $e: no stage times in bench-build-multi:$e"; return 0; }
	put "build_multi_${e}_span" "${out% *}"
	put "build_multi_${e}_sum" "${out#* }"
}
build_engine_name() {
	case $1 in
	berth) echo "berth build → berthd" ;;
	buildx-berthd) echo "docker buildx → berthd" ;;
	classic-berthd) echo "docker classic (POST /build) → berthd" ;;
	buildx-dockerd) echo "docker buildx → dockerd 20.10 (BuildKit)" ;;
	classic-dockerd) echo "docker classic → dockerd 20.10" ;;
	podman) echo "podman 4.3 build" ;;
	esac
}

# ------------------------------------------------------------------ report
machine() {
	local cpu mem os
	cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
	mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
	os=$(sed -n 's/^PRETTY_NAME="\(.*\)"$/\1/p' /etc/os-release)
	printf '%s, %s cores (%s), %s RAM, kernel %s, cgroups %s' "$os" "$(nproc)" "$cpu" "$mem" "$(uname -r)" \
		"$( [[ -f /sys/fs/cgroup/cgroup.controllers ]] && echo v2 || echo 'v1 (hybrid)')"
}
ms() { [[ -n $1 ]] && printf '%.1f' "$(bc -l <<<"$1 * 1000")" || printf 'n/a'; }
sec() { [[ -n $1 ]] && printf '%.2f' "$1" || printf 'n/a'; }
ratio() { # ratio A B -> A/B with 2 decimals
	[[ -n $1 && -n $2 ]] && printf '%.2f' "$(bc -l <<<"$1 / $2")" || printf 'n/a'
}
# num FORMAT VALUE: VALUE formatted, or n/a
# shellcheck disable=SC2059 # the format is the caller's constant
num() { [[ -n $2 ]] && printf "$1" "$2" || printf 'n/a'; }
mib() { [[ -n $1 ]] && printf '%.1f' "$(bc -l <<<"$1 / 1024")" || printf 'n/a'; }

report() {
	local e img key name
	{
		echo "# berth benchmarks"
		echo
		echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
		echo "- machine: $(machine)"
		echo "- load average at start / end: $LOAD_START / $(cut -d' ' -f1-3 /proc/loadavg) (other work on the host adds noise)"
		echo "- berth: $("$BIN/berthd" --version 2>/dev/null | head -1 || echo unknown) (tree $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)); $(dockerd --version); $(podman --version) (runc, cgroupfs); $(runc --version | head -1); docker CLI $("$DOCKER_CLI" version -f '{{.Client.Version}}' 2>/dev/null || true)"
		echo "- data roots on: $FS ($FS_DESC); exec roots, sockets and runc state on a tmpfs"
		echo "- registry: $REG (Debian's docker-registry on loopback); bench/big = ~115 MB gzip in 6 layers, 322 MB unpacked"
		if has_section pull; then
			echo
			echo "## Cold pull (issue 2: goal berth ≤ 0.5× dockerd)"
			echo
			echo "$PULL_RUNS runs per engine, interleaved; image and layers removed and checked gone on disk before each run; each engine's own CLI; wall seconds. CPU: median CPU seconds of the engine's processes per pull (berthd; dockerd + containerd; the podman CLI; plus the CLI's own), steadier than wall time on a busy host."
			echo
			echo "| image | engine | median | min | max | ratio to dockerd | CPU s | runs |"
			echo "|---|---|---:|---:|---:|---:|---:|---|"
			for key in big nginx; do
				img=$([[ $key == big ]] && echo "$BIG" || echo "$NGINX")
				for e in berth docker podman; do
					echo "| $img | $(engine_name "$e") | $(sec "$(get "pull_${key}_${e}_median")") | $(sec "$(get "pull_${key}_${e}_min")") | $(sec "$(get "pull_${key}_${e}_max")") | $(ratio "$(get "pull_${key}_${e}_median")" "$(get "pull_${key}_docker_median")")× | $(sec "$(get "pull_${key}_${e}_cpu")") | $(get "pull_${key}_${e}_runs")|"
				done
			done
		fi
		if has_section push; then
			echo
			echo "## Push (issue 10: goal berth's first push ≤ 0.5× dockerd; the second push uploads only the changed layer)"
			echo
			echo "$PUSH_RUNS runs per engine, interleaved; each run a fresh image of $PUSH_LAYERS layers × $PUSH_MB MiB (files of this machine's /usr, each prefixed by a line unique to the run, engine and layer; a docker-save archive loaded into the engine, so every engine compresses its layers), pushed to a registry of the benchmark's own ($PUSH_REG), then the same image with its top layer changed pushed as a second tag of the same repository. New content every run and engine. Wall seconds, each engine's own CLI; CPU: the engine's processes plus the CLI; layers: what the push reported uploading (\"Pushed\"; podman: blobs copied, not skipped); MB: what the registry's storage grew by (median)."
			echo
			echo "| engine | first push median | min | max | ratio to dockerd | CPU s | second push median | ratio to dockerd | layers uploaded (first / second) | registry MB (first / second) |"
			echo "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"
			for e in "${PUSH_ENGINES[@]}"; do
				echo "| $(engine_name "$e") | $(sec "$(get "push_1_${e}_median")") | $(sec "$(get "push_1_${e}_min")") | $(sec "$(get "push_1_${e}_max")") | $(ratio "$(get "push_1_${e}_median")" "$(get push_1_docker_median)")× | $(sec "$(get "push_1_${e}_cpu")") | $(sec "$(get "push_2_${e}_median")") | $(ratio "$(get "push_2_${e}_median")" "$(get push_2_docker_median)")× | $(get "push_1_${e}_layers") / $(get "push_2_${e}_layers") | $(num '%.1f' "$(bc -l <<<"$(get "push_1_${e}_bytes") / 1048576")") / $(num '%.1f' "$(bc -l <<<"$(get "push_2_${e}_bytes") / 1048576")") |"
			done
			echo
			echo "Runs (first push): $(for e in "${PUSH_ENGINES[@]}"; do printf '%s: %s; ' "$e" "$(get "push_1_${e}_runs")"; done)"
		fi
		if has_section run; then
			echo
			echo "## run --rm busybox true (issue 3: goal berth ≤ 2× the runc floor)"
			echo
			echo "$RUN_RUNS timed rounds after $RUN_WARMUP warm-up rounds, engines interleaved in each round; \`--network none\` everywhere (the floor's runc spec has its own empty netns); milliseconds, CLI start to exit."
			echo
			echo "| engine (CLI → daemon) | median | min | max | ratio to runc floor | ratio to dockerd | failed runs |"
			echo "|---|---:|---:|---:|---:|---:|---:|"
			for name in $(jq -r '.[].name' "$RES/run.json" 2>/dev/null); do
				echo "| $name | $(ms "$(get "run_${name}_median")") | $(ms "$(get "run_${name}_min")") | $(ms "$(get "run_${name}_max")") | $(ratio "$(get "run_${name}_median")" "$(get run_runc-floor_median)")× | $(ratio "$(get "run_${name}_median")" "$(get run_dockerd_median)")× | $(get "run_${name}_failures") |"
			done
			for name in $(jq -r '.[].name' "$RES/run.json" 2>/dev/null); do
				if [[ $(get "run_${name}_failures") != 0 ]]; then
					echo
					echo "**$name: $(get "run_${name}_failures") failed run(s), retried untimed; first: $(get "run_${name}_first_error" | cut -c1-400)**"
				fi
			done
			echo
			echo "runc-floor: bare \`runc run\` of busybox's rootfs with \`runc spec\`'s config (args [\"true\"], own cgroup per run; no seccomp)."
			if [[ -n $(get run_runc-berth-spec_median) ]]; then
				echo "runc-berth-spec: bare \`runc run\` with the OCI spec berthd generates for this container (Docker's seccomp profile, 14 capabilities, masked paths, device rules, /dev/shm ...): what runc alone costs for berthd's container;"
				echo "berthd's own overhead through the docker CLI is $(ms "$(bc -l <<<"$(get "run_docker-cli→berthd_median") - $(get run_runc-berth-spec_median)")") ms (CLI, API, overlay mount, shim, teardown), and the spec costs runc $(ms "$(bc -l <<<"$(get run_runc-berth-spec_median) - $(get run_runc-floor_median)")") ms more than the floor's."
			fi
			if [[ $(get berth_cli_run) != 1 ]]; then
				echo
				echo "(the berth CLI could not run containers at this commit: docker CLI only)"
			fi
		fi
		if has_section build; then
			echo
			echo "## Build (issue 9: goal berth's cached rebuild ≤ 1/3 of dockerd's, its cold build no slower than dockerd's, the four stages measurably parallel)"
			echo
			echo "$BUILD_RUNS rounds, engines interleaved; per round and build: the result and the build cache removed (base images kept in the store), a timed cold build, then the same build again (fully cached). Wall seconds, CLI start to exit (medians; min-max); CPU: the daemon's (berthd; dockerd + containerd) plus the CLI's and its children's (podman's whole build). Ratios to dockerd's BuildKit (docker buildx → dockerd). multi: four independent stages of \`sleep 1\` each (≥ 4 s if run one after another) over a 5,000-file context."
			for kind in "${BUILD_KINDS[@]}"; do
				echo
				echo "### $kind (check: $(get "build_${kind}_check"))"
				echo
				echo "| engine | cold | min-max | ratio to dockerd BuildKit | CPU s | cached | min-max | ratio to dockerd BuildKit | CPU s |"
				echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
				for e in $(build_engines); do
					echo "| $(build_engine_name "$e") | $(sec "$(get "build_${kind}_cold_${e}_median")") | $(sec "$(get "build_${kind}_cold_${e}_min")")-$(sec "$(get "build_${kind}_cold_${e}_max")") | $(ratio "$(get "build_${kind}_cold_${e}_median")" "$(get "build_${kind}_cold_buildx-dockerd_median")")× | $(sec "$(get "build_${kind}_cold_${e}_cpu")") | $(sec "$(get "build_${kind}_cached_${e}_median")") | $(sec "$(get "build_${kind}_cached_${e}_min")")-$(sec "$(get "build_${kind}_cached_${e}_max")") | $(ratio "$(get "build_${kind}_cached_${e}_median")" "$(get "build_${kind}_cached_buildx-dockerd_median")")× | $(sec "$(get "build_${kind}_cached_${e}_cpu")") |"
				done
			done
			echo
			echo "Stages of multi, from the stage times each engine's last multi image holds (its last cold build; RUN = \`sleep 1\` and a count of 1,250 files; the host's /proc/uptime at each RUN's start and end): span = last RUN end - first RUN start, sum = the four RUNs' durations. Parallel: span near one RUN, well under sum."
			echo
			echo "| engine | span s | sum of the 4 RUNs s | sum / span |"
			echo "|---|---:|---:|---:|"
			for e in $(build_engines); do
				echo "| $(build_engine_name "$e") | $(sec "$(get "build_multi_${e}_span")") | $(sec "$(get "build_multi_${e}_sum")") | $(ratio "$(get "build_multi_${e}_sum")" "$(get "build_multi_${e}_span")") |"
			done
			if [[ -s $RES/build-failures ]]; then
				echo
				echo "**Failed builds (not timed): $(sort "$RES/build-failures" | uniq -c | tr '\n' ';')**"
			fi
		fi
		if has_section mem; then
			echo
			echo "## Memory per running container (issue 3: goal ≤ 3 MB per container)"
			echo
			echo "$(get shim_berth_n) \`sleep 600\` containers on berthd (started one after another with the $(get mem_cli) in $(sec "$(get mem_start_seconds)") s, removed with one \`rm -f\` in $(sec "$(get mem_rm_seconds)") s); comparison: $MEM_CMP_N each on dockerd and podman. Per supervisor process, MiB: RSS counts the shared binary pages in every process, Pss divides them among the sharers, private is what each one alone holds."
			echo
			echo "| supervisor | n | median RSS | median Pss | median private | total Pss of all |"
			echo "|---|---:|---:|---:|---:|---:|"
			for e in berth docker podman; do
				[[ -n $(get "shim_${e}_n") ]] || continue
				echo "| $(shim_name "$e") | $(get "shim_${e}_n") | $(mib "$(get "shim_${e}_median_rss_kib")") | $(mib "$(get "shim_${e}_median_pss_kib")") | $(mib "$(get "shim_${e}_median_private_kib")") | $(mib "$(get "shim_${e}_sum_pss_kib")") |"
			done
			echo
			if (($(get mem_failed_starts) > 0)); then
				echo "**berthd failed $(get mem_failed_starts) \`run -d\` of these (retried): $(get mem_first_error)**"
				echo
			fi
			echo "berthd RSS: $(mib "$(get berthd_rss_start_kib)") MiB fresh; $(mib "$(get berthd_rss_before_kib)") MiB before the containers (after the other benchmarks); $(mib "$(get berthd_rss_with_kib)") MiB with $(get shim_berth_n) running ($(printf '%+.1f' "$(bc -l <<<"($(get berthd_rss_with_kib) - $(get berthd_rss_before_kib)) / 1024")") MiB); $(mib "$(get berthd_rss_after_kib)") MiB after removing them (Pss $(mib "$(get berthd_pss_before_kib)") → $(mib "$(get berthd_pss_with_kib)") MiB)."
		fi
		if has_section net; then
			echo
			echo "## Networking (issue 4)"
			echo
			if [[ $NET_STATUS == ok && -s $RES/net.md ]]; then
				echo "From bench/net/run.sh (both engines in network namespaces of their own, dockerd with its bridge, iptables and docker-proxy):"
				echo
				sed -e '1{/^# /d}' -e 's/^## /### /' "$RES/net.md"
			else
				echo "Not measured: $NET_STATUS."
			fi
		fi
		echo
		echo "Total benchmark time: $(printf '%.0f' "$(bc <<<"$EPOCHREALTIME - $T0")") s. Produced by \`make bench\` (bench/run.sh)."
	} >"$RES/report.md"
}
engine_name() { case $1 in berth) echo "berthd (berth CLI)" ;; docker) echo "dockerd 20.10" ;; podman) echo "podman 4.3" ;; esac; }
shim_name() { case $1 in berth) echo "berth-shim (berthd)" ;; docker) echo "containerd-shim-runc-v2 (dockerd)" ;; podman) echo "conmon (podman)" ;; esac; }

# ------------------------------------------------------------------ main
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "workspace $W; sections: $SECTIONS"
setup_fs
setup_netns
start_berthd
start_dockerd
setup_podman
has_section pull && bench_pull
has_section push && bench_push
has_section run && bench_run
has_section net && bench_net
has_section build && bench_build
has_section mem && bench_mem
report
mkdir -p "$(dirname "$OUT")"
cp "$RES/report.md" "$OUT"
echo
cat "$OUT"
echo
log "wrote $OUT"
