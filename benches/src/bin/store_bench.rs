//! Sustained event ingest into the event store, the way the proxy's writer feeds it
//! (batches of up to 4,096 events, one transaction each).
//!
//!   store_bench sqlite EVENTS BATCH
//!   store_bench postgres EVENTS BATCH "host=127.0.0.1 port=5433 user=gatehouse dbname=postgres"
//!
//! The events look like a school's traffic: 1 in 20 flagged (a theme matched, an alert), a
//! third with a category, users and devices spread over 2,000 pupils. Prints events per
//! second over the whole run and the slowest batch. Then as many again spread over the last
//! week, and the time the admin page's overview of the week takes.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]

use gatehouse_safeguarding::config::{Backend, StoreSettings};
use gatehouse_safeguarding::store::{timestamp, Store};
use gatehouse_safeguarding::Event;
use std::time::Instant;

/// Event `i` of `n`, `span_ms` after the one before it ended: a microsecond for ingest (events
/// arrive as they happen, so a batch covers a moment), a week's share for the overview.
fn event(i: usize, n: usize, span_ms: i64) -> Event {
    let flagged = i.is_multiple_of(20);
    let at = chrono::Utc::now() - chrono::Duration::milliseconds(span_ms)
        + chrono::Duration::microseconds((i as i64) * (span_ms * 1000) / n.max(1) as i64);
    Event {
        time: timestamp(at),
        request_id: format!("{i:x}-1"),
        client_ip: format!("10.10.{}.{}", (i / 250) % 8, i % 250),
        user: (!i.is_multiple_of(3)).then(|| format!("pupil{:04}", i % 2000)),
        person: None,
        identified_by: String::new(),
        role: "pupil".to_owned(),
        site: Some("main".to_owned()),
        method: "GET".to_owned(),
        host: format!("www.site{}.example", i % 5000),
        url: format!("https://www.site{}.example/path/{}", i % 5000, i % 97),
        search_term: flagged.then(|| "how to self harm".to_owned()),
        categories: if i.is_multiple_of(3) {
            vec!["news".to_owned()]
        } else {
            vec![]
        },
        themes: if flagged {
            vec!["self-harm".to_owned()]
        } else {
            vec![]
        },
        terms: if flagged {
            vec!["self harm".to_owned()]
        } else {
            vec![]
        },
        verdict: if flagged { "block" } else { "allow" }.to_owned(),
        alert: flagged.then(|| "high".to_owned()),
        sensitive: flagged,
        rule: if flagged {
            "theme:self-harm"
        } else {
            "default"
        }
        .to_owned(),
        reason: "Allowed for pupil: no rule matched.".to_owned(),
        status: 200,
        bytes: Some(1024 + (i % 4096) as u64),
        duration_ms: 3.25,
        decrypted: true,
        excerpt: None,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).map_or("sqlite", String::as_str);
    let n: usize = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let batch_size: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(4096);
    let dir = tempfile::tempdir()?;
    let settings = match backend {
        "postgres" => StoreSettings {
            backend: Backend::Postgres,
            url: args.get(4).cloned(),
            ..StoreSettings::default()
        },
        _ => StoreSettings::default(),
    };
    let mut store = Store::open(&settings, dir.path())?;
    let events: Vec<Event> = (0..n).map(|i| event(i, n, (n / 1000) as i64)).collect();
    let started = Instant::now();
    let mut slowest = 0f64;
    for batch in events.chunks(batch_size) {
        let t = Instant::now();
        store.insert(batch)?;
        slowest = slowest.max(t.elapsed().as_secs_f64());
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{backend}: {n} events in {secs:.2} s = {:.0} events/s; slowest batch of {batch_size}: {:.0} ms",
        n as f64 / secs,
        slowest * 1000.0
    );
    // The admin page's overview of a week: as many events again, spread over the last seven
    // days (not timed as ingest), then the summary by hour with the top tens. Best of three,
    // the first warming the cache.
    let week_ms = 7 * 24 * 3600 * 1000;
    let week: Vec<Event> = (0..n).map(|i| event(i, n, week_ms)).collect();
    for batch in week.chunks(batch_size) {
        store.insert(batch)?;
    }
    let since = timestamp(chrono::Utc::now() - chrono::Duration::days(7));
    let mut best = f64::MAX;
    let mut buckets = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let summary = store.summary(&since, 13, 10)?;
        best = best.min(t.elapsed().as_secs_f64());
        buckets = summary.buckets.len();
    }
    println!(
        "{backend}: overview summary of the week ({} events, {buckets} buckets): {:.0} ms",
        2 * n,
        best * 1000.0
    );
    Ok(())
}
