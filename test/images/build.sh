#!/usr/bin/env bash
# build.sh - build berth's test images from Debian packages as OCI image
# layouts (one directory per image, usable as `skopeo copy oci:DIR:TAG ...`).
#
#   test/images/build.sh            build whatever is missing or out of date
#   test/images/build.sh --force    rebuild everything (including debootstrap)
#   test/images/build.sh --list     print "DIR TAG" for every image layout
#
# Output: ${BERTH_TEST_CACHE:-/var/cache/berth-test}/images/<dir>/
# Slow work (debootstrap, apt installs, gzip) is cached per layer under
# ${BERTH_TEST_CACHE}/layers/; a layer is rebuilt only when its recipe version
# (or the digest of the layer below it) changes, an image layout only when
# its stamp (recipe version + layer digests) changes. See README.md.
set -euo pipefail

# Bump BUILD_VERSION to rebuild everything; bump a single *_V to rebuild one
# recipe (and everything built on top of it).
BUILD_VERSION=1
BASE_V=2     # debootstrap minbase bookworm
BUSYBOX_V=1  # busybox layer
ALPINE_V=1   # alpine stand-in second layer
NGINX_V=1    # nginx layer
PYTHON_V=1   # python3-minimal layer
BENCH_V=1    # bench/big layers
EXTRA_V=1    # busybox:multi and busybox:zstd layouts
LAYERS_V=1   # busybox:layers (busybox + 5 tiny layers)

CACHE=${BERTH_TEST_CACHE:-/var/cache/berth-test}
IMAGES=$CACHE/images
LAYERS=$CACHE/layers
STAMPS=$CACHE/stamps
WORK=$CACHE/work
# Fixed timestamp (2025-05-20T00:00:00Z) for layer mtimes (clamped) and
# history "created" fields, so rebuilt images are as reproducible as possible.
EPOCH=${SOURCE_DATE_EPOCH:-1747699200}
CREATED=$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)
SUITE=bookworm
PATH_ENV='PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
BENCH_PKGS=(python3 perl libicu72 cpp-12 vim-runtime)

# DIR TAG pairs (the image table; start.sh reads it through --list).
IMAGE_LIST='busybox latest
alpine-3.18 3.18
nginx-alpine alpine
python-3.11-slim 3.11-slim
debian-bookworm bookworm
bench-big latest
busybox-multi multi
busybox-zstd zstd
busybox-layers layers'

log() { printf '[build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

FORCE=0
case "${1:-}" in
  --list) printf '%s\n' "$IMAGE_LIST"; exit 0 ;;
  --force) FORCE=1 ;;
  -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
  "") ;;
  *) die "unknown argument: $1" ;;
esac

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot)"

# ---------------------------------------------------------------- tools
APT_UPDATED=0
ensure_pkg() { # ensure_pkg COMMAND PACKAGE
  if ! command -v "$1" >/dev/null 2>&1; then
    log "installing $2 (for $1)"
    if [ "$APT_UPDATED" -eq 0 ]; then
      apt-get update -qq
      APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
  fi
}
ensure_tools() {
  ensure_pkg tar tar
  ensure_pkg gzip gzip
  ensure_pkg sha256sum coreutils
  ensure_pkg jq jq
  ensure_pkg zstd zstd
  ensure_pkg skopeo skopeo
  ensure_pkg debootstrap debootstrap
  ensure_pkg unshare util-linux
  ensure_pkg curl curl
  # /bin/busybox must be the static build: it is copied into a FROM-scratch image.
  if ! dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
    if [ "$APT_UPDATED" -eq 0 ]; then apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
  fi
  ensure_pkg flock util-linux
  ensure_pkg numfmt coreutils
  if [ ! -f /usr/share/keyrings/debian-archive-keyring.gpg ]; then
    if [ "$APT_UPDATED" -eq 0 ]; then apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debian-archive-keyring >/dev/null
  fi
}

mirror_url() {
  local url=''
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    url=$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  printf '%s\n' "${url:-http://deb.debian.org/debian}"
}

# Remove a scratch tree, refusing to cross into anything still mounted.
safe_rm() {
  local d
  for d in "$@"; do
    [ -e "$d" ] || continue
    if grep -qF " $(realpath "$d")/" /proc/self/mountinfo; then
      die "refusing to remove $d: something is still mounted below it"
    fi
    rm -rf --one-file-system "$d"
  done
}

