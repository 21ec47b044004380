//! Real servers the safeguarding tests talk to, started on 127.0.0.1 by the tests
//! themselves: PostgreSQL (Debian's `postgresql` package, a throw-away cluster), an SMTP
//! server (`aiosmtpd` from PyPI, writing a maildir) and a webhook receiver.

#![allow(dead_code, reason = "each test file uses a different subset")]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failure is a failed test"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An origin on 127.0.0.1 that answers every request (up to 2,000 connections) with the
/// page `results`: the search engine of the safeguarding and identity tests.
pub fn results_origin() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(2000) {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nresults",
                );
            });
        }
    });
    port
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `secs` seconds.
pub fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..secs * 10 {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// A PostgreSQL cluster in a temporary folder, listening on 127.0.0.1 only.
pub struct Postgres {
    pub dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
}

fn postgres_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (apt-get install postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb under /usr/lib/postgresql")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL program, as the `postgres` user when the tests run as root (the
/// server refuses to run as root).
fn pg_command(bin: &Path, program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    }
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown the cluster folder");
        }
        let bin = postgres_bin();
        let out = pg_command(&bin, "initdb")
            .args(["-A", "trust", "-U", "gatehouse", "--no-sync", "-D"])
            .arg(dir.path().join("data"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pg = Postgres {
            port: free_port(),
            dir,
            bin,
        };
        pg.start_again();
        pg
    }

    /// Starts the server (again, after `stop`).
    pub fn start_again(&self) {
        let opts = format!(
            "-h 127.0.0.1 -p {} -k {} -c fsync=off -c synchronous_commit=off",
            self.port,
            self.dir.path().display()
        );
        let out = pg_command(&self.bin, "pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(self.dir.path().join("data"))
            .args(["-l"])
            .arg(self.dir.path().join("log"))
            .args(["-o", &opts, "start"])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server at once (connections are cut).
    pub fn stop(&self) {
        let _ = pg_command(&self.bin, "pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=gatehouse dbname=postgres",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `aiosmtpd` on 127.0.0.1, delivering into a maildir the test reads back.
pub struct Smtp {
    child: Option<Child>,
    pub port: u16,
    pub maildir: PathBuf,
    /// Certificate and key when the server requires STARTTLS.
    tls: Option<(PathBuf, PathBuf)>,
    _dir: tempfile::TempDir,
}

/// One received message.
#[derive(Clone, Debug)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

impl Smtp {
    pub fn start() -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let mut smtp = Smtp {
            child: None,
            port: free_port(),
            maildir: dir.path().join("mail"),
            tls: None,
            _dir: dir,
        };
        smtp.start_again();
        smtp
    }

    /// A server that requires STARTTLS, with a certificate for 127.0.0.1 signed by a CA made
    /// here; returns it and the CA file.
    pub fn start_tls() -> (Smtp, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let sh = |args: &str| {
            let ok = Command::new("sh")
                .arg("-c")
                .arg(args)
                .current_dir(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "{args}");
        };
        sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=Test mail CA' 2>/dev/null");
        sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key -out leaf.csr -subj '/CN=127.0.0.1' 2>/dev/null");
        std::fs::write(
            dir.path().join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        sh("openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2 -extfile ext.cnf 2>/dev/null");
        let ca = dir.path().join("ca.pem");
        let mut smtp = Smtp {
            child: None,
            port: free_port(),
            maildir: dir.path().join("mail"),
            tls: Some((dir.path().join("leaf.pem"), dir.path().join("leaf.key"))),
            _dir: dir,
        };
        smtp.start_again();
        (smtp, ca)
    }

    /// A server that requires a login (`AUTH PLAIN`/`LOGIN` as `user` / `password`), with
    /// aiosmtpd's Controller since its command line has no authentication options.
    pub fn start_with_login(user: &str, password: &str) -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let maildir = dir.path().join("mail");
        let script = format!(
            r#"
import time
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult
def check(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == {user:?}.encode() and auth_data.password == {password:?}.encode()
    return AuthResult(success=ok)
c = Controller(Mailbox({maildir:?}), hostname="127.0.0.1", port={port},
               authenticator=check, auth_required=True, auth_require_tls=False)
c.start()
while True:
    time.sleep(3600)
"#,
            maildir = maildir.display().to_string()
        );
        let child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd");
        wait_for(20, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .expect("the SMTP server listens");
        Smtp {
            child: Some(child),
            port,
            maildir,
            tls: None,
            _dir: dir,
        }
    }

    /// Starts the server on its port (again, after `stop`).
    pub fn start_again(&mut self) {
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "aiosmtpd"]);
        if let Some((cert, key)) = &self.tls {
            cmd.arg("--tlscert").arg(cert).arg("--tlskey").arg(key);
        }
        let child = cmd
            .args(["-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd)");
        self.child = Some(child);
        let port = self.port;
        wait_for(20, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        })
        .expect("aiosmtpd listens");
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        let mut files: Vec<PathBuf> = ["new", "cur"]
            .iter()
            .filter_map(|d| std::fs::read_dir(self.maildir.join(d)).ok())
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|raw| parse_mail(&raw))
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Headers (unfolded) and the decoded text part of a message.
fn parse_mail(raw: &str) -> Mail {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let head = head.replace("\n ", " ").replace("\n\t", " ");
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    Mail {
        to: header("To"),
        subject: decode_words(&header("Subject")),
        text: decode_quoted_printable(body),
    }
}

/// RFC 2047 encoded words (`=?utf-8?b?...?=` / `?q?`), enough for the subjects sent.
fn decode_words(s: &str) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    for part in s.split_whitespace() {
        let decoded = part
            .strip_prefix("=?")
            .and_then(|p| p.strip_suffix("?="))
            .and_then(|p| {
                let mut it = p.splitn(3, '?');
                let (_charset, enc, text) = (it.next()?, it.next()?, it.next()?);
                if enc.eq_ignore_ascii_case("b") {
                    base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok())
                } else {
                    Some(decode_quoted_printable(&text.replace('_', " ")))
                }
            });
        match decoded {
            Some(d) => out.push_str(&d),
            None => {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(part);
            }
        }
    }
    out
}

fn decode_quoted_printable(s: &str) -> String {
    let s = s.replace("=\n", "");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A received request: its headers (names lower-cased) and body.
pub type Received = (Vec<(String, String)>, Vec<u8>);

/// An HTTP server that records every POST (headers and body) and answers 200.
pub struct WebhookReceiver {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl WebhookReceiver {
    pub fn start() -> WebhookReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(200) {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut headers = Vec::new();
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                    }
                }
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                log.lock().unwrap().push((headers, body));
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        WebhookReceiver { port, received }
    }
}
