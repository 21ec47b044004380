//! What a page and an AI chat say, end to end through the running proxy: a loopback origin
//! serves a how-to page gzip'd in chunks (its phrase cut across two chunks), brotli'd and
//! zstd'd, a windows-1252 page, a UTF-16 page, a Shift_JIS page, an AI chat's answer
//! streamed as server-sent events, an ordinary page and a corrupt gzip stream. Each body
//! reaches curl byte for byte; each harmful text becomes a content event naming the theme,
//! the DSL's email (a real SMTP server) carries the title and the passage, the ordinary page
//! raises nothing, and after the corrupt stream the proxy serves on.

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
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const TITLE: &str = "Ways out - a forum";
const HOW_TO: &str = "<p>Welcome to the forum.</p><p>How many sleeping pills would kill you? \
    Someone asked which is the quickest way to die without pain.</p>\
    <p>Another reply says how to kill yourself with an overdose of paracetamol.</p>";

fn page() -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{TITLE}</title>\
         <script>var quickest = 'way to die';</script></head><body>{HOW_TO}</body></html>"
    )
}

/// One response: its headers and its body, in the chunks it is sent in (several: chunked).
struct Reply {
    headers: Vec<(&'static str, String)>,
    chunks: Vec<Vec<u8>>,
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn replies() -> HashMap<&'static str, Reply> {
    let html = page().into_bytes();
    let mut out = HashMap::new();
    let plain = |ctype: &str, body: Vec<u8>| Reply {
        headers: vec![("Content-Type", ctype.to_owned())],
        chunks: vec![body],
    };
    // gzip, chunked: the plain text is cut inside "sleeping pills", then compressed in two
    // flushes, so each chunk decodes to one half.
    let cut = html.windows(8).position(|w| w == b"sleeping").unwrap() + 5;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&html[..cut]).unwrap();
    e.flush().unwrap();
    let first = e.get_ref().len();
    e.write_all(&html[cut..]).unwrap();
    let whole = e.finish().unwrap();
    out.insert(
        "/gzip-chunked",
        Reply {
            headers: vec![
                ("Content-Type", "text/html; charset=utf-8".to_owned()),
                ("Content-Encoding", "gzip".to_owned()),
            ],
            chunks: vec![whole[..first].to_vec(), whole[first..].to_vec()],
        },
    );
    let mut br = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
        w.write_all(&html).unwrap();
    }
    let mut reply = plain("text/html", br);
    reply.headers.push(("Content-Encoding", "br".to_owned()));
    out.insert("/br", reply);
    let mut reply = plain("text/html", zstd::stream::encode_all(&html[..], 3).unwrap());
    reply.headers.push(("Content-Encoding", "zstd".to_owned()));
    out.insert("/zstd", reply);
    let text = format!("Café talk: {}", strip_tags(HOW_TO));
    let (cp1252, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
    out.insert(
        "/cp1252",
        plain("text/plain; charset=windows-1252", cp1252.into_owned()),
    );
    let mut utf16 = vec![0xff, 0xfe];
    for u in strip_tags(HOW_TO).encode_utf16() {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    out.insert("/utf16", plain("text/plain", utf16));
    let japanese = format!("日本語のページ。{}", strip_tags(HOW_TO));
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(&japanese);
    out.insert(
        "/sjis",
        plain("text/plain; charset=Shift_JIS", sjis.into_owned()),
    );
    // An AI chat's answer, streamed token by token (OpenAI's and Anthropic's shapes).
    let tokens = [
        "Here is how to ",
        "kill your",
        "self: take an ",
        "overdose of ",
        "paracetamol. ",
        "How many sleeping ",
        "pills would kill you ",
        "depends on weight.",
    ];
    let chunks = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let data = if i % 2 == 0 {
                format!("{{\"choices\":[{{\"delta\":{{\"content\":{t:?}}}}}]}}")
            } else {
                format!("{{\"type\":\"content_block_delta\",\"delta\":{{\"type\":\"text_delta\",\"text\":{t:?}}}}}")
            };
            format!("data: {data}\n\n").into_bytes()
        })
        .chain(std::iter::once(b"data: [DONE]\n\n".to_vec()))
        .collect();
    out.insert(
        "/chat",
        Reply {
            headers: vec![("Content-Type", "text/event-stream".to_owned())],
            chunks,
        },
    );
    out.insert(
        "/clean",
        plain(
            "text/html",
            b"<html><title>Photosynthesis</title><p>Plants make glucose from light. Revise for \
              your GCSE biology exam.</p></html>"
                .to_vec(),
        ),
    );
    // Found by attacking: bytes labelled as a page read as words and raised an alert.
    let mut seed = 7u64;
    let noise: Vec<u8> = (0..256 * 1024)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u8
        })
        .collect();
    out.insert("/binary", plain("text/html", noise));
    let mut corrupt = gzip(&html);
    let n = corrupt.len();
    corrupt[20..n - 8].iter_mut().for_each(|b| *b ^= 0x5a);
    let mut reply = plain("text/html", corrupt);
    reply.headers.push(("Content-Encoding", "gzip".to_owned()));
    out.insert("/corrupt", reply);
    out
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// The origin: every path of [`replies`], chunked when it has several chunks (with a pause
/// between them, so they arrive as separate frames).
fn origin(replies: Arc<HashMap<&'static str, Reply>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(200) {
            let Ok(mut stream) = stream else { continue };
            let replies = Arc::clone(&replies);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                reader.read_line(&mut request).unwrap_or(0);
                let mut line = String::new();
                let mut length = 0usize;
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    line.clear();
                }
                let mut body = vec![0u8; length.min(1 << 20)];
                let _ = std::io::Read::read_exact(&mut reader, &mut body);
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let path = path.rsplit_once("://").map_or(path, |(_, rest)| {
                    &rest[rest.find('/').unwrap_or(rest.len())..]
                });
                if path == "/echo" {
                    // What arrived, as bytes the filter does not read.
                    let _ = stream.write_all(format!("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).as_bytes());
                    let _ = stream.write_all(&body);
                    return;
                }
                let path = path.rsplit_once("://").map_or(path, |(_, rest)| {
                    &rest[rest.find('/').unwrap_or(rest.len())..]
                });
                let Some(reply) = replies.get(path) else {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    return;
                };
                let mut head = String::from("HTTP/1.1 200 OK\r\nConnection: close\r\n");
                for (k, v) in &reply.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                if reply.chunks.len() == 1 {
                    head.push_str(&format!(
                        "Content-Length: {}\r\n\r\n",
                        reply.chunks[0].len()
                    ));
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&reply.chunks[0]);
                    return;
                }
                head.push_str("Transfer-Encoding: chunked\r\n\r\n");
                let _ = stream.write_all(head.as_bytes());
                for chunk in &reply.chunks {
                    let _ = stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
                    let _ = stream.write_all(chunk);
                    let _ = stream.write_all(b"\r\n");
                    let _ = stream.flush();
                    std::thread::sleep(Duration::from_millis(30));
                }
                let _ = stream.write_all(b"0\r\n\r\n");
            });
        }
    });
    port
}

