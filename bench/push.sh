#!/usr/bin/env bash
# push.sh [SIZE_MIB] [ROUNDS]: one layer of SIZE_MIB (default 1024) pushed
# through georeg's own registry and to Debian's docker-registry, the same
# way (POST an upload, PATCH the whole layer, PUT ?digest=, then a manifest
# PUT naming it), alternating targets for ROUNDS rounds (default 3), each
# round a fresh repository and layer. Reports median seconds (min-max) per
# target and georeg's ratio to docker-registry's time (< 1: faster).
# Both verify the digest while receiving; georeg also answers 201 to the
# manifest only once the layer is stored (one node here: copies = 1).
#   bash bench/push.sh
# Needs the build in build/ and docker-registry (tools/deps.sh test).
cd "$(dirname "$0")/.."
SIZE_MIB="${1:-1024}"
ROUNDS="${2:-3}"
source bench/lib.sh
command -v docker-registry >/dev/null || { echo "docker-registry missing: apt-get install docker-registry" >&2; exit 1; }

REG_PORT=$(free_port)
mkdir -p "$W/registry-data"
cat >"$W/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/registry-data
http:
  addr: 127.0.0.1:$REG_PORT
  secret: bench-not-a-secret
YML
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
BENCH_PIDS+=($!)

printf 'bench\n' | "$GEOREG" registry htpasswd bench --cost 4 >"$W/htpasswd"
cat >"$W/georeg.toml" <<TOML
[cache]
dir = "$W/cache"
max_size = "1GiB"
[registry]
name = "bench.local"
push_htpasswd = "$W/htpasswd"
max_size = "$((SIZE_MIB * (ROUNDS + 1) + 1024))MiB"
copies = 1
TOML
start_georeg --config "$W/georeg.toml"
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$REG_PORT/v2/" && break; sleep 0.1; done

echo "making a ${SIZE_MIB} MiB layer..." >&2
head -c $((SIZE_MIB << 20)) /dev/urandom >"$W/layer"
base_sha=$(sha256sum "$W/layer" | cut -d' ' -f1)

# push_once BASE_URL REPO AUTH: prints seconds for upload + manifest.
push_once() {
  local base="$1" repo="$2" auth=("${@:3}") loc t0 t1 digest cfg
  # A distinct layer per round: its first 8 bytes (the rest stays, no copy of 1 GiB per round).
  printf '%08d' "$RANDOM$RANDOM" | head -c 8 | dd of="$W/layer" conv=notrunc status=none
  digest="sha256:$(sha256sum "$W/layer" | cut -d' ' -f1)"
  printf '{}' >"$W/config"
  cfg="sha256:$(sha256sum "$W/config" | cut -d' ' -f1)"
  t0=$(date +%s.%N)
  for blob in "$W/config:$cfg" "$W/layer:$digest"; do
    local file="${blob%%:sha256*}" d="sha256:${blob##*:sha256:}"
    loc=$(curl -s -D - -o /dev/null -X POST "${auth[@]}" "$base/v2/$repo/blobs/uploads/" | tr -d '\r' |
      awk -F': ' 'tolower($1)=="location"{print $2}')
    [[ "$loc" == /* ]] && loc="$base$loc"
    loc=$(curl -s -D - -o /dev/null -X PATCH "${auth[@]}" -H "Content-Type: application/octet-stream" \
      -T "$file" "$loc" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
    [[ "$loc" == /* ]] && loc="$base$loc"
    local sep='?'
    [[ "$loc" == *\?* ]] && sep='&'
    code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "${auth[@]}" "$loc${sep}digest=$d")
    [ "$code" = 201 ] || { echo "blob PUT to $base answered $code" >&2; exit 1; }
  done
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}' \
    "$cfg" "$digest" $((SIZE_MIB << 20)) >"$W/manifest"
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "${auth[@]}" \
    -H "Content-Type: application/vnd.oci.image.manifest.v1+json" --data-binary "@$W/manifest" "$base/v2/$repo/manifests/1")
  [ "$code" = 201 ] || { echo "manifest PUT to $base answered $code" >&2; exit 1; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

: >"$W/georeg.times"
: >"$W/registry.times"
for r in $(seq "$ROUNDS"); do
  push_once "http://127.0.0.1:$GEOREG_PORT" "bench/r$r" -u bench:bench >>"$W/georeg.times"
  push_once "http://127.0.0.1:$REG_PORT" "bench/r$r" >>"$W/registry.times"
  echo "round $r: georeg $(tail -1 "$W/georeg.times") s, docker-registry $(tail -1 "$W/registry.times") s" >&2
done
summary() { local f="$1"; echo "$(median <"$f") s ($(sort -n "$f" | head -1)-$(sort -n "$f" | tail -1))"; }
g=$(median <"$W/georeg.times")
d=$(median <"$W/registry.times")
echo "push of one ${SIZE_MIB} MiB layer + manifest, median of $ROUNDS (min-max):"
echo "  georeg           $(summary "$W/georeg.times")"
echo "  docker-registry  $(summary "$W/registry.times")"
awk -v g="$g" -v d="$d" 'BEGIN { printf "  ratio georeg / docker-registry: %.2f\n", g / d }'
rss=$(awk '/VmHWM/ {print $2}' "/proc/$GEOREG_PID/status")
echo "  georeg peak RSS: $((rss / 1024)) MiB"
