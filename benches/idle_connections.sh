#!/usr/bin/env bash
# 10,000 idle keep-alive connections through Gatehouse: resident memory per connection, for
# plain HTTP and for intercepted HTTPS. Uses the side-by-side harness's origin, PKI and the
# Gatehouse config that benches/proxy_side_by_side.sh writes (run that once first), with a
# longer idle limit so the connections stay open while they are counted.
#
#   benches/idle_connections.sh [CONNECTIONS]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$(cd "${BENCH:-$REPO/../shared/bench}" && pwd)"
RUN="$BENCH/.run"
N="${1:-10000}"
G="$RUN/gatehouse-idle"
[ -f "$RUN/gatehouse/gatehouse.toml" ] || { echo "run benches/proxy_side_by_side.sh check first" >&2; exit 1; }
mkdir -p "$G"
rm -rf "$G/data"
cp -a "$RUN/gatehouse/data" "$G/data"
sed -e 's/^listen = "127.0.0.1:13200"/listen = "127.0.0.1:13201"\nheader_timeout_secs = 600\nmax_connections = 50000\nmax_connections_per_client = 50000/' \
    "$RUN/gatehouse/gatehouse.toml" > "$G/gatehouse.toml"
ulimit -n "$(ulimit -Hn)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
taskset -c 1 nginx -c "$RUN/origin/nginx.conf" -g 'daemon off;' & pids+=($!)
taskset -c 0 "$REPO/target/release/gatehouse" run --config "$G/gatehouse.toml" >"$G/stdout.log" 2>&1 & pids+=($!)
gh=$!
for _ in $(seq 100); do grep -q "listening" "$G/stdout.log" 2>/dev/null && break; sleep 0.2; done
for url in http://origin.bench.test:18080/small.html https://origin.bench.test/small.html; do
  taskset -c 1 python3 "$REPO/benches/idle_connections.py" --proxy 127.0.0.1:13201 --pid "$gh" \
    --url "$url" --ca "$RUN/pki/mitm-ca.pem" --connections "$N"
  sleep 3
done
echo "peak RSS of the proxy over both: $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' /proc/$gh/status)"
