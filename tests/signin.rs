//! The sign-in page, end to end: npm's certified `oidc-provider` (tests/e2e/idp.mjs) as the
//! school's OpenID provider on 127.0.0.1, Gatehouse with `[identity.oidc]` on a network
//! marked `signin = true`, and Debian's Chromium (tests/e2e/signin.mjs) signing a pupil in
//! through the filter. The event and the DSL's alert name her; how she was identified is
//! recorded. Attacks with curl from other addresses: a forged state, a state carried to
//! another device, a callback replayed, a device that has not signed in trying plain HTTP,
//! decrypted HTTPS and a tunnel the filter does not decrypt.

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
use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Child, Command, Stdio};

const PORTAL: &str = "signin.school.test";
const CLIENT_SECRET: &str = "idp-client-s3cret-for-tests";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The provider on a free port, once it listens.
fn start_idp() -> (Killed, u16) {
    start_idp_for(&format!("https://{PORTAL}/signin/callback"))
}

/// The provider, with `redirects` (space-separated) as the client's redirect URIs.
fn start_idp_for(redirects: &str) -> (Killed, u16) {
    let port = free_port();
    let e2e = common::repo().join("tests/e2e");
    let mut provider = Command::new("node");
    provider
        .arg(e2e.join("idp.mjs"))
        .env("PORT", port.to_string())
        .env("REDIRECT", redirects)
        .env("CLIENT_SECRET", CLIENT_SECRET);
    (started(provider, "IdP ready"), port)
}

/// Starts `command` and waits for the line with `ready` on its stdout; the rest of its
/// output is read on (a provider that writes notices would fail if no one read them).
fn started(mut command: Command, ready: &str) -> Killed {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the provider starts");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains(ready), "the provider started: {line:?}");
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    });
    Killed(child)
}

struct Running {
    ws: Workspace,
    _proxy: Killed,
    proxy: String,
    metrics: String,
    google: u16,
}

fn start(smtp: u16, idp: u16) -> Running {
    start_with(smtp, idp, "", "")
}

/// As [`start`], with `oidc` added to `[identity.oidc]` and `more` (whole TOML tables) after
/// it; files named in them are made by `prepare` in the workspace first.
fn start_with(smtp: u16, idp: u16, oidc: &str, more: &str) -> Running {
    start_in(Workspace::new(), smtp, idp, oidc, more)
}

fn start_in(ws: Workspace, smtp: u16, idp: u16, oidc: &str, more: &str) -> Running {
    let google = servers::results_origin();
    let secret = ws.write("oidc.secret", CLIENT_SECRET.as_bytes());
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    ws.write(
        "people.csv",
        b"account,name,year,form,role,left\namy.pupil,Amy Pupil,9,9B,pupil,\n",
    );
    let text = format!(
        r#"
[[network]]
cidr = "127.0.0.0/24"
role = "guest"
site = "main"
signin = true
[[network]]
cidr = "127.0.1.0/24"
role = "guest"
site = "main"
[[network]]
cidr = "127.0.2.0/24"
role = "guest-plain"
site = "main"
signin = true
[[network]]
cidr = "127.0.3.0/24"
role = "guest"
site = "main"
signin = true
login = true
[themes.self-harm]
file = "themes/self-harm/en.txt"
[roles.pupil]
default = "allow"
themes = {{ self-harm = {{ action = "block", alert = "high" }} }}
[roles.staff]
default = "allow"
[roles.guest]
default = "allow"
[roles.guest-plain]
default = "allow"
decrypt_https = false
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
[identity.oidc]
issuer = "http://127.0.0.1:{idp}"
client_id = "gatehouse"
client_secret_file = "oidc.secret"
portal_host = "{PORTAL}"
domains = ["school.test"]
roles = [{{ group = "staff", role = "staff" }}, {{ domain = "school.test", role = "pupil" }}]
{oidc}
[identity.people]
csv = "people.csv"
{more}
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
        _proxy: Killed(started.child),
        proxy: started.proxy,
        metrics: started.metrics.expect("metrics"),
        google,
    }
}

