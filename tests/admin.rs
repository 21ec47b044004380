//! End-to-end tests of the admin page inside `gatehouse run`: its TLS certificate from the
//! CA, review requests sent from a block page through the proxy, guest vouchers used as proxy
//! logins, the IT/DSL/viewer flows in headless Chromium (playwright-core), and `/metrics`
//! parsed by Prometheus's own `promtool` while it moves under load.
//!
//! Roles come from the client's source address: 127.0.0.1 is a pupil, 127.0.0.4 the guest
//! network where a login (a voucher) is required.

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
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

const PASSWORD: &str = "correct horse battery staple";
/// A games site from the UT1 list, pinned to the test origin on 127.0.0.1.
const GAMES_HOST: &str = "007arcadegames.com";

/// An origin that answers every request with 200 and a short body.
fn origin() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(5000) {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let body = "hello from the origin";
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

struct Gatehouse {
    child: Child,
    /// The RADIUS accounting port (secret `admin-test-secret`).
    radius: u16,
    proxy: String,
    admin: String,
    metrics: String,
    origin: u16,
    data: std::path::PathBuf,
    _ws: Workspace,
}

impl Drop for Gatehouse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Gatehouse {
    let origin = origin();
    let ws = Workspace::new();
    let data = ws.path("data");
    let radius = servers::free_port();
    ws.write(
        "people.csv",
        b"account,name,year,form,role,left\namy,Amy Pupil,9,9B,pupil,\nbob,Bob Former,11,11C,pupil,2020-07-20\n",
    );
    let secret = ws.write("radius.secret", b"admin-test-secret");
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let config = ws.config(&format!(
        r#"
[[network]]
cidr = "127.0.0.1/32"
role = "pupil"
[[network]]
cidr = "127.0.0.4/32"
role = "guest"
login = true
[[source]]
format = "domains"
path = "ut1/games/domains"
category = "games"
[themes.self-harm]
file = "themes/self-harm/en.txt"
[roles.pupil]
default = "allow"
[roles.pupil.themes]
self-harm = {{ action = "block", alert = "high" }}
[roles.staff]
default = "allow"
[roles.guest]
default = "allow"
decrypt_https = false
[proxy]
listen = "127.0.0.1:0"
data_dir = {data:?}
allow_loopback_origins = true
hosts = {{ "{GAMES_HOST}" = "127.0.0.1" }}
metrics_listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
tls = "ca"
[identity.people]
csv = "people.csv"
[identity.radius]
listen = "127.0.0.1:{radius}"
secret_file = "radius.secret"
clients = ["127.0.0.1/32"]
"#,
        data = data.display().to_string()
    ));
    let config_arg = config.to_str().unwrap();
    for (name, role) in [("ivy", "it"), ("dee", "dsl"), ("vic", "viewer")] {
        let out = common::run(
            &["admin", "add", "--config", config_arg, "--role", role, name],
            &format!("{PASSWORD}\n"),
        );
        assert!(
            out.status.success(),
            "admin add {name}: {}",
            common::stderr(&out)
        );
    }
    let started = common::spawn_gatehouse(&config);
    Gatehouse {
        child: started.child,
        radius,
        proxy: started.proxy,
        admin: started
            .admin
            .expect("the admin page listens")
            .trim_end_matches('/')
            .to_owned(),
        metrics: started.metrics.expect("metrics are served"),
        origin,
        data,
        _ws: ws,
    }
}

/// curl through the proxy from `source`; returns (status, body).
fn curl(g: &Gatehouse, source: &str, extra: &[&str], url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "20",
            "-w",
            "\n%{http_code}",
            "-x",
            &format!("http://{}", g.proxy),
            "--interface",
            source,
        ])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// A signed-in admin session over HTTPS, trusting only the filtering CA.
struct AdminClient {
    base: String,
    client: reqwest::blocking::Client,
    cookie: String,
    csrf: String,
}

fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .map(|i| i + marker.len())
        .unwrap_or_else(|| panic!("no {name} in {body}"));
    body[start..].split('"').next().unwrap().to_owned()
}

