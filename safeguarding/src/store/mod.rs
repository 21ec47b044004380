//! The event store: one interface, two back ends. SQLite (WAL, a file in the data folder)
//! is the embedded default; PostgreSQL lets a trust running several proxies share one
//! store. Both run the same migrations on start, answer the same queries, and are tested by
//! the same suite.

mod postgres;
mod sqlite;

use crate::config::{Backend, Retention, StoreSettings};
use crate::event::Event;
use crate::Error;
use std::path::Path;

/// What the DSL and IT search by. Every field narrows; `None` means any.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub user: Option<String>,
    pub client_ip: Option<String>,
    /// RFC 3339 UTC bounds, `from` inclusive, `to` exclusive.
    pub from: Option<String>,
    pub to: Option<String>,
    /// A category or theme name.
    pub label: Option<String>,
    pub verdict: Option<String>,
    pub site: Option<String>,
    pub flagged_only: bool,
    /// At most this many, newest first (0: 1,000).
    pub limit: usize,
}

/// Counts for the admin page's overview, from `since` (RFC 3339 UTC) on.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// `(bucket, requests, blocked, alerting)`, oldest first; a bucket is the first
    /// `bucket_chars` characters of the timestamp (13: the hour, 10: the day).
    pub buckets: Vec<(String, i64, i64, i64)>,
    /// Categories and themes of blocked requests, most first.
    pub top_blocked_labels: Vec<(String, i64)>,
    /// Hosts of blocked requests, most first.
    pub top_blocked_hosts: Vec<(String, i64)>,
    /// People (user, or address without a login) by flagged events, most first.
    pub top_flagged_people: Vec<(String, i64)>,
}

/// Counts kept beside the events as they are written, so the overview reads a few thousand
/// rows instead of scanning a week of events: per minute (requests, blocked, alerting), and
/// per hour the labels and hosts of blocked requests and the people with flagged events.
#[derive(Debug, Default)]
pub(crate) struct Tallies {
    pub minutes: std::collections::BTreeMap<String, (i64, i64, i64)>,
    /// `(hour, kind, key)`: kind is `label`, `host` or `person`.
    pub tops: std::collections::BTreeMap<(String, &'static str, String), i64>,
}

impl Tallies {
    pub(crate) fn of(events: &[Event]) -> Tallies {
        let mut t = Tallies::default();
        for e in events {
            let time = normalise_time(&e.time);
            let minute = time.get(..16).unwrap_or(&time).to_owned();
            let hour = time.get(..13).unwrap_or(&time).to_owned();
            let blocked = e.verdict == "block";
            let c = t.minutes.entry(minute).or_default();
            c.0 += 1;
            c.1 += i64::from(blocked);
            c.2 += i64::from(e.alert.is_some());
            if blocked {
                for l in e.categories.iter().chain(&e.themes) {
                    *t.tops
                        .entry((hour.clone(), "label", l.clone()))
                        .or_default() += 1;
                }
                *t.tops
                    .entry((hour.clone(), "host", e.host.clone()))
                    .or_default() += 1;
            }
            if e.flagged() {
                *t.tops
                    .entry((hour, "person", e.who().to_owned()))
                    .or_default() += 1;
            }
        }
        t
    }
}

/// The kinds of record with their own retention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Traffic,
    Flagged,
}

/// An open store.
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(Box<postgres::PgStore>),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::Sqlite(_) => f.write_str("Store::Sqlite"),
            Store::Postgres(_) => f.write_str("Store::Postgres"),
        }
    }
}

