//! End-to-end tests of `gatehouse run`: the real binary as a proxy on 127.0.0.1, a real
//! origin server on 127.0.0.1, and curl as the client. Roles come from the client's source
//! address: 127.0.0.1 is a pupil, 127.0.0.2 staff, 127.0.0.3 a guest (no decryption),
//! anything else is on no configured network.

#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "an end-to-end test: a failure is a failed test"
)]

mod common;

use common::{lists, Workspace};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// An HTTP/1.1 origin that answers every request with 200 and the request head it received
/// as the body, and remembers the heads.
struct Origin {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Origin {
    fn start() -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(1000) {
                let Ok(mut stream) = stream else { continue };
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    log.lock().unwrap().push(head.clone());
                    let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nAlt-Svc: h3=\":443\"\r\nConnection: close\r\n\r\n{head}", head.len());
                    let _ = stream.write_all(reply.as_bytes());
                });
            }
        });
        Origin { port, seen }
    }
}

/// `gatehouse run` in the background, stopped when dropped.
struct Proxy {
    child: Child,
    addr: String,
    metrics: Option<String>,
    _ws: Workspace,
    config: std::path::PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const POLICY: &str = r#"
[[network]]
cidr = "127.0.0.1/32"
role = "pupil"
[[network]]
cidr = "127.0.0.2/32"
role = "staff"
[[network]]
cidr = "127.0.0.3/32"
role = "guest"
[[network]]
cidr = "127.0.0.4/32"
role = "guest"
login = true
[[source]]
format = "hosts"
path = "sinfonietta/gambling-hosts"
category = "gambling"
[local]
deny = ["127.0.0.1/forbidden"]
[roles.pupil]
default = "allow"
categories = { gambling = "block", streaming = "warn" }
[roles.staff]
default = "allow"
allow = ["127.0.0.1/forbidden"]
[roles.guest]
default = "allow"
decrypt_https = false
categories = { gambling = "block" }
"#;

fn start_proxy(proxy_section: &str) -> Proxy {
    start_proxy_with(proxy_section, |_| {})
}

/// Starts the proxy after `prepare` has run with the policy file's path (to add users...).
fn start_proxy_with(proxy_section: &str, prepare: impl FnOnce(&std::path::Path)) -> Proxy {
    start_proxy_policy(POLICY, proxy_section, prepare)
}

/// Starts the proxy with `policy` instead of the tests' usual one.
fn start_proxy_policy(
    policy: &str,
    proxy_section: &str,
    prepare: impl FnOnce(&std::path::Path),
) -> Proxy {
    let ws = Workspace::new();
    let config = ws.config(&format!(
        "{policy}[proxy]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n{proxy_section}",
        ws.path("data").display().to_string()
    ));
    prepare(&config);
    let (child, addr, metrics) = common::spawn_proxy(&config);
    Proxy {
        child,
        addr,
        metrics,
        _ws: ws,
        config,
    }
}

/// curl through the proxy from `source`; returns (status, body).
fn curl(proxy: &Proxy, source: &str, url: &str, extra: &[&str]) -> (u16, String) {
    let ca = proxy.config.parent().unwrap().join("data/ca.pem");
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "20",
            "-w",
            "\n%{http_code}",
            "-x",
            &format!("http://{}", proxy.addr),
            "--interface",
            source,
            "--cacert",
            ca.to_str().unwrap(),
        ])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

#[test]
fn plain_http_is_filtered_per_role_and_proxy_headers_never_reach_the_origin() {
    let origin = Origin::start();
    let proxy = start_proxy("allow_loopback_origins = true\n");
    let url = format!("http://127.0.0.1:{}/forbidden/page", origin.port);
    let (status, body) = curl(&proxy, "127.0.0.1", &url, &[]);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("This page is blocked") && body.contains("Test School"),
        "{body}"
    );
    assert!(
        body.contains("<dt>Your role</dt><dd>pupil</dd>") && body.contains("Request id"),
        "{body}"
    );
    assert!(
        origin.seen.lock().unwrap().is_empty(),
        "a blocked request never reaches the origin"
    );

    let (status, body) = curl(
        &proxy,
        "127.0.0.2",
        &url,
        &["-U", "alice:secret", "-H", "Proxy-Connection: keep-alive"],
    );
    assert_eq!(status, 200, "staff's own allow entry: {body}");
    assert!(body.starts_with("GET /forbidden/page HTTP/1.1"), "{body}");
    let lower = body.to_ascii_lowercase();
    assert!(
        !lower.contains("proxy-authorization") && !lower.contains("proxy-connection"),
        "{body}"
    );
}

#[test]
fn https_is_intercepted_and_blocked_with_a_page_inside_tls() {
    let proxy = start_proxy("");
    let (status, body) = curl(&proxy, "127.0.0.1", "https://www.bet365.com/en/", &[]);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("This page is blocked") && body.contains("Category: gambling"),
        "{body}"
    );
}