impl Running {
    /// curl through the proxy from `source`: status, the `Location` header, the body.
    fn curl(&self, source: &str, url: &str) -> (u16, String, String) {
        let out = Command::new("curl")
            .args([
                "-s",
                "-k",
                "--max-time",
                "20",
                "-x",
                &format!("http://{}", self.proxy),
            ])
            .args(["--interface", source, "-D", "-", url])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // The last response's head (a CONNECT's `200` comes first).
        let (head, body) = text
            .rsplit_once("\r\n\r\nHTTP/")
            .map(|(_, last)| format!("HTTP/{last}"))
            .unwrap_or(text)
            .split_once("\r\n\r\n")
            .map(|(h, b)| (h.to_owned(), b.to_owned()))
            .unwrap_or_default();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let location = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("location: ")
                    .or(l.strip_prefix("Location: "))
            })
            .unwrap_or_default()
            .trim()
            .to_owned();
        (status, location, body)
    }

    /// curl through the proxy from `source` with `extra` options: the status code only
    /// (`000` when no response came, e.g. a certificate curl does not trust).
    fn code(&self, source: &str, extra: &[&str], url: &str) -> String {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "20",
            ])
            .args([
                "-x",
                &format!("http://{}", self.proxy),
                "--interface",
                source,
            ])
            .args(extra)
            .arg(url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn search_url(&self, query: &str) -> String {
        format!(
            "http://www.google.com:{}/search?q={}",
            self.google,
            query.replace(' ', "+")
        )
    }

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

    fn event_of(&self, term: &str) -> serde_json::Value {
        let has = |e: &serde_json::Value| e["search_term"] == term;
        self.events(|es| es.iter().any(has))
            .into_iter()
            .rev()
            .find(has)
            .unwrap_or_else(|| panic!("no event for {term:?}: {}", self.log()))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.ws.path("stderr.log")).unwrap_or_default()
    }

    fn metrics(&self) -> String {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "10", &self.metrics])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

#[test]
fn a_pupil_signs_in_with_the_school_provider_in_chromium_and_alerts_name_her() {
    let smtp = servers::Smtp::start();
    let (_idp, idp) = start_idp();
    let p = start(smtp.port, idp);

    // Not signed in: a page load is sent to the sign-in page, with where it was going.
    let start_url = p.search_url("volcano homework");
    let (status, location, _) = p.curl("127.0.0.1", &start_url);
    assert_eq!(status, 302, "{}", p.log());
    assert!(
        location.starts_with(&format!(
            "https://{PORTAL}/signin?next=http%3A%2F%2Fwww.google.com"
        )),
        "{location}"
    );

    let shots = common::repo().join("target/e2e-screenshots");
    let harm_url = p.search_url("how to self harm");
    let mut node = Command::new("node")
        .arg(common::repo().join("tests/e2e/signin.mjs"))
        .env("PROXY", &p.proxy)
        .env("START_URL", &start_url)
        .env("HARM_URL", &harm_url)
        .env("PORTAL", format!("https://{PORTAL}"))
        .env("LOGIN", "amy.pupil")
        .env("SHOTS", &shots)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    let finished = wait_for(240, || node.try_wait().unwrap());
    if finished.is_none() {
        let _ = node.kill();
    }
    let out = node.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the browser's sign-in failed:\n{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(p.ws.path("data/events/events.jsonl")).unwrap_or_default()
    );

    // The search after signing in: her account, her name from the MIS, her role, and how.
    let e = p.event_of("volcano homework");
    assert_eq!(e["user"], "amy.pupil", "{e}");
    assert_eq!(e["person"], "Amy Pupil, Year 9, 9B", "{e}");
    assert_eq!(e["role"], "pupil", "{e}");
    assert_eq!(e["identified_by"], "signin", "{e}");
    // The harmful search was blocked and the DSL's alert names her.
    let e = p.event_of("how to self harm");
    assert_eq!(e["verdict"], "block", "{e}");
    assert_eq!(e["person"], "Amy Pupil, Year 9, 9B", "{e}");
    let mail = wait_for(30, || {
        smtp.messages()
            .into_iter()
            .find(|m| m.subject.contains("safeguarding alert"))
    })
    .expect("the alert email");
    assert!(mail.text.contains("Amy Pupil, Year 9, 9B"), "{}", mail.text);
    assert!(mail.text.contains("how to self harm"), "{}", mail.text);
    // The provider's pages were reached before she signed in, and recorded as such.
    let before = p.events(|es| es.iter().any(|e| e["identified_by"] == "not-signed-in"));
    assert!(before
        .iter()
        .any(|e| e["identified_by"] == "not-signed-in" && e["verdict"] == "allow"));
    assert!(
        p.log().contains("amy.pupil signed in on 127.0.0.1"),
        "{}",
        p.log()
    );
    assert!(p
        .metrics()
        .contains("gatehouse_signins_total{outcome=\"signed-in\"} 1"));

    // She signed out in the browser: the device is sent to sign in again.
    let (status, _, _) = p.curl("127.0.0.1", &start_url);
    assert_eq!(status, 302);
}