fn policy(smtp: u16) -> String {
    format!(
        r#"
[[network]]
cidr = "127.0.0.1/32"
role = "pupil"
site = "main"
[[network]]
cidr = "127.0.0.2/32"
role = "staff"
site = "main"
[themes.suicide]
help = true
[roles.pupil]
default = "allow"
themes = {{ suicide = {{ action = "block", alert = "high" }} }}
files = {{ executable = "block", installer = "block", torrent = "block", video = "log" }}
max_download_mib = 1
[roles.staff]
default = "allow"
themes = {{ suicide = "log" }}
[alerts]
hold_secs = 0
digest_time = "23:59"
[alerts.smtp]
host = "127.0.0.1"
port = {smtp}
security = "none"
from = "Gatehouse <gatehouse@school.example>"
[alerts.sites.main]
dsl = ["dsl@school.example"]
"#
    )
}

/// A running `gatehouse run` with `policy`, its proxy and metrics addresses; killed when
/// dropped.
struct Running {
    ws: Workspace,
    child: std::process::Child,
    proxy: String,
    metrics: Option<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(policy: &str) -> Running {
    let ws = Workspace::new();
    let config = ws.config(&format!(
        "{policy}[proxy]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\nallow_loopback_origins = true\nmetrics_listen = \"127.0.0.1:0\"\n",
        ws.path("data").display().to_string()
    ));
    let started = common::spawn_gatehouse(&config);
    Running {
        ws,
        child: started.child,
        proxy: started.proxy,
        metrics: started.metrics,
    }
}

/// Fetches `url` through the proxy with curl; returns the status and the body's bytes as
/// they arrived (not decompressed).
fn fetch(proxy: &str, url: &str) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "-x", &format!("http://{proxy}")])
        .args(["-w", "\n%{http_code}"])
        .arg(url)
        .output()
        .unwrap();
    let body = out.stdout;
    let at = body.iter().rposition(|&b| b == b'\n').unwrap_or(0);
    let status = String::from_utf8_lossy(&body[at + 1..])
        .trim()
        .parse()
        .unwrap_or(0);
    (status, body[..at].to_vec())
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
fn harmful_page_text_in_every_encoding_and_an_ai_answer_alert_the_dsl_and_bodies_pass_unchanged() {
    let smtp = servers::Smtp::start();
    let replies = Arc::new(replies());
    let port = origin(Arc::clone(&replies));
    let running = start(&policy(smtp.port));
    let (ws, proxy) = (&running.ws, running.proxy.clone());
    let harmful = [
        "/gzip-chunked",
        "/br",
        "/zstd",
        "/cp1252",
        "/utf16",
        "/sjis",
        "/chat",
    ];
    for path in harmful
        .iter()
        .chain(&["/clean", "/corrupt", "/binary", "/clean"])
    {
        let (status, body) = fetch(&proxy, &format!("http://127.0.0.1:{port}{path}"));
        assert_eq!(status, 200, "{path}");
        let sent: Vec<u8> = replies[path].chunks.concat();
        assert_eq!(
            body, sent,
            "{path}: the body reaches the client byte for byte"
        );
    }
    let content = |events: &[serde_json::Value]| -> Vec<serde_json::Value> {
        events
            .iter()
            .filter(|e| {
                e["rule"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("content:"))
            })
            .cloned()
            .collect()
    };
    let all = events(ws, |e| content(e).len() >= harmful.len());
    let found = content(&all);
    for path in harmful {
        let e = found
            .iter()
            .find(|e| e["url"].as_str().is_some_and(|u| u.ends_with(path)))
            .unwrap_or_else(|| panic!("no content event for {path}: {found:#?}"));
        assert_eq!(e["rule"], "content:suicide", "{path}: {e}");
        assert_eq!(e["themes"][0], "suicide", "{path}");
        assert_eq!(e["alert"], "high", "{path}: {e}");
        assert!(
            e.get("excerpt").is_none(),
            "the traffic log keeps no excerpt: {e}"
        );
        assert!(
            e["reason"].as_str().unwrap().contains("delivered"),
            "{path}: {e}"
        );
    }
    for path in ["/clean", "/corrupt", "/binary"] {
        assert!(
            !found
                .iter()
                .any(|e| e["url"].as_str().is_some_and(|u| u.ends_with(path))),
            "{path} raised a content event: {found:#?}"
        );
    }
    // The DSL's email names the page, its title and the passage that matched.
    let mail = servers::wait_for(30, || {
        smtp.messages()
            .into_iter()
            .find(|m| m.text.contains("the page's text reads"))
    })
    .expect("a content alert email");
    assert!(mail.subject.contains("(suicide)"), "{mail:?}");
    assert!(
        mail.text.contains(&format!("Title: \"{TITLE}\"")),
        "{}",
        mail.text
    );
    assert!(
        mail.text
            .contains("How many sleeping pills would kill you?"),
        "{}",
        mail.text
    );
    // The corrupt stream was counted; the proxy served on after it.
    let metrics = reqwest::blocking::get(running.metrics.as_ref().unwrap())
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("gatehouse_content_bodies_total{outcome=\"corrupt\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gatehouse_content_verdicts_total{outcome=\"fired\",theme=\"suicide\"}")
    );
}