#[test]
fn a_guest_tunnel_to_a_blocked_host_is_refused_at_connect() {
    let proxy = start_proxy("");
    let out = Command::new("curl")
        .args([
            "-sv",
            "--max-time",
            "20",
            "-x",
            &format!("http://{}", proxy.addr),
            "--interface",
            "127.0.0.3",
            "https://www.bet365.com/",
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("< HTTP/1.1 403"), "{log}");
}

#[test]
fn clients_from_unknown_networks_ports_and_internal_origins_are_refused() {
    let origin = Origin::start();
    let proxy = start_proxy("");
    let url = format!("http://127.0.0.1:{}/", origin.port);
    let (status, body) = curl(&proxy, "127.0.0.9", &url, &[]);
    assert_eq!(status, 403);
    assert!(body.contains("does not serve your network"), "{body}");
    let (status, body) = curl(&proxy, "127.0.0.1", &url, &[]);
    assert_eq!(
        status, 403,
        "loopback origins are refused unless the lab switch is on"
    );
    assert!(body.contains("inside the school network"), "{body}");
    let (status, _) = curl(
        &proxy,
        "127.0.0.1",
        "http://169.254.169.254/latest/meta-data/",
        &[],
    );
    assert_eq!(status, 403, "cloud metadata");
    let out = Command::new("curl")
        .args([
            "-sv",
            "--max-time",
            "20",
            "-x",
            &format!("http://{}", proxy.addr),
            "--interface",
            "127.0.0.1",
            "https://example.com:8443/",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("< HTTP/1.1 403"),
        "CONNECT to 8443"
    );
    assert!(origin.seen.lock().unwrap().is_empty());
}

#[test]
fn sighup_reloads_the_policy_and_a_bad_policy_keeps_the_old_one() {
    let origin = Origin::start();
    let proxy = start_proxy("allow_loopback_origins = true\n");
    let url = format!("http://127.0.0.1:{}/newly-denied", origin.port);
    assert_eq!(curl(&proxy, "127.0.0.1", &url, &[]).0, 200);
    let text = std::fs::read_to_string(&proxy.config).unwrap();
    std::fs::write(
        &proxy.config,
        text.replace(
            "deny = [\"127.0.0.1/forbidden\"]",
            "deny = [\"127.0.0.1/forbidden\", \"127.0.0.1/newly-denied\"]",
        ),
    )
    .unwrap();
    let hup = |pid: u32| {
        Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
    };
    hup(proxy.child.id());
    let mut blocked = false;
    for _ in 0..100 {
        if curl(&proxy, "127.0.0.1", &url, &[]).0 == 403 {
            blocked = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(blocked, "the reloaded policy blocks the new entry");
    // A broken policy is refused; the one in force stays.
    std::fs::write(&proxy.config, "this is not toml [").unwrap();
    hup(proxy.child.id());
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(curl(&proxy, "127.0.0.1", &url, &[]).0, 403);
    assert_eq!(
        curl(
            &proxy,
            "127.0.0.1",
            &format!("http://127.0.0.1:{}/fine", origin.port),
            &[]
        )
        .0,
        200
    );
}

#[test]
fn a_sighup_sent_as_soon_as_the_proxy_listens_reloads_and_does_not_stop_it() {
    // A supervisor may reload the moment the proxy says it is listening: the handler is in
    // place by then, so the signal's default action (ending the process) never applies.
    let origin = Origin::start();
    for _ in 0..5 {
        let mut proxy = start_proxy("allow_loopback_origins = true\n");
        Command::new("kill")
            .args(["-HUP", &proxy.child.id().to_string()])
            .status()
            .unwrap();
        let url = format!("http://127.0.0.1:{}/still-here", origin.port);
        assert_eq!(curl(&proxy, "127.0.0.1", &url, &[]).0, 200);
        assert!(
            proxy.child.try_wait().unwrap().is_none(),
            "the proxy is running"
        );
    }
}

#[test]
fn sigterm_stops_the_proxy_cleanly() {
    let mut proxy = start_proxy("");
    Command::new("kill")
        .args(["-TERM", &proxy.child.id().to_string()])
        .status()
        .unwrap();
    let status = proxy.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn ca_init_writes_a_private_key_refuses_to_overwrite_and_exports_the_certificate() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    let config = ws.config("[roles.pupil]\ndefault = \"allow\"\n[proxy]\ndata_dir = \"data\"\n");
    let c = config.to_str().unwrap();
    let out = common::run(&["ca", "init", "--config", c], "");
    assert!(out.status.success(), "{}", common::stderr(&out));
    let mode = std::fs::metadata(ws.path("data/ca.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let out = common::run(&["ca", "init", "--config", c], "");
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("refusing to overwrite"),
        "{}",
        common::stderr(&out)
    );
    let out = common::run(&["ca", "export", "--config", c], "");
    let pem = common::stdout(&out);
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    // A key others can read is refused at start.
    std::fs::set_permissions(
        ws.path("data/ca.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = common::run(&["run", "--config", c], "");
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("readable by others"),
        "{}",
        common::stderr(&out)
    );
    let _ = lists();
}

/// Reads the events the proxy has written so far (it writes them off the request path, so
/// wait until `count` are there).
fn events(proxy: &Proxy, count: usize) -> Vec<serde_json::Value> {
    let path = proxy
        .config
        .parent()
        .unwrap()
        .join("data/events/events.jsonl");
    for _ in 0..100 {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= count {
            return lines;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("fewer than {count} events in {}", path.display());
}

#[test]
fn every_request_is_an_event_with_the_dfe_fields_and_metrics_count_them() {
    let origin = Origin::start();
    let proxy = start_proxy("allow_loopback_origins = true\nmetrics_listen = \"127.0.0.1:0\"\n");
    let ok = format!("http://127.0.0.1:{}/page?token=secret", origin.port);
    let denied = format!("http://127.0.0.1:{}/forbidden/x", origin.port);
    assert_eq!(curl(&proxy, "127.0.0.1", &ok, &[]).0, 200);
    assert_eq!(curl(&proxy, "127.0.0.1", &denied, &[]).0, 403);
    assert_eq!(
        curl(&proxy, "127.0.0.1", "https://www.bet365.com/", &[]).0,
        403
    );
    // Three requests and the CONNECT of the HTTPS one (logged as the tunnel it opened).
    let events = events(&proxy, 4);
    let allowed = events
        .iter()
        .find(|e| e["verdict"] == "allow" && e["method"] == "GET")
        .unwrap();
    for field in [
        "time",
        "request_id",
        "client_ip",
        "role",
        "method",
        "host",
        "url",
        "categories",
        "verdict",
        "reason",
        "status",
        "duration_ms",
        "decrypted",
    ] {
        assert!(allowed.get(field).is_some(), "{field} missing: {allowed}");
    }
    assert_eq!(allowed["client_ip"], "127.0.0.1");
    assert_eq!(allowed["role"], "pupil");
    assert_eq!(allowed["status"], 200);
    assert_eq!(
        allowed["url"],
        format!("http://127.0.0.1:{}/page", origin.port),
        "no query string in the log"
    );
    assert!(allowed["bytes"].as_u64().unwrap() > 0);
    let blocked = events
        .iter()
        .find(|e| e["host"] == "www.bet365.com" && e["method"] == "GET")
        .unwrap();
    let tunnel = events
        .iter()
        .find(|e| e["host"] == "www.bet365.com" && e["method"] == "CONNECT")
        .unwrap();
    assert_eq!(
        (tunnel["rule"].as_str(), tunnel["decrypted"].as_bool()),
        (Some("tunnel"), Some(true))
    );
    assert_eq!(
        (
            blocked["verdict"].as_str(),
            blocked["status"].as_u64(),
            blocked["decrypted"].as_bool()
        ),
        (Some("block"), Some(403), Some(true))
    );
    assert_eq!(blocked["categories"], serde_json::json!(["gambling"]));
    let raw = std::fs::read_to_string(
        proxy
            .config
            .parent()
            .unwrap()
            .join("data/events/events.jsonl"),
    )
    .unwrap();
    assert!(!raw.contains("secret"), "query strings never reach the log");

    let metrics = proxy.metrics.clone().unwrap();
    let out = Command::new("curl")
        .args(["-s", &metrics])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("gatehouse_requests_total{role=\"pupil\",verdict=\"allow\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("gatehouse_requests_total{role=\"pupil\",verdict=\"block\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("gatehouse_blocked_categories_total{category=\"gambling\"} 1"),
        "{text}"
    );
    assert!(text.contains("gatehouse_policy_generation 1"), "{text}");
    // Two plain requests, and the HTTPS one decided twice: at CONNECT and inside the tunnel.
    assert!(
        text.contains("gatehouse_decision_seconds_count 4"),
        "{text}"
    );
}

#[test]
fn networks_that_require_a_login_challenge_and_take_the_role_from_it() {
    let origin = Origin::start();
    let proxy = start_proxy_with("allow_loopback_origins = true\n", |config| {
        let out = common::run(
            &[
                "user-add",
                "--config",
                config.to_str().unwrap(),
                "--role",
                "staff",
                "alice",
            ],
            "correct horse battery\n",
        );
        assert!(out.status.success(), "{}", common::stderr(&out));
        let out = common::run(
            &[
                "user-add",
                "--config",
                config.to_str().unwrap(),
                "--role",
                "nobody",
                "bob",
            ],
            "whatever123\n",
        );
        assert!(!out.status.success(), "an unknown role is refused");
    });
    let users =
        std::fs::read_to_string(proxy.config.parent().unwrap().join("data/users.txt")).unwrap();
    assert!(
        users.starts_with("alice staff $argon2id$") && !users.contains("correct horse"),
        "{users}"
    );
    let url = format!("http://127.0.0.1:{}/forbidden/x", origin.port);
    let out = Command::new("curl")
        .args([
            "-s",
            "-i",
            "--max-time",
            "20",
            "-x",
            &format!("http://{}", proxy.addr),
            "--interface",
            "127.0.0.4",
            &url,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 407"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("proxy-authenticate: basic realm=\"school web filter\""),
        "{text}"
    );
    assert_eq!(
        curl(&proxy, "127.0.0.4", &url, &["-U", "alice:wrong password"]).0,
        407
    );
    let (status, body) = curl(
        &proxy,
        "127.0.0.4",
        &url,
        &["-U", "alice:correct horse battery"],
    );
    assert_eq!(
        status, 200,
        "alice is staff, whose allow entry opens the path: {body}"
    );
    assert!(
        !body.to_ascii_lowercase().contains("proxy-authorization"),
        "{body}"
    );
    let events = events(&proxy, 1);
    assert!(
        events
            .iter()
            .any(|e| e["user"] == "alice" && e["role"] == "staff"),
        "{events:?}"
    );
}

#[test]
fn the_pac_file_is_served_by_the_proxy_itself() {
    let proxy = start_proxy("");
    for (source, code) in [("127.0.0.1", 200), ("127.0.0.4", 200), ("127.0.0.9", 403)] {
        let out = Command::new("curl")
            .args([
                "-s",
                "-w",
                "\n%{http_code}",
                "--interface",
                source,
                &format!("http://{}/proxy.pac", proxy.addr),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.ends_with(&format!("\n{code}")), "{source}: {text}");
        if code == 200 {
            assert!(
                text.contains(&format!("return \"PROXY {}\";", proxy.addr)),
                "{text}"
            );
        }
    }
}

/// Sends raw bytes to the proxy and returns what it answers (until it closes or 10 s pass).
fn raw(proxy: &Proxy, bytes: &[u8]) -> String {
    use std::net::TcpStream;
    let mut stream = TcpStream::connect(&proxy.addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(bytes);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn malformed_requests_get_a_4xx_and_other_clients_carry_on() {
    let origin = Origin::start();
    let proxy = start_proxy("allow_loopback_origins = true\nheader_timeout_secs = 1\n");
    let url = format!("http://127.0.0.1:{}/", origin.port);
    let big = format!(
        "GET {url} HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage request line", b"GARBAGE\r\n\r\n".to_vec()),
        (
            "bad version",
            format!("GET {url} HTTP/9.9\r\n\r\n").into_bytes(),
        ),
        ("oversized header", big.into_bytes()),
        (
            "bad header name",
            format!("GET {url} HTTP/1.1\r\nBad Header: x\r\n\r\n").into_bytes(),
        ),
    ];
    for (name, bytes) in cases {
        let answer = raw(&proxy, &bytes);
        let status: u16 = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        assert!((400..500).contains(&status), "{name}: {answer:?}");
        assert_eq!(curl(&proxy, "127.0.0.1", &url, &[]).0, 200, "after {name}");
    }
    // Both Content-Length and Transfer-Encoding, in either order (RFC 9112 section 6.3:
    // the body is read as chunked, the Content-Length ignored, and the connection closed
    // after the response), and two differing Content-Lengths (400): one answer at most,
    // and nothing smuggled behind the ambiguous request ever reaches the origin.
    let smuggle = |first: &str, second: &str| {
        format!("POST {url}ambiguous HTTP/1.1\r\nHost: x\r\n{first}\r\n{second}\r\n\r\n0\r\n\r\nGET {url}smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
    };
    let (cl, te) = ("Content-Length: 5", "Transfer-Encoding: chunked");
    for request in [
        smuggle(cl, te),
        smuggle(te, cl),
        smuggle("Transfer-Encoding: chunked", "content-length: 0"),
    ] {
        let answer = raw(&proxy, request.as_bytes());
        assert_eq!(
            answer.matches("HTTP/1.1 ").count(),
            1,
            "{request:?}: {answer:?}"
        );
    }
    let answer = raw(&proxy, smuggle(cl, "Content-Length: 6").as_bytes());
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    let seen = origin.seen.lock().unwrap().clone();
    assert!(
        !seen.iter().any(|h| h.contains("smuggled")),
        "a request smuggled behind another reached the origin: {seen:?}"
    );
    // What did reach the origin was framed one way only, from the chunked reading: never
    // both headers, and never the Content-Length the client sent. (A body the filter read
    // before sending it on, as it reads what a person posts, is sent with its own length:
    // here it is empty.)
    for head in seen.iter().filter(|h| h.contains("ambiguous")) {
        let lower = head.to_ascii_lowercase();
        assert!(
            !(lower.contains("transfer-encoding") && lower.contains("content-length")),
            "{head}"
        );
        assert!(
            !lower.contains("content-length: 5") && !lower.contains("content-length: 6"),
            "{head}"
        );
    }
    assert_eq!(
        curl(&proxy, "127.0.0.1", &url, &[]).0,
        200,
        "after smuggling"
    );
    // Bad chunk sizes in a request body: 400, nothing half-sent is answered as a success.
    for body in [
        "zz\r\nhello\r\n0\r\n\r\n",
        "5\r\nhello\r\nfffffffffffffffffff\r\n",
    ] {
        let request = format!(
            "POST {url}chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{body}"
        );
        let answer = raw(&proxy, request.as_bytes());
        assert!(answer.starts_with("HTTP/1.1 400"), "{body:?}: {answer:?}");
    }
    // A client that never finishes its request head is cut off, and nobody else waits.
    let answer = raw(
        &proxy,
        format!("GET {url} HTTP/1.1\r\nHost: x\r\n").as_bytes(),
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );
    assert_eq!(curl(&proxy, "127.0.0.1", &url, &[]).0, 200);
}

/// `openssl s_server` on 127.0.0.1 with a certificate for `localhost` signed by a CA made
/// here; returns (port, CA file, the server process).
fn tls_origin(ws: &Workspace) -> (u16, std::path::PathBuf, Child) {
    let dir = ws.path("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let sh = |args: &str| {
        let status = Command::new("sh")
            .arg("-c")
            .arg(args)
            .current_dir(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "{args}");
    };
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=Test origin CA' 2>/dev/null");
    sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key -out leaf.csr -subj '/CN=localhost' 2>/dev/null");
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n").unwrap();
    sh("openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2 -extfile ext.cnf 2>/dev/null");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-www",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            "leaf.pem",
            "-key",
            "leaf.key",
        ])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (port, dir.join("ca.pem"), child)
}

#[test]
fn upstream_certificates_are_verified_against_mozilla_roots_and_configured_anchors() {
    let ws = Workspace::new();
    let (port, origin_ca, mut server) = tls_origin(&ws);
    let url = format!("https://localhost:{port}/");
    // Trusted through `[proxy] trust`: the page comes through, re-signed by Gatehouse's CA.
    let ports = format!("allow_loopback_origins = true\nconnect_ports = [443, {port}]\n");
    let trusted = start_proxy(&format!(
        "{ports}trust = [{:?}]\n",
        origin_ca.display().to_string()
    ));
    let (status, body) = curl(&trusted, "127.0.0.2", &url, &[]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("s_server"), "{body}");
    // An IP-literal site: the minted leaf names the address as an IP SAN, which curl checks.
    let (status, body) = curl(
        &trusted,
        "127.0.0.2",
        &format!("https://127.0.0.1:{port}/"),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    // Not trusted: a clear page, never a silent pass.
    let untrusted = start_proxy(&ports);
    let (status, body) = curl(&untrusted, "127.0.0.2", &url, &[]);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("security certificate is not valid"), "{body}");
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn a_warning_page_continues_with_a_signed_link_and_the_visit_is_logged() {
    let origin = Origin::start();
    let mut list = None;
    let proxy = start_proxy_with("allow_loopback_origins = true\n", |config| {
        let path = config.parent().unwrap().join("streaming.txt");
        std::fs::write(&path, "127.0.0.1\n").unwrap();
        list = Some(path);
    });
    // The list is added to the policy and loaded by a reload.
    let text = std::fs::read_to_string(&proxy.config).unwrap();
    let source = format!(
        "[[source]]\nformat = \"domains\"\npath = {:?}\ncategory = \"streaming\"\n",
        list.unwrap().display().to_string()
    );
    std::fs::write(&proxy.config, format!("{text}\n{source}")).unwrap();
    Command::new("kill")
        .args(["-HUP", &proxy.child.id().to_string()])
        .status()
        .unwrap();
    let url = format!("http://127.0.0.1:{}/video?x=1", origin.port);
    let mut page = String::new();
    for _ in 0..100 {
        let (status, body) = curl(&proxy, "127.0.0.1", &url, &[]);
        if status == 403 {
            page = body;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut proxy = proxy;
    assert!(
        page.contains("This site needs care"),
        "{page}\nproxy exited: {:?}\n{}",
        proxy.child.try_wait(),
        std::fs::read_to_string(proxy.config.with_file_name("stderr.log")).unwrap_or_default()
    );
    let href = page
        .split("id=\"continue\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert!(
        href.starts_with(&url) && href.contains("gatehouse-continue="),
        "{href}"
    );
    let (status, body) = curl(&proxy, "127.0.0.1", &href, &[]);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with("GET /video?x=1 HTTP/1.1"),
        "the token is not forwarded: {body}"
    );
    let tampered = href.replace("gatehouse-continue=", "gatehouse-continue=1");
    assert_eq!(curl(&proxy, "127.0.0.1", &tampered, &[]).0, 403);
    let other_page = href.replace("/video?", "/other?");
    assert_eq!(
        curl(&proxy, "127.0.0.1", &other_page, &[]).0,
        403,
        "the link is for one URL"
    );
    let events = events(&proxy, 3);
    assert!(
        events
            .iter()
            .any(|e| e["rule"] == "category:streaming+continued"
                && e["verdict"] == "allow"
                && e["sensitive"] == true),
        "{events:?}"
    );
}

#[test]
fn failed_client_handshakes_are_counted_per_host() {
    let proxy = start_proxy("metrics_listen = \"127.0.0.1:0\"\n");
    // A device without the school CA: curl refuses the intercepted certificate.
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "20",
            "-x",
            &format!("http://{}", proxy.addr),
            "--interface",
            "127.0.0.1",
            "https://pinned.example/",
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "curl must refuse a certificate it does not trust"
    );
    let metrics = proxy.metrics.clone().unwrap();
    let mut text = String::new();
    for _ in 0..50 {
        let out = Command::new("curl")
            .args(["-s", &metrics])
            .output()
            .unwrap();
        text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("gatehouse_tls_handshake_failures_total{host=\"pinned.example\"} 1") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        text.contains("gatehouse_tls_handshake_failures_total{host=\"pinned.example\"} 1"),
        "{text}"
    );
    // The leaf for pinned.example was minted once and is cached; a second connection
    // reuses it.
    assert!(
        text.contains("gatehouse_certificates_minted_total 1"),
        "{text}"
    );
    let _ = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "20",
            "-x",
            &format!("http://{}", proxy.addr),
        ])
        .args(["--interface", "127.0.0.1", "https://pinned.example/"])
        .output()
        .unwrap();
    let text = metrics_text(&proxy);
    assert!(
        text.contains("gatehouse_certificates_minted_total 1")
            && text.contains("gatehouse_certificate_cache_hits_total 1")
            && text.contains("gatehouse_certificates_cached 1"),
        "{text}"
    );
}

#[test]
fn editing_the_policy_file_reloads_it_without_a_signal() {
    let origin = Origin::start();
    let proxy = start_proxy("allow_loopback_origins = true\n");
    let url = format!("http://127.0.0.1:{}/edited", origin.port);
    assert_eq!(curl(&proxy, "127.0.0.1", &url, &[]).0, 200);
    let text = std::fs::read_to_string(&proxy.config).unwrap();
    std::fs::write(
        &proxy.config,
        text.replace(
            "deny = [\"127.0.0.1/forbidden\"]",
            "deny = [\"127.0.0.1/forbidden\", \"127.0.0.1/edited\"]",
        ),
    )
    .unwrap();
    let mut blocked = false;
    for _ in 0..150 {
        if curl(&proxy, "127.0.0.1", &url, &[]).0 == 403 {
            blocked = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(blocked, "the edited policy is in force without SIGHUP");
}

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_1_gib_download_streams_through_with_flat_memory() {
    const SIZE: u64 = 1 << 30;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Some(Ok(mut stream)) = listener.incoming().next() {
            let mut head = [0u8; 4096];
            let _ = stream.read(&mut head);
            let chunk = vec![b'x'; 1 << 16];
            let _ = stream.write_all(
                format!("HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            for _ in 0..SIZE / chunk.len() as u64 {
                if stream.write_all(&chunk).is_err() {
                    return;
                }
            }
        }
    });
    let proxy = start_proxy("allow_loopback_origins = true\n");
    let before = peak_rss_kib(proxy.child.id());
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
            "--max-time",
            "300",
            "-x",
            &format!("http://{}", proxy.addr),
            "--interface",
            "127.0.0.2",
            &format!("http://127.0.0.1:{port}/big"),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), SIZE.to_string());
    let after = peak_rss_kib(proxy.child.id());
    assert!(
        after < before + 64 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB for a 1 GiB body"
    );
}

#[test]
fn reloads_under_load_fail_no_request() {
    let origin = Origin::start();
    let proxy = Arc::new(start_proxy("allow_loopback_origins = true\n"));
    let url = format!("http://127.0.0.1:{}/steady", origin.port);
    let load = {
        let (proxy, url) = (proxy.clone(), url.clone());
        std::thread::spawn(move || {
            (0..200)
                .map(|_| curl(&proxy, "127.0.0.1", &url, &[]).0)
                .collect::<Vec<u16>>()
        })
    };
    for _ in 0..10 {
        Command::new("kill")
            .args(["-HUP", &proxy.child.id().to_string()])
            .status()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let statuses = load.join().unwrap();
    assert_eq!(statuses.len(), 200);
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
}

/// The request cases of llhttp's test suite (tests/fixtures/llhttp, MIT): each raw message,
/// and whether llhttp rejects it.
fn llhttp_request_cases() -> Vec<(String, Vec<u8>, bool)> {
    let mut cases = Vec::new();
    let dir = common::repo().join("tests/fixtures/llhttp/request");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut title = String::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("<!-- meta=") {
            if let Some(t) = rest[..at].rfind("### ") {
                title = rest[t + 4..].lines().next().unwrap_or("").to_owned();
            }
            rest = &rest[at..];
            let meta = rest.lines().next().unwrap_or("");
            let Some(start) = rest.find("```http\n") else {
                break;
            };
            let body_start = start + "```http\n".len();
            let Some(len) = rest[body_start..].find("\n```") else {
                break;
            };
            let raw = &rest[body_start..body_start + len];
            let after = &rest[body_start + len + 4..];
            let log_end = after.find("\n```\n").map_or(after.len(), |e| e);
            let fails = after[..log_end].contains(" error code=");
            if meta.contains("\"type\": \"request\"") && !meta.contains("lenient") {
                let mut bytes = Vec::new();
                for line in raw.split('\n') {
                    bytes.extend_from_slice(
                        line.replace("\\r", "\r")
                            .replace("\\n", "\n")
                            .replace("\\t", "\t")
                            .as_bytes(),
                    );
                    bytes.extend_from_slice(b"\r\n");
                }
                cases.push((
                    format!("{}: {title}", file.file_name().unwrap().to_string_lossy()),
                    bytes,
                    fails,
                ));
            }
            rest = &after[log_end.min(after.len())..];
        }
    }
    cases
}

/// Sends raw bytes and returns the first response head (or what came before the connection
/// closed or 3 s passed).
fn first_response(proxy: &Proxy, bytes: &[u8]) -> String {
    let mut stream = std::net::TcpStream::connect(&proxy.addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .unwrap();
    let _ = stream.write_all(bytes);
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn the_llhttp_request_corpus_is_answered_with_4xx_and_the_proxy_keeps_serving() {
    let origin = Origin::start();
    // The corpus's absolute URLs and CONNECTs name real hosts: the policy blocks them before
    // any lookup, and the role is not decrypted, so no case can leave this machine.
    let policy = r#"
[[network]]
cidr = "127.0.0.1/32"
role = "pupil"
[local]
deny = ["hypnotoad.org", "netscape.com", "bar.com"]
[roles.pupil]
default = "allow"
decrypt_https = false
"#;
    let proxy = start_proxy_policy(policy, "allow_loopback_origins = true\n", |_| {});
    let cases = llhttp_request_cases();
    assert!(cases.len() > 120, "{} cases", cases.len());
    let ok_url = format!("http://127.0.0.1:{}/still-serving", origin.port);
    let (mut rejected, mut blocked) = (0, 0);
    for (name, bytes, fails) in &cases {
        let answer = first_response(&proxy, bytes);
        let status: u16 = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        // Origin-form requests are not proxy requests and the absolute ones name blocked
        // hosts: every case, valid or not, is refused with a 4xx (or the connection is
        // closed on it), never relayed and never a crash.
        assert!(
            status == 0 || (400..500).contains(&status),
            "{name}: {answer:?}"
        );
        if *fails {
            rejected += 1;
        }
        if answer.contains("This page is blocked") || answer.starts_with("HTTP/1.1 403") {
            blocked += 1;
        }
    }
    assert!(rejected > 40, "{rejected} invalid cases");
    assert!(
        blocked >= 6,
        "{blocked} cases reached the policy and were blocked"
    );
    assert_eq!(curl(&proxy, "127.0.0.1", &ok_url, &[]).0, 200);
    assert!(
        origin
            .seen
            .lock()
            .unwrap()
            .iter()
            .all(|h| h.contains("/still-serving")),
        "no corpus request reached the origin"
    );
}

/// A WebSocket origin that answers the handshake, echoes one text message and keeps the
/// connection open for `hold` before closing it.
fn websocket_origin(hold: std::time::Duration) -> u16 {
    use base64::Engine as _;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Some(Ok(mut stream)) = listener.incoming().next() else {
            return;
        };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut key = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(k) = line.to_ascii_lowercase().strip_prefix("sec-websocket-key:") {
                key = line[line.len() - k.len()..].trim().to_owned();
            }
        }
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes(),
        );
        let accept = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
        let _ = stream.write_all(format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").as_bytes());
        // One masked text frame in, the same text out.
        let mut head = [0u8; 2];
        if reader.read_exact(&mut head).is_err() {
            return;
        }
        let len = (head[1] & 0x7f) as usize;
        let mut mask = [0u8; 4];
        let _ = reader.read_exact(&mut mask);
        let mut payload = vec![0u8; len];
        let _ = reader.read_exact(&mut payload);
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        let mut frame = vec![0x81, len as u8];
        frame.extend_from_slice(&payload);
        let _ = stream.write_all(&frame);
        std::thread::sleep(hold);
    });
    port
}

/// Opens a WebSocket to the origin on `port` through the proxy and exchanges one message;
/// returns the client's stream and its reader.
fn websocket_through(
    proxy: &Proxy,
    port: u16,
) -> (std::net::TcpStream, BufReader<std::net::TcpStream>) {
    let mut stream = std::net::TcpStream::connect(&proxy.addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "GET http://127.0.0.1:{port}/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 101"), "{status:?}");
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
    }
    let mask = [1u8, 2, 3, 4];
    let text = b"hello";
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(text.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).unwrap();
    let mut head = [0u8; 2];
    reader.read_exact(&mut head).unwrap();
    assert_eq!(head[0], 0x81, "a final text frame");
    let mut payload = vec![0u8; (head[1] & 0x7f) as usize];
    reader.read_exact(&mut payload).unwrap();
    assert_eq!(payload, text);
    (stream, reader)
}

#[test]
fn websockets_pass_through_for_allowed_sites() {
    let port = websocket_origin(std::time::Duration::from_millis(500));
    let proxy = start_proxy("allow_loopback_origins = true\n");
    websocket_through(&proxy, port);
}

/// A WebSocket that carries nothing in either direction for `tunnel_idle_secs` is closed,
/// like a tunnel: the origin here would keep it open for a minute.
#[test]
fn an_idle_websocket_is_closed() {
    let port = websocket_origin(std::time::Duration::from_secs(60));
    let proxy = start_proxy("allow_loopback_origins = true\ntunnel_idle_secs = 1\n");
    let (_stream, mut reader) = websocket_through(&proxy, port);
    // The proxy closes the connection (end of stream), well before the 10 s read limit.
    let mut rest = Vec::new();
    let read = reader.read_to_end(&mut rest);
    assert!(read.is_ok(), "still open after the idle limit: {read:?}");
}

#[test]
fn headless_chromium_renders_the_https_block_page() {
    // Pupils get "block" by default here, so nothing Chromium asks for on its own (update
    // checks and the like) is ever relayed off this machine.
    let proxy = start_proxy_with("", |config| {
        let text = std::fs::read_to_string(config).unwrap();
        std::fs::write(
            config,
            text.replacen(
                "[roles.pupil]\ndefault = \"allow\"",
                "[roles.pupil]\ndefault = \"block\"",
                1,
            ),
        )
        .unwrap();
    });
    let home = proxy.config.parent().unwrap().join("chromium-home");
    let nssdb = home.join(".pki/nssdb");
    std::fs::create_dir_all(&nssdb).unwrap();
    let db = format!("sql:{}", nssdb.display());
    let ca = proxy.config.parent().unwrap().join("data/ca.pem");
    assert!(Command::new("certutil")
        .args(["-d", &db, "-N", "--empty-password"])
        .status()
        .unwrap()
        .success());
    assert!(Command::new("certutil")
        .args([
            "-d",
            &db,
            "-A",
            "-t",
            "C,,",
            "-n",
            "gatehouse",
            "-i",
            ca.to_str().unwrap()
        ])
        .status()
        .unwrap()
        .success());
    let screenshot = common::repo().join("target/screenshots/https-block-page.png");
    std::fs::create_dir_all(screenshot.parent().unwrap()).unwrap();
    let chromium = |extra: &str| {
        Command::new("timeout")
            .arg("60")
            .arg("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
            ])
            .arg(format!(
                "--user-data-dir={}",
                home.join("profile").display()
            ))
            .arg(format!("--proxy-server=http://{}", proxy.addr))
            .arg(extra)
            .arg("https://www.bet365.com/")
            .env("HOME", &home)
            .stderr(Stdio::null())
            .output()
            .unwrap()
    };
    let dom = String::from_utf8_lossy(&chromium("--dump-dom").stdout).into_owned();
    assert!(dom.contains("This page is blocked"), "{dom}");
    assert!(
        dom.contains("Category: gambling") && dom.contains("Request id"),
        "{dom}"
    );
    chromium(&format!("--screenshot={}", screenshot.display()));
    assert!(
        std::fs::metadata(&screenshot)
            .map(|m| m.len() > 1000)
            .unwrap_or(false),
        "screenshot saved for review"
    );
}

#[test]
fn a_1_gib_upload_streams_through_with_flat_memory() {
    const SIZE: u64 = 1 << 30;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Some(Ok(stream)) = listener.incoming().next() else {
            return;
        };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut length = 0u64;
        let mut chunked = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
        }
        assert!(!chunked, "the upload is forwarded with its length");
        let received =
            std::io::copy(&mut (&mut reader).take(length), &mut std::io::sink()).unwrap_or(0);
        let body = received.to_string();
        let mut stream = stream;
        let _ = stream.write_all(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
    });
    let proxy = start_proxy("allow_loopback_origins = true\n");
    let file = proxy.config.parent().unwrap().join("upload.bin");
    std::fs::File::create(&file).unwrap().set_len(SIZE).unwrap();
    let before = peak_rss_kib(proxy.child.id());
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "300",
            "-x",
            &format!("http://{}", proxy.addr),
            "--interface",
            "127.0.0.2",
            "-T",
            file.to_str().unwrap(),
            &format!("http://127.0.0.1:{port}/upload"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        SIZE.to_string(),
        "the origin received every byte"
    );
    let after = peak_rss_kib(proxy.child.id());
    assert!(
        after < before + 64 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB for a 1 GiB upload"
    );
}

/// The proxy's metrics page (it must have been started with `metrics_listen`).
fn metrics_text(proxy: &Proxy) -> String {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", proxy.metrics.as_deref().unwrap()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Opens a TCP connection to the proxy from `source` (a loopback address).
fn connect_from(proxy: &Proxy, source: &str) -> std::net::TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: std::net::SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&from.into()).unwrap();
    let to: std::net::SocketAddr = proxy.addr.parse().unwrap();
    socket.connect(&to.into()).unwrap();
    let stream: std::net::TcpStream = socket.into();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    stream
}

/// Reads until the peer closes; returns what came (a read timeout fails the test).
fn read_until_closed(stream: &mut std::net::TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the proxy did not close the connection: {e}"),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn connection_limits_refuse_with_a_503_and_free_up_when_connections_close() {
    let origin = Origin::start();
    let proxy = start_proxy(
        "allow_loopback_origins = true\nmax_connections = 4\nmax_connections_per_client = 2\n\
         metrics_listen = \"127.0.0.1:0\"\n",
    );
    let url = format!("http://127.0.0.1:{}/", origin.port);
    // One device holds its two connections open: its third is refused, naming the device.
    let mine: Vec<_> = (0..2).map(|_| connect_from(&proxy, "127.0.0.1")).collect();
    let mut third = connect_from(&proxy, "127.0.0.1");
    let refusal = read_until_closed(&mut third);
    assert!(
        refusal.starts_with("HTTP/1.1 503") && refusal.contains("Your device has too many"),
        "{refusal:?}"
    );
    // Another device is still served while the first one is at its limit.
    assert_eq!(curl(&proxy, "127.0.0.2", &url, &[]).0, 200);
    // The whole proxy at its limit: everyone gets the 503 that says so.
    let others: Vec<_> = (0..2).map(|_| connect_from(&proxy, "127.0.0.2")).collect();
    let mut fifth = connect_from(&proxy, "127.0.0.3");
    let refusal = read_until_closed(&mut fifth);
    assert!(
        refusal.starts_with("HTTP/1.1 503") && refusal.contains("connection limit"),
        "{refusal:?}"
    );
    // Closed connections free their places: once the proxy has seen the closes (the gauge
    // says none are open), the device that was at its limit is served again.
    drop(mine);
    drop(others);
    let mut freed = false;
    for _ in 0..100 {
        if metrics_text(&proxy).contains("gatehouse_open_connections 0\n") {
            freed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(freed, "a closed connection's place was never given back");
    assert_eq!(curl(&proxy, "127.0.0.1", &url, &[]).0, 200);
    let metrics = metrics_text(&proxy);
    assert!(
        metrics.contains("gatehouse_refused_total{reason=\"client_connection_limit\"} 1")
            && metrics.contains("gatehouse_refused_total{reason=\"connection_limit\"} 1")
            && metrics.contains("gatehouse_open_connections"),
        "{metrics}"
    );
}

#[test]
fn idle_connections_and_tunnels_are_closed_and_a_silent_upstream_times_out() {
    // A server that accepts and never says anything (for the tunnel), and one whose accept
    // queue is full so connecting to it never completes (for the connect timeout).
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for s in silent.incoming().take(10).flatten() {
            keep.lock().unwrap().push(s);
        }
    });
    let full = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    full.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    full.listen(0).unwrap();
    let full_addr = full.local_addr().unwrap().as_socket().unwrap();
    // Fill the accept queue: later SYNs are dropped and connecting hangs.
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&full_addr.into());
        fillers.push(s);
    }
    std::thread::sleep(std::time::Duration::from_millis(200));

    let origin = Origin::start();
    let proxy = start_proxy(&format!(
        "allow_loopback_origins = true\nheader_timeout_secs = 1\ntunnel_idle_secs = 1\n\
         connect_timeout_secs = 1\nconnect_ports = [443, {silent_port}]\n"
    ));
    // A keep-alive connection left idle after its response is closed by the proxy.
    let mut idle = connect_from(&proxy, "127.0.0.1");
    idle.write_all(
        format!(
            "GET http://127.0.0.1:{}/idle HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            origin.port
        )
        .as_bytes(),
    )
    .unwrap();
    let answer = read_until_closed(&mut idle);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    // A tunnel (the guest role is not decrypted) that carries nothing is closed.
    let mut tunnel = connect_from(&proxy, "127.0.0.3");
    tunnel
        .write_all(format!("CONNECT 127.0.0.1:{silent_port} HTTP/1.1\r\n\r\n").as_bytes())
        .unwrap();
    let answer = read_until_closed(&mut tunnel);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    // An upstream that never completes the TCP handshake gets a clear 504 page.
    let (status, body) = curl(
        &proxy,
        "127.0.0.1",
        &format!("http://127.0.0.1:{}/", full_addr.port()),
        &[],
    );
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("did not answer in time"), "{body}");
    // Everyone else carries on.
    assert_eq!(
        curl(
            &proxy,
            "127.0.0.1",
            &format!("http://127.0.0.1:{}/", origin.port),
            &[]
        )
        .0,
        200
    );
    drop(fillers);
}

