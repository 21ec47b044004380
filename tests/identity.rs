//! Identity from the school's own systems, end to end with the real servers started here:
//!
//! - the Wi-Fi's RADIUS accounting (Debian's `radclient` sends Start, Stop and
//!   Accounting-On) names a device with no sign-in; the people table (a CSV from the MIS)
//!   turns the account into "Amy Pupil, Year 9, 9B" in the event and the DSL's email; a
//!   wrong secret, a replayed Start and a leaver name no one;
//! - proxy logins are checked against OpenLDAP (Debian's `slapd`, over StartTLS with the
//!   school's own CA): the role comes from groups inside groups, the name, year and form
//!   from attributes; a wrong password, an empty one and LDAP filter injection are
//!   refused; with the directory down, people already known carry on (a metric moves) and
//!   new ones get a page that says why.

#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "an end-to-end test: a failure is a failed test"
)]

mod common;
#[path = "common/servers.rs"]
mod servers;

use common::Workspace;
use servers::{free_port, wait_for};
use std::io::Write;
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Child, Command, Stdio};

const SECRET: &str = "wifi-accounting-s3cret";

const PEOPLE: &str = "account,name,year,form,role,left\n\
amy.pupil,Amy Pupil,9,9B,pupil,\n\
ben.leaver,Ben Leaver,11,11C,pupil,2026-07-20\n\
tess.teacher,Tess Teacher,,,staff,\n";