impl Store {
    /// Opens the configured store and brings its schema up to date.
    pub fn open(settings: &StoreSettings, data_dir: &Path) -> Result<Store, Error> {
        match settings.backend {
            Backend::None => Err(Error::Config(
                "[store] backend = \"none\": there is no event store to read".into(),
            )),
            Backend::Sqlite => Ok(Store::Sqlite(sqlite::SqliteStore::open(
                &data_dir.join(&settings.path),
                settings.sqlite_cache_mib.0,
            )?)),
            Backend::Postgres => {
                let url = settings.url.as_deref().ok_or_else(|| {
                    Error::Config("[store] backend = \"postgres\" needs url".into())
                })?;
                let password = match &settings.password_file {
                    Some(file) => Some(
                        std::fs::read_to_string(data_dir.join(file))
                            .map_err(|e| {
                                Error::Config(format!("[store] password_file {file}: {e}"))
                            })?
                            .trim()
                            .to_owned(),
                    ),
                    None => None,
                };
                Ok(Store::Postgres(Box::new(postgres::PgStore::open(
                    url,
                    password.as_deref(),
                )?)))
            }
        }
    }

    /// Stores a batch in one transaction, in order.
    pub fn insert(&mut self, events: &[Event]) -> Result<(), Error> {
        match self {
            Store::Sqlite(s) => s.insert(events),
            Store::Postgres(s) => s.insert(events),
        }
    }

    /// Events matching `q`, newest first.
    pub fn query(&mut self, q: &Query) -> Result<Vec<Event>, Error> {
        match self {
            Store::Sqlite(s) => s.query(q),
            Store::Postgres(s) => s.query(q),
        }
    }

    /// Requests, blocks and flagged events over time, and the top tens, since `since`.
    pub fn summary(
        &mut self,
        since: &str,
        bucket_chars: usize,
        top: usize,
    ) -> Result<Summary, Error> {
        match self {
            Store::Sqlite(s) => s.summary(since, bucket_chars, top),
            Store::Postgres(s) => s.summary(since, bucket_chars, top),
        }
    }

    /// Deletes at most `limit` records of `kind` older than `before` (RFC 3339 UTC);
    /// returns how many went. Called in small steps so no step holds the store for long.
    pub fn purge(&mut self, kind: Kind, before: &str, limit: usize) -> Result<usize, Error> {
        match self {
            Store::Sqlite(s) => s.purge(kind, before, limit),
            Store::Postgres(s) => s.purge(kind, before, limit),
        }
    }

    /// Whether the store still answers (after an error, to know when it is back).
    pub fn healthy(&mut self) -> bool {
        match self {
            Store::Sqlite(s) => s.healthy(),
            Store::Postgres(s) => s.healthy(),
        }
    }

    /// Removes everything past its retention, a few thousand rows at a time.
    pub fn enforce_retention(
        &mut self,
        retention: &Retention,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, Error> {
        let mut gone = 0;
        for (kind, days) in [
            (Kind::Traffic, retention.traffic),
            (Kind::Flagged, retention.flagged),
        ] {
            let before = timestamp(now - chrono::Duration::days(i64::from(days)));
            loop {
                let n = self.purge(kind, &before, PURGE_STEP)?;
                gone += n;
                if n < PURGE_STEP {
                    break;
                }
            }
        }
        // The overview's counts go with the traffic they count.
        let before = timestamp(now - chrono::Duration::days(i64::from(retention.traffic)));
        match self {
            Store::Sqlite(s) => s.purge_tallies(&before)?,
            Store::Postgres(s) => s.purge_tallies(&before)?,
        }
        Ok(gone)
    }
}

/// Rows deleted per purge step.
const PURGE_STEP: usize = 5_000;

/// The one timestamp format stored: fixed width, so text order is time order.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `time` as stored: parsed and written in the fixed format (unparseable: kept as is).
fn normalise_time(time: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(time)
        .map(|t| timestamp(t.with_timezone(&chrono::Utc)))
        .unwrap_or_else(|_| time.to_owned())
}

/// Lists are stored as `,a,b,` so a label is found with `LIKE '%,a,%'` and in the label table.
fn join_list(items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut s = String::from(",");
    for i in items {
        s.push_str(&i.replace(',', " "));
        s.push(',');
    }
    s
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

fn limit_of(q: &Query) -> i64 {
    if q.limit == 0 {
        1_000
    } else {
        q.limit.min(100_000) as i64
    }
}
