//! Criterion benchmarks of the rules engine on the real lists (all of
//! `../shared/data/blocklists`) plus synthetic names up to 2 million.
//!
//! `cargo bench -p gatehouse-benches --bench evaluate`

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark harness")]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gatehouse_benches::{bench_policy, request_mix, Kind};
use gatehouse_rules::search::normalize;
use gatehouse_rules::{evaluate, Facts, Target};

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let compiled = bench_policy(dir.path(), 1_460_000);
    let snap = &compiled.snapshot;
    let role = snap.role_id("pupil").unwrap();
    let at = "2026-11-23T10:00:00Z".parse().unwrap();
    let mix = request_mix(20_000);

    let mut group = c.benchmark_group("evaluate");
    group.throughput(Throughput::Elements(1));
    let mut run = |name: &str, urls: Vec<&str>| {
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                let url = urls[i % urls.len()];
                i += 1;
                let facts = Facts {
                    role,
                    user: None,
                    client: None,
                    at,
                    method: "GET",
                    target: Target::Url(url),
                };
                evaluate(snap, &facts)
            })
        });
    };
    run("mix", mix.iter().map(|(_, u)| u.as_str()).collect());
    for kind in [
        Kind::Hit,
        Kind::Miss,
        Kind::DeepSubdomain,
        Kind::Search,
        Kind::UrlList,
    ] {
        run(
            &format!("{kind:?}"),
            mix.iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, u)| u.as_str())
                .collect(),
        );
    }
    group.finish();

    c.bench_function("tunnel/host-only", |b| {
        let hosts: Vec<String> = mix
            .iter()
            .filter_map(|(_, u)| u.split('/').nth(2).map(|h| format!("{h}:443")))
            .collect();
        let mut i = 0;
        b.iter(|| {
            let host = &hosts[i % hosts.len()];
            i += 1;
            let facts = Facts {
                role,
                user: None,
                client: None,
                at,
                method: "CONNECT",
                target: Target::Authority(host),
            };
            evaluate(snap, &facts)
        })
    });
    c.bench_function("normalize/query", |b| {
        b.iter_batched(
            || "How to K1LL mys3lf ÉCOLE ｆｕｌｌ",
            normalize,
            BatchSize::SmallInput,
        )
    });
}

criterion_group! {
    name = rules;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(5));
    targets = benches
}
criterion_main!(rules);