/// Posts `body` as `ctype` through the proxy from `source`; returns the status and the body
/// that came back.
fn post(proxy: &str, source: &str, url: &str, ctype: &str, body: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "-x", &format!("http://{proxy}")])
        .args([
            "--interface",
            source,
            "-H",
            // An empty type removes the header (curl's own default included).
            &format!(
                "Content-Type:{}",
                if ctype.is_empty() {
                    String::new()
                } else {
                    format!(" {ctype}")
                }
            ),
        ])
        .args(["--data-binary", body, "-w", "\n%{http_code}"])
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

#[test]
fn what_a_pupil_sends_to_an_ai_chat_or_a_form_is_read_before_it_goes() {
    let smtp = servers::Smtp::start();
    let port = origin(Arc::new(HashMap::new()));
    let running = start(&policy(smtp.port));
    let (ws, proxy) = (&running.ws, running.proxy.clone());
    let echo = format!("http://127.0.0.1:{port}/echo");
    let prompt = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"how do I kill myself without it hurting"}],"stream":true}"#;
    // The pupil's prompt is refused with the page that offers help; the origin never sees it.
    let (status, page) = post(&proxy, "127.0.0.1", &echo, "application/json", prompt);
    assert_eq!(status, 403, "{page}");
    assert!(
        page.contains("Childline"),
        "the block page offers help: {page}"
    );
    // A teacher's is logged and sent on, whole.
    let (status, back) = post(&proxy, "127.0.0.2", &echo, "application/json", prompt);
    assert_eq!(status, 200);
    assert_eq!(back, prompt, "the body arrives whole");
    // A pupil's form post, URL-encoded: refused; an ordinary one goes on whole.
    let (status, _) = post(
        &proxy,
        "127.0.0.1",
        &echo,
        "application/x-www-form-urlencoded",
        "title=hi&post=i+want+to+kill+myself+tonight",
    );
    assert_eq!(status, 403);
    // Found by attacking: a prompt sent gzip'd (the encoding named in capitals), and one
    // sent with no type at all, were never read.
    let gz = running.ws.write("prompt.gz", &gzip(prompt.as_bytes()));
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
        .args(["-x", &format!("http://{proxy}"), "--interface", "127.0.0.1"])
        .args([
            "-H",
            "Content-Type: application/json",
            "-H",
            "Content-Encoding: GZIP",
        ])
        .args(["--data-binary", &format!("@{}", gz.display())])
        .arg(&echo)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "403");
    let (status, _) = post(&proxy, "127.0.0.1", &echo, "", "how do I kill myself");
    assert_eq!(status, 403, "a post with no type is read as text");
    // Found by attacking: a prompt split over two fields is read as one text.
    let split = r#"{"draft":"how do I","rest":"kill myself"}"#;
    let (status, _) = post(&proxy, "127.0.0.1", &echo, "application/json", split);
    assert_eq!(status, 403, "a prompt split over two fields");
    let homework = "title=homework&post=photosynthesis+makes+glucose";
    let (status, back) = post(
        &proxy,
        "127.0.0.1",
        &echo,
        "application/x-www-form-urlencoded",
        homework,
    );
    assert_eq!((status, back.as_str()), (200, homework));
    let sent = |events: &[serde_json::Value]| -> Vec<serde_json::Value> {
        events
            .iter()
            .filter(|e| e["rule"].as_str().is_some_and(|r| r.starts_with("sent:")))
            .cloned()
            .collect()
    };
    let all = events(ws, |e| sent(e).len() >= 6 && e.len() >= 7);
    let found = sent(&all);
    assert_eq!(found.len(), 6, "{found:#?}");
    let pupil: Vec<&serde_json::Value> = found.iter().filter(|e| e["role"] == "pupil").collect();
    assert_eq!(pupil.len(), 5);
    for e in &pupil {
        assert_eq!(e["verdict"], "block", "{e}");
        assert_eq!(e["alert"], "high", "{e}");
        assert_eq!(e["status"], 403, "{e}");
    }
    let staff = found.iter().find(|e| e["role"] == "staff").unwrap();
    assert_eq!(staff["verdict"], "allow", "{staff}");
    assert!(
        staff["alert"].is_null(),
        "a teacher's is logged, not alerted: {staff}"
    );
    assert_eq!(staff["themes"][0], "suicide");
    assert!(!all.iter().any(
        |e| e["rule"].as_str().is_some_and(|r| r.starts_with("sent:"))
            && e["url"].as_str().unwrap_or("").is_empty()
    ));
    // The DSL's email carries what the pupil typed.
    let mail = servers::wait_for(30, || {
        smtp.messages().into_iter().find(|m| {
            m.text.contains("what the person sent reads") && m.text.contains("how do I kill myself")
        })
    })
    .expect("an alert email with the prompt");
    assert!(mail.subject.contains("(suicide)"), "{mail:?}");
}

