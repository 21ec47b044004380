#!/usr/bin/env bash
# Latency Gatehouse adds at a fixed offered load (not saturated): oha sends RATE requests/s
# over 50 keep-alive connections for 10 s, directly to the harness's origin and through
# Gatehouse (pinned to CPU 0; oha and the origin share CPU 1), three interleaved rounds.
# Uses the origin and Gatehouse config that benches/proxy_side_by_side.sh writes.
#
#   benches/latency_at_rate.sh [RATE] [URL]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$(cd "${BENCH:-$REPO/../shared/bench}" && pwd)"
RUN="$BENCH/.run"
RATE="${1:-5000}"
URL="${2:-http://origin.bench.test:18080/small.html}"
CA="$RUN/pki/origin-ca.pem"
[ -f "$RUN/gatehouse/gatehouse.toml" ] || { echo "run benches/proxy_side_by_side.sh check first" >&2; exit 1; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
taskset -c 1 nginx -c "$RUN/origin/nginx.conf" -g 'daemon off;' & pids+=($!)
taskset -c 0 "$REPO/target/release/gatehouse" run --config "$RUN/gatehouse/gatehouse.toml" >/dev/null 2>&1 & pids+=($!)
sleep 3
one() { # one LABEL [oha proxy args...]
  local label="$1"; shift
  taskset -c 1 oha -q "$RATE" -z 10s -c 50 --no-tui --output-format json "$@" "$URL" 2>/dev/null |
    python3 -c "import json,sys; d=json.load(sys.stdin); s=d['summary']; p=d['latencyPercentiles']; print(f'$label: {s[\"requestsPerSec\"]:.0f} req/s, success {s[\"successRate\"]*100:.1f} %, p50 {p[\"p50\"]*1000:.2f} ms, p99 {p[\"p99\"]*1000:.2f} ms')"
}
extra=()
case "$URL" in https:*) extra=(--cacert "$RUN/pki/mitm-ca.pem");; esac
for round in 1 2 3; do
  one "round $round direct   " --cacert "$CA"
  one "round $round gatehouse" -x http://127.0.0.1:13200 "${extra[@]}"
done
