#!/usr/bin/env bash
# Gatehouse in the side-by-side proxy bench (../shared/bench, or BENCH=path): the same origin,
# load tool (oha), CPU pinning and interleaved rounds as squid, e2guardian, privoxy,
# tinyproxy and mitmproxy.
#
#   benches/proxy_side_by_side.sh check                 # one HTTP + one HTTPS request each
#   benches/proxy_side_by_side.sh run [bench.py args]   # default: the full matrix, 3 rounds
#
# Identity (issue 13): entry `gatehouse-radius` names every request from a RADIUS binding and
# a people table of 50,000 (compare with `gatehouse` on http-small and https-small).
#
# Page reading (issue 12): entry `gatehouse-noscan` is the same proxy with content reading
# off, and scenario `https-100k` (100 KiB pages intercepted over HTTPS) is added:
#   benches/proxy_side_by_side.sh run --entries gatehouse,gatehouse-noscan,e2guardian-mitm --scenarios https-100k
#
# To compare with an earlier build in the same interleaved rounds, set
# GATEHOUSE_BASELINE_BIN (its release binary) and GATEHOUSE_BASELINE_REPO (a work tree of its
# commit, for its own deploy/gatehouse.toml and lists): entry `gatehouse-baseline`, port 13204.
#
# Gatehouse runs the shipped policy (deploy/gatehouse.toml: the full starter lists, the
# pupil role for 127.0.0.0/8, SafeSearch, events written for every request) with only the
# [proxy] section changed for the harness: listen on its port, sign with the harness's MITM
# CA, trust its origin CA, allow the loopback origin; and the admin page off.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="${BENCH:-$REPO/../shared/bench}"
BENCH="$(cd "$BENCH" && pwd)"
PORT=13200
RUN="$BENCH/.run"

[ -f "$RUN/pki/mitm-ca.pem" ] || "$BENCH/setup.sh"
(cd "$REPO" && cargo build --release -p gatehouse -q)
export GATEHOUSE_BIN="$REPO/target/release/gatehouse"

# Two entries: `gatehouse` as shipped (events to the JSON-lines log and the SQLite event
# store), and `gatehouse-nostore` (`[store] backend = "none"`), to see what the store costs.
write_config() { # write_config DIR PORT STORE_BACKEND [BIN SOURCE_REPO [READ_CONTENT]]
  local dir="$1" bin="${4:-$GATEHOUSE_BIN}" src="${5:-$REPO}"
  mkdir -p "$dir/data"
  install -m 0644 "$RUN/pki/mitm-ca.pem" "$dir/data/ca.pem"
  install -m 0600 "$RUN/pki/mitm-ca.key" "$dir/data/ca.key"
  python3 - "$src/deploy/gatehouse.toml" "$dir/gatehouse.toml" "$src/lists" "$RUN/pki/origin-ca.pem" "$2" "$3" "${6:-yes}" <<'PY'
import re, sys
src, dst, lists, origin_ca, port, backend, read_content = sys.argv[1:]
text = open(src).read()
text = re.sub(r'^lists_dir = .*$', f'lists_dir = "{lists}"', text, count=1, flags=re.M)
proxy = f'''[proxy]
listen = "127.0.0.1:{port}"
data_dir = "data"
connect_ports = [443]
trust = ["{origin_ca}"]
allow_loopback_origins = true
'''
if read_content == "no":
    # Pages and posts not read: the same proxy with content reading off.
    proxy += 'scan_content_kib = 0\nscan_request_kib = 0\n'
# Replace the [proxy] table (up to the next table header) with the bench's.
text, n = re.subn(r'^\[proxy\]\n(?:(?!^\[).*\n)*', proxy + '\n', text, count=1, flags=re.M)
assert n == 1, "no [proxy] section in deploy/gatehouse.toml"
# No admin page: both entries would want its port, and nobody signs in during a load run.
text, n = re.subn(r'^(\[admin\]\n(?:(?!^\[).*\n)*?)listen = .*$', r'\1listen = "off"', text, count=1, flags=re.M)
assert n == 1, "no [admin] listen in deploy/gatehouse.toml"
if backend != "sqlite":
    text, n = re.subn(r'^backend = "sqlite"', f'backend = "{backend}"', text, count=1, flags=re.M)
    if n == 0:
        text += f'\n[store]\nbackend = "{backend}"\n'
open(dst, "w").write(text)
PY
  "$bin" check --config "$dir/gatehouse.toml" >/dev/null
}
write_config "$RUN/gatehouse" "$PORT" sqlite
write_config "$RUN/gatehouse-nostore" 13202 none
# `gatehouse-again`: the same proxy and policy as `gatehouse` on another port, to measure
# what the harness itself makes of two identical entries (an A/A run).
write_config "$RUN/gatehouse-again" 13214 sqlite
write_config "$RUN/gatehouse-noscan" 13206 sqlite "$GATEHOUSE_BIN" "$REPO" no