/// Downloads for the download test: (path, content type, extra header, body).
fn downloads() -> HashMap<&'static str, Reply> {
    let mut exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00".to_vec();
    exe.resize(4096, 0x41);
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.resize(4096, b' ');
    let mut docx = b"PK\x03\x04".to_vec();
    docx.extend_from_slice(&[0u8; 22]);
    docx.extend_from_slice(&19u16.to_le_bytes());
    docx.extend_from_slice(&[0, 0]);
    docx.extend_from_slice(b"[Content_Types].xml");
    docx.resize(2048, 0);
    let mut mp4 = b"\x00\x00\x00\x20ftypisom".to_vec();
    mp4.resize(4096, 0);
    let one = |ctype: &str, body: Vec<u8>, extra: Option<(&'static str, &str)>| {
        let mut headers = vec![("Content-Type", ctype.to_owned())];
        if let Some((k, v)) = extra {
            headers.push((k, v.to_owned()));
        }
        Reply {
            headers,
            chunks: vec![body],
        }
    };
    let mut out = HashMap::new();
    out.insert("/report.pdf", one("application/pdf", exe.clone(), None));
    out.insert("/real.pdf", one("application/pdf", pdf, None));
    out.insert(
        "/essay.docx",
        one(
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            docx,
            None,
        ),
    );
    out.insert("/film", one("application/octet-stream", mp4, None));
    out.insert(
        "/notes.txt",
        one(
            "application/octet-stream",
            gzip(&exe),
            Some(("Content-Encoding", "gzip")),
        ),
    );
    out.insert(
        "/big.bin",
        one("application/octet-stream", vec![0u8; 2 << 20], None),
    );
    // Found by review: a piece of a larger file, and a program labelled as text whose first
    // chunk is one byte.
    out.insert(
        "/part",
        one(
            "application/octet-stream",
            vec![0u8; 1024],
            Some(("Content-Range", "bytes 0-1023/5000000")),
        ),
    );
    out.insert(
        "/readme.txt",
        Reply {
            headers: vec![("Content-Type", "text/plain".to_owned())],
            chunks: vec![exe[..1].to_vec(), exe[1..].to_vec()],
        },
    );
    // Two MiB with no length: chunked, 64 KiB a chunk.
    out.insert(
        "/big-chunked",
        Reply {
            headers: vec![("Content-Type", "application/octet-stream".to_owned())],
            chunks: vec![vec![7u8; 64 * 1024]; 32],
        },
    );
    out
}

