//! The event store suite, run against both back ends: SQLite in a temporary folder and a
//! real PostgreSQL server started by the test on 127.0.0.1. Then the failure path: the
//! store goes away mid-stream and comes back, and no event is lost or reordered.

#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure is a failed test"
)]

#[path = "../../tests/common/servers.rs"]
mod servers;

use gatehouse_safeguarding::config::{Backend, Retention, StoreSettings};
use gatehouse_safeguarding::metrics::Metrics;
use gatehouse_safeguarding::recorder::{Recorder, StoreThread};
use gatehouse_safeguarding::store::{timestamp, Query, Store};
use gatehouse_safeguarding::Event;
use std::sync::Arc;

fn event(i: usize, days_ago: i64) -> Event {
    let at = chrono::Utc::now() - chrono::Duration::days(days_ago)
        + chrono::Duration::milliseconds(i as i64);
    let flagged = i % 10 == 0;
    Event {
        time: timestamp(at),
        request_id: format!("r{i}"),
        client_ip: format!("10.10.0.{}", i % 3),
        user: (i % 2 == 0).then(|| format!("pupil{}", i % 4)),
        person: None,
        identified_by: String::new(),
        role: if i % 5 == 0 { "staff" } else { "pupil" }.to_owned(),
        site: Some(if i % 7 == 0 { "annexe" } else { "main" }.to_owned()),
        method: "GET".to_owned(),
        host: format!("site{i}.example"),
        url: format!("http://site{i}.example/page"),
        search_term: flagged.then(|| "how to self harm".to_owned()),
        categories: if i % 3 == 0 {
            vec!["games".to_owned()]
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
        verdict: if i % 3 == 0 { "block" } else { "allow" }.to_owned(),
        alert: flagged.then(|| "high".to_owned()),
        sensitive: flagged,
        rule: "test".to_owned(),
        reason: "test".to_owned(),
        status: 200,
        bytes: Some(i as u64),
        duration_ms: 1.5,
        decrypted: true,
        excerpt: None,
    }
}

fn count(store: &mut Store, q: Query) -> usize {
    store
        .query(&Query {
            limit: 100_000,
            ..q
        })
        .unwrap()
        .len()
}

/// The same checks for every back end.
fn suite(mut open: impl FnMut() -> Store) {
    let mut store = open();
    // 600 events over the last 12 days (i / 50 days ago), in two batches.
    let events: Vec<Event> = (0..600).map(|i| event(i, (i / 50) as i64)).collect();
    store.insert(&events[..300]).unwrap();
    store.insert(&events[300..]).unwrap();
    assert_eq!(count(&mut store, Query::default()), 600);

    // The admin page's overview: the last two and a half days (i < 150), by day.
    let since = timestamp(chrono::Utc::now() - chrono::Duration::hours(60));
    let summary = store.summary(&since, 10, 10).unwrap();
    let totals = summary
        .buckets
        .iter()
        .fold((0, 0, 0), |t, b| (t.0 + b.1, t.1 + b.2, t.2 + b.3));
    assert_eq!(totals, (150, 50, 15), "requests, blocked, alerting");
    assert!(summary.buckets.len() <= 4 && summary.buckets.iter().all(|b| b.0.len() == 10));
    assert_eq!(
        summary.top_blocked_labels,
        vec![("games".to_owned(), 50), ("self-harm".to_owned(), 5)]
    );
    assert_eq!(summary.top_blocked_hosts.len(), 10);
    assert_eq!(
        summary.top_flagged_people,
        vec![("pupil0".to_owned(), 8), ("pupil2".to_owned(), 7)]
    );

    // Round trip: what goes in comes out, field for field.
    let got = store
        .query(&Query {
            client_ip: Some("10.10.0.0".into()),
            user: Some("pupil0".into()),
            limit: 100_000,
            ..Query::default()
        })
        .unwrap();
    let want: Vec<&Event> = events
        .iter()
        .filter(|e| e.client_ip == "10.10.0.0" && e.user.as_deref() == Some("pupil0"))
        .collect();
    assert_eq!(got.len(), want.len());
    let newest = want.iter().max_by(|a, b| a.time.cmp(&b.time)).unwrap();
    assert_eq!(&got[0], *newest, "newest first, every field kept");

    // Each filter, and filters together.
    let by = |f: &dyn Fn(&Event) -> bool| events.iter().filter(|e| f(e)).count();
    assert_eq!(
        count(
            &mut store,
            Query {
                user: Some("pupil2".into()),
                ..Query::default()
            }
        ),
        by(&|e| e.user.as_deref() == Some("pupil2"))
    );
    assert_eq!(
        count(
            &mut store,
            Query {
                label: Some("games".into()),
                ..Query::default()
            }
        ),
        by(&|e| e.categories.contains(&"games".to_owned()))
    );
    assert_eq!(
        count(
            &mut store,
            Query {
                label: Some("self-harm".into()),
                ..Query::default()
            }
        ),
        by(&|e| e.themes.contains(&"self-harm".to_owned()))
    );
    assert_eq!(
        count(
            &mut store,
            Query {
                verdict: Some("block".into()),
                ..Query::default()
            }
        ),
        by(&|e| e.verdict == "block")
    );
    assert_eq!(
        count(
            &mut store,
            Query {
                flagged_only: true,
                site: Some("annexe".into()),
                ..Query::default()
            }
        ),
        by(&|e| e.flagged() && e.site.as_deref() == Some("annexe"))
    );
    let from = timestamp(chrono::Utc::now() - chrono::Duration::days(3));
    assert_eq!(
        count(
            &mut store,
            Query {
                from: Some(from.clone()),
                ..Query::default()
            }
        ),
        by(&|e| e.time >= from)
    );
    assert_eq!(
        count(
            &mut store,
            Query {
                from: Some(from.clone()),
                label: Some("self-harm".into()),
                user: Some("pupil0".into()),
                ..Query::default()
            }
        ),
        by(&|e| e.time >= from
            && e.themes.contains(&"self-harm".to_owned())
            && e.user.as_deref() == Some("pupil0"))
    );
    assert_eq!(
        store
            .query(&Query {
                limit: 7,
                ..Query::default()
            })
            .unwrap()
            .len(),
        7
    );

    // Retention: all traffic older than 4 days goes, flagged events older than 8 days go.
    let retention = Retention {
        traffic: 4,
        flagged: 8,
        alerts: 30,
    };
    let now = chrono::Utc::now();
    let gone = store.enforce_retention(&retention, now).unwrap();
    let traffic_cut = timestamp(now - chrono::Duration::days(4));
    let flagged_cut = timestamp(now - chrono::Duration::days(8));
    let kept = by(&|e| {
        if e.flagged() {
            e.time >= flagged_cut
        } else {
            e.time >= traffic_cut
        }
    });
    assert_eq!(gone, 600 - kept);
    assert_eq!(count(&mut store, Query::default()), kept);
    // Labels of purged events are gone with them.
    assert_eq!(
        count(
            &mut store,
            Query {
                label: Some("games".into()),
                ..Query::default()
            }
        ),
        by(&|e| e.categories.contains(&"games".to_owned())
            && if e.flagged() {
                e.time >= flagged_cut
            } else {
                e.time >= traffic_cut
            })
    );

    // The overview's counts older than the traffic retention went too (4 days: i < 200,
    // and the minute the cut falls in, i < 250), flagged or not.
    let everything = store.summary("2000-01-01T00:00:00.000Z", 10, 10).unwrap();
    let counted: i64 = everything.buckets.iter().map(|b| b.1).sum();
    assert!(
        (200..=250).contains(&counted),
        "counts older than 4 days purged: {counted}"
    );

    // Opening again runs no migration twice and keeps everything.
    drop(store);
    let mut again = open();
    assert_eq!(count(&mut again, Query::default()), kept);
}

#[test]
fn sqlite_store_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings::default();
    suite(|| Store::open(&settings, dir.path()).unwrap());
}