# ---------------------------------------------------------------- layers
# make_layer NAME TREE LISTFILE [WHITEOUT_LIST]
#   Tars the NUL-separated, sorted relative paths in LISTFILE from TREE (plus
#   empty .wh.* whiteout files named in WHITEOUT_LIST), gzips it and stores
#   $LAYERS/NAME.tar.gz + $LAYERS/NAME.json {digest,diff_id,size,...}.
#   The json gets its "version" and "created_by" added by the caller.
make_layer() {
  local name=$1 tree=$2 list=$3 wh=${4:-} tmp
  tmp=$LAYERS/.$name.tmp
  safe_rm "$tmp" "$tmp.wh"
  local tar_opts=(--numeric-owner --format=gnu --mtime="@$EPOCH" --clamp-mtime --null --no-recursion)
  tar -C "$tree" "${tar_opts[@]}" -T "$list" -cf "$tmp"
  if [ -n "$wh" ] && [ -s "$wh" ]; then
    # Whiteouts: empty files named .wh.<deleted>, appended to the archive.
    mkdir -p "$tmp.wh"
    while IFS= read -r -d '' w; do
      mkdir -p "$tmp.wh/$(dirname "$w")"
      : >"$tmp.wh/$w"
    done <"$wh"
    tar -C "$tmp.wh" "${tar_opts[@]}" --owner=0 --group=0 -T "$wh" -rf "$tmp"
    safe_rm "$tmp.wh"
  fi
  local diff_id usize
  diff_id=sha256:$(sha256sum "$tmp" | cut -d' ' -f1)
  usize=$(stat -c %s "$tmp")
  gzip -n -6 <"$tmp" >"$tmp.gz"
  rm -f "$tmp"
  local digest size entries whiteouts
  digest=sha256:$(sha256sum "$tmp.gz" | cut -d' ' -f1)
  size=$(stat -c %s "$tmp.gz")
  entries=$(tr -cd '\0' <"$list" | wc -c)
  whiteouts=0
  if [ -n "$wh" ] && [ -s "$wh" ]; then whiteouts=$(tr -cd '\0' <"$wh" | wc -c); fi
  mv -f "$tmp.gz" "$LAYERS/$name.tar.gz"
  jq -n --arg d "$digest" --arg i "$diff_id" --argjson s "$size" --argjson u "$usize" \
    --argjson e "$entries" --argjson w "$whiteouts" \
    '{digest:$d, diff_id:$i, size:$s, uncompressed_size:$u, entries:$e, whiteouts:$w}' \
    >"$LAYERS/$name.json"
  log "layer $name: $digest $(numfmt --to=iec "$size") gz / $(numfmt --to=iec "$usize") tar, $entries entries, $whiteouts whiteouts"
}

# Finalize a layer's json with its cache key and history string.
layer_meta() { # layer_meta NAME VERSION CREATED_BY [COMMENT]
  local f=$LAYERS/$1.json
  jq --arg v "$2" --arg c "$3" --arg m "${4:-}" \
    '. + {version:$v, created_by:$c} + (if $m == "" then {} else {comment:$m} end)' "$f" >"$f.new"
  mv -f "$f.new" "$f"
}

layer_ok() { # layer_ok NAME VERSION -> 0 if cached and current
  local f=$LAYERS/$1.json
  [ "$FORCE" -eq 0 ] && [ -f "$f" ] && [ -f "$LAYERS/$1.tar.gz" ] &&
    [ "$(jq -r .version "$f")" = "$2" ]
}
layer_field() { jq -r ".$2" "$LAYERS/$1.json"; }

# Whole tree -> list of every entry, except the contents of dev/ proc/ sys/.
tree_list() { # tree_list TREE OUT
  (cd "$1" && find . -mindepth 1 \( -path './dev/*' -o -path './proc/*' -o -path './sys/*' \) -prune \
    -o -printf '%P\0') | LC_ALL=C sort -z >"$2"
}

# diff_trees BEFORE AFTER LIST WHITEOUTS
#   Writes (NUL-separated, sorted) the entries of AFTER that are new or differ
#   from BEFORE in type, mode, owner, size, mtime or link target, plus their
#   parent directories; and the .wh.* whiteout paths for entries that exist in
#   BEFORE but not in AFTER (only the topmost deleted entry).
diff_trees() {
  local before=$1 after=$2 out=$3 wh=$4 t
  t=$(mktemp -d)
  local fmt='%P\t%y\t%m\t%U\t%G\t%s\t%T@\t%l\n'
  local prune=(\( -path './dev/*' -o -path './proc/*' -o -path './sys/*' \) -prune -o)
  (cd "$before" && find . -mindepth 1 "${prune[@]}" -printf "$fmt") >"$t/before"
  (cd "$after" && find . -mindepth 1 "${prune[@]}" -printf "$fmt") >"$t/after"
  awk -F'\t' -v chg="$t/changed" -v del="$t/wh" '
    NR == FNR { before[$1] = $0; next }
    {
      atype[$1] = $2
      if (!($1 in before) || before[$1] != $0) { changed[$1] = 1; n++; todo[n] = $1 }
    }
    END {
      for (k = 1; k <= n; k++) {          # add parent directories
        q = todo[k]
        while ((i = match(q, /\/[^\/]*$/)) > 0) {
          q = substr(q, 1, i - 1)
          if (q in changed) break
          changed[q] = 1
        }
      }
      for (p in changed) print p > chg
      for (p in before) {
        if (p in atype) continue
        par = p; base = p
        if ((i = match(p, /\/[^\/]*$/)) > 0) { par = substr(p, 1, i - 1); base = substr(p, i + 1) }
        else { par = "" }
        if (par == "") { print ".wh." base > del; continue }
        if ((par in atype) && atype[par] == "d") print par "/.wh." base > del
      }
    }' "$t/before" "$t/after"
  touch "$t/changed" "$t/wh"
  # (paths never contain newlines: find -printf above is newline-separated)
  LC_ALL=C sort "$t/changed" | tr '\n' '\0' >"$out"
  LC_ALL=C sort "$t/wh" | tr '\n' '\0' >"$wh"
  rm -rf "$t"
}

