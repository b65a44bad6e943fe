# shellcheck shell=bash
# Shared by the benchmark scripts: a scratch dir cleaned on exit, free
# loopback ports, an nginx serving a directory, and medians. Source it.
set -euo pipefail
GEOREG="${GEOREG:-$PWD/build/src/georeg}"
[ -x "$GEOREG" ] || { echo "build georeg first (bash tools/run.sh or ninja -C build)" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx missing: apt-get install nginx-light" >&2; exit 1; }
W="$(mktemp -d /tmp/georeg-bench.XXXXXX)"
BENCH_PIDS=()
bench_cleanup() {
  local p
  for p in "${BENCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  rm -rf "$W"
}
trap bench_cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_nginx ROOT: static files from ROOT with sendfile; sets NGINX_PORT.
start_nginx() {
  NGINX_PORT=$(free_port)
  cat >"$W/nginx.conf" <<CONF
daemon off;
user root;
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx-error.log;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  server { listen 127.0.0.1:$NGINX_PORT; root $1; }
}
CONF
  nginx -c "$W/nginx.conf" -p "$W" &
  BENCH_PIDS+=($!)
}

# start_georeg ARGS...: georeg serve on a free port with ARGS; sets GEOREG_PORT, GEOREG_PID.
start_georeg() {
  GEOREG_PORT=$(free_port)
  "$GEOREG" serve --listen "127.0.0.1:$GEOREG_PORT" "$@" 2>"$W/georeg.log" &
  GEOREG_PID=$!
  BENCH_PIDS+=($GEOREG_PID)
  sleep 0.5
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
