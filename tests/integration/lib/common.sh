# shellcheck shell=bash
# Shared helpers for georeg's integration tests. Source it from a test script.
#
# Each test gets its own scratch directory ($WORK), binds only 127.0.0.1,
# records the PID of everything it starts and stops it by that PID on exit.
# Assertions count; it_finish prints "N passed, M failed" and sets the exit code.
set -uo pipefail

GEOREG="${GEOREG:?GEOREG must point at the georeg binary}"
IT_LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="$(mktemp -d "/tmp/georeg-it-$(basename "$0" .sh).XXXXXX")"
PASSED=0
FAILED=0
declare -a IT_PIDS=()
# How long a server may take to come up, in tenths of a second: 30 s, as a
# CI machine that is compiling beside the tests can be many times slower
# than an idle one (georeg measures sendfile at start, src/io/send_probe.h).
START_WAIT_TENTHS=300
ACCEPT_ALL="application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"

# rss_bounded: for tests that bound the daemon's memory. Under AddressSanitizer
# freed memory sits in a quarantine (256 MiB by default) and would be counted
# as growth; a small one keeps the bound measurable and still catches most
# use-after-free.
rss_bounded() { export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4:thread_local_quarantine_size_kb=64"; }

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; it_dump_logs; echo "$PASSED passed, $((FAILED + 1)) failed"; exit 1; }

it_cleanup() {
  local pid
  for pid in "${IT_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null; fi
  done
  for pid in "${IT_PIDS[@]}"; do
    for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  # A test that made more than processes (network namespaces) undoes it here.
  [ -n "${IT_AFTER_CLEANUP:-}" ] && "$IT_AFTER_CLEANUP"
  if [ "${KEEP_WORK:-0}" = 1 ] || [ "$FAILED" -gt 0 ]; then log "scratch kept in $WORK"; else rm -rf "$WORK"; fi
}
trap it_cleanup EXIT