# Run a shell script inside TREE with /proc and /dev mounted. The mounts live
# in a private mount namespace, so they vanish with it even if this fails.
chroot_run() { # chroot_run TREE SCRIPT
  local tree=$1 script=$2
  # shellcheck disable=SC2016 # expanded by the inner shell
  unshare --mount --propagation private --fork -- /bin/sh -euc '
    tree=$1; script=$2
    mount -t proc proc "$tree/proc"
    mount --bind /dev "$tree/dev"
    if [ -d /dev/pts ] && [ -d "$tree/dev/pts" ]; then mount --bind /dev/pts "$tree/dev/pts"; fi
    rc=0
    chroot "$tree" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
      DEBIAN_FRONTEND=noninteractive /bin/sh -euc "$script" || rc=$?
    if mountpoint -q "$tree/dev/pts"; then umount "$tree/dev/pts"; fi
    umount "$tree/dev" "$tree/proc"
    exit "$rc"' sh "$tree" "$script"
}

# apt_layer TREE "PKGS..." [EXTRA_SHELL]
#   Installs packages into TREE with apt (network access for apt only through
#   a temporary resolv.conf and a policy-rc.d that keeps daemons from starting),
#   then cleans apt lists/caches and logs like a Dockerfile RUN would.
APT_CLEAN='apt-get clean; rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log /var/log/alternatives.log /var/cache/debconf/*-old /var/lib/dpkg/*-old /var/cache/ldconfig/aux-cache'
apt_install() {
  local tree=$1 pkgs=$2 extra=${3:-}
  cp -a "$tree/etc/resolv.conf" "$tree/etc/resolv.conf.berth-save"
  cat /etc/resolv.conf >"$tree/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$tree/usr/sbin/policy-rc.d"
  chmod 0755 "$tree/usr/sbin/policy-rc.d"
  local rc=0 alog
  alog=$WORK/apt-$(basename "$tree").log
  chroot_run "$tree" "apt-get update -qq
    apt-get install -y -qq --no-install-recommends $pkgs
    $extra
    $APT_CLEAN" >"$alog" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then tail -30 "$alog" >&2; fi
  rm -f "$tree/usr/sbin/policy-rc.d"
  mv -f "$tree/etc/resolv.conf.berth-save" "$tree/etc/resolv.conf"
  [ "$rc" -eq 0 ] || die "apt install of '$pkgs' failed in $tree"
}

# Extract a cached layer into a (fresh) directory.
unpack_layer() { # unpack_layer NAME DIR
  safe_rm "$2"
  mkdir -p "$2"
  tar -C "$2" --numeric-owner -xzf "$LAYERS/$1.tar.gz"
}

# derive NAME VERSION PARENT_TREE NEW_TREE PKGS EXTRA CREATED_BY
#   NEW_TREE = copy of PARENT_TREE + apt install; layer NAME = the difference.
derive() {
  local name=$1 version=$2 parent=$3 new=$4 pkgs=$5 extra=$6 created_by=$7
  safe_rm "$new"
  cp -a "$parent" "$new"
  apt_install "$new" "$pkgs" "$extra"
  diff_trees "$parent" "$new" "$WORK/$name.list" "$WORK/$name.wh"
  make_layer "$name" "$new" "$WORK/$name.list" "$WORK/$name.wh"
  layer_meta "$name" "$version" "$created_by"
  rm -f "$WORK/$name.list" "$WORK/$name.wh"
}

# ---------------------------------------------------------------- recipes
build_busybox_layer() {
  local v="busybox-v$BUSYBOX_V-$BUILD_VERSION"
  layer_ok busybox "$v" && return 0
  log "building busybox layer from $(dpkg-query -W -f '${Package} ${Version}' busybox-static)"
  local r=$WORK/busybox-root
  safe_rm "$r"
  mkdir -p "$r"/{bin,dev,etc,home,root,tmp,usr/sbin,var/www,var/spool/mail}
  chmod 1777 "$r/tmp"
  chmod 0700 "$r/root"
  install -m 0755 /bin/busybox "$r/bin/busybox"
  local a
  for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"
  done
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/home:/bin/false' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' >"$r/etc/group"
  printf '%s\n' 'root:*::0:::::' 'nobody:*::0:::::' >"$r/etc/shadow"
  chmod 0640 "$r/etc/shadow"
  tree_list "$r" "$WORK/busybox.list"
  make_layer busybox "$r" "$WORK/busybox.list"
  layer_meta busybox "$v" "/bin/sh -c #(nop) ADD file:$(layer_field busybox diff_id | cut -c8-) in / "
  rm -f "$WORK/busybox.list"
  safe_rm "$r"
}

