#!/usr/bin/env bash
# Run inside a fresh network namespace (`unshare --net`): its only interface is its own
# loopback, which also holds 10.99.0.1, so nothing can leave this machine whatever happens.
# Plain HTTP from a pupil to a "school server" at 10.99.0.1 through the proxy: refused by
# default, served once [proxy] internal_allow names the range.
set -euo pipefail
bin=$1
lists=$2
ip link set lo up
ip addr add 10.99.0.1/32 dev lo

tmp=$(mktemp -d)
# Every process started here is killed on the way out (the proxies are started from a
# function whose output is captured, so they are not this shell's jobs: their pids are kept).
# The proxies are waited for (at most 5 s each) before their data folders are removed: a
# proxy still writing its last events would leave a folder behind.
cleanup() {
  local pids
  pids=$(cat "$tmp"/pids 2>/dev/null || true)
  kill $pids $(jobs -p) 2>/dev/null || true
  for p in $pids; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  rm -rf "$tmp" || true
}
trap cleanup EXIT
mkdir -p "$tmp/www"
echo "the MIS" > "$tmp/www/index.html"
python3 -m http.server 8080 --bind 10.99.0.1 --directory "$tmp/www" >"$tmp/origin.log" 2>&1 &
for _ in $(seq 50); do
  curl -s -o /dev/null --max-time 1 http://10.99.0.1:8080/ready-check && break || sleep 0.1
done

run_proxy() { # $1: extra [proxy] lines; prints the proxy's address once it listens
  local n=$2
  cat >"$tmp/gatehouse$n.toml" <<TOML
lists_dir = "$lists"
[school]
name = "Test School"
timezone = "Europe/London"
[[network]]
cidr = "127.0.0.1/32"
role = "pupil"
[roles.pupil]
default = "allow"
[proxy]
listen = "127.0.0.1:0"
data_dir = "$tmp/data$n"
$1
TOML
  "$bin" run --config "$tmp/gatehouse$n.toml" >"$tmp/out$n" 2>"$tmp/err$n" &
  echo $! >>"$tmp/pids"
  for _ in $(seq 200); do
    addr=$(sed -n 's/^Gatehouse proxy listening on //p' "$tmp/out$n")
    [ -n "$addr" ] && break
    sleep 0.1
  done
  echo "$addr"
}

before=$(grep -c 'GET /' "$tmp/origin.log" || true)
addr=$(run_proxy "" 1)
code=$(curl -s -o "$tmp/page1" -w '%{http_code}' --max-time 10 -x "http://$addr" http://10.99.0.1:8080/)
echo "refused $code"
grep -q "inside the school network" "$tmp/page1" && echo "page says inside the school network"
after=$(grep -c 'GET /' "$tmp/origin.log" || true)
echo "origin saw $((after - before)) requests"

addr=$(run_proxy 'internal_allow = ["10.99.0.0/24"]' 2)
code=$(curl -s -o "$tmp/page2" -w '%{http_code}' --max-time 10 -x "http://$addr" http://10.99.0.1:8080/)
echo "allowed $code"
grep -q "the MIS" "$tmp/page2" && echo "page is the MIS"