fn set_cookie(res: &reqwest::blocking::Response, name: &str) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

impl AdminClient {
    /// Posts the sign-in form: the client and the response.
    fn try_sign_in(
        g: &Gatehouse,
        name: &str,
    ) -> (reqwest::blocking::Client, reqwest::blocking::Response) {
        AdminClient::try_sign_in_with(g, name, PASSWORD, "")
    }

    /// Posts the sign-in form with a password and a second-factor code.
    fn try_sign_in_with(
        g: &Gatehouse,
        name: &str,
        password: &str,
        code: &str,
    ) -> (reqwest::blocking::Client, reqwest::blocking::Response) {
        let ca = std::fs::read(g.data.join("ca.pem")).unwrap();
        let client = reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .tls_built_in_root_certs(false)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap();
        let login = client.get(format!("{}/login", g.admin)).send().unwrap();
        let login_cookie = set_cookie(&login, "__Host-gatehouse-login");
        let csrf = hidden(&login.text().unwrap(), "csrf");
        let res = client
            .post(format!("{}/login", g.admin))
            .header("cookie", format!("__Host-gatehouse-login={login_cookie}"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", name),
                ("password", password),
                ("code", code),
                ("next", "/"),
            ])
            .send()
            .unwrap();
        (client, res)
    }

    fn sign_in(g: &Gatehouse, name: &str) -> AdminClient {
        let (client, res) = AdminClient::try_sign_in(g, name);
        assert_eq!(res.status(), 303, "sign in as {name}");
        let cookie = set_cookie(&res, "__Host-gatehouse");
        let home = client
            .get(format!("{}/", g.admin))
            .header("cookie", format!("__Host-gatehouse={cookie}"))
            .send()
            .unwrap();
        let csrf = hidden(&home.text().unwrap(), "csrf");
        AdminClient {
            base: g.admin.clone(),
            client,
            cookie,
            csrf,
        }
    }
    fn get(&self, path: &str) -> (u16, String) {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", format!("__Host-gatehouse={}", self.cookie))
            .send()
            .unwrap();
        (res.status().as_u16(), res.text().unwrap())
    }
    fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", format!("__Host-gatehouse={}", self.cookie))
            .form(&all)
            .send()
            .unwrap();
        (res.status().as_u16(), res.text().unwrap())
    }
}

#[test]
fn the_admin_page_is_served_over_tls_with_a_certificate_from_the_ca() {
    let g = start();
    let ca = g.data.join("ca.pem");
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "20",
            "--noproxy",
            "*",
            "--cacert",
            ca.to_str().unwrap(),
            "-w",
            "\n%{http_code}",
        ])
        .arg(format!("{}/setup", g.admin))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.ends_with("\n200"),
        "curl verified the admin page's certificate: {text}"
    );
    assert!(text.contains("Download the certificate"));
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "20",
            "--noproxy",
            "*",
            "--cacert",
            ca.to_str().unwrap(),
        ])
        .arg(format!("{}/setup/ca.pem", g.admin))
        .output()
        .unwrap();
    assert_eq!(
        out.stdout,
        std::fs::read(&ca).unwrap(),
        "the set-up page serves the CA"
    );
    // Plain HTTP on the TLS port gets nowhere.
    let plain = g.admin.replace("https://", "http://");
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            "--noproxy",
            "*",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("{plain}/login"))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&out.stdout), "200");
}