#[test]
fn forged_carried_and_replayed_sign_ins_are_refused() {
    let smtp = servers::Smtp::start();
    let (_idp, idp) = start_idp();
    let p = start(smtp.port, idp);
    let portal = format!("https://{PORTAL}");

    // A state this filter never issued.
    let (status, _, body) = p.curl(
        "127.0.0.2",
        &format!("{portal}/signin/callback?state=forged&code=abc"),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("could not be checked"), "{body}");
    assert!(
        p.log().contains("state is not one this filter issued"),
        "{}",
        p.log()
    );

    // A real state, started on one device, finished on another: refused, and used up.
    let (status, location, _) = p.curl(
        "127.0.0.3",
        &format!("{portal}/signin?next=http%3A%2F%2Fexample.org%2F"),
    );
    assert_eq!(status, 302, "{}", p.log());
    assert!(
        location.starts_with(&format!("http://127.0.0.1:{idp}/auth?")),
        "{location}"
    );
    for want in [
        "code_challenge_method=S256",
        "nonce=",
        "redirect_uri=https%3A%2F%2Fsignin.school.test%2Fsignin%2Fcallback",
    ] {
        assert!(location.contains(want), "{want} in {location}");
    }
    let state = location
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("state="))
        .unwrap()
        .to_owned();
    let callback = format!("{portal}/signin/callback?state={state}&code=stolen");
    let (status, _, _) = p.curl("127.0.0.4", &callback);
    assert_eq!(status, 400);
    assert!(
        p.log().contains("started from another device (127.0.0.3)"),
        "{}",
        p.log()
    );
    // Used up: the device that started it cannot use it now either.
    let (status, _, _) = p.curl("127.0.0.3", &callback);
    assert_eq!(status, 400);
    // A code the provider never issued, with a good state: the provider refuses it.
    let (_, location, _) = p.curl("127.0.0.5", &format!("{portal}/signin"));
    let state = location
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("state="))
        .unwrap()
        .to_owned();
    let (status, _, _) = p.curl(
        "127.0.0.5",
        &format!("{portal}/signin/callback?state={state}&code=made-up"),
    );
    assert_eq!(status, 403, "{}", p.log());
    assert!(p.log().contains("token endpoint: 400"), "{}", p.log());
    // A page of hidden sign-in links cannot lock a device out: its oldest give way.
    for _ in 0..20 {
        assert_eq!(p.curl("127.0.0.7", &format!("{portal}/signin")).0, 302);
    }
    // The provider's error text cannot write lines of its own into the log.
    let (_, location, _) = p.curl("127.0.0.7", &format!("{portal}/signin"));
    let state = location
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("state="))
        .unwrap()
        .to_owned();
    let (status, _, _) = p.curl(
        "127.0.0.7",
        &format!(
            "{portal}/signin/callback?state={state}&error=access_denied%0A2026-12-03T09:00:00Z%20INFO%20Sign-in%20page:%20tess.teacher%20signed%20in"
        ),
    );
    assert_eq!(status, 403);
    assert!(
        p.log().contains("access_denied2026-12-03T09:00:00Z"),
        "{}",
        p.log()
    );
    assert!(
        !p.log().contains("\n2026-12-03T09:00:00Z INFO"),
        "{}",
        p.log()
    );
    // None of them signed anyone in.
    for source in ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"] {
        let (status, _, _) = p.curl(source, &p.search_url("maths"));
        assert_eq!(status, 302, "{source} is still not signed in");
    }
    assert!(p
        .metrics()
        .contains("gatehouse_signins_total{outcome=\"refused\"} 3"));
    // Signing a device out takes a form from the page itself.
    assert_eq!(
        p.code(
            "127.0.0.2",
            &["-k", "-X", "POST"],
            &format!("{portal}/signout")
        ),
        "403"
    );
}

