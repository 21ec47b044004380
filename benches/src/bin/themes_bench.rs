//! The search-term path alone, per query: normalisation, then the theme matcher, on the
//! shipped themes, for each search of the benchmark mix and every search of the labelled
//! sets. Prints the median and p99 of each step, so a change to the matcher or the lists
//! can be measured without the rest of `evaluate`.
//!
//! `cargo run --release -p gatehouse-benches --bin themes_bench -- [rounds] [search]`
//! (default 200 rounds; with a search, only that search, `rounds` thousand times: for a
//! profiler).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "benchmark harness"
)]

use gatehouse_rules::config::ConfigFile;
use gatehouse_rules::labelled::read_set;
use gatehouse_rules::search::normalize;
use std::path::Path;
use std::time::Instant;

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let only = std::env::args().nth(2);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let file = ConfigFile::load(&root.join("deploy/gatehouse.toml")).unwrap();
    let started = Instant::now();
    let snap = gatehouse_rules::compile(&file).unwrap().snapshot;
    println!(
        "policy compiled in {:.2} s; compiled themes {:.1} MiB",
        started.elapsed().as_secs_f64(),
        snap.themes().heap_bytes() as f64 / 1048576.0
    );
    if let Some(q) = only {
        let n = normalize(&q);
        let started = Instant::now();
        for _ in 0..rounds * 1000 {
            std::hint::black_box(snap.themes().find(std::hint::black_box(&n)));
        }
        println!(
            "{q:?}: {} ns a match",
            started.elapsed().as_nanos() / (rounds as u128 * 1000)
        );
        return;
    }
    let mix: Vec<String> = [
        "weather tomorrow",
        "how to kill myself",
        "bbc bitesize maths",
        "s3lf h4rm pics",
        "fractions ks2 worksheet",
        "free vpn for school",
        "photosynthesis diagram",
        "join isis",
        "the great gatsby summary",
        "buy weed online",
        "premier league table",
        "suicide prevention charity",
    ]
    .map(str::to_owned)
    .to_vec();
    let labelled: Vec<String> = read_set(&[root.join("eval/searches")])
        .unwrap()
        .into_iter()
        .map(|c| c.query)
        .collect();
    // Each search of the mix on its own: which ones cost the most.
    for q in &mix {
        let n = normalize(q);
        let mut times: Vec<u64> = (0..rounds.max(50))
            .map(|_| {
                let t = Instant::now();
                let hits = snap.themes().find(&n);
                let took = t.elapsed().as_nanos() as u64;
                std::hint::black_box(hits);
                took
            })
            .collect();
        times.sort_unstable();
        println!("  {q:?}: match median {} ns", percentile(&times, 0.5));
    }
    for (name, queries) in [("benchmark mix", &mix), ("development set", &labelled)] {
        let mut norm = Vec::with_capacity(queries.len() * rounds);
        let mut find = Vec::with_capacity(queries.len() * rounds);
        let mut fired = 0usize;
        for _ in 0..rounds {
            for q in queries {
                let t0 = Instant::now();
                let n = normalize(q);
                let t1 = Instant::now();
                let hits = snap.themes().find(&n);
                let t2 = Instant::now();
                fired += usize::from(!hits.themes.is_empty());
                norm.push((t1 - t0).as_nanos() as u64);
                find.push((t2 - t1).as_nanos() as u64);
            }
        }
        norm.sort_unstable();
        find.sort_unstable();
        println!(
            "{name} ({} searches x {rounds}, {} fired): normalise median {} ns p99 {} ns; match median {} ns p99 {} ns",
            queries.len(),
            fired / rounds,
            percentile(&norm, 0.5),
            percentile(&norm, 0.99),
            percentile(&find, 0.5),
            percentile(&find, 0.99),
        );
    }
}
