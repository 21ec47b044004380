#!/usr/bin/env bash
# The people table from a directory of 50,000 people (issue 13): OpenLDAP (Debian's slapd) on
# 127.0.0.1 with 50,000 inetOrgPerson entries, year-group groups inside a pupils group and a
# staff group, read by `gatehouse people` exactly as the proxy's sync reads it (paged search,
# roles from groups inside groups). Prints the count, the table's bytes per person, the time,
# and the process's peak RSS. Then the same 50,000 people as an MIS CSV.
#
#   benches/people_sync.sh [N]        # default 50000
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-50000}"
WORK="$(mktemp -d)"
trap 'kill "$(cat "$WORK/slapd.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$WORK"' EXIT
(cd "$REPO" && cargo build --release -p gatehouse -q)
BIN="$REPO/target/release/gatehouse"
PORT=$((20000 + RANDOM % 20000))
mkdir -p "$WORK/db"
python3 - "$WORK" "$N" <<'PY'
import sys, random
work, n = sys.argv[1], int(sys.argv[2])
random.seed(13)
first = ["Amy","Ben","Chloe","Dev","Ella","Farah","George","Hana","Isaac","Jas","Kofi","Lena",
         "Mo","Nia","Oscar","Priya","Quinn","Rosa","Sam","Tariq","Uma","Vic","Wren","Yusuf","Zara"]
last = ["Smith","Jones","Khan","Williams","Brown","Patel","Taylor","Davies","Evans","Wilson",
        "Thomas","Ali","Roberts","Johnson","Lewis","Walker","Begum","Hussain","Okafor","Nowak"]
base = "dc=school,dc=test"
out = [f"dn: {base}\nobjectClass: dcObject\nobjectClass: organization\ndc: school\no: Bench\n",
       f"dn: ou=people,{base}\nobjectClass: organizationalUnit\nou: people\n",
       f"dn: ou=groups,{base}\nobjectClass: organizationalUnit\nou: groups\n",
       f"dn: cn=gatehouse,{base}\nobjectClass: person\ncn: gatehouse\nsn: service\nuserPassword: service-pw\n"]
years = {y: [] for y in range(7, 14)}
staff, csv = [], ["account,name,year,form,role,left"]
for i in range(n):
    f, l = random.choice(first), random.choice(last)
    uid = f"{f.lower()}.{l.lower()}{i}"
    dn = f"uid={uid},ou=people,{base}"
    if i % 12 == 0:
        staff.append(dn)
        out.append(f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {f} {l}\nsn: {l}\ndisplayName: {f} {l}\n")
        csv.append(f"{uid},{f} {l},,,staff,")
    else:
        y = 7 + i % 7
        form = f"{y}{'ABCD'[i % 4]}"
        years[y].append(dn)
        out.append(f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {f} {l}\nsn: {l}\n"
                   f"displayName: {f} {l}\ndepartmentNumber: {y}\nou: {form}\n")
        csv.append(f"{uid},{f} {l},{y},{form},pupil,")
for y, members in years.items():
    out.append(f"dn: cn=year{y},ou=groups,{base}\nobjectClass: groupOfNames\ncn: year{y}\n"
               + "".join(f"member: {m}\n" for m in members))
out.append(f"dn: cn=pupils,ou=groups,{base}\nobjectClass: groupOfNames\ncn: pupils\n"
           + "".join(f"member: cn=year{y},ou=groups,{base}\n" for y in years))
out.append(f"dn: cn=staff,ou=groups,{base}\nobjectClass: groupOfNames\ncn: staff\n"
           + "".join(f"member: {m}\n" for m in staff))
open(f"{work}/school.ldif", "w").write("\n".join(out))
open(f"{work}/people.csv", "w").write("\n".join(csv) + "\n")
PY
cat > "$WORK/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $WORK/slapd.pid
database mdb
suffix "dc=school,dc=test"
rootdn "cn=admin,dc=school,dc=test"
rootpw admin-pw
directory $WORK/db
maxsize 1073741824
limits dn.exact="cn=gatehouse,dc=school,dc=test" size.soft=500 size.hard=unlimited size.prtotal=unlimited
CONF
/usr/sbin/slapadd -q -f "$WORK/slapd.conf" -l "$WORK/school.ldif"
/usr/sbin/slapd -h "ldap://127.0.0.1:$PORT/" -f "$WORK/slapd.conf"
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.2; done
printf 'service-pw\n' > "$WORK/ldap.secret"; chmod 600 "$WORK/ldap.secret"
policy() { # the shipped policy with its lists, and an [identity] section
  sed "s#^lists_dir = .*#lists_dir = \"$REPO/lists\"#" "$REPO/deploy/gatehouse.toml"
  printf '\n%s\n' "$1"
}
policy "[identity.ldap]
url = \"ldap://127.0.0.1:$PORT\"
bind_dn = \"cn=gatehouse,dc=school,dc=test\"
bind_password_file = \"ldap.secret\"
base_dn = \"dc=school,dc=test\"
people_filter = \"(objectClass=inetOrgPerson)\"
year_attribute = \"departmentNumber\"
form_attribute = \"ou\"
timeout_secs = 30
roles = [{ group = \"cn=staff,ou=groups,dc=school,dc=test\", role = \"staff\" },
         { group = \"cn=pupils,ou=groups,dc=school,dc=test\", role = \"pupil\" }]" > "$WORK/ldap.toml"
policy "[identity.people]
csv = \"people.csv\"" > "$WORK/csv.toml"
for source in ldap csv; do
  echo "== $N people from $source"
  /usr/bin/time -f "wall %e s, peak RSS %M KiB" "$BIN" people --config "$WORK/$source.toml" --find "zara.nowak"  | head -3
done
