//! Helpers shared by the end-to-end tests: run the real `gatehouse` binary, write
//! configurations into temporary folders, point them at the repository's lists.

#![allow(dead_code, reason = "each test file uses a different subset")]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failure is a failed test"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The `gatehouse` binary cargo built for these tests.
pub fn gatehouse() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The starter lists shipped in the repository.
pub fn lists() -> PathBuf {
    repo().join("lists")
}

/// Runs `gatehouse ARGS` with `stdin`, returning its output.
pub fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = gatehouse()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gatehouse runs");
    let mut input = child.stdin.take().expect("stdin");
    let text = stdin.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().expect("gatehouse finishes");
    writer.join().expect("stdin writer");
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A temporary folder holding `gatehouse.toml` (and whatever else a test writes there).
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub fn write(&self, name: &str, text: &[u8]) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }
    /// Writes a config whose `lists_dir` is the repository's lists, with `body` after the
    /// `[school]` table.
    pub fn config(&self, body: &str) -> PathBuf {
        let text = format!(
            "lists_dir = {:?}\n[school]\nname = \"Test School\"\ntimezone = \"Europe/London\"\n{body}",
            lists().display().to_string()
        );
        self.write("gatehouse.toml", text.as_bytes())
    }
}

/// Starts `gatehouse run --config CONFIG` and waits until it listens; returns the process,
/// the proxy's address and the metrics URL (when it serves metrics). Its stderr is kept in
/// `stderr.log` beside the config.
pub fn spawn_proxy(config: &Path) -> (Child, String, Option<String>) {
    let started = spawn_gatehouse(config);
    (started.child, started.proxy, started.metrics)
}

/// A running `gatehouse run` and the addresses it printed.
pub struct Started {
    pub child: Child,
    pub proxy: String,
    pub metrics: Option<String>,
    /// `https://127.0.0.1:PORT/` when `[admin]` listens.
    pub admin: Option<String>,
}

/// As [`spawn_proxy`], with the admin page's address.
pub fn spawn_gatehouse(config: &Path) -> Started {
    let log = std::fs::File::create(config.with_file_name("stderr.log")).expect("stderr.log");
    let mut child = gatehouse()
        .args(["run", "--config", config.to_str().expect("utf-8 path")])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("gatehouse run starts");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut metrics = None;
    let mut admin = None;
    let addr = loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).expect("read stdout") > 0,
            "gatehouse run stopped before listening: {}",
            std::fs::read_to_string(config.with_file_name("stderr.log")).unwrap_or_default()
        );
        if let Some(m) = line.trim().strip_prefix("Gatehouse metrics on ") {
            metrics = Some(m.to_owned());
        }
        if let Some(a) = line.trim().strip_prefix("Gatehouse admin page on ") {
            admin = Some(a.to_owned());
        }
        if let Some(a) = line.trim().strip_prefix("Gatehouse proxy listening on ") {
            break a.to_owned();
        }
    };
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = out.read_to_string(&mut rest);
    });
    Started {
        child,
        proxy: addr,
        metrics,
        admin,
    }
}
