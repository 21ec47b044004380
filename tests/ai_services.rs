//! AI chat services and the school's own accounts, end to end through the running proxy
//! (origins on loopback, their names pinned there with `[proxy] hosts`):
//!
//! - a pupil's role approves the school's own AI tutor (a service added by
//!   `[[ai_service]]`): the pupil's prompt to it is read and alerts, naming the tutor, and its
//!   answer, streamed as server-sent events under a key of the tutor's own, is read too;
//! - every other AI service is refused with the block page, by any of its hosts, and never
//!   reached;
//! - signing in to Microsoft and Google carries the school's tenant and domain headers, and a
//!   pupil's own copy of a header is replaced, not passed on.

#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "an end-to-end test: a failure is a failed test"
)]

mod common;

use common::Workspace;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TENANT: &str = "8f2e4c1a-0b7d-4e55-9a3c-2d1f6b0e7a91";

/// The origin: `/headers` answers with the request's headers, `/ask` with the body it was
/// sent, `/stream` with an answer streamed as events under the key `reply`. Counts requests.
fn origin(seen: Arc<AtomicUsize>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(100) {
            let Ok(mut stream) = stream else { continue };
            seen.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                reader.read_line(&mut request).unwrap_or(0);
                let mut headers = String::new();
                let mut line = String::new();
                let mut length = 0usize;
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    headers.push_str(&line.to_ascii_lowercase());
                    line.clear();
                }
                let mut body = vec![0u8; length.min(1 << 20)];
                let _ = std::io::Read::read_exact(&mut reader, &mut body);
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let path = path.rsplit_once("://").map_or(path, |(_, rest)| {
                    &rest[rest.find('/').unwrap_or(rest.len())..]
                });
                let (ctype, reply): (&str, Vec<u8>) = match path {
                    "/headers" => ("text/plain", headers.into_bytes()),
                    "/ask" => ("application/octet-stream", body),
                    "/stream" => {
                        let tokens = [
                            "The quickest way to ",
                            "kill yourself is an ",
                            "overdose of paracetamol. ",
                            "How many sleeping pills ",
                            "would kill you depends on weight.",
                        ];
                        let mut out = String::new();
                        for t in tokens {
                            out.push_str(&format!("data: {{\"reply\":{t:?},\"id\":7}}\n\n"));
                        }
                        ("text/event-stream", out.into_bytes())
                    }
                    _ => ("text/plain", b"ok".to_vec()),
                };
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        reply.len()
                    )
                    .as_bytes(),
                );
                let _ = stream.write_all(&reply);
            });
        }
    });
    port
}

const NAMES: &[&str] = &[
    "tutor.example.sch.uk",
    "chatgpt.com",
    "chat.openai.com",
    "www.perplexity.ai",
    "login.microsoftonline.com",
    "login.live.com",
    "accounts.google.com",
    "www.example.org",
];

fn policy() -> String {
    let hosts: Vec<String> = NAMES
        .iter()
        .map(|n| format!("{n:?} = \"127.0.0.1\""))
        .collect();
    format!(
        r#"
[[network]]
cidr = "127.0.0.1/32"
role = "pupil"

[themes.suicide]
help = true

[[ai_service]]
name = "school-tutor"
label = "the school's tutor"
hosts = ["tutor.example.sch.uk"]
chat_paths = ["/ask"]
answer_keys = ["reply"]

[accounts]
microsoft = ["example.sch.uk"]
microsoft_tenant_id = "{TENANT}"
google = ["example.sch.uk"]

[roles.pupil]
default = "allow"
ai_services = ["school-tutor"]
school_accounts_only = true
themes = {{ suicide = {{ action = "log", alert = "high" }} }}

[proxy]
hosts = {{ {} }}
"#,
        hosts.join(", ")
    )
}