#[test]
fn a_device_that_has_not_signed_in_reaches_only_the_page_and_the_provider() {
    let smtp = servers::Smtp::start();
    let (_idp, idp) = start_idp();
    let p = start(smtp.port, idp);

    // Decrypted HTTPS: a page with the link, inside the TLS session.
    let (status, _, body) = p.curl("127.0.0.6", "https://www.example.test/");
    assert_eq!(status, 511, "{body}");
    assert!(
        body.contains(
            "href=\"https://signin.school.test/signin?next=https%3A%2F%2Fwww.example.test%3A443%2F\""
        ),
        "{body}"
    );
    // A POST over plain HTTP is not redirected (the body would be lost): the page.
    assert_eq!(
        p.code("127.0.0.6", &["-d", "q=x"], &p.search_url("x")),
        "511"
    );
    // Nor does a review request reach IT from a device no one has signed in on.
    assert_eq!(
        p.code(
            "127.0.0.6",
            &["-d", "url=http://games.example/&reason=homework"],
            &format!("http://www.google.com:{}/.gatehouse/review", p.google)
        ),
        "511"
    );
    // The provider's host on another port is not the provider.
    let (status, _, _) = p.curl("127.0.0.6", &format!("http://127.0.0.1:{}/", p.google));
    assert_eq!(status, 302);
    // The provider is reachable (its discovery document, through the filter).
    let (status, _, body) = p.curl(
        "127.0.0.6",
        &format!("http://127.0.0.1:{idp}/.well-known/openid-configuration"),
    );
    assert_eq!(status, 200, "{body}");
    // The sign-in page's own certificate is the filtering CA's, for the portal's name.
    assert_eq!(
        p.code(
            "127.0.0.6",
            &["--cacert", p.ws.path("data/ca.pem").to_str().unwrap()],
            &format!("https://{PORTAL}/")
        ),
        "200"
    );
    // Every refusal is logged with the reason.
    let events = p.events(|es| es.iter().filter(|e| e["rule"] == "signin").count() >= 2);
    let refused: Vec<_> = events.iter().filter(|e| e["rule"] == "signin").collect();
    assert!(refused.len() >= 2, "{events:?}");
    assert!(refused
        .iter()
        .all(|e| e["identified_by"] == "not-signed-in" && e["client_ip"] == "127.0.0.6"));

    // A network that takes a proxy login too: a device with no login is asked for one (a
    // domain machine answers with Kerberos), and the 407's page links to the sign-in page,
    // which stays reachable without a login.
    let (status, _, body) = p.curl("127.0.3.1", &p.search_url("maths"));
    assert_eq!(status, 407, "{body}");
    assert!(
        body.contains("href=\"https://signin.school.test/signin?next="),
        "{body}"
    );
    let (status, _, _) = p.curl("127.0.3.1", &format!("https://{PORTAL}/"));
    assert_eq!(status, 200);

    // A role that does not decrypt: no page can be shown inside its tunnels, so they are
    // refused before the sign-in, and the event says why.
    let (status, _, _) = p.curl("127.0.2.1", "https://www.example.test/");
    assert_eq!(status, 403);
    let events = p.events(|es| es.iter().any(|e| e["client_ip"] == "127.0.2.1"));
    let e = events
        .iter()
        .find(|e| e["client_ip"] == "127.0.2.1")
        .unwrap();
    assert_eq!(e["rule"], "signin", "{e}");
    assert!(
        e["reason"].as_str().unwrap().contains("not decrypted"),
        "{e}"
    );
}

