//! Whole-engine measurements that criterion cannot make: compile time and resident memory
//! at a target number of names, per-call `evaluate` latency percentiles on the request mix,
//! and the same while another thread recompiles and swaps the policy.
//!
//! `cargo run --release -p gatehouse-benches --bin rules_bench -- [total-names] [calls]`
//! (defaults: 2,000,000 names, 2,000,000 calls).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "benchmark harness"
)]

use gatehouse_benches::{bench_config, request_mix, rss_bytes, trim_heap, Kind};
use gatehouse_rules::{compile, config::ConfigFile, evaluate, Facts, Live, Target};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Names the shared lists hold before synthetic ones are added (measured, rounded down).
const BASE_NAMES: usize = 540_000;

fn percentile(sorted: &[u64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize] as f64
}

fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let calls: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = bench_config(dir.path(), total.saturating_sub(BASE_NAMES));
    let file = ConfigFile::load(&path).unwrap();
    trim_heap();
    let before = rss_bytes();
    let started = Instant::now();
    let compiled = compile(&file).unwrap();
    let compile_time = started.elapsed();
    drop(file);
    trim_heap();
    let after = rss_bytes();
    let names = compiled.report.distinct_domains;
    let index_bytes = compiled.snapshot.lists().domains.heap_bytes();
    println!("names (distinct): {names}");
    let huge = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    if let Some(line) = huge.lines().find(|l| l.starts_with("AnonHugePages")) {
        println!("{line}");
    }
    println!(
        "url prefixes: {}, regexes: {}",
        compiled.report.url_prefixes, compiled.report.regexes
    );
    println!(
        "compile (read + parse + index every list): {:.3} s",
        compile_time.as_secs_f64()
    );
    println!(
        "resident memory of the compiled policy: {:.1} MiB = {:.1} bytes per name (name index alone: {:.1} bytes per name)",
        (after - before) as f64 / 1048576.0,
        (after - before) as f64 / names as f64,
        index_bytes as f64 / names as f64
    );

    let snap = compiled.snapshot;
    println!(
        "compiled themes (automata, slip index, tables): {:.1} MiB",
        snap.themes().heap_bytes() as f64 / 1048576.0
    );
    let role = snap.role_id("pupil").unwrap();
    let mut mix = request_mix(20_000);
    if let Some(kind) = std::env::var("GATEHOUSE_BENCH_KIND")
        .ok()
        .filter(|k| !k.is_empty())
    {
        mix.retain(|(k, _)| format!("{k:?}") == kind);
    }
    let at: chrono::DateTime<chrono::Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
    fn facts_for(
        role: gatehouse_rules::RoleId,
        at: chrono::DateTime<chrono::Utc>,
        url: &str,
    ) -> Facts<'_> {
        Facts {
            role,
            user: None,
            client: None,
            at,
            method: "GET",
            target: Target::Url(url),
        }
    }
    // Timer overhead, subtracted from every sample.
    let overhead = {
        let mut v: Vec<u64> = (0..100_000)
            .map(|_| {
                let t = Instant::now();
                t.elapsed().as_nanos() as u64
            })
            .collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    // The request text is copied into a buffer that stays in cache before each call, as in
    // the proxy, where evaluate() runs on a request line just read from the socket.
    let measure = |snap: &gatehouse_rules::Snapshot, n: usize| -> Vec<(Kind, u64)> {
        let mut line = String::with_capacity(4096);
        (0..n)
            .map(|i| {
                let (kind, url) = &mix[i % mix.len()];
                line.clear();
                line.push_str(url);
                let f = facts_for(role, at, &line);
                let t = Instant::now();
                let d = evaluate(snap, &f);
                let ns = t.elapsed().as_nanos() as u64;
                std::hint::black_box(d);
                (*kind, ns.saturating_sub(overhead))
            })
            .collect()
    };
    measure(&snap, 100_000);
    let samples = measure(&snap, calls);
    println!("timer overhead subtracted: {overhead} ns");
    report("evaluate, all kinds", samples.iter().map(|s| s.1).collect());
    for kind in [
        Kind::Hit,
        Kind::Miss,
        Kind::DeepSubdomain,
        Kind::Search,
        Kind::UrlList,
    ] {
        report(
            &format!("evaluate, {kind:?}"),
            samples
                .iter()
                .filter(|s| s.0 == kind)
                .map(|s| s.1)
                .collect(),
        );
    }

    if std::env::var_os("GATEHOUSE_BENCH_NO_RELOAD").is_some() {
        return;
    }
    // The same while another thread compiles the whole policy again and swaps it in.
    let live = Arc::new(Live::new(snap));
    let stop = Arc::new(AtomicBool::new(false));
    let reloader = {
        let (live, stop, path) = (live.clone(), stop.clone(), path.clone());
        std::thread::spawn(move || {
            let mut swaps = 0;
            while !stop.load(Ordering::Relaxed) && swaps < 50 {
                let next = compile(&ConfigFile::load(&path).unwrap()).unwrap().snapshot;
                live.swap(next);
                swaps += 1;
            }
            swaps
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut during = Vec::with_capacity(calls);
    let mut i = 0;
    let mut line = String::with_capacity(4096);
    while during.len() < calls && Instant::now() < deadline {
        let (_, url) = &mix[i % mix.len()];
        i += 1;
        line.clear();
        line.push_str(url);
        let f = facts_for(role, at, &line);
        let t = Instant::now();
        let snap = live.load();
        let d = evaluate(&snap, &f);
        let ns = t.elapsed().as_nanos() as u64;
        std::hint::black_box(d);
        during.push(ns.saturating_sub(overhead));
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = reloader.join().unwrap();
    report(
        &format!("live.load() + evaluate while reloading ({swaps} swaps)"),
        during,
    );
}

fn report(label: &str, mut v: Vec<u64>) {
    v.sort_unstable();
    if v.is_empty() {
        return;
    }
    println!(
        "{label}: n={} median {:.0} ns, p99 {:.0} ns, p99.9 {:.0} ns, max {:.0} ns",
        v.len(),
        percentile(&v, 0.5),
        percentile(&v, 0.99),
        percentile(&v, 0.999),
        percentile(&v, 1.0)
    );
}