struct Running {
    ws: Workspace,
    child: Child,
    proxy: String,
    metrics: String,
    google: u16,
    /// The admin page, when the test's tables turn it on.
    admin: Option<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn secret_file(ws: &Workspace, name: &str, text: &str) {
    let path = ws.write(name, text.as_bytes());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The proxy with `identity` as its `[identity]` tables. 127.0.0.0/24 is the pupils'
/// Wi-Fi (no login); 127.0.1.0/24 a network that needs a login (guest role).
fn start(ws: Workspace, smtp: u16, identity: &str) -> Running {
    let google = servers::results_origin();
    let text = format!(
        r#"
[[network]]
cidr = "127.0.0.0/24"
role = "pupil"
site = "main"
[[network]]
cidr = "127.0.1.0/24"
role = "guest"
site = "main"
login = true
[themes.self-harm]
file = "themes/self-harm/en.txt"
[roles.pupil]
default = "allow"
themes = {{ self-harm = {{ action = "block", alert = "high" }} }}
[roles.staff]
default = "allow"
themes = {{ self-harm = "log" }}
[roles.guest]
default = "allow"
[alerts]
hold_secs = 1
digest_time = "23:59"
[alerts.smtp]
host = "127.0.0.1"
port = {smtp}
security = "none"
from = "Gatehouse <gatehouse@school.example>"
[alerts.sites.main]
dsl = ["dsl@school.example"]
{identity}
[proxy]
listen = "127.0.0.1:0"
data_dir = {:?}
allow_loopback_origins = true
metrics_listen = "127.0.0.1:0"
hosts = {{ "www.google.com" = "127.0.0.1" }}
"#,
        ws.path("data").display().to_string()
    );
    let config = ws.config(&text);
    let started = common::spawn_gatehouse(&config);
    Running {
        ws,
        child: started.child,
        proxy: started.proxy,
        metrics: started.metrics.expect("metrics"),
        google,
        admin: started.admin,
    }
}

impl Running {
    /// A Google search from `source`, with a proxy login if given: the status.
    fn search(&self, source: &str, query: &str, login: Option<&str>) -> u16 {
        let url = format!(
            "http://www.google.com:{}/search?q={}",
            self.google,
            query.replace(' ', "+")
        );
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(["--max-time", "20", "-x", &format!("http://{}", self.proxy)])
            .args(["--interface", source]);
        if let Some(l) = login {
            cmd.args(["--proxy-user", l]);
        }
        let out = cmd.arg(url).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    /// The events logged so far, once `want` holds of them (or after 15 s).
    fn events(&self, want: impl Fn(&[serde_json::Value]) -> bool) -> Vec<serde_json::Value> {
        let path = self.ws.path("data/events/events.jsonl");
        wait_for(15, || {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let events: Vec<serde_json::Value> = text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            want(&events).then_some(events)
        })
        .unwrap_or_default()
    }

    /// The last event whose search term is `term`.
    fn event_of(&self, term: &str) -> serde_json::Value {
        let has = |e: &serde_json::Value| e["search_term"] == term;
        self.events(|es| es.iter().any(has))
            .into_iter()
            .rev()
            .find(has)
            .unwrap_or_else(|| panic!("no event for {term:?}"))
    }

    fn metrics(&self) -> String {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "10", &self.metrics])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The value of a metric line that starts with `prefix` (0 when absent).
    fn metric(&self, prefix: &str) -> f64 {
        self.metrics()
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.ws.path("stderr.log")).unwrap_or_default()
    }
}

/// The first safeguarding alert the DSL's mailbox receives (the daily digest is not one).
fn alert_mail(smtp: &servers::Smtp) -> servers::Mail {
    wait_for(30, || {
        smtp.messages()
            .into_iter()
            .find(|m| m.subject.contains("safeguarding alert"))
    })
    .expect("alert email")
}

/// Sends one accounting packet with Debian's radclient: whether it was answered.
fn radclient(port: u16, secret: &str, attributes: &str) -> bool {
    let mut child = Command::new("radclient")
        .args(["-r", "1", "-t", "2"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["acct", secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("radclient (freeradius-utils)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(attributes.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains("Received Accounting-Response")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn wifi_accounting_names_the_device_and_the_dsl_reads_the_pupils_name() {
    let smtp = servers::Smtp::start();
    let ws = Workspace::new();
    ws.write("people.csv", PEOPLE.as_bytes());
    secret_file(&ws, "radius.secret", SECRET);
    let port = free_port();
    let identity = format!(
        "[identity.radius]\nlisten = \"127.0.0.1:{port}\"\nsecret_file = \"radius.secret\"\n\
         clients = [\"127.0.0.1/32\"]\nrealms = [\"SCHOOL\", \"school.example\"]\n[identity.people]\ncsv = \"people.csv\"\n"
    );
    let proxy = start(ws, smtp.port, &identity);

    // Before any accounting, the device is only its network.
    assert_eq!(proxy.search("127.0.0.5", "maths homework", None), 200);
    let e = proxy.event_of("maths homework");
    assert_eq!(
        (e["identified_by"].as_str(), e["user"].as_str()),
        (Some("network"), None)
    );

    // The Wi-Fi controller reports Amy's session on 127.0.0.5.
    let start_amy = format!(
        "Acct-Status-Type = Start, User-Name = \"SCHOOL\\\\Amy.Pupil\", \
         Framed-IP-Address = 127.0.0.5, Calling-Station-Id = \"AA-BB-CC-00-00-05\", \
         Acct-Session-Id = \"s1\", Event-Timestamp = {}\n",
        now()
    );
    assert!(radclient(port, SECRET, &start_amy), "{}", proxy.log());
    assert_eq!(proxy.search("127.0.0.5", "how to self harm", None), 403);
    let e = proxy.event_of("how to self harm");
    assert_eq!(e["identified_by"], "radius", "{e}");
    assert_eq!(e["user"], "amy.pupil");
    assert_eq!(e["person"], "Amy Pupil, Year 9, 9B");
    assert_eq!(e["role"], "pupil");
    // The DSL's email names the pupil, not the address.
    let mail = alert_mail(&smtp);
    assert!(
        mail.text
            .contains("Amy Pupil, Year 9, 9B (amy.pupil, pupil), on device 127.0.0.5"),
        "{}",
        mail.text
    );
    assert!(
        mail.subject.contains("Amy Pupil, Year 9, 9B"),
        "{}",
        mail.subject
    );

    // A wrong secret: dropped unanswered, logged, counted; the device is not renamed.
    let start_tess = format!(
        "Acct-Status-Type = Start, User-Name = \"tess.teacher\", \
         Framed-IP-Address = 127.0.0.5, Event-Timestamp = {}\n",
        now()
    );
    assert!(!radclient(port, "a-guess", &start_tess));
    assert!(
        proxy.log().contains("does not match the shared secret"),
        "{}",
        proxy.log()
    );
    assert!(proxy.metric("gatehouse_radius_packets_total{outcome=\"bad-secret\"}") >= 1.0);
    assert_eq!(proxy.search("127.0.0.5", "geography", None), 200);
    assert_eq!(proxy.event_of("geography")["user"], "amy.pupil");

    // A Start replayed from an hour ago names no one (its Event-Timestamp is stale).
    let replayed = format!(
        "Acct-Status-Type = Start, User-Name = \"tess.teacher\", \
         Framed-IP-Address = 127.0.0.6, Event-Timestamp = {}\n",
        now() - 3600
    );
    assert!(!radclient(port, SECRET, &replayed));
    assert_eq!(proxy.search("127.0.0.6", "history", None), 200);
    assert_eq!(proxy.event_of("history")["identified_by"], "network");

    // A leaver's session names no one either.
    let ben = format!(
        "Acct-Status-Type = Start, User-Name = \"ben.leaver@school.example\", \
         Framed-IP-Address = 127.0.0.7, Event-Timestamp = {}\n",
        now()
    );
    assert!(radclient(port, SECRET, &ben));
    assert_eq!(proxy.search("127.0.0.7", "chemistry", None), 200);
    assert_eq!(proxy.event_of("chemistry")["identified_by"], "network");

    // Amy's Stop: the device is only its network again.
    let stop_amy = format!(
        "Acct-Status-Type = Stop, User-Name = \"SCHOOL\\\\Amy.Pupil\", \
         Framed-IP-Address = 127.0.0.5, Event-Timestamp = {}\n",
        now()
    );
    assert!(radclient(port, SECRET, &stop_amy));
    assert_eq!(proxy.search("127.0.0.5", "physics", None), 200);
    let e = proxy.event_of("physics");
    assert_eq!(
        (e["identified_by"].as_str(), e["user"].as_str()),
        (Some("network"), None)
    );

    // A teacher's session, then the controller restarts (Accounting-On): cleared.
    let tess = format!(
        "Acct-Status-Type = Interim-Update, User-Name = \"tess.teacher\", \
         Framed-IP-Address = 127.0.0.8, Event-Timestamp = {}\n",
        now()
    );
    assert!(radclient(port, SECRET, &tess));
    assert_eq!(
        proxy.search("127.0.0.8", "self harm lesson plan", None),
        200
    );
    let e = proxy.event_of("self harm lesson plan");
    // The people table's role, not the network's: a teacher on the pupils' Wi-Fi.
    assert_eq!(
        (e["role"].as_str(), e["person"].as_str()),
        (Some("staff"), Some("Tess Teacher"))
    );
    assert!(radclient(
        port,
        SECRET,
        &format!(
            "Acct-Status-Type = Accounting-On, Event-Timestamp = {}\n",
            now()
        )
    ));
    assert_eq!(proxy.search("127.0.0.8", "biology", None), 200);
    assert_eq!(proxy.event_of("biology")["role"], "pupil");
    assert!(proxy.metric("gatehouse_radius_packets_total{outcome=\"bound\"}") >= 2.0);
}

#[test]
fn a_radius_secret_others_can_read_is_refused_at_start() {
    let ws = Workspace::new();
    let path = ws.write("radius.secret", SECRET.as_bytes());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = ws.config(&format!(
        "[[network]]\ncidr = \"127.0.0.0/24\"\nrole = \"pupil\"\n[roles.pupil]\ndefault = \"allow\"\n\
         [identity.radius]\nlisten = \"127.0.0.1:{}\"\nsecret_file = \"radius.secret\"\n\
         clients = [\"127.0.0.1/32\"]\n[proxy]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n",
        free_port(),
        ws.path("data").display().to_string()
    ));
    let out = common::gatehouse()
        .args(["run", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains("[identity.radius] secret_file") && err.contains("chmod 600"),
        "{err}"
    );
}

// ---- LDAP ----------------------------------------------------------------------------

/// A throw-away OpenLDAP server on 127.0.0.1 with StartTLS (a CA made here), holding a
/// small school: staff and year-group groups, the year groups inside a pupils group.
struct Slapd {
    child: Option<Child>,
    port: u16,
    conf: std::path::PathBuf,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Slapd {
    fn start(ws: &Workspace) -> Slapd {
        let dir = ws.path("slapd");
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=School CA",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        let conf = dir.join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 modulepath /usr/lib/ldap\nmoduleload back_mdb\n\
                 pidfile {d}/slapd.pid\n\
                 TLSCACertificateFile {d}/ca.pem\nTLSCertificateFile {d}/server.pem\n\
                 TLSCertificateKeyFile {d}/server.key\n\
                 database mdb\nsuffix \"dc=school,dc=test\"\nrootdn \"cn=admin,dc=school,dc=test\"\n\
                 rootpw admin-pw\ndirectory {d}/db\nmaxsize 10485760\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let person = |uid: &str, name: &str, year: &str, form: &str, pw: &str| {
            format!(
                "dn: uid={uid},ou=people,dc=school,dc=test\nobjectClass: inetOrgPerson\n\
                 uid: {uid}\ncn: {name}\nsn: {}\ndisplayName: {name}\n{year}{form}userPassword: {pw}\n\n",
                name.split(' ').next_back().unwrap(),
                year = if year.is_empty() { String::new() } else { format!("departmentNumber: {year}\n") },
                form = if form.is_empty() { String::new() } else { format!("ou: {form}\n") },
            )
        };
        let group = |cn: &str, members: &[&str]| {
            let mut g = format!(
                "dn: cn={cn},ou=groups,dc=school,dc=test\nobjectClass: groupOfNames\ncn: {cn}\n"
            );
            for m in members {
                g.push_str(&format!("member: {m}\n"));
            }
            g.push('\n');
            g
        };
        let mut ldif = String::from(
            "dn: dc=school,dc=test\nobjectClass: dcObject\nobjectClass: organization\ndc: school\no: Test School\n\n\
             dn: ou=people,dc=school,dc=test\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: ou=groups,dc=school,dc=test\nobjectClass: organizationalUnit\nou: groups\n\n\
             dn: cn=gatehouse,dc=school,dc=test\nobjectClass: person\ncn: gatehouse\nsn: service\nuserPassword: service-pw\n\n",
        );
        ldif.push_str(&person("amy", "Amy Pupil", "9", "9B", "amy-pw-123"));
        ldif.push_str(&person("carl", "Carl Pupil", "10", "10A", "carl-pw-123"));
        ldif.push_str(&person("tess", "Tess Teacher", "", "", "tess-pw-123"));
        ldif.push_str(&person("nobody", "No Groups", "", "", "nobody-pw-123"));
        ldif.push_str(&group("year9", &["uid=amy,ou=people,dc=school,dc=test"]));
        ldif.push_str(&group("year10", &["uid=carl,ou=people,dc=school,dc=test"]));
        ldif.push_str(&group(
            "pupils",
            &[
                "cn=year9,ou=groups,dc=school,dc=test",
                "cn=year10,ou=groups,dc=school,dc=test",
            ],
        ));
        ldif.push_str(&group("staff", &["uid=tess,ou=people,dc=school,dc=test"]));
        std::fs::write(dir.join("school.ldif"), ldif).unwrap();
        let out = Command::new("/usr/sbin/slapadd")
            .args(["-f", conf.to_str().unwrap(), "-l"])
            .arg(dir.join("school.ldif"))
            .output()
            .expect("slapadd (Debian slapd)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut slapd = Slapd {
            child: None,
            port: free_port(),
            conf,
        };
        slapd.start_again();
        slapd
    }

    fn start_again(&mut self) {
        let child = Command::new("/usr/sbin/slapd")
            .args(["-d", "0", "-h", &format!("ldap://127.0.0.1:{}/", self.port)])
            .args(["-f", self.conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let port = self.port;
        wait_for(15, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .expect("slapd listens");
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn ldap_identity(ws: &Workspace, port: u16, cache_minutes: u32) -> String {
    secret_file(ws, "ldap.secret", "service-pw\n");
    std::fs::copy(ws.path("slapd/ca.pem"), ws.path("school-ca.pem")).unwrap();
    format!(
        r#"
[identity.ldap]
url = "ldap://localhost:{port}"
starttls = true
ca = "school-ca.pem"
bind_dn = "cn=gatehouse,dc=school,dc=test"
bind_password_file = "ldap.secret"
base_dn = "dc=school,dc=test"
user_filter = "(&(objectClass=inetOrgPerson)(uid={{user}}))"
year_attribute = "departmentNumber"
form_attribute = "ou"
cache_minutes = {cache_minutes}
timeout_secs = 3
roles = [
  {{ group = "cn=staff,ou=groups,dc=school,dc=test", role = "staff", site = "upper" }},
  {{ group = "CN=Pupils, OU=Groups, DC=school, DC=test", role = "pupil" }},
]
"#
    )
}

#[test]
fn proxy_logins_are_checked_with_the_directory_and_its_groups_give_the_role() {
    let smtp = servers::Smtp::start();
    let ws = Workspace::new();
    let slapd = Slapd::start(&ws);
    let identity = ldap_identity(&ws, slapd.port, 10);
    let proxy = start(ws, smtp.port, &identity);
    let from = "127.0.1.5";

    // Amy is in year9, which is inside pupils: a pupil, named from her attributes.
    assert_eq!(
        proxy.search(from, "how to self harm", Some("amy:amy-pw-123")),
        403
    );
    let e = proxy.event_of("how to self harm");
    assert_eq!(e["identified_by"], "ldap", "{e}");
    assert_eq!(e["user"], "amy");
    assert_eq!(e["role"], "pupil");
    assert_eq!(e["person"], "Amy Pupil, Year 9, 9B");
    let mail = alert_mail(&smtp);
    assert!(
        mail.text.contains("Amy Pupil, Year 9, 9B (amy, pupil)"),
        "{}",
        mail.text
    );

    // Tess is staff: her lesson planning is logged, not blocked.
    assert_eq!(
        proxy.search(from, "self harm lesson plan", Some("TESS:tess-pw-123")),
        200
    );
    let e = proxy.event_of("self harm lesson plan");
    assert_eq!(
        (e["role"].as_str(), e["user"].as_str()),
        (Some("staff"), Some("tess"))
    );
    // Her group gives her site; Amy's gives none, so hers is the network's.
    assert_eq!(e["site"], "upper");
    assert_eq!(proxy.event_of("how to self harm")["site"], "main");

    // Refused: a wrong password, an empty one, a name that is a filter, someone in no
    // group that gives a role.
    for login in [
        "amy:wrong-password",
        "amy:",
        "*:amy-pw-123",
        "amy*:amy-pw-123",
        "*)(uid=*:amy-pw-123",
        "amy)(|(uid=*:amy-pw-123",
        "cn=admin,dc=school,dc=test:admin-pw",
    ] {
        assert_eq!(proxy.search(from, "spelling", Some(login)), 407, "{login}");
    }
    assert_eq!(
        proxy.search(from, "spelling", Some("nobody:nobody-pw-123")),
        403
    );
    assert!(proxy.metric("gatehouse_refused_total{reason=\"login-role\"}") >= 1.0);
    assert_eq!(proxy.metric("gatehouse_directory_up"), 1.0);
}

#[test]
fn with_the_directory_down_known_people_carry_on_and_new_ones_are_told_why() {
    let smtp = servers::Smtp::start();
    let ws = Workspace::new();
    let mut slapd = Slapd::start(&ws);
    // Every login asks the directory: the down path is the one taken.
    let identity = ldap_identity(&ws, slapd.port, 0);
    let proxy = start(ws, smtp.port, &identity);
    let from = "127.0.1.6";
    assert_eq!(proxy.search(from, "algebra", Some("amy:amy-pw-123")), 200);

    slapd.stop();
    assert_eq!(proxy.search(from, "geometry", Some("amy:amy-pw-123")), 200);
    let e = proxy.event_of("geometry");
    assert_eq!(
        (e["user"].as_str(), e["role"].as_str()),
        (Some("amy"), Some("pupil"))
    );
    assert_eq!(proxy.metric("gatehouse_directory_up"), 0.0);
    assert!(proxy.metric("gatehouse_directory_stale_logins_total") >= 1.0);
    // Someone not known before: a page that says the directory is down.
    assert_eq!(
        proxy.search(from, "geometry", Some("carl:carl-pw-123")),
        503
    );
    // A wrong password for a known person is not let through by the cache.
    assert_eq!(proxy.search(from, "geometry", Some("amy:amy-guess")), 503);
    assert!(
        proxy.log().contains("the directory could not be reached"),
        "{}",
        proxy.log()
    );
    // Everyone else is served: the pupils' network needs no login.
    assert_eq!(proxy.search("127.0.0.9", "geometry", None), 200);

    slapd.start_again();
    assert_eq!(
        proxy.search(from, "trigonometry", Some("carl:carl-pw-123")),
        200
    );
    assert_eq!(proxy.metric("gatehouse_directory_up"), 1.0);
}

#[test]
fn the_people_table_is_read_from_the_directory_with_roles_from_nested_groups() {
    let smtp = servers::Smtp::start();
    let ws = Workspace::new();
    let slapd = Slapd::start(&ws);
    secret_file(&ws, "radius.secret", SECRET);
    let port = free_port();
    let identity = format!(
        "{}people_filter = \"(objectClass=inetOrgPerson)\"\naccount_attribute = \"uid\"\n\
         [identity.radius]\nlisten = \"127.0.0.1:{port}\"\nsecret_file = \"radius.secret\"\n\
         clients = [\"127.0.0.1/32\"]\n",
        ldap_identity(&ws, slapd.port, 10)
    );
    let proxy = start(ws, smtp.port, &identity);
    // The sync runs at start: four people (the service account is not an inetOrgPerson).
    wait_for(20, || {
        (proxy.metric("gatehouse_people ") == 4.0).then_some(())
    })
    .unwrap_or_else(|| panic!("no sync: {}", proxy.log()));
    assert_eq!(
        proxy.metric("gatehouse_directory_syncs_total{outcome=\"ok\"}"),
        1.0
    );

    // Carl on the Wi-Fi: named, and a pupil through year10 inside pupils.
    let carl = format!(
        "Acct-Status-Type = Start, User-Name = \"carl\", Framed-IP-Address = 127.0.0.20, \
         Event-Timestamp = {}\n",
        now()
    );
    assert!(radclient(port, SECRET, &carl));
    assert_eq!(proxy.search("127.0.0.20", "volcanoes", None), 200);
    let e = proxy.event_of("volcanoes");
    assert_eq!(e["person"], "Carl Pupil, Year 10, 10A", "{e}");
    assert_eq!(
        (e["role"].as_str(), e["identified_by"].as_str()),
        (Some("pupil"), Some("radius"))
    );

    // `gatehouse people` reads the same table and finds people by name.
    let out = common::gatehouse()
        .args(["people", "--config"])
        .arg(proxy.ws.path("gatehouse.toml"))
        .args(["--find", "teacher"])
        .output()
        .unwrap();
    let text = common::stdout(&out);
    assert!(
        text.starts_with("4 people (0 leavers)"),
        "{text}{}",
        common::stderr(&out)
    );
    assert!(text.contains("tess\tTess Teacher\tstaff"), "{text}");
}

/// Posts the admin page's sign-in form (plain HTTP on loopback): the status and the page.
fn admin_sign_in(admin: &str, name: &str, password: &str) -> (u16, String) {
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let login = client.get(format!("{admin}/login")).send().unwrap();
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("gatehouse-login="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .unwrap();
    let body = login.text().unwrap();
    let marker = "name=\"csrf\" value=\"";
    let csrf = body[body.find(marker).unwrap() + marker.len()..]
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let res = client
        .post(format!("{admin}/login"))
        .header("cookie", format!("gatehouse-login={cookie}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", name),
            ("password", password),
            ("next", "/"),
        ])
        .send()
        .unwrap();
    (res.status().as_u16(), res.text().unwrap_or_default())
}

#[test]
fn the_admin_page_signs_in_staff_through_the_directory_by_group() {
    let smtp = servers::Smtp::start();
    let ws = Workspace::new();
    let slapd = Slapd::start(&ws);
    let identity = ldap_identity(&ws, slapd.port, 10)
        + "[admin]\nlisten = \"127.0.0.1:0\"\ntls = \"none\"\n\
           directory_roles = [{ group = \"cn=staff,ou=groups,dc=school,dc=test\", role = \"dsl\" }]\n";
    let proxy = start(ws, smtp.port, &identity);
    let admin = proxy.admin.clone().expect("the admin page");
    let admin = admin.trim_end_matches('/');

    // Tess is in the staff group: she signs in with her school password, as the DSL.
    let (status, _) = admin_sign_in(admin, "tess", "tess-pw-123");
    assert_eq!(status, 303);
    // Amy's password is right, but no group lets her in: told as a wrong password, so
    // the page never confirms a pupil's password. Wrong passwords and filters fail too.
    let (status, page) = admin_sign_in(admin, "amy", "amy-pw-123");
    assert_eq!(status, 401);
    assert!(page.contains("do not match"), "{page}");
    for (name, password) in [
        ("tess", "wrong-password"),
        ("tess", ""),
        ("*", "tess-pw-123"),
        ("*)(uid=*", "tess-pw-123"),
        ("cn=admin,dc=school,dc=test", "admin-pw"),
    ] {
        let (status, page) = admin_sign_in(admin, name, password);
        assert_eq!(status, 401, "{name}");
        assert!(page.contains("do not match"), "{name}: {page}");
    }
    // Never cached: with the directory down, no one signs in through it, and says why.
    let mut slapd = slapd;
    slapd.stop();
    let (status, page) = admin_sign_in(admin, "tess", "tess-pw-123");
    assert_eq!(status, 401);
    assert!(page.contains("cannot be reached"), "{page}");
}

#[test]
fn a_tunnel_open_when_the_wifi_gives_the_address_to_someone_else_names_who_is_there_now() {
    use std::io::{BufRead as _, BufReader};
    let smtp = servers::Smtp::start();
    let ws = Workspace::new();
    ws.write("people.csv", PEOPLE.as_bytes());
    secret_file(&ws, "radius.secret", SECRET);
    let port = free_port();
    let identity = format!(
        "[identity.radius]\nlisten = \"127.0.0.1:{port}\"\nsecret_file = \"radius.secret\"\n\
         clients = [\"127.0.0.1/32\"]\n[identity.people]\ncsv = \"people.csv\"\n"
    );
    let proxy = start(ws, smtp.port, &identity);
    let session = |status: &str, user: &str, id: &str| {
        format!(
            "Acct-Status-Type = {status}, User-Name = \"{user}\", Framed-IP-Address = 127.0.0.9, \
             Acct-Session-Id = \"{id}\", Event-Timestamp = {}\n",
            now()
        )
    };
    assert!(radclient(
        port,
        SECRET,
        &session("Start", "amy.pupil", "a1")
    ));

    // One intercepted HTTPS connection, kept open across the hand-over.
    let (host, proxy_port) = proxy.proxy.rsplit_once(':').unwrap();
    let script = format!(
        "import http.client, ssl, sys\n\
         c = http.client.HTTPSConnection({host:?}, {proxy_port}, context=ssl._create_unverified_context(), \
         source_address=('127.0.0.9', 0), timeout=20)\n\
         c.set_tunnel('www.google.com', 443)\n\
         for q in ['how+to+self+harm', 'self+harm+lesson+plan']:\n\
         \x20   c.request('GET', '/search?q=' + q)\n\
         \x20   r = c.getresponse(); r.read(); print(r.status, flush=True)\n\
         \x20   sys.stdin.readline()\n"
    );
    let mut python = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_python = python.stdin.take().unwrap();
    let mut from_python = BufReader::new(python.stdout.take().unwrap());
    let mut line = String::new();
    from_python.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "403", "Amy's search is blocked");
    let e = proxy.event_of("how to self harm");
    assert_eq!(e["user"], "amy.pupil", "{e}");

    // Amy leaves; Tess's laptop gets the address. The open tunnel is now hers.
    assert!(radclient(port, SECRET, &session("Stop", "amy.pupil", "a1")));
    assert!(radclient(
        port,
        SECRET,
        &session("Start", "tess.teacher", "t1")
    ));
    to_python.write_all(b"\n").unwrap();
    line.clear();
    from_python.read_line(&mut line).unwrap();
    to_python.write_all(b"\n").unwrap();
    let _ = python.wait();
    let e = proxy.event_of("self harm lesson plan");
    assert_eq!(e["user"], "tess.teacher", "{e}");
    assert_eq!(e["role"], "staff", "{e}");
    assert_eq!(e["person"], "Tess Teacher", "{e}");
}