#[test]
fn postgres_store_passes_the_suite() {
    let pg = servers::Postgres::start();
    let settings = StoreSettings {
        backend: Backend::Postgres,
        url: Some(pg.url()),
        ..StoreSettings::default()
    };
    let dir = tempfile::tempdir().unwrap();
    suite(|| Store::open(&settings, dir.path()).unwrap());
}

#[test]
fn a_store_that_goes_away_and_comes_back_loses_no_event_and_keeps_their_order() {
    let pg = servers::Postgres::start();
    let settings = StoreSettings {
        backend: Backend::Postgres,
        url: Some(pg.url()),
        ..StoreSettings::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new(None).unwrap());
    let (s, d) = (settings.clone(), dir.path().to_owned());
    let recorder = Recorder::start(
        &dir.path().join("spill.jsonl"),
        StoreThread {
            open: Box::new(move || Store::open(&s, &d)),
            housekeeping: Box::new(|_| {}),
            catch_up_bytes: gatehouse_safeguarding::recorder::CATCH_UP_BYTES,
        },
        Arc::clone(&metrics),
    )
    .unwrap();
    let mut sent = 0;
    let batch = |n: usize, sent: &mut usize| {
        let b: Vec<Event> = (*sent..*sent + n).map(|i| event(i, 0)).collect();
        *sent += n;
        recorder.record(b);
    };
    for _ in 0..20 {
        batch(100, &mut sent);
    }
    // The store goes away with events still arriving: they wait on disk.
    pg.stop();
    for _ in 0..200 {
        batch(100, &mut sent);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        metrics.events_spilled.get() > 0,
        "events went to the spill file"
    );
    // It comes back: everything is stored, in the order it happened.
    pg.start_again();
    for _ in 0..20 {
        batch(100, &mut sent);
    }
    let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    let stored = servers::wait_for(120, || {
        let n: i64 = client
            .query_one("SELECT COUNT(*) FROM events", &[])
            .ok()?
            .get(0);
        (n as usize >= sent).then_some(n)
    });
    assert_eq!(stored, Some(sent as i64), "every event stored exactly once");
    let order: Vec<String> = client
        .query("SELECT request_id FROM events ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<String> = (0..sent).map(|i| format!("r{i}")).collect();
    assert!(order == expected, "events stored out of order");
    recorder.close();
    assert!(
        !dir.path().join("spill.jsonl").exists(),
        "the spill file is gone once replayed"
    );
}

/// The scheduling policy (SCHED_OTHER 0, SCHED_IDLE 5) and nice value of this process's
/// thread named `gatehouse-store`, from /proc.
fn store_thread_schedule() -> Option<(u32, i32)> {
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        if std::fs::read_to_string(dir.join("comm")).ok()?.trim() != "gatehouse-store" {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        // Fields after the command name: the 3rd field of stat(5) is the first here.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        return Some((fields.get(38)?.parse().ok()?, fields.get(16)?.parse().ok()?));
    }
    None
}

/// Whether this process may move a thread from SCHED_IDLE back to nice 10: root, or an
/// RLIMIT_NICE of at least 10 (`LimitNICE=+10` in the systemd unit).
fn may_leave_idle() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let nice_limit: u32 = limits
        .lines()
        .find(|l| l.starts_with("Max nice priority"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    root || nice_limit >= 10
}

/// The store thread only uses CPU nothing else wants (SCHED_IDLE). A backlog in the spill
/// file beyond its limit gets a fair share (nice 10) until it is stored, and then the
/// thread goes back to idle. Here the backlog is left by an earlier run and the store is
/// away at first, so the thread sits in its catching-up state until the store answers.
#[test]
fn the_store_thread_runs_on_idle_cpu_and_takes_a_share_for_a_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spill.jsonl");
    let backlog: Vec<Event> = (0..1000).map(|i| event(i, 0)).collect();
    let mut lines = Vec::new();
    gatehouse_safeguarding::event::write_json_lines(&backlog, &mut lines);
    std::fs::write(&spill, &lines).unwrap();

    let store_up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let up = Arc::clone(&store_up);
    let settings = StoreSettings::default();
    let (s, d) = (settings.clone(), dir.path().to_owned());
    let metrics = Arc::new(Metrics::new(None).unwrap());
    let recorder = Recorder::start(
        &spill,
        StoreThread {
            open: Box::new(move || {
                if up.load(std::sync::atomic::Ordering::SeqCst) {
                    Store::open(&s, &d)
                } else {
                    Err(gatehouse_safeguarding::Error::Config("away".into()))
                }
            }),
            housekeeping: Box::new(|_| {}),
            catch_up_bytes: 1024,
        },
        Arc::clone(&metrics),
    )
    .unwrap();
    const SCHED_OTHER: u32 = 0;
    const SCHED_IDLE: u32 = 5;
    if may_leave_idle() {
        let catching_up = servers::wait_for(30, || {
            (store_thread_schedule()? == (SCHED_OTHER, 10)).then_some(())
        });
        assert!(
            catching_up.is_some(),
            "a backlog over the limit did not move the thread to nice 10: {:?}",
            store_thread_schedule()
        );
    }
    store_up.store(true, std::sync::atomic::Ordering::SeqCst);
    let stored = servers::wait_for(60, || (metrics.events_stored.get() == 1000).then_some(()));
    assert!(stored.is_some(), "stored {}", metrics.events_stored.get());
    let idle = servers::wait_for(30, || {
        (store_thread_schedule()?.0 == SCHED_IDLE).then_some(())
    });
    assert!(
        idle.is_some(),
        "caught up, the thread is not back on idle CPU: {:?}",
        store_thread_schedule()
    );
    let mut store = Store::open(&settings, dir.path()).unwrap();
    let all = Query {
        limit: 5000,
        ..Query::default()
    };
    assert_eq!(store.query(&all).unwrap().len(), 1000, "each event once");
    recorder.close();
}