# Identity (issue 13): `gatehouse-radius` is `gatehouse` with a people table of 50,000 and
# RADIUS accounting on; once it listens, a Start binds 127.0.0.1 (the load generator) to one
# of those people, so every request is named from the binding and the table.
write_radius_entry() {
  local dir="$RUN/$1" port="$2" radius_port="$3" backend="$4"
  write_config "$dir" "$port" "$backend"
  python3 - "$dir" "$radius_port" <<'PY'
import sys
d, radius_port = sys.argv[1:]
with open(f"{d}/people.csv", "w") as f:
    f.write("account,name,year,form,role,left\n")
    for i in range(50000):
        f.write(f"pupil{i:05},Pupil Number{i},{7 + i % 7},{7 + i % 7}{'ABCD'[i % 4]},pupil,\n")
with open(f"{d}/gatehouse.toml", "a") as f:
    f.write('\n[identity.people]\ncsv = "people.csv"\n[identity.radius]\nlisten = "127.0.0.1:{radius_port}"\n'
            'secret_file = "radius.secret"\nclients = ["127.0.0.1/32"]\n'.replace('{radius_port}', radius_port))
PY
  printf 'bench-secret\n' > "$dir/radius.secret"; chmod 600 "$dir/radius.secret"
  cat > "$dir/start.sh" <<SH
#!/usr/bin/env bash
( for _ in \$(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  echo "Acct-Status-Type = Start, User-Name = \"pupil01234\", Framed-IP-Address = 127.0.0.1, Event-Timestamp = \$(date +%s)" \\
    | radclient -r 2 -t 2 127.0.0.1:$radius_port acct bench-secret >/dev/null ) &
exec "\$GATEHOUSE_BIN" run --config "$dir/gatehouse.toml"
SH
  chmod +x "$dir/start.sh"
}
# `gatehouse-ldap`: the load generator's network needs a proxy login, checked against
# OpenLDAP (slapd on 127.0.0.1:13213, one pupil in a year group inside the pupils group);
# oha sends the login with every request, so every request takes the LDAP-cached path
# (`benches/bench_scenarios.py` adds the header for entries named `*-ldap`).
write_ldap_entry() {
  local dir="$RUN/gatehouse-ldap"
  write_config "$dir" 13212 sqlite
  mkdir -p "$dir/slapd/db"
  cat > "$dir/slapd/school.ldif" <<'LDIF'
dn: dc=school,dc=test
objectClass: dcObject
objectClass: organization
dc: school
o: Bench

dn: ou=people,dc=school,dc=test
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=school,dc=test
objectClass: organizationalUnit
ou: groups

dn: cn=gatehouse,dc=school,dc=test
objectClass: person
cn: gatehouse
sn: service
userPassword: service-pw

dn: uid=bench.pupil,ou=people,dc=school,dc=test
objectClass: inetOrgPerson
uid: bench.pupil
cn: Bench Pupil
sn: Pupil
displayName: Bench Pupil
departmentNumber: 9
ou: 9B
userPassword: bench-pw-123

dn: cn=year9,ou=groups,dc=school,dc=test
objectClass: groupOfNames
cn: year9
member: uid=bench.pupil,ou=people,dc=school,dc=test

dn: cn=pupils,ou=groups,dc=school,dc=test
objectClass: groupOfNames
cn: pupils
member: cn=year9,ou=groups,dc=school,dc=test
LDIF
  cat > "$dir/slapd/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $dir/slapd/slapd.pid
database mdb
suffix "dc=school,dc=test"
rootdn "cn=admin,dc=school,dc=test"
rootpw admin-pw
directory $dir/slapd/db
CONF
  rm -rf "$dir/slapd/db"/*
  /usr/sbin/slapadd -q -f "$dir/slapd/slapd.conf" -l "$dir/slapd/school.ldif"
  printf 'service-pw\n' > "$dir/ldap.secret"; chmod 600 "$dir/ldap.secret"
  python3 - "$dir/gatehouse.toml" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
# The load generator's network (127.0.0.0/8) needs a proxy login.
text, n = re.subn(r'(\[\[network\]\]\ncidr = "127\.0\.0\.0/8"\n(?:(?!^\[).*\n)*?)(\n|\[)',
                  lambda m: m.group(1) + 'login = true\n' + m.group(2), text, count=1, flags=re.M)
assert n == 1, "no 127.0.0.0/8 network in the policy"
text += '''
[identity.ldap]
url = "ldap://127.0.0.1:13213"
bind_dn = "cn=gatehouse,dc=school,dc=test"
bind_password_file = "ldap.secret"
base_dn = "dc=school,dc=test"
year_attribute = "departmentNumber"
form_attribute = "ou"
roles = [{ group = "cn=pupils,ou=groups,dc=school,dc=test", role = "pupil" }]
'''
open(path, "w").write(text)
PY
  cat > "$dir/start.sh" <<SH
#!/usr/bin/env bash
# The directory first (left running between runs: it holds one person).
(exec 3<>/dev/tcp/127.0.0.1/13213) 2>/dev/null || /usr/sbin/slapd -h ldap://127.0.0.1:13213/ -f "$dir/slapd/slapd.conf"
for _ in \$(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/13213) 2>/dev/null && break; sleep 0.1; done
exec "\$GATEHOUSE_BIN" run --config "$dir/gatehouse.toml"
SH
  chmod +x "$dir/start.sh"
}
if [ -x /usr/sbin/slapd ]; then
  pkill -f "slapd -h ldap://127.0.0.1:13213/" 2>/dev/null || true
  write_ldap_entry
fi

write_radius_entry gatehouse-radius 13208 13209 sqlite
write_radius_entry gatehouse-radius-nostore 13210 13211 none

add_entry() {
  grep -q "^$1 " "$BENCH/entries.conf" || printf '%s\n' "$2" >> "$BENCH/entries.conf"
}
add_entry gatehouse 'gatehouse        13200  intercept  mitm-ca.pem    -           exec "$GATEHOUSE_BIN" run --config {RUN}/gatehouse/gatehouse.toml'
add_entry gatehouse-again 'gatehouse-again  13214  intercept  mitm-ca.pem    -           exec "$GATEHOUSE_BIN" run --config {RUN}/gatehouse-again/gatehouse.toml'
add_entry gatehouse-nostore 'gatehouse-nostore 13202 intercept  mitm-ca.pem    -           exec "$GATEHOUSE_BIN" run --config {RUN}/gatehouse-nostore/gatehouse.toml'
add_entry gatehouse-noscan 'gatehouse-noscan 13206 intercept  mitm-ca.pem    -           exec "$GATEHOUSE_BIN" run --config {RUN}/gatehouse-noscan/gatehouse.toml'
add_entry gatehouse-radius 'gatehouse-radius 13208 intercept  mitm-ca.pem    -           exec {RUN}/gatehouse-radius/start.sh'
add_entry gatehouse-ldap 'gatehouse-ldap   13212 intercept  mitm-ca.pem    -           exec {RUN}/gatehouse-ldap/start.sh'
add_entry gatehouse-radius-nostore 'gatehouse-radius-nostore 13210 intercept  mitm-ca.pem    -           exec {RUN}/gatehouse-radius-nostore/start.sh'
if [ -n "${GATEHOUSE_BASELINE_BIN:-}" ]; then
  export GATEHOUSE_BASELINE_BIN
  write_config "$RUN/gatehouse-baseline" 13204 sqlite "$GATEHOUSE_BASELINE_BIN" "${GATEHOUSE_BASELINE_REPO:?set it to a work tree of the baseline commit}"
  add_entry gatehouse-baseline 'gatehouse-baseline 13204 intercept mitm-ca.pem    -           exec "$GATEHOUSE_BASELINE_BIN" run --config {RUN}/gatehouse-baseline/gatehouse.toml'
fi

cmd="${1:-run}"
shift || true
cd "$BENCH"
export BENCH
# bench_scenarios.py: the shared bench.py with Gatehouse's scenarios added (https-100k).
SCENARIOS_PY="$REPO/benches/bench_scenarios.py"
case "$cmd" in
  check) if [ "$#" -eq 0 ]; then set -- --entries gatehouse,gatehouse-nostore,gatehouse-noscan; fi; exec python3 "$SCENARIOS_PY" check "$@" ;;
  run) exec python3 "$SCENARIOS_PY" run "$@" ;;
  *) exec python3 "$SCENARIOS_PY" "$cmd" "$@" ;;
esac
