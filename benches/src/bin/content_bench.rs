//! The theme scanner on page text: how fast `rules::content` reads prose against the
//! shipped themes (deploy/gatehouse.toml), in MB of text a second on one core.
//!
//! `cargo run --release -p gatehouse-benches --bin content_bench -- [rounds]`
//!
//! The text is Gatehouse's own documentation (English prose with no theme hits in most
//! passages, as most pages are), about 100 KiB, pushed in 16 KiB chunks.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "benchmark harness"
)]

use gatehouse_rules::config::ConfigFile;
use gatehouse_rules::content::ContentScan;
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let file = ConfigFile::load(&root.join("deploy/gatehouse.toml")).unwrap();
    let snap = gatehouse_rules::compile(&file).unwrap().snapshot;
    let (anchors, sieve_bytes) = snap.themes().sieve_size();
    println!(
        "sieve: {anchors} patterns looked for, {:.2} MiB",
        sieve_bytes as f64 / 1048576.0
    );
    // Ordinary English prose (the licence texts every Debian system has), and a page about
    // safeguarding that names the themes' words throughout (Gatehouse's own documentation).
    let licences = PathBuf::from("/usr/share/common-licenses");
    let prose = read_all(["GPL-3", "Apache-2.0", "MPL-2.0", "LGPL-2.1"].map(|f| licences.join(f)));
    let docs = read_all(
        [
            "README.md",
            "benches/README.md",
            "lists/README.md",
            "eval/searches/README.md",
        ]
        .map(|f| root.join(f)),
    );
    for (name, text) in [("prose", prose), ("safeguarding docs", docs)] {
        if text.is_empty() {
            println!("{name}: no text found");
            continue;
        }
        run(&snap, name, &text, rounds);
    }
}

fn read_all(paths: impl IntoIterator<Item = PathBuf>) -> String {
    let mut text = String::new();
    for path in paths {
        text.push_str(&std::fs::read_to_string(path).unwrap_or_default());
    }
    text.truncate(text.floor_char_boundary(100 * 1024));
    text
}

fn run(snap: &gatehouse_rules::Snapshot, name: &str, text: &str, rounds: usize) {
    let mut times = Vec::with_capacity(rounds);
    let mut passages = 0;
    let mut matched = 0;
    for _ in 0..rounds {
        let started = Instant::now();
        let mut scan = ContentScan::new();
        let mut rest = text;
        while !rest.is_empty() {
            let cut = rest.floor_char_boundary(16 * 1024.min(rest.len()));
            let cut = if cut == 0 { rest.len() } else { cut };
            scan.push(snap.themes(), &rest[..cut]);
            rest = &rest[cut..];
        }
        let found = scan.finish(snap.themes());
        times.push(started.elapsed().as_secs_f64());
        passages = found.passages;
        matched = found.matched;
        std::hint::black_box(found);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{name}: {} bytes, {passages} passages, {matched} read by the matcher: median {:.3} ms a page, {:.1} MB/s ({rounds} rounds)",
        text.len(),
        median * 1000.0,
        text.len() as f64 / median / 1e6,
    );
}