build_alpine_layer() {
  local v="alpine-v$ALPINE_V-$BUILD_VERSION"
  layer_ok alpine-release "$v" && return 0
  log "building alpine stand-in layer"
  local r=$WORK/alpine-root
  safe_rm "$r"
  mkdir -p "$r/etc"
  cat >"$r/etc/os-release" <<'EOF'
NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.18.0
PRETTY_NAME="Alpine Linux v3.18 (berth test stand-in: BusyBox from Debian busybox-static)"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"
EOF
  printf '3.18.0\n' >"$r/etc/alpine-release"
  printf 'This is not Alpine: it is a BusyBox stand-in built for the berth test suite.\n' >"$r/etc/motd"
  printf '%s\n' /bin/sh /bin/ash >"$r/etc/shells"
  printf '%s\n' 'export PS1="\h:\w\$ "' >"$r/etc/profile"
  touch -d "@$EPOCH" "$r"/etc/* "$r/etc"
  tree_list "$r" "$WORK/alpine.list"
  make_layer alpine-release "$r" "$WORK/alpine.list"
  layer_meta alpine-release "$v" "/bin/sh -c #(nop) COPY multi:$(layer_field alpine-release diff_id | cut -c8-) in /etc/ "
  rm -f "$WORK/alpine.list"
  safe_rm "$r"
}

build_base_layer() {
  local v="base-v$BASE_V-$BUILD_VERSION-$SUITE"
  layer_ok base "$v" && return 0
  local mirror r
  mirror=$(mirror_url)
  r=$WORK/base-root
  safe_rm "$r"
  log "debootstrap --variant=minbase $SUITE from $mirror (takes ~1 min)"
  # Own mount namespace: whatever debootstrap mounts (proc, sys) dies with it.
  if ! unshare --mount --propagation private --fork -- \
    debootstrap --variant=minbase --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    "$SUITE" "$r" "$mirror" >"$WORK/debootstrap.log" 2>&1; then
    tail -20 "$WORK/debootstrap.log" >&2
    die "debootstrap failed (full log: $WORK/debootstrap.log)"
  fi
  # Make it look like a container base image rather than a fresh install.
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin \
    "$r"/var/log/bootstrap.log "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old "$r"/etc/apt/sources.list
  mkdir -p "$r/var/lib/apt/lists/partial"
  cat >"$r/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  printf 'force-unsafe-io\n' >"$r/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
  : >"$r/etc/resolv.conf"
  : >"$r/etc/hostname"
  # Reproducibility: drop the ldconfig aux cache (inode numbers, mtimes) and
  # pin the dates that debootstrap writes (logs, shadow "last change").
  rm -f "$r/var/cache/ldconfig/aux-cache"
  local day stamp
  day=$((EPOCH / 86400))
  stamp=$(date -u -d "@$EPOCH" '+%Y-%m-%d %H:%M:%S')
  sed -i -E "s/^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} /$stamp /" "$r/var/log/dpkg.log"
  sed -i -E "s/^update-alternatives [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}:/update-alternatives $stamp:/" \
    "$r/var/log/alternatives.log"
  local f
  for f in shadow shadow-; do
    [ -f "$r/etc/$f" ] || continue
    awk -F: -v OFS=: -v day="$day" '$3 ~ /^[0-9]+$/ { $3 = day } 1' "$r/etc/$f" >"$r/etc/$f.new"
    chmod --reference="$r/etc/$f" "$r/etc/$f.new"
    chown --reference="$r/etc/$f" "$r/etc/$f.new"
    mv -f "$r/etc/$f.new" "$r/etc/$f"
  done
  chmod 0644 "$r/etc/resolv.conf" "$r/etc/hostname"
  tree_list "$r" "$WORK/base.list"
  make_layer base "$r" "$WORK/base.list"
  layer_meta base "$v" "/bin/sh -c #(nop) ADD file:$(layer_field base diff_id | cut -c8-) in / " \
    "debootstrap --variant=minbase $SUITE $mirror"
  rm -f "$WORK/base.list"
  safe_rm "$r"
}

NGINX_SETUP='
  # Docker-style logging: access log to stdout, errors to stderr.
  ln -sf /dev/stdout /var/log/nginx/access.log
  ln -sf /dev/stderr /var/log/nginx/error.log
  # IPv4 only: containers may have no IPv6 in their network namespace.
  sed -i "/listen \[::\]:80/d" /etc/nginx/sites-available/default
  grep -q "Welcome to nginx!" /var/www/html/index.nginx-debian.html
  nginx -t 2>/dev/null'
build_nginx_layer() {
  local v
  v="nginx-v$NGINX_V-$BUILD_VERSION-$(layer_field base digest)"
  layer_ok nginx "$v" && return 0
  log "building nginx layer (apt-get install nginx-light)"
  unpack_layer base "$WORK/base-root"
  derive nginx "$v" "$WORK/base-root" "$WORK/nginx-root" nginx-light "$NGINX_SETUP" \
    "/bin/sh -c apt-get update && apt-get install -y --no-install-recommends nginx-light && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log && sed -i '/listen \\[::\\]:80/d' /etc/nginx/sites-available/default && rm -rf /var/lib/apt/lists/*"
  smoke_nginx "$WORK/nginx-root"
  safe_rm "$WORK/nginx-root"
}

# Run nginx from the freshly built rootfs in private net+mount namespaces and
# fetch the welcome page, to prove the image works before it is published.
smoke_nginx() {
  local tree=$1
  log "smoke test: nginx -g 'daemon off;' in $tree"
  # shellcheck disable=SC2016 # expanded by the inner shell
  unshare --net --mount --propagation private --fork -- /bin/sh -euc '
    tree=$1
    busybox ip link set lo up
    mount -t proc proc "$tree/proc"
    mount --bind /dev "$tree/dev"
    chroot "$tree" nginx -g "daemon off;" >/dev/null 2>&1 &
    pid=$!
    ok=1
    for _ in $(seq 100); do
      if curl -fsS -m 2 http://127.0.0.1/ 2>/dev/null | grep -q "Welcome to nginx!"; then ok=0; break; fi
      sleep 0.1
    done
    kill -QUIT "$pid" 2>/dev/null || true
    wait "$pid" || true
    umount "$tree/dev" "$tree/proc"
    exit "$ok"' sh "$tree" || die "nginx smoke test failed"
}

build_python_layer() {
  local v
  v="python-v$PYTHON_V-$BUILD_VERSION-$(layer_field base digest)"
  layer_ok python "$v" && return 0
  log "building python layer (apt-get install python3-minimal)"
  [ -d "$WORK/base-root" ] || unpack_layer base "$WORK/base-root"
  derive python "$v" "$WORK/base-root" "$WORK/python-root" python3-minimal \
    'mkdir -p /usr/local/bin; ln -sf /usr/bin/python3 /usr/local/bin/python
     /usr/local/bin/python -c "print(\"hello from python\")" >/dev/null' \
    "/bin/sh -c apt-get update && apt-get install -y --no-install-recommends python3-minimal && ln -sf /usr/bin/python3 /usr/local/bin/python && rm -rf /var/lib/apt/lists/*"
  safe_rm "$WORK/python-root"
}

build_bench_layers() {
  local key ok=1 i p
  key="bench-v$BENCH_V-$BUILD_VERSION-$(layer_field base digest)"
  for i in "${!BENCH_PKGS[@]}"; do
    layer_ok "bench-$i" "$key-${BENCH_PKGS[$i]}" || ok=0
  done
  [ "$ok" -eq 1 ] && return 0
  log "building bench/big layers: ${BENCH_PKGS[*]}"
  [ -d "$WORK/base-root" ] || unpack_layer base "$WORK/base-root"
  local prev=$WORK/base-root cur
  for i in "${!BENCH_PKGS[@]}"; do
    p=${BENCH_PKGS[$i]}
    cur=$WORK/bench-root-$i
    derive "bench-$i" "$key-$p" "$prev" "$cur" "$p" '' \
      "/bin/sh -c apt-get update && apt-get install -y --no-install-recommends $p && rm -rf /var/lib/apt/lists/*"
    [ "$prev" = "$WORK/base-root" ] || safe_rm "$prev"
    prev=$cur
  done
  safe_rm "$prev"
}

# ---------------------------------------------------------------- images
# write_blob LAYOUT FILE -> prints digest; moves FILE into LAYOUT/blobs.
write_blob() {
  local d
  d=$(sha256sum "$2" | cut -d' ' -f1)
  mv -f "$2" "$1/blobs/sha256/$d"
  printf 'sha256:%s\n' "$d"
}
link_layer() { # link_layer LAYOUT NAME
  local d
  d=$(layer_field "$2" digest | cut -c8-)
  [ -e "$1/blobs/sha256/$d" ] || ln "$LAYERS/$2.tar.gz" "$1/blobs/sha256/$d" 2>/dev/null ||
    cp "$LAYERS/$2.tar.gz" "$1/blobs/sha256/$d"
}

# image_config LAYERS_CSV CONFIG_JSON EMPTY_HISTORY_JSON [ARCH] -> config JSON
image_config() {
  local names=$1 cfg=$2 tail=$3 arch=${4:-amd64} n metas=()
  IFS=, read -r -a n <<<"$names"
  local x
  for x in "${n[@]}"; do metas+=("$LAYERS/$x.json"); done
  jq -cs --arg created "$CREATED" --arg arch "$arch" --argjson cfg "$cfg" --argjson tail "$tail" '
    {
      architecture: $arch,
      config: $cfg,
      created: $created,
      history: ([.[] | {created: $created, created_by: .created_by} + (if .comment then {comment: .comment} else {} end)]
                + [$tail[] | {created: $created, created_by: ., empty_layer: true}]),
      os: "linux",
      rootfs: {type: "layers", diff_ids: [.[].diff_id]}
    } + (if $arch == "arm64" then {variant: "v8"} else {} end)' "${metas[@]}"
}

# manifest_json CONFIG_DIGEST CONFIG_SIZE LAYER_MEDIA_TYPE LAYER_DESCRIPTORS_JSON
manifest_json() {
  jq -cn --arg cd "$1" --argjson cs "$2" --argjson layers "$3" '{
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
    layers: $layers}'
}
layer_descs() { # layer_descs LAYERS_CSV -> JSON array of gzip layer descriptors
  local n x metas=()
  IFS=, read -r -a n <<<"$1"
  for x in "${n[@]}"; do metas+=("$LAYERS/$x.json"); done
  jq -cs '[.[] | {mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest, size}]' "${metas[@]}"
}

new_layout() { # new_layout DIR -> creates DIR (a temp dir)
  safe_rm "$1"
  mkdir -p "$1/blobs/sha256"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$1/oci-layout"
}
# finish_layout TMPDIR FINALDIR TAG MEDIATYPE DIGEST SIZE STAMP
finish_layout() {
  local tmp=$1 final=$2 tag=$3 mt=$4 digest=$5 size=$6 stamp=$7
  jq -cn --arg mt "$mt" --arg d "$digest" --argjson s "$size" --arg t "$tag" '{
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{mediaType: $mt, digest: $d, size: $s,
                 annotations: {"org.opencontainers.image.ref.name": $t}}]}' >"$tmp/index.json"
  safe_rm "$final"
  mv "$tmp" "$final"
  printf '%s\n' "$stamp" >"$STAMPS/$(basename "$final")"
  BUILT+=("$(basename "$final")")
}
stamp_ok() { # stamp_ok DIR STAMP
  [ "$FORCE" -eq 0 ] && [ -f "$IMAGES/$1/index.json" ] && [ -f "$STAMPS/$1" ] &&
    [ "$(cat "$STAMPS/$1")" = "$2" ]
}
layers_stamp() { # version string + layer digests
  local n x out=$1
  IFS=, read -r -a n <<<"$2"
  for x in "${n[@]}"; do out+=" $(layer_field "$x" digest)"; done
  printf '%s\n' "$out"
}

# assemble DIR TAG LAYERS_CSV CONFIG_JSON EMPTY_HISTORY_JSON
assemble() {
  local dir=$1 tag=$2 names=$3 cfg=$4 tail=$5 stamp
  stamp=$(layers_stamp "image-$BUILD_VERSION $cfg $tail" "$names")
  if stamp_ok "$dir" "$stamp"; then log "image $dir:$tag up to date"; return 0; fi
  local tmp=$IMAGES/.$dir.tmp x n
  new_layout "$tmp"
  IFS=, read -r -a n <<<"$names"
  for x in "${n[@]}"; do link_layer "$tmp" "$x"; done
  image_config "$names" "$cfg" "$tail" >"$tmp/config.json"
  local csize cdigest
  csize=$(stat -c %s "$tmp/config.json")
  cdigest=$(write_blob "$tmp" "$tmp/config.json")
  manifest_json "$cdigest" "$csize" "$(layer_descs "$names")" >"$tmp/manifest.json"
  local msize mdigest
  msize=$(stat -c %s "$tmp/manifest.json")
  mdigest=$(write_blob "$tmp" "$tmp/manifest.json")
  finish_layout "$tmp" "$IMAGES/$dir" "$tag" application/vnd.oci.image.manifest.v1+json "$mdigest" "$msize" "$stamp"
  log "image $dir:$tag -> $mdigest"
}

# busybox:multi - OCI index: a fake linux/arm64/v8 entry FIRST (a single
# text-file layer, no shell: running it fails loudly), then linux/amd64
# pointing at the very same manifest as busybox:latest.
assemble_multi() {
  local src=$IMAGES/busybox stamp
  local amd_digest amd_size
  amd_digest=$(jq -r '.manifests[0].digest' "$src/index.json")
  amd_size=$(jq -r '.manifests[0].size' "$src/index.json")
  stamp="multi-v$EXTRA_V-$BUILD_VERSION $amd_digest"
  if stamp_ok busybox-multi "$stamp"; then log "image busybox-multi:multi up to date"; return 0; fi
  local tmp=$IMAGES/.busybox-multi.tmp
  new_layout "$tmp"
  # amd64: copy every blob of busybox:latest (config, manifest, layer).
  local b
  for b in "$src"/blobs/sha256/*; do ln "$b" "$tmp/blobs/sha256/" 2>/dev/null || cp "$b" "$tmp/blobs/sha256/"; done
  # arm64: a marker layer + arm64 config.
  if ! layer_ok fake-arm64 "fake-arm64-v$EXTRA_V-$BUILD_VERSION"; then
    local r=$WORK/fake-arm64-root
    safe_rm "$r"
    mkdir -p "$r"
    printf 'This is the FAKE linux/arm64 entry of busybox:multi.\nA linux/amd64 client that ends up here picked the wrong platform.\n' \
      >"$r/THIS-IS-THE-FAKE-ARM64-ENTRY"
    touch -d "@$EPOCH" "$r/THIS-IS-THE-FAKE-ARM64-ENTRY"
    printf 'THIS-IS-THE-FAKE-ARM64-ENTRY\0' >"$WORK/fake-arm64.list"
    make_layer fake-arm64 "$r" "$WORK/fake-arm64.list"
    layer_meta fake-arm64 "fake-arm64-v$EXTRA_V-$BUILD_VERSION" \
      "/bin/sh -c #(nop) COPY file:$(layer_field fake-arm64 diff_id | cut -c8-) in / "
    rm -f "$WORK/fake-arm64.list"
    safe_rm "$r"
  fi
  link_layer "$tmp" fake-arm64
  image_config fake-arm64 "{\"Env\":[\"$PATH_ENV\"],\"Cmd\":[\"/THIS-IS-THE-FAKE-ARM64-ENTRY\"]}" \
    '["/bin/sh -c #(nop)  CMD [\"/THIS-IS-THE-FAKE-ARM64-ENTRY\"]"]' arm64 >"$tmp/config.json"
  local csize cdigest msize mdigest
  csize=$(stat -c %s "$tmp/config.json")
  cdigest=$(write_blob "$tmp" "$tmp/config.json")
  manifest_json "$cdigest" "$csize" "$(layer_descs fake-arm64)" >"$tmp/manifest.json"
  msize=$(stat -c %s "$tmp/manifest.json")
  mdigest=$(write_blob "$tmp" "$tmp/manifest.json")
  jq -cn --arg ad "$amd_digest" --argjson asz "$amd_size" --arg rd "$mdigest" --argjson rs "$msize" '{
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [
      {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $rd, size: $rs,
       platform: {architecture: "arm64", os: "linux", variant: "v8"}},
      {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $ad, size: $asz,
       platform: {architecture: "amd64", os: "linux"}}]}' >"$tmp/mlist.json"
  local isize idigest
  isize=$(stat -c %s "$tmp/mlist.json")
  idigest=$(write_blob "$tmp" "$tmp/mlist.json")
  finish_layout "$tmp" "$IMAGES/busybox-multi" multi application/vnd.oci.image.index.v1+json "$idigest" "$isize" "$stamp"
  log "image busybox-multi:multi -> $idigest (arm64 fake $mdigest, amd64 $amd_digest)"
}

# busybox:zstd - busybox:latest with its layer recompressed as
# application/vnd.oci.image.layer.v1.tar+zstd (same config, same diff_id).
assemble_zstd() {
  local src=$IMAGES/busybox stamp
  stamp="zstd-v$EXTRA_V-$BUILD_VERSION $(jq -r '.manifests[0].digest' "$src/index.json")"
  if stamp_ok busybox-zstd "$stamp"; then log "image busybox-zstd:zstd up to date"; return 0; fi
  local tmp=$IMAGES/.busybox-zstd.tmp
  new_layout "$tmp"
  gzip -dc "$LAYERS/busybox.tar.gz" | zstd -q -19 -T0 --no-check >"$tmp/layer.zst"
  local lsize ldigest
  lsize=$(stat -c %s "$tmp/layer.zst")
  ldigest=$(write_blob "$tmp" "$tmp/layer.zst")
  local mdig cfgd
  mdig=$(jq -r '.manifests[0].digest' "$src/index.json" | cut -c8-)
  cfgd=$(jq -r '.config.digest' "$src/blobs/sha256/$mdig")
  cp "$src/blobs/sha256/${cfgd#sha256:}" "$tmp/blobs/sha256/"
  manifest_json "$cfgd" "$(stat -c %s "$tmp/blobs/sha256/${cfgd#sha256:}")" \
    "$(jq -cn --arg d "$ldigest" --argjson s "$lsize" '[{mediaType: "application/vnd.oci.image.layer.v1.tar+zstd", digest: $d, size: $s}]')" \
    >"$tmp/manifest.json"
  local msize mdigest
  msize=$(stat -c %s "$tmp/manifest.json")
  mdigest=$(write_blob "$tmp" "$tmp/manifest.json")
  finish_layout "$tmp" "$IMAGES/busybox-zstd" zstd application/vnd.oci.image.manifest.v1+json "$mdigest" "$msize" "$stamp"
  log "image busybox-zstd:zstd -> $mdigest"
}

# busybox:layers - busybox plus five tiny layers (one small file each): a
# pull after its removal has more layers to fetch than a daemon fetches at
# once, so some of them wait ("Waiting"), at little cost.
build_tiny_layers() {
  local i r
  for i in 1 2 3 4 5; do
    layer_ok "tiny-$i" "tiny-v$LAYERS_V-$BUILD_VERSION" && continue
    r=$WORK/tiny-root-$i
    safe_rm "$r"
    mkdir -p "$r/layers"
    printf 'tiny layer %s of busybox:layers\n' "$i" >"$r/layers/$i"
    touch -d "@$EPOCH" "$r/layers/$i" "$r/layers"
    printf 'layers\0layers/%s\0' "$i" >"$WORK/tiny-$i.list"
    make_layer "tiny-$i" "$r" "$WORK/tiny-$i.list"
    layer_meta "tiny-$i" "tiny-v$LAYERS_V-$BUILD_VERSION" \
      "/bin/sh -c #(nop) COPY file:$(layer_field "tiny-$i" diff_id | cut -c8-) in /layers/$i "
    rm -f "$WORK/tiny-$i.list"
    safe_rm "$r"
  done
}

# Verify the layouts (re)assembled by this run with skopeo.
BUILT=()
verify_images() {
  local dir tag out
  [ "${#BUILT[@]}" -gt 0 ] || return 0
  while read -r dir tag; do
    case " ${BUILT[*]} " in *" $dir "*) ;; *) continue ;; esac
    if [ "$dir" = busybox-multi ]; then
      out=$(skopeo inspect --raw "oci:$IMAGES/$dir:$tag" | jq -r '[.manifests[].platform | "\(.os)/\(.architecture)"] | join(",")')
      out="index [$out]"
    else
      out=$(skopeo inspect "oci:$IMAGES/$dir:$tag" | jq -r '"\(.Architecture) \(.Layers | length) layer(s)"')
    fi
    log "verified oci:$IMAGES/$dir:$tag: $out"
  done <<<"$IMAGE_LIST"
}

# ---------------------------------------------------------------- main
main() {
  ensure_tools
  mkdir -p "$IMAGES" "$LAYERS" "$STAMPS" "$WORK"
  exec 9>"$CACHE/.build.lock"
  flock -w 1800 9 || die "another build.sh holds $CACHE/.build.lock"
  safe_rm "$WORK"
  mkdir -p "$WORK"

  build_busybox_layer
  build_alpine_layer
  build_base_layer
  build_nginx_layer
  build_python_layer
  build_bench_layers
  safe_rm "$WORK/base-root"

  local env_path="\"$PATH_ENV\""
  assemble busybox latest busybox \
    "{\"Env\":[$env_path],\"Cmd\":[\"sh\"]}" \
    '["/bin/sh -c #(nop)  CMD [\"sh\"]"]'
  assemble alpine-3.18 3.18 busybox,alpine-release \
    "{\"Env\":[$env_path],\"Cmd\":[\"/bin/sh\"]}" \
    '["/bin/sh -c #(nop)  CMD [\"/bin/sh\"]"]'
  assemble debian-bookworm bookworm base \
    "{\"Env\":[$env_path],\"Cmd\":[\"bash\"]}" \
    '["/bin/sh -c #(nop)  CMD [\"bash\"]"]'
  assemble nginx-alpine alpine base,nginx \
    "{\"Env\":[$env_path],\"Cmd\":[\"nginx\",\"-g\",\"daemon off;\"],\"ExposedPorts\":{\"80/tcp\":{}},\"StopSignal\":\"SIGQUIT\",\"Labels\":{\"maintainer\":\"berth test suite (Debian nginx-light stand-in)\"}}" \
    '["/bin/sh -c #(nop)  LABEL maintainer=berth test suite (Debian nginx-light stand-in)","/bin/sh -c #(nop)  EXPOSE 80","/bin/sh -c #(nop)  STOPSIGNAL SIGQUIT","/bin/sh -c #(nop)  CMD [\"nginx\" \"-g\" \"daemon off;\"]"]'
  assemble python-3.11-slim 3.11-slim base,python \
    "{\"Env\":[$env_path,\"LANG=C.UTF-8\"],\"Cmd\":[\"python3\"]}" \
    '["/bin/sh -c #(nop)  ENV LANG=C.UTF-8","/bin/sh -c #(nop)  CMD [\"python3\"]"]'
  local bench=base i
  for i in "${!BENCH_PKGS[@]}"; do bench+=",bench-$i"; done
  assemble bench-big latest "$bench" \
    "{\"Env\":[$env_path],\"Cmd\":[\"bash\"],\"WorkingDir\":\"/\",\"Labels\":{\"org.opencontainers.image.description\":\"berth benchmark image: Debian bookworm + ${BENCH_PKGS[*]}\"}}" \
    "[\"/bin/sh -c #(nop)  LABEL org.opencontainers.image.description=berth benchmark image\",\"/bin/sh -c #(nop)  CMD [\\\"bash\\\"]\"]"
  assemble_multi
  assemble_zstd
  build_tiny_layers
  assemble busybox-layers layers busybox,tiny-1,tiny-2,tiny-3,tiny-4,tiny-5 \
    "{\"Env\":[$env_path],\"Cmd\":[\"sh\"]}" \
    '["/bin/sh -c #(nop)  CMD [\"sh\"]"]'
  verify_images
  log "done: layouts in $IMAGES"
}

main "$@"; exit