#[test]
fn staff_sign_in_to_the_admin_page_with_their_school_account_in_chromium() {
    let smtp = servers::Smtp::start();
    let admin_port = free_port();
    let callback = format!("https://127.0.0.1:{admin_port}/login/sso/callback");
    let (_idp, idp) = start_idp_for(&format!("https://{PORTAL}/signin/callback {callback}"));
    let p = start_with(
        smtp.port,
        idp,
        "",
        &format!(
            "[admin]\nlisten = \"127.0.0.1:{admin_port}\"\nsso_redirect = \"{callback}\"\n\
             sso_roles = [{{ group = \"staff\", role = \"dsl\" }}]\n"
        ),
    );
    let shots = common::repo().join("target/e2e-screenshots");
    let mut node = Command::new("node")
        .arg(common::repo().join("tests/e2e/admin-sso.mjs"))
        .env("ADMIN_URL", format!("https://127.0.0.1:{admin_port}"))
        .env("SHOTS", &shots)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    if wait_for(240, || node.try_wait().unwrap()).is_none() {
        let _ = node.kill();
    }
    let out = node.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the admin page's sign-in failed:\n{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        p.log()
    );
    assert!(
        p.log()
            .contains("amy.pupil is in none of [admin] sso_roles"),
        "{}",
        p.log()
    );
    // A callback with a state the page never issued, or without the browser's cookie.
    let out = Command::new("curl")
        .args([
            "-s",
            "-k",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
        ])
        .arg(format!("{callback}?state=forged&code=x"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
}

#[test]
fn tokens_with_a_bad_nonce_issuer_audience_expiry_or_signature_are_refused_and_logged() {
    // A hostile provider that signs whatever token the code asks for.
    let port = free_port();
    let mut hostile = Command::new("python3");
    hostile
        .arg(common::repo().join("tests/attacks/hostile_oidc.py"))
        .arg(port.to_string());
    let _idp = started(hostile, "hostile IdP ready");
    let smtp = servers::Smtp::start();
    let p = start(smtp.port, port);
    let portal = format!("https://{PORTAL}");

    // Each from its own device: start a sign-in, then answer the callback with a code that
    // makes the provider's token wrong in one way.
    let attempt = |source: &str, mode: &str| -> u16 {
        let (status, location, _) = p.curl(source, &format!("{portal}/signin"));
        assert_eq!(status, 302, "{}", p.log());
        let field = |name: &str| {
            location
                .split(['?', '&'])
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .unwrap()
                .to_owned()
        };
        let (state, nonce) = (field("state"), field("nonce"));
        p.curl(
            source,
            &format!("{portal}/signin/callback?state={state}&code={mode}.{nonce}"),
        )
        .0
    };
    for (i, (mode, logged)) in [
        ("bad-nonce", "nonce is not this sign-in's"),
        ("bad-iss", "issuer is \"https://login.evil.example/v2.0\""),
        ("bad-aud", "issued to another application"),
        ("expired", "the ID token has expired"),
        ("alg-none", "algorithm is not RS256"),
        ("wrong-key", "signature does not verify"),
        ("no-account", "names no account"),
    ]
    .into_iter()
    .enumerate()
    {
        let source = format!("127.0.0.{}", 30 + i);
        assert_eq!(attempt(&source, mode), 400, "{mode}");
        assert!(p.log().contains(logged), "{mode}: {}", p.log());
        // The device is still not signed in.
        assert_eq!(p.curl(&source, &p.search_url("maths")).0, 302, "{mode}");
    }
    // Nothing else was affected: a good token from the same provider signs the device in.
    assert_eq!(attempt("127.0.0.40", "good"), 302);
    assert_eq!(p.curl("127.0.0.40", &p.search_url("volcanoes")).0, 200);
    let e = p.event_of("volcanoes");
    assert_eq!(e["user"], "amy.pupil", "{e}");
    assert_eq!(e["identified_by"], "signin", "{e}");
}

#[test]
fn the_sign_in_page_can_have_a_certificate_from_a_public_ca_for_devices_without_the_schools() {
    let smtp = servers::Smtp::start();
    let (_idp, idp) = start_idp();
    let ws = Workspace::new();
    // A "public" CA the devices trust, and the page's certificate from it.
    let dir = ws.path("");
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
        "rsa:2048",
        "-nodes",
        "-keyout",
        "public-ca.key",
        "-out",
        "public-ca.pem",
        "-subj",
        "/CN=Public CA",
        "-days",
        "2",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "portal.key",
        "-out",
        "portal.csr",
        "-subj",
        &format!("/CN={PORTAL}"),
    ]);
    ws.write(
        "san.ext",
        format!("subjectAltName=DNS:{PORTAL}\n").as_bytes(),
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        "portal.csr",
        "-CA",
        "public-ca.pem",
        "-CAkey",
        "public-ca.key",
        "-CAcreateserial",
        "-out",
        "portal.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    let p = start_in(
        ws,
        smtp.port,
        idp,
        "portal_cert = \"portal.pem\"\nportal_key = \"portal.key\"\n",
        "",
    );
    let get = |ca: &str| {
        p.code(
            "127.0.0.9",
            &["--cacert", p.ws.path(ca).to_str().unwrap()],
            &format!("https://{PORTAL}/"),
        )
    };
    // A BYOD device trusts the public CA, not the school's: the page opens.
    assert_eq!(get("public-ca.pem"), "200");
    // It is the school's certificate, not one the filtering CA made.
    assert_eq!(get("data/ca.pem"), "000");
    // Any other intercepted site still gets the filtering CA's.
    assert_eq!(
        p.code(
            "127.0.0.9",
            &["--cacert", p.ws.path("data/ca.pem").to_str().unwrap()],
            "https://www.example.test/"
        ),
        "511"
    );
}