#[test]
fn a_block_page_sends_a_review_request_that_it_approves() {
    let g = start();
    let admin = AdminClient::sign_in(&g, "ivy");
    let (code, _) = admin.post("/policy/grid", &[("cell:pupil:games", "block")]);
    assert_eq!(code, 303);
    let url = format!("http://{GAMES_HOST}:{}/maths-game", g.origin);
    let (code, page) = curl(&g, "127.0.0.1", &[], &url);
    assert_eq!(code, 403, "games blocked for pupils: {page}");
    assert!(
        page.contains("action=\"/.gatehouse/review\""),
        "the block page has a review form: {page}"
    );
    let request_id = hidden(&page, "request_id");
    // The pupil sends the form (the same origin as the block page, answered by the proxy).
    let review_url = format!("http://{GAMES_HOST}:{}/.gatehouse/review", g.origin);
    let form = format!(
        "url={}&request_id={request_id}&reason=Maths+homework+game",
        url.replace(':', "%3A").replace('/', "%2F")
    );
    let (code, body) = curl(&g, "127.0.0.1", &["--data", &form], &review_url);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Your request was sent to the IT team"));
    let (code, body) = curl(&g, "127.0.0.1", &["--data", "url=x&reason="], &review_url);
    assert_eq!(code, 400, "a request without a reason is refused: {body}");
    let (_, queue) = admin.get("/reviews");
    assert!(
        queue.contains("Maths homework game") && queue.contains(&request_id),
        "{queue}"
    );
    assert!(queue.contains("127.0.0.1"), "the proxy recorded who asked");
    let id = queue
        .split("action=\"/reviews/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let (code, body) = admin.post(
        &format!("/reviews/{id}"),
        &[
            ("decision", "approve"),
            ("role", "pupil"),
            ("duration", "1h"),
            ("scope", "host"),
        ],
    );
    assert_eq!(code, 303, "{body}");
    let (code, body) = curl(&g, "127.0.0.1", &[], &url);
    assert_eq!(
        (code, body.as_str()),
        (200, "hello from the origin"),
        "approved for pupils"
    );
}