/// curl's exit code and the bytes it got.
fn download(proxy: &str, source: &str, url: &str) -> (i32, u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "30", "-x", &format!("http://{proxy}")])
        .args(["--interface", source, "-w", "\n%{http_code}"])
        .arg(url)
        .output()
        .unwrap();
    let body = out.stdout;
    let at = body.iter().rposition(|&b| b == b'\n').unwrap_or(0);
    let status = String::from_utf8_lossy(&body[at + 1..])
        .trim()
        .parse()
        .unwrap_or(0);
    (out.status.code().unwrap_or(-1), status, body[..at].to_vec())
}

#[test]
fn downloads_are_judged_by_their_first_bytes_and_their_size() {
    let smtp = servers::Smtp::start();
    let replies = Arc::new(downloads());
    let port = origin(Arc::clone(&replies));
    let running = start(&policy(smtp.port));
    let (ws, proxy) = (&running.ws, running.proxy.clone());
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    // An executable served as a PDF, and one gzip'd as "notes": refused, with a way to ask.
    for path in ["/report.pdf", "/notes.txt", "/readme.txt"] {
        let (_, status, page) = download(&proxy, "127.0.0.1", &url(path));
        assert_eq!(status, 403, "{path}");
        let page = String::from_utf8_lossy(&page);
        assert!(page.contains("a program (executable)"), "{path}: {page}");
        assert!(page.contains("Ask for approval"), "{page}");
    }
    // A real PDF, a Word document (a ZIP inside) and a video (logged) arrive whole.
    for path in ["/real.pdf", "/essay.docx", "/film"] {
        let (code, status, body) = download(&proxy, "127.0.0.1", &url(path));
        assert_eq!((code, status), (0, 200), "{path}");
        assert_eq!(body, replies[path].chunks.concat(), "{path}");
    }
    // Staff have no file rules: the same executable arrives.
    let (_, status, body) = download(&proxy, "127.0.0.2", &url("/report.pdf"));
    assert_eq!(status, 200);
    assert_eq!(body, replies["/report.pdf"].chunks.concat());
    // Over the pupil's 1 MiB: refused before it starts when the length is known; cut (a
    // failed transfer, not a short file that looks whole) when it is not.
    for path in ["/big.bin", "/part"] {
        let (_, status, page) = download(&proxy, "127.0.0.1", &url(path));
        assert_eq!(status, 403, "{path}");
        assert!(
            String::from_utf8_lossy(&page).contains("limited to 1 MiB"),
            "{path}"
        );
    }
    let (code, _, body) = download(&proxy, "127.0.0.1", &url("/big-chunked"));
    assert_ne!(code, 0, "curl must see the transfer fail");
    assert!(body.len() <= (1 << 20) + 64 * 1024, "{}", body.len());
    let all = events(ws, |e| e.len() >= 8);
    let rule = |path: &str| -> Vec<String> {
        all.iter()
            .filter(|e| e["url"].as_str().is_some_and(|u| u.ends_with(path)))
            .map(|e| {
                format!(
                    "{} {}",
                    e["rule"].as_str().unwrap_or(""),
                    e["verdict"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    assert!(
        rule("/report.pdf").contains(&"file:executable block".to_owned()),
        "{:?}",
        rule("/report.pdf")
    );
    assert!(rule("/notes.txt").contains(&"file:executable block".to_owned()));
    assert_eq!(rule("/big.bin"), vec!["download-size block".to_owned()]);
    let film = all
        .iter()
        .find(|e| e["url"].as_str().is_some_and(|u| u.ends_with("/film")))
        .unwrap();
    assert_eq!(film["rule"], "file:video");
    assert_eq!(film["sensitive"], true);
    let metrics = reqwest::blocking::get(running.metrics.as_ref().unwrap())
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("gatehouse_refused_total{reason=\"download-limit\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_role_whose_pages_are_held_gets_the_block_page_instead_of_a_harmful_page() {
    let smtp = servers::Smtp::start();
    let replies = Arc::new(replies());
    let port = origin(Arc::clone(&replies));
    let held = policy(smtp.port).replace(
        "[roles.pupil]\ndefault = \"allow\"\n",
        "[roles.pupil]\ndefault = \"allow\"\npage_text = \"hold\"\n",
    );
    assert!(held.contains("page_text = \"hold\""));
    let running = start(&held);
    let (ws, proxy) = (&running.ws, running.proxy.clone());
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    // The pupil gets the block page, with help, instead of the how-to (chunked and gzip'd,
    // its phrase cut across the chunks).
    for path in ["/gzip-chunked", "/br"] {
        let (status, page) = fetch(&proxy, &url(path));
        assert_eq!(status, 403, "{path}");
        let page = String::from_utf8_lossy(&page);
        assert!(
            page.contains("This page is blocked") && page.contains("Childline"),
            "{page}"
        );
        assert!(
            !page.contains("paracetamol"),
            "none of the page is delivered"
        );
    }
    // An ordinary page is delivered whole after it was read; an AI chat's stream is never
    // held; a teacher's page is delivered (staff log the theme).
    for path in ["/clean", "/chat"] {
        let (status, body) = fetch(&proxy, &url(path));
        assert_eq!(
            (status, body),
            (200, replies[path].chunks.concat()),
            "{path}"
        );
    }
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "-x", &format!("http://{proxy}")])
        .args(["--interface", "127.0.0.2"])
        .arg(url("/zstd"))
        .output()
        .unwrap();
    assert_eq!(out.stdout, replies["/zstd"].chunks.concat());
    let all = events(ws, |e| {
        e.iter()
            .filter(|e| e["verdict"] == "block" && e["rule"] == "content:suicide")
            .count()
            >= 2
    });
    let blocked: Vec<&serde_json::Value> = all
        .iter()
        .filter(|e| e["verdict"] == "block" && e["rule"] == "content:suicide")
        .collect();
    assert_eq!(blocked.len(), 2, "{all:#?}");
    for e in blocked {
        assert_eq!(e["status"], 403);
        assert_eq!(e["alert"], "high");
        assert!(
            e["reason"].as_str().unwrap().contains("not delivered"),
            "{e}"
        );
    }
}