#[test]
fn reqwest_as_a_client_over_http_and_intercepted_https() {
    let origin = Origin::start();
    let ws = Workspace::new();
    let (tls_port, tls_ca, mut server) = tls_origin(&ws);
    let proxy = start_proxy(&format!(
        "allow_loopback_origins = true\nconnect_ports = [443, {tls_port}]\ntrust = [{:?}]\n",
        tls_ca.display().to_string()
    ));
    let ca = std::fs::read(proxy.config.parent().unwrap().join("data/ca.pem")).unwrap();
    let client = reqwest::blocking::Client::builder()
        .proxy(reqwest::Proxy::all(format!("http://{}", proxy.addr)).unwrap())
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .tls_built_in_root_certs(false)
        .local_address("127.0.0.1".parse::<std::net::IpAddr>().unwrap())
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    // Keep-alive: several requests on the client's pooled connection.
    for i in 0..3 {
        let res = client
            .get(format!("http://127.0.0.1:{}/reqwest/{i}", origin.port))
            .send()
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.text().unwrap().contains(&format!("GET /reqwest/{i} ")));
    }
    // HTTPS through the proxy's CA (the client trusts only it) to the TLS origin.
    let res = client
        .get(format!("https://localhost:{tls_port}/"))
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
    // A blocked site: the block page comes back inside TLS.
    let res = client.get("https://www.bet365.com/en/").send().unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().unwrap().contains("gambling"));
    let _ = server.kill();
}

#[test]
fn a_block_page_for_a_suicide_search_shows_a_child_where_to_get_help() {
    let policy = format!(
        "{POLICY}[themes.suicide]\nhelp = true\n[themes.filter-bypass]\n\
         [roles.pupil.themes]\nsuicide = {{ action = \"block\", alert = \"high\" }}\n\
         filter-bypass = \"block\"\n"
    );
    let proxy = start_proxy_policy(&policy, "", |_| {});
    let (status, body) = curl(
        &proxy,
        "127.0.0.1",
        "https://www.google.com/search?q=how+to+kill+myself",
        &[],
    );
    assert_eq!(status, 403, "{body}");
    for help in ["Childline", "0800 1111", "116 123", "85258", "CEOP", "999"] {
        assert!(body.contains(help), "{help}: {body}");
    }
    // Help is shown before anything else the page says.
    assert!(
        body.find("id=\"help\"") < body.find("web filter stopped"),
        "{body}"
    );
    // A theme without `help` gets the plain page.
    let (status, body) = curl(
        &proxy,
        "127.0.0.1",
        "https://www.google.com/search?q=how+to+bypass+the+school+proxy",
        &[],
    );
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("Childline"), "{body}");
}
