#!/bin/sh
# bench/health.sh: the cost of healthchecks (issue 11 item 1). Starts a
# private berthd (its own roots and socket under a temp dir), runs N busybox
# containers without a healthcheck and measures berthd's CPU and RSS over
# WINDOW seconds, then the same with `--health-cmd true --health-interval 1s`
# (N probes a second). Prints one line per phase. Everything it starts is
# stopped by PID and removed on exit.
#
#   N=50 WINDOW=30 ./bench/health.sh      (as root, after make build)
set -eu
N=${N:-50}
WINDOW=${WINDOW:-30}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DOCKER=${DOCKER:-docker}
T=$(mktemp -d /tmp/berth-bench-health.XXXXXX)
SOCK=$T/api.sock
PIDF=$T/berthd.pid
echo '{}' > "$T/daemon.json"
"$ROOT/bin/berthd" --data-root "$T/data" --exec-root "$T/exec" -H "unix://$SOCK" --pidfile "$PIDF" \
	--config-file "$T/daemon.json" --registry-mirror http://127.0.0.1:5000 > "$T/berthd.log" 2>&1 &
BPID=$!
cleanup() {
	DOCKER_HOST=unix://$SOCK $DOCKER ps -aq 2>/dev/null | xargs -r env DOCKER_HOST=unix://$SOCK $DOCKER rm -f > /dev/null 2>&1 || true
	kill "$BPID" 2>/dev/null || true
	wait "$BPID" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
export DOCKER_HOST=unix://$SOCK
i=0
until $DOCKER version > /dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "berthd did not start"; cat "$T/berthd.log"; exit 1; }
	sleep 0.1
done
$DOCKER pull -q busybox:latest > /dev/null

ticks() { awk '{print $14 + $15}' /proc/"$BPID"/stat; }
# runc and its children, reaped by berthd: the probes' own cost.
cticks() { awk '{print $16 + $17}' /proc/"$BPID"/stat; }
rss() { awk '/^VmRSS/ {print $2}' /proc/"$BPID"/status; }
hz=$(getconf CLK_TCK)

measure() { # $1: label
	sleep 5 # let the starts settle before the window opens
	t0=$(ticks); c0=$(cticks); s0=$(date +%s.%N)
	sleep "$WINDOW"
	t1=$(ticks); c1=$(cticks); s1=$(date +%s.%N)
	cpu=$(echo "$t0 $t1 $s0 $s1 $hz" | awk '{printf "%.1f", 100 * ($2 - $1) / $5 / ($4 - $3)}')
	ccpu=$(echo "$c0 $c1 $s0 $s1 $hz" | awk '{printf "%.1f", 100 * ($2 - $1) / $5 / ($4 - $3)}')
	probes=$($DOCKER ps -q | head -1 | xargs -r $DOCKER inspect -f '{{if .State.Health}}{{len .State.Health.Log}}{{else}}-{{end}}')
	echo "$1: $N containers, berthd CPU ${cpu}% of one core (its runc children ${ccpu}%) over ${WINDOW}s, RSS $(rss) kB (log entries of one: $probes)"
}

run_all() { # extra run flags
	j=0
	while [ $j -lt "$N" ]; do
		$DOCKER run -d "$@" busybox:latest sleep 3600 > /dev/null
		j=$((j + 1))
	done
}

echo "berthd idle: RSS $(rss) kB"
run_all
measure "no healthcheck"
$DOCKER ps -q | xargs -r $DOCKER rm -f > /dev/null
run_all --health-cmd true --health-interval 1s
measure "probe every 1s"
healthy=$($DOCKER ps --filter health=healthy -q | wc -l)
echo "healthy containers: $healthy of $N"