it_dump_logs() {
  local f
  for f in "$WORK"/*.log; do
    [ -f "$f" ] || continue
    echo "---- tail of $f" >&2
    tail -n 25 "$f" >&2
  done
}

# ok NAME: records a pass.   fail NAME DETAIL: records a failure.
ok() { PASSED=$((PASSED + 1)); echo "ok - $1"; }
fail() { FAILED=$((FAILED + 1)); echo "not ok - $1${2:+: $2}"; }
# check NAME CMD...: passes if CMD succeeds.
check() { local name="$1"; shift; if "$@"; then ok "$name"; else fail "$name" "command failed: $*"; fi; }
# expect_eq NAME EXPECTED ACTUAL
expect_eq() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "expected '$2', got '$3'"; fi; }

it_finish() {
  [ "$FAILED" -gt 0 ] && it_dump_logs
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
  exit $?
}

need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found (run tools/test.sh, which installs it)"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() {  # URL [SECONDS]
  local i
  for ((i = 0; i < ${2:-20} * 10; i++)); do
    curl -s -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.1
  done
  return 1
}

# start_bg NAME LOG CMD...: starts CMD in the background, records its PID in $LAST_PID.
start_bg() {
  local name="$1" logf="$2"; shift 2
  "$@" >>"$logf" 2>&1 </dev/null &
  LAST_PID=$!
  IT_PIDS+=("$LAST_PID")
  log "$name started (pid $LAST_PID)"
}

# running PID: the process exists and is not a zombie waiting to be reaped.
running() { [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# stop_pid PID: TERM, wait up to 15 s, then KILL; returns the process's exit
# status. A process that was already gone (it died or exited on its own
# before we asked) returns 125, so "exits 0 on SIGTERM" checks can fail; one
# that needed KILL returns 137.
stop_pid() {
  local pid="$1" rc
  if ! running "$pid"; then
    wait "$pid" 2>/dev/null
    log "stop_pid: process $pid had already exited (status $?)"
    return 125
  fi
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 150); do running "$pid" || break; sleep 0.1; done
  if running "$pid"; then
    log "stop_pid: process $pid ignored SIGTERM for 15 s; killing it"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  rc=$?
  return $rc
}

# ---- origin: Debian's docker-registry (CNCF Distribution 2.8) ----
# start_origin [NAME [EXTRA_YAML]]: sets ORIGIN_PORT, ORIGIN (host:port),
# ORIGIN_PID, ORIGIN_LOG. All origins of a test share one storage directory,
# so fixtures pushed through a plain origin are served by a TLS or auth one.
# EXTRA_YAML is appended under `http:` (tls) or at the top level (auth);
# ORIGIN_HOST (default 127.0.0.1) is the host name used in ORIGIN;
# ORIGIN_SCHEME (default http) is used for the readiness check.
# ORIGIN_NS runs it (and push_fixtures' clients) inside that network namespace,
# listening on ORIGIN_BIND (default 127.0.0.1) port 5000.
start_origin() {
  need docker-registry
  local name="${1:-origin}" extra="${2:-}"
  ORIGIN_PORT="$(free_port)"
  [ -n "${ORIGIN_NS:-}" ] && ORIGIN_PORT=5000
  ORIGIN="${ORIGIN_HOST:-127.0.0.1}:$ORIGIN_PORT"
  ORIGIN_LOG="$WORK/$name.log"
  mkdir -p "$WORK/origin-data"
  cat >"$WORK/$name.yml" <<YML
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $WORK/origin-data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
$extra
http:
  addr: ${ORIGIN_BIND:-127.0.0.1}:$ORIGIN_PORT
  secret: georeg-tests-not-a-secret
${ORIGIN_HTTP_EXTRA:-}
YML
  start_bg "$name" "$ORIGIN_LOG" $(origin_exec) docker-registry serve "$WORK/$name.yml"
  ORIGIN_PID=$LAST_PID
  local i
  for ((i = 0; i < START_WAIT_TENTHS; i++)); do
    $(origin_exec) curl -sk -o /dev/null --max-time 1 "${ORIGIN_SCHEME:-http}://127.0.0.1:$ORIGIN_PORT/v2/" && return 0
    running "$ORIGIN_PID" || break
    sleep 0.1
  done
  die "origin $name did not come up"
}

stop_origin() { stop_pid "$ORIGIN_PID"; }
# The command prefix that runs a program where the origin is reachable as 127.0.0.1.
origin_exec() { [ -n "${ORIGIN_NS:-}" ] && echo "ip netns exec $ORIGIN_NS"; }

# origin_count REGEX [METHOD]: how many requests in the origin's access log
# (one line per request, '"GET /path HTTP/1.1" status ...') match.
origin_count() { grep -cE "\"${2:-GET} $1" "$ORIGIN_LOG" || true; }

# ---- fixtures ----
# push_fixtures: builds the image layouts (tests/integration/lib/make_images.py)
# and pushes them to the origin with skopeo. Sets FIX (a directory holding
# one file per fact, e.g. $FIX/team_big.layer1 = digest of its big layer).
push_fixtures() {
  need skopeo; need jq
  local layouts="$WORK/layouts"
  python3 "$IT_LIB/make_images.py" "$layouts" --big-mb "${BIG_MB:-64}" || die "building images failed"
  local sk=($(origin_exec) skopeo copy -q --dest-tls-verify=false)
  "${sk[@]}" --all --preserve-digests "oci:$layouts/library_alpine:3.19" "docker://$ORIGIN/library/alpine:3.19" || die "push alpine"
  "${sk[@]}" --all --format v2s2 "oci:$layouts/library_alpine:3.19" "docker://$ORIGIN/library/alpine:3.19-docker" || die "push alpine docker"
  "${sk[@]}" --preserve-digests "oci:$layouts/team_app:1.0" "docker://$ORIGIN/team/app:1.0" || die "push app"
  "${sk[@]}" --format v2s2 "oci:$layouts/team_app:1.0" "docker://$ORIGIN/team/app:1.0-docker" || die "push app docker"
  "${sk[@]}" --preserve-digests "oci:$layouts/team_big:1.0" "docker://$ORIGIN/team/big:1.0" || die "push big"
  FIX="$WORK/fixtures"
  mkdir -p "$FIX"
  local ref repo tag
  for ref in library/alpine:3.19 library/alpine:3.19-docker team/app:1.0 team/app:1.0-docker team/big:1.0; do
    repo="${ref%%:*}" tag="${ref#*:}"
    $(origin_exec) curl -sf -H "Accept: $ACCEPT_ALL" -D "$FIX/h" -o "$FIX/${ref//[\/:]/_}.json" "http://$ORIGIN/v2/$repo/manifests/$tag" ||
      die "cannot read $ref from the origin"
    tr -d '\r' <"$FIX/h" | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}' >"$FIX/${ref//[\/:]/_}.digest"
    tr -d '\r' <"$FIX/h" | awk -F': ' 'tolower($1)=="content-type"{print $2}' >"$FIX/${ref//[\/:]/_}.type"
  done
  jq -r '.layers[-1].digest' "$FIX/team_big_1.0.json" >"$FIX/big_layer"
  jq -r '.layers[-1].size' "$FIX/team_big_1.0.json" >"$FIX/big_layer_size"
  jq -r '.layers[1].digest' "$FIX/team_app_1.0.json" >"$FIX/app_layer"
  log "fixtures pushed to $ORIGIN"
}
fix() { cat "$FIX/$1"; }

# ---- georeg ----
# start_georeg ARGS...: runs `georeg serve --listen 127.0.0.1:0 ARGS` (and
# --metrics-listen 127.0.0.1:0 without a config file), waits for
# it to listen; sets GEOREG_PORT, GEOREG_URL, GEOREG_PID, GEOREG_LOG
# ($WORK/georeg.log, or $WORK/$GEOREG_NAME.log for a second daemon).
start_georeg() {
  GEOREG_LOG="$WORK/${GEOREG_NAME:-georeg}.log"
  : >"$GEOREG_LOG"
  # Without a config file, metrics on a free port: tests run side by side,
  # and the embedded defaults' 127.0.0.1:9464 would let only one of them
  # start. A config file says for itself (tests change [metrics] at reload).
  local metrics=(--metrics-listen 127.0.0.1:0) a
  for a in "$@"; do case "$a" in -c | --config | --config=*) metrics=() ;; esac; done
  start_bg georeg "$GEOREG_LOG" "$GEOREG" serve --listen 127.0.0.1:0 "${metrics[@]}" "$@"
  GEOREG_PID=$LAST_PID
  local i
  for ((i = 0; i < START_WAIT_TENTHS; i++)); do
    GEOREG_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$GEOREG_LOG" | head -1)
    [ -n "$GEOREG_PORT" ] && break
    running "$GEOREG_PID" || die "georeg exited at start"
    sleep 0.1
  done
  [ -n "$GEOREG_PORT" ] || die "georeg did not start listening"
  GEOREG_URL="http://127.0.0.1:$GEOREG_PORT"
}

# write_config REGISTRY URL [UPSTREAM_LINE...]: writes $WORK/georeg.toml with a
# fresh cache directory and one upstream; each extra argument is one more
# line of that [[upstream]] table. $SERVER_TOML, if set, becomes [server].
write_config() {
  local registry="$1" url="$2"; shift 2
  {
    [ -n "${SERVER_TOML:-}" ] && printf '[server]\n%s\n' "$SERVER_TOML"
    printf '[cache]\ndir = "%s"\nmax_size = "1GiB"\n' "$(mktemp -d "$WORK/cache.XXXX")"
    printf '[[upstream]]\nregistry = "%s"\nurl = "%s"\n' "$registry" "$url"
    [ $# -gt 0 ] && printf '%s\n' "$@"
  } >"$WORK/georeg.toml"
}

# stop_georeg: SIGTERM; returns georeg's exit status.
stop_georeg() { stop_pid "$GEOREG_PID"; }

# sha256 of a file
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# start_fake MODE [ARGS...]: the fault-injecting stand-in (lib/fake_upstream.py).
# Sets FAKE (host:port), FAKE_PID, FAKE_LOG.
start_fake() {
  local mode="$1"; shift
  FAKE_LOG="$WORK/fake-$mode.requests"
  : >"$FAKE_LOG"
  rm -f "$WORK/fake.port"
  start_bg "fake upstream ($mode)" "$WORK/fake-$mode.log" python3 "$IT_LIB/fake_upstream.py" --mode "$mode" \
    --port-file "$WORK/fake.port" --log "$FAKE_LOG" "$@"
  FAKE_PID=$LAST_PID
  for _ in $(seq 50); do [ -s "$WORK/fake.port" ] && break; sleep 0.1; done
  [ -s "$WORK/fake.port" ] || die "fake upstream did not start"
  FAKE="127.0.0.1:$(cat "$WORK/fake.port")"
}

# make_blobs DIR N MIB [SEED]: N files of MIB MiB of seeded random data, each
# named by its sha256 (for the fake upstream's files mode). Prints the digests.
make_blobs() {
  python3 - "$@" <<'PY'
import hashlib, os, random, sys
d, n, mib = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
seed = sys.argv[4] if len(sys.argv) > 4 else "blobs"
os.makedirs(d, exist_ok=True)
rng = random.Random(seed)
for i in range(n):
    data = rng.randbytes(int(mib * 1048576) + i)
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(d, h), "wb") as f:
        f.write(data)
    print("sha256:" + h)
PY
}

# cache_dump DIR: the cache's blobs, manifests and tags databases as text
# (read-only, while georeg runs), for "the cache is unchanged" checks.
# blob_keys CACHE_DIR: the digests of the blobs database, one per line
# ("sha256:..."): after mdb_dump's header, keys and values alternate.
blob_keys() {
  mdb_dump -s blobs "$1" 2>/dev/null |
    awk '/^HEADER=END/ { data = 1; next } data && /^ / { if (++n % 2 == 1 && length($1) == 64) print "sha256:" $1 }'
}

cache_dump() {
  local db
  for db in blobs manifests tags; do mdb_dump -s "$db" "$1" 2>/dev/null || echo "no $db"; done
}

# start_containerd DIR [CMD_PREFIX...]: a private containerd with its root,
# state and sockets under DIR (started through CMD_PREFIX, e.g. `ip netns
# exec NS`, when given); waits until it answers. Sets CONTAINERD_PID and
# CONTAINERD_SOCK. Write DIR/certs.d/<registry>/hosts.toml to point it at a mirror.
start_containerd() {
  local dir="$1"; shift
  mkdir -p "$dir/root" "$dir/state" "$dir/certs.d"
  cat >"$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
[debug]
  address = "$dir/debug.sock"
[metrics]
  address = ""
TOML
  start_bg containerd "$WORK/containerd.log" "$@" containerd --config "$dir/config.toml"
  CONTAINERD_PID=$LAST_PID
  CONTAINERD_SOCK="$dir/containerd.sock"
  for _ in $(seq 100); do ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "containerd did not start"
}
