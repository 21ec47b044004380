#!/usr/bin/env bash
# Gatehouse's squid-helper against squidGuard 1.6, as whole processes fed the same helper
# lines on the same UT1 lists (every UT1 folder the shipped policy maps to a category).
#
#   benches/squid_helper_vs_squidguard.sh [lines]      (default 200000)
#   FOLDERS="adult gambling games redirector" benches/squid_helper_vs_squidguard.sh
#                                          (only those UT1 folders: squidGuard's best case)
#
# Needs: squidguard (apt-get install squidguard), python3, ../shared/data beside the repo
# (or GATEHOUSE_DATA). Prints wall time, lines per second and peak RSS of each, three runs
# each, interleaved, and checks that both blocked the same number of lines.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
data=${GATEHOUSE_DATA:-$repo/../shared/data}
lines=${1:-200000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release -q -p gatehouse --manifest-path "$repo/Cargo.toml"
gatehouse=$repo/target/release/gatehouse

# The UT1 folders to compare: $FOLDERS, or those mapped to a category in deploy/gatehouse.toml.
folders=${FOLDERS:-$(python3 - "$repo/deploy/gatehouse.toml" "$data/blocklists/ut1" <<'PY'
import sys, os, re
text = open(sys.argv[1]).read().split("[mapping.ut1]")[1]
names = []
for line in text.splitlines():
    if line.startswith("#") or line.startswith("["):
        break
    m = re.match(r'^([\w-]+) = "([^"]+)"', line)
    if m and m.group(2) != "ignore" and os.path.isdir(os.path.join(sys.argv[2], m.group(1))):
        names.append(m.group(1))
print(" ".join(names))
PY
)}
echo "UT1 folders compared: $(echo $folders | wc -w); domain lines: $(for f in $folders; do cat "$data/blocklists/ut1/$f/domains" 2>/dev/null; done | wc -l)"

# squidGuard: its own copy of the lists (it writes .db files beside them).
mkdir -p "$work/sg/db" "$work/sg/log"
{
  echo "dbhome $work/sg/db"; echo "logdir $work/sg/log"
  pass=""
  for f in $folders; do
    mkdir -p "$work/sg/db/$f"; body=""
    for kind in domains:domainlist urls:urllist expressions:expressionlist; do
      file=${kind%%:*}; key=${kind##*:}
      if [ -f "$data/blocklists/ut1/$f/$file" ]; then
        cp "$data/blocklists/ut1/$f/$file" "$work/sg/db/$f/$file"; body="$body  $key $f/$file"$'\n'
      fi
    done
    name=${f//-/_}; printf 'dest %s {\n%s}\n' "$name" "$body"; pass="$pass !$name"
  done
  printf 'acl {\n  default {\n    pass%s all\n    redirect http://blocked.invalid/\n  }\n}\n' "$pass"
} > "$work/sg/squidGuard.conf"
squidGuard -c "$work/sg/squidGuard.conf" -C all 2>/dev/null

# Gatehouse: the same folders, one category, blocked for the client network.
{
  echo "lists_dir = \"$data/blocklists\""
  printf '[school]\nname = "Bench"\ntimezone = "Europe/London"\n'
  printf '[[network]]\ncidr = "10.0.0.0/8"\nrole = "pupil"\n'
  printf '[[source]]\nformat = "squidguard-tree"\npath = "ut1"\nmapping = "ut1"\n[mapping.ut1]\n'
  for d in "$data"/blocklists/ut1/*/; do
    n=$(basename "$d"); t=ignore
    for f in $folders; do [ "$f" = "$n" ] && t=games; done
    echo "\"$n\" = \"$t\""
  done
  printf '[roles.pupil]\ndefault = "allow"\ncategories = { games = "block" }\n'
} > "$work/gatehouse.toml"

# The helper lines: listed names, their subdomains, URL-list entries, real clean names.
python3 - "$data" "$lines" "$folders" > "$work/lines.txt" <<'PY'
import sys, random, os
data, count, folders = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
random.seed(1)
def read(p):
    try:
        return [l.strip() for l in open(p, errors="replace") if l.strip() and not l.startswith("#")]
    except FileNotFoundError:
        return []
doms, urls = [], []
for f in folders:
    doms += read(os.path.join(data, "blocklists/ut1", f, "domains"))
    urls += read(os.path.join(data, "blocklists/ut1", f, "urls"))
clean = read(os.path.join(data, "corpora/hsts-preload-domains.txt"))
out = []
for i in range(count):
    r = random.random()
    if r < 0.3:   u = "http://www.%s/index.html" % random.choice(doms)
    elif r < 0.4: u = "https://a.b.%s/x?y=1" % random.choice(doms)
    elif r < 0.5: u = "http://%s" % random.choice(urls)
    else:         u = "https://www.%s/page?q=%d" % (random.choice(clean), i)
    out.append("%s 10.0.0.1/- - GET" % u)
print("\n".join(out))
PY

run() { # name command...
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" < "$work/lines.txt" > "$work/out.$name"
  read -r secs kib < "$work/time"
  local blocked; blocked=$(grep -c '^OK' "$work/out.$name" || true)
  local answered; answered=$(wc -l < "$work/out.$name")
  awk -v n="$name" -v s="$secs" -v k="$kib" -v l="$lines" -v a="$answered" -v b="$blocked" \
    'BEGIN { if (s < 0.01) s = 0.01; printf "%s: %.2f s wall, %.0f lines/s, peak RSS %.1f MiB, answered %d, blocked %d\n", n, s, l / s, k / 1024, a, b }'
}
startup() { # name command...: the same process with no input
  local name=$1; shift
  /usr/bin/time -f "%e" -o "$work/time0" "$@" < /dev/null > /dev/null
  echo "$name start-up (load lists, no lines): $(cat "$work/time0") s"
}
startup squidGuard squidGuard -c "$work/sg/squidGuard.conf"
startup gatehouse "$gatehouse" squid-helper --config "$work/gatehouse.toml"
for round in 1 2 3; do
  echo "round $round ($lines lines)"
  run squidGuard squidGuard -c "$work/sg/squidGuard.conf"
  run gatehouse "$gatehouse" squid-helper --config "$work/gatehouse.toml"
done