#[test]
fn a_guest_signs_in_to_the_proxy_with_a_voucher_made_on_the_admin_page() {
    let g = start();
    let url = format!("http://{GAMES_HOST}:{}/", g.origin);
    let (code, _) = curl(&g, "127.0.0.4", &[], &url);
    assert_eq!(code, 407, "the guest network needs a login");
    let admin = AdminClient::sign_in(&g, "ivy");
    let (code, page) = admin.post(
        "/guests",
        &[
            ("count", "1"),
            ("hours", "4"),
            ("role", "guest"),
            ("note", "Visiting speaker"),
        ],
    );
    assert_eq!(code, 200, "{page}");
    let name = page
        .split("class=\"voucher-name\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let code_text = page
        .split("class=\"voucher-code\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let login = format!("{name}:{code_text}");
    let (code, body) = curl(&g, "127.0.0.4", &["--proxy-user", &login], &url);
    assert_eq!(
        (code, body.as_str()),
        (200, "hello from the origin"),
        "the voucher is a proxy login"
    );
    let (code, _) = curl(
        &g,
        "127.0.0.4",
        &["--proxy-user", &format!("{name}:WRONG-WRONG")],
        &url,
    );
    assert_eq!(code, 407);
    let (code, _) = admin.post(&format!("/guests/{name}/revoke"), &[]);
    assert_eq!(code, 303);
    let (code, _) = curl(&g, "127.0.0.4", &["--proxy-user", &login], &url);
    assert_eq!(code, 407, "a revoked voucher no longer logs in");
    // The guest's requests are logged under the voucher's name.
    let (_, logs) = admin.get(&format!("/logs?user={name}"));
    assert!(logs.contains(&name), "{logs}");
}

/// The browser flows of the issue: IT blocks games for pupils (and a pupil is then blocked by
/// the running proxy, and the change is in the audit trail); the DSL resolves the alert of a
/// pupil's search with a note; a viewer can change nothing. Screenshots of each page are kept
/// in `target/e2e-screenshots/`.
#[test]
fn it_dsl_and_viewer_flows_in_a_real_browser() {
    let e2e = common::repo().join("tests/e2e");
    assert!(
        e2e.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm install` in tests/e2e (scripts/test.sh does)"
    );
    let g = start();
    // A pupil's search raises an alert before the block page is sent.
    let (code, page) = curl(
        &g,
        "127.0.0.1",
        &[],
        "http://www.google.com/search?q=how+to+self+harm",
    );
    assert_eq!(code, 403, "{page}");
    let url = format!("http://{GAMES_HOST}:{}/", g.origin);
    let (code, _) = curl(&g, "127.0.0.1", &[], &url);
    assert_eq!(code, 200, "games allowed for pupils before the change");
    let shots = common::repo().join("target/e2e-screenshots");
    let mut node = Command::new("node")
        .arg(e2e.join("admin.mjs"))
        .env("ADMIN_URL", &g.admin)
        .env("PASSWORD", PASSWORD)
        .env("GAMES_URL", &url)
        .env("SHOTS", &shots)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    let status = loop {
        if let Some(status) = node.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = node.kill();
            panic!("the browser test did not finish in 240 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let out = node.wait_with_output().unwrap();
    assert!(
        status.success(),
        "browser flows failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The change made in the browser is in force in the running proxy.
    let (code, page) = curl(&g, "127.0.0.1", &[], &url);
    assert_eq!(
        code, 403,
        "games blocked for pupils after the change: {page}"
    );
    assert!(page.contains("games"), "{page}");
    for name in [
        "01-overview",
        "03-policy-after",
        "05-audit",
        "12-alert",
        "13-alert-resolved",
        "14-viewer-policy",
    ] {
        assert!(
            shots.join(format!("{name}.png")).is_file(),
            "screenshot {name}"
        );
    }
}

fn promtool_check(text: &str) -> std::process::Output {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package) runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn counter(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name_and_labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn metrics_parse_with_promtool_and_move_under_load() {
    let g = start();
    let get = || {
        reqwest::blocking::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(&g.metrics)
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    let before = get();
    let out = promtool_check(&before);
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A bounded load: 300 requests on keep-alive connections, some blocked.
    let url = format!("http://{GAMES_HOST}:{}/", g.origin);
    let urls: Vec<String> = (0..100).map(|_| url.clone()).collect();
    for _ in 0..3 {
        let out = Command::new("curl")
            .args([
                "-s",
                "--max-time",
                "60",
                "-o",
                "/dev/null",
                "-x",
                &format!("http://{}", g.proxy),
            ])
            .args(&urls)
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    for _ in 0..5 {
        curl(
            &g,
            "127.0.0.1",
            &[],
            "http://www.google.com/search?q=self+harm",
        );
    }
    let after = get();
    let out = promtool_check(&after);
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = |t: &str| counter(t, "gatehouse_requests_total{");
    assert!(
        requests(&after) >= requests(&before) + 305.0,
        "requests counted: {} -> {}",
        requests(&before),
        requests(&after)
    );
    assert!(
        counter(
            &after,
            "gatehouse_requests_total{role=\"pupil\",verdict=\"block\"}"
        ) >= 5.0
            || counter(
                &after,
                "gatehouse_requests_total{verdict=\"block\",role=\"pupil\"}"
            ) >= 5.0,
        "{after}"
    );
    assert!(
        counter(&after, "gatehouse_alerts_total{")
            >= counter(&before, "gatehouse_alerts_total{") + 5.0
    );
    assert!(counter(&after, "gatehouse_upstream_seconds_count") >= 300.0);
}

#[test]
fn an_admin_account_disabled_or_removed_on_the_command_line_is_signed_out_and_cannot_sign_in() {
    let g = start();
    let config = g.data.parent().unwrap().join("gatehouse.toml");
    let admin = |args: &[&str]| {
        let mut all = vec!["admin", args[0], "--config", config.to_str().unwrap()];
        all.extend_from_slice(&args[1..]);
        let out = common::run(&all, "");
        (
            out.status.success(),
            common::stdout(&out) + &common::stderr(&out),
        )
    };
    let vic = AdminClient::sign_in(&g, "vic");
    assert_eq!(vic.get("/").0, 200);

    // Disabled: the open session ends at its next request, and signing in fails.
    assert_eq!(
        admin(&["disable", "vic"]),
        (true, "Admin account vic disabled.\n".into())
    );
    assert_eq!(vic.get("/").0, 303);
    assert_ne!(AdminClient::try_sign_in(&g, "vic").1.status(), 303);
    assert!(admin(&["list"]).1.contains("vic\tviewer\t"));
    assert!(admin(&["list"])
        .1
        .lines()
        .any(|l| l.starts_with("vic\t") && l.ends_with("\tdisabled")));
    // Enabled again: signs in.
    assert!(admin(&["enable", "vic"]).0);
    let vic = AdminClient::sign_in(&g, "vic");
    assert_eq!(vic.get("/").0, 200);

    // Removed: signed out, cannot sign in, gone from the list; an unknown name is an error.
    assert!(admin(&["remove", "vic"]).0);
    assert_eq!(vic.get("/").0, 303);
    assert_ne!(AdminClient::try_sign_in(&g, "vic").1.status(), 303);
    assert!(!admin(&["list"]).1.contains("vic"));
    let (ok, said) = admin(&["remove", "vic"]);
    assert!(
        !ok && said.contains("no admin account is called \"vic\""),
        "{said}"
    );

    // The audit trail says who did what.
    let ivy = AdminClient::sign_in(&g, "ivy");
    let (_, audit) = ivy.get("/audit");
    for action in ["account-disable", "account-enable", "account-remove"] {
        assert!(audit.contains(action), "{action} not in the audit trail");
    }
}

#[test]
fn it_and_the_dsl_find_people_by_name_and_see_who_is_on_which_device() {
    let g = start();
    // The Wi-Fi names Amy on 127.0.0.9.
    let mut radclient = Command::new("radclient")
        .args(["-r", "1", "-t", "2"])
        .arg(format!("127.0.0.1:{}", g.radius))
        .args(["acct", "admin-test-secret"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("radclient (freeradius-utils)");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    writeln!(
        radclient.stdin.take().unwrap(),
        "Acct-Status-Type = Start, User-Name = \"amy\", Framed-IP-Address = 127.0.0.9, \
         Calling-Station-Id = \"AA-BB-CC-00-00-09\", Event-Timestamp = {now}"
    )
    .unwrap();
    let out = radclient.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("Accounting-Response"));

    let dee = AdminClient::sign_in(&g, "dee");
    let (status, page) = dee.get("/people?q=amy");
    assert_eq!(status, 200);
    assert!(page.contains("Amy Pupil, Year 9, 9B"), "{page}");
    assert!(page.contains("<code>127.0.0.9</code>"), "{page}");
    assert!(page.contains("AA-BB-CC-00-00-09"), "{page}");
    // A leaver is found, and marked.
    let (_, page) = dee.get("/people?q=former");
    assert!(
        page.contains("Bob Former, Year 11, 11C") && page.contains(">left<"),
        "{page}"
    );
    // Markup in a search is shown as text, not run.
    let (_, page) = dee.get("/people?q=%3Cscript%3E");
    assert!(
        !page.contains("<script>") && page.contains("&lt;script&gt;"),
        "{page}"
    );
    // A viewer may not see people.
    let vic = AdminClient::sign_in(&g, "vic");
    assert_eq!(vic.get("/people?q=amy").0, 403);
}

/// The TOTP code for a base32 secret now, computed by Python's own HMAC (an implementation
/// independent of Gatehouse's).
fn totp_now(secret: &str) -> String {
    totp_at(secret, 0)
}

/// As [`totp_now`], `offset` seconds from now.
fn totp_at(secret: &str, offset: i64) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import hmac,hashlib,base64,struct,time,sys\n\
             s=sys.argv[1]; k=base64.b32decode(s+'='*(-len(s)%8))\n\
             h=hmac.new(k,struct.pack('>Q',(int(time.time())+int(sys.argv[2]))//30),hashlib.sha1).digest()\n\
             o=h[-1]&15\n\
             print('%06d'%((struct.unpack('>I',h[o:o+4])[0]&0x7fffffff)%1000000))",
            secret,
            &offset.to_string(),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_second_factor_is_asked_once_given_and_it_disables_and_removes_accounts_on_the_page() {
    let g = start();
    let config = g.data.parent().unwrap().join("gatehouse.toml");
    let out = common::run(
        &["admin", "totp", "--config", config.to_str().unwrap(), "dee"],
        "",
    );
    let said = common::stdout(&out);
    assert!(out.status.success(), "{said}{}", common::stderr(&out));
    let secret = said
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .unwrap()
        .to_owned();
    assert!(
        said.contains("otpauth://totp/Test%20School:dee?secret="),
        "{said}"
    );

    // The password alone, or with a wrong code, is not enough; with the code it is.
    assert_eq!(
        AdminClient::try_sign_in_with(&g, "dee", PASSWORD, "")
            .1
            .status(),
        401
    );
    assert_eq!(
        AdminClient::try_sign_in_with(&g, "dee", PASSWORD, "000000")
            .1
            .status(),
        401
    );
    let code = totp_now(&secret);
    let (_, res) = AdminClient::try_sign_in_with(&g, "dee", PASSWORD, &code);
    assert_eq!(res.status(), 303, "signed in with the code");
    // A code is good once: seen over a shoulder, it does not sign anyone in again.
    assert_eq!(
        AdminClient::try_sign_in_with(&g, "dee", PASSWORD, &code)
            .1
            .status(),
        401
    );
    // The right code with a wrong password is not enough either: the next step's code (good
    // for the drift allowed, not used yet) fails with a wrong password, then works with hers.
    let code = totp_at(&secret, 30);
    assert_eq!(
        AdminClient::try_sign_in_with(&g, "dee", "wrong-password-1", &code)
            .1
            .status(),
        401
    );
    assert_eq!(
        AdminClient::try_sign_in_with(&g, "DEE", PASSWORD, &code)
            .1
            .status(),
        303,
        "the unused next code, with the right password (and the name in capitals)"
    );
    // Accounts without one sign in as before.
    AdminClient::sign_in(&g, "vic");

    // IT lists the accounts, disables, enables and removes one; the DSL cannot.
    let ivy = AdminClient::sign_in(&g, "ivy");
    let (status, page) = ivy.get("/accounts");
    assert_eq!(status, 200);
    assert!(
        page.contains("<tr data-account=\"dee\"><td>dee</td><td>dsl</td><td>yes</td>"),
        "{page}"
    );
    let vic = AdminClient::sign_in(&g, "vic");
    assert_eq!(ivy.post("/accounts/vic/disable", &[]).0, 303);
    assert_eq!(vic.get("/").0, 303, "vic's session ended");
    assert_ne!(AdminClient::try_sign_in(&g, "vic").1.status(), 303);
    assert!(ivy.get("/accounts").1.contains("<td>disabled</td>"));
    assert_eq!(ivy.post("/accounts/vic/enable", &[]).0, 303);
    let vic = AdminClient::sign_in(&g, "vic");
    assert_eq!(
        vic.post("/accounts/ivy/disable", &[]).0,
        403,
        "a viewer cannot"
    );
    assert_eq!(
        ivy.post("/accounts/ivy/disable", &[]).0,
        403,
        "nor can IT disable itself"
    );
    assert_eq!(ivy.post("/accounts/vic/remove", &[]).0, 303);
    assert_eq!(vic.get("/").0, 303);
    assert!(!ivy.get("/accounts").1.contains("data-account=\"vic\""));
    assert_eq!(ivy.post("/accounts/vic/remove", &[]).0, 404);
    assert_eq!(ivy.post("/accounts/dee/delete-everything", &[]).0, 404);
    // Without the form's token, nothing happens.
    let res = ivy
        .client
        .post(format!("{}/accounts/dee/disable", ivy.base))
        .header("cookie", format!("__Host-gatehouse={}", ivy.cookie))
        .form(&[("csrf", "forged")])
        .send()
        .unwrap();
    assert_eq!(res.status(), 403);
    let (_, audit) = ivy.get("/audit");
    for action in [
        "account-totp",
        "account-disable",
        "account-enable",
        "account-remove",
    ] {
        assert!(audit.contains(action), "{action} not in the audit trail");
    }
}
