//! Helpers shared by the end-to-end tests: run the real `gatehouse` binary, write
//! configurations into temporary folders, point them at the repository's lists.

#![allow(dead_code, reason = "each test file uses a different subset")]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failure is a failed test"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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