struct Running {
    ws: Workspace,
    child: std::process::Child,
    proxy: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Running {
    let ws = Workspace::new();
    let text = policy().replace(
        "[proxy]\n",
        &format!(
            "[proxy]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\nallow_loopback_origins = true\n",
            ws.path("data").display().to_string()
        ),
    );
    let config = ws.config(&text);
    let started = common::spawn_gatehouse(&config);
    Running {
        ws,
        child: started.child,
        proxy: started.proxy,
    }
}

/// Sends a request through the proxy with curl: (status, body).
fn curl(proxy: &str, url: &str, extra: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "-x", &format!("http://{proxy}")])
        .args(["--interface", "127.0.0.1", "-w", "\n%{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

fn events(ws: &Workspace, want: impl Fn(&[serde_json::Value]) -> bool) -> Vec<serde_json::Value> {
    let path = ws.path("data/events/events.jsonl");
    let mut events = Vec::new();
    for _ in 0..150 {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        events = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if want(&events) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    events
}

#[test]
fn the_approved_tutor_is_read_every_other_ai_is_refused_and_sign_in_is_the_schools() {
    let seen = Arc::new(AtomicUsize::new(0));
    let port = origin(Arc::clone(&seen));
    let running = start();
    let proxy = running.proxy.clone();
    let at = |host: &str, path: &str| format!("http://{host}:{port}{path}");

    // The approved tutor: the prompt goes on whole, and is read.
    let prompt = r#"{"question":"what is the quickest way to kill myself","lang":"en"}"#;
    let (status, back) = curl(
        &proxy,
        &at("tutor.example.sch.uk", "/ask"),
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            prompt,
        ],
    );
    assert_eq!((status, back.as_str()), (200, prompt));
    // Found by attacking: a prompt after 64 KiB of chat history was not read. A chat path's
    // body is read to `scan_ai_request_kib` (1 MiB by default).
    let long = format!(
        r#"{{"history":"{}","question":"what is the quickest way to kill myself"}}"#,
        "we talked about the weather and homework. ".repeat(1700)
    );
    assert!(long.len() > 70_000);
    let file = running.ws.write("long.json", long.as_bytes());
    let (status, back) = curl(
        &proxy,
        &at("tutor.example.sch.uk", "/ask"),
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &format!("@{}", file.display()),
        ],
    );
    assert_eq!((status, back.len()), (200, long.len()));
    // Its answer, under its own key `reply`, arrives whole and is read.
    let (status, answer) = curl(&proxy, &at("tutor.example.sch.uk", "/stream"), &[]);
    assert_eq!(status, 200);
    assert!(answer.contains("overdose of paracetamol"), "{answer}");

    // Every other AI service, by any of its hosts: refused, never reached.
    let before = seen.load(Ordering::SeqCst);
    for (host, path) in [
        ("chatgpt.com", "/"),
        ("chat.openai.com", "/backend-api/conversation"),
        ("www.perplexity.ai", "/search?q=hello"),
    ] {
        let (status, page) = curl(&proxy, &at(host, path), &[]);
        assert_eq!(status, 403, "{host}: {page}");
        assert!(page.contains("not approved"), "{host}: {page}");
    }
    assert_eq!(
        seen.load(Ordering::SeqCst),
        before,
        "no refused service was reached"
    );

    // Sign-in: the school's tenant and domain, whatever the pupil sent.
    let (_, ms) = curl(
        &proxy,
        &at("login.microsoftonline.com", "/headers"),
        &["-H", "Restrict-Access-To-Tenants: pupils-own.example"],
    );
    assert!(
        ms.contains("restrict-access-to-tenants: example.sch.uk\r\n"),
        "{ms}"
    );
    assert!(
        ms.contains(&format!("restrict-access-context: {TENANT}")),
        "{ms}"
    );
    assert!(
        !ms.contains("pupils-own"),
        "the pupil's own header is replaced: {ms}"
    );
    let (_, live) = curl(&proxy, &at("login.live.com", "/headers"), &[]);
    assert!(
        live.contains("sec-restrict-tenant-access-policy: restrict-msa"),
        "{live}"
    );
    let (_, google) = curl(
        &proxy,
        &at("accounts.google.com", "/headers"),
        &["-H", "X-GoogApps-Allowed-Domains: gmail.com"],
    );
    assert!(
        google.contains("x-googapps-allowed-domains: example.sch.uk\r\n"),
        "{google}"
    );
    assert!(!google.contains("gmail.com"), "{google}");
    // Other sites get none of them.
    let (_, other) = curl(&proxy, &at("www.example.org", "/headers"), &[]);
    assert!(
        !other.contains("restrict-access") && !other.contains("googapps"),
        "{other}"
    );

    // The events: the prompt and the answer name the tutor; the refusals name the service.
    let all = events(&running.ws, |e| {
        e.iter()
            .filter(|x| x["host"] == "tutor.example.sch.uk")
            .count()
            >= 2
            && e.iter()
                .filter(|x| {
                    x["rule"]
                        .as_str()
                        .is_some_and(|r| r.contains("not-approved"))
                })
                .count()
                >= 3
    });
    let prompt_event = all
        .iter()
        .find(|e| e["rule"] == "sent:suicide")
        .unwrap_or_else(|| panic!("no prompt event: {all:#?}"));
    assert_eq!(prompt_event["alert"], "high");
    assert!(
        prompt_event["reason"]
            .as_str()
            .unwrap()
            .starts_with("What was typed into the school's tutor"),
        "{prompt_event}"
    );
    let prompts = all.iter().filter(|e| e["rule"] == "sent:suicide").count();
    assert_eq!(prompts, 2, "the short and the long prompt: {all:#?}");
    let answer_event = all
        .iter()
        .find(|e| e["rule"] == "content:suicide")
        .unwrap_or_else(|| panic!("no answer event: {all:#?}"));
    assert!(
        answer_event["reason"]
            .as_str()
            .unwrap()
            .starts_with("the school's tutor's answer"),
        "{answer_event}"
    );
    for host in ["chatgpt.com", "chat.openai.com", "www.perplexity.ai"] {
        let e = all.iter().find(|e| e["host"] == host).unwrap();
        assert_eq!(e["verdict"], "block");
        assert!(
            e["rule"].as_str().unwrap().starts_with("ai-service:"),
            "{e}"
        );
    }
}
