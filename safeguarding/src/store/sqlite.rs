//! The SQLite back end: one file in the data folder, WAL, batched inserts in one
//! transaction with prepared statements.

use super::{join_list, limit_of, normalise_time, split_list, Kind, Query};
use crate::event::Event;
use crate::Error;
use rusqlite::{params, params_from_iter, Connection};
use std::path::Path;

pub struct SqliteStore {
    conn: Connection,
}

/// Each migration runs once, in order; `schema_version` says how far a database is.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE events (
  id INTEGER PRIMARY KEY,
  time TEXT NOT NULL,
  request_id TEXT NOT NULL,
  client_ip TEXT NOT NULL,
  user_name TEXT,
  role TEXT NOT NULL,
  site TEXT,
  method TEXT NOT NULL,
  host TEXT NOT NULL,
  url TEXT NOT NULL,
  search_term TEXT,
  categories TEXT NOT NULL,
  themes TEXT NOT NULL,
  terms TEXT NOT NULL,
  verdict TEXT NOT NULL,
  alert TEXT,
  sensitive INTEGER NOT NULL,
  flagged INTEGER NOT NULL,
  rule TEXT NOT NULL,
  reason TEXT NOT NULL,
  status INTEGER NOT NULL,
  bytes INTEGER,
  duration_ms REAL NOT NULL,
  decrypted INTEGER NOT NULL
);
CREATE INDEX events_time ON events(time);
CREATE INDEX events_user ON events(user_name, time) WHERE user_name IS NOT NULL;
CREATE INDEX events_ip ON events(client_ip, time);
CREATE INDEX events_verdict ON events(verdict, time) WHERE verdict <> 'allow';
CREATE INDEX events_flagged ON events(time) WHERE flagged = 1;
CREATE TABLE event_labels (
  label TEXT NOT NULL,
  event_id INTEGER NOT NULL,
  PRIMARY KEY (label, event_id)
) WITHOUT ROWID;
",
    r"
CREATE TABLE event_minutes (
  minute TEXT PRIMARY KEY,
  requests INTEGER NOT NULL,
  blocked INTEGER NOT NULL,
  alerting INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE event_tops (
  hour TEXT NOT NULL,
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (hour, kind, key)
) WITHOUT ROWID;
INSERT INTO event_minutes SELECT substr(time, 1, 16), COUNT(*),
  SUM(CASE WHEN verdict = 'block' THEN 1 ELSE 0 END), SUM(CASE WHEN alert IS NOT NULL THEN 1 ELSE 0 END)
  FROM events GROUP BY 1;
INSERT INTO event_tops SELECT substr(e.time, 1, 13), 'label', l.label, COUNT(*)
  FROM events e JOIN event_labels l ON l.event_id = e.id WHERE e.verdict = 'block' GROUP BY 1, 3;
INSERT INTO event_tops SELECT substr(time, 1, 13), 'host', host, COUNT(*)
  FROM events WHERE verdict = 'block' GROUP BY 1, 3;
INSERT INTO event_tops SELECT substr(time, 1, 13), 'person', COALESCE(user_name, client_ip), COUNT(*)
  FROM events WHERE flagged = 1 GROUP BY 1, 3;
",
];

const COLUMNS: &str = "time, request_id, client_ip, user_name, role, site, method, host, url, \
search_term, categories, themes, terms, verdict, alert, sensitive, flagged, rule, reason, status, \
bytes, duration_ms, decrypted";

impl SqliteStore {
    /// Opens (or creates) the file with a page cache of `cache_mib` MiB.
    pub fn open(path: &Path, cache_mib: u32) -> Result<SqliteStore, Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let conn = Connection::open(path).map_err(|e| Error::store(path.display(), e))?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; \
             PRAGMA cache_size = -{}; PRAGMA temp_store = MEMORY; \
             PRAGMA wal_autocheckpoint = 16384; PRAGMA journal_size_limit = 268435456;",
            u64::from(cache_mib) * 1024
        ))
        .map_err(|e| Error::store(path.display(), e))?;
        let mut store = SqliteStore { conn };
        store
            .migrate()
            .map_err(|e| Error::store(path.display(), e))?;
        Ok(store)
    }

    fn migrate(&mut self) -> rusqlite::Result<()> {
        self.conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
        )?;
        let done: i64 = self.conn.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [i as i64 + 1],
            )?;
            tx.commit()?;
        }
        Ok(())
    }

    pub fn insert(&mut self, events: &[Event]) -> Result<(), Error> {
        self.insert_inner(events)
            .map_err(|e| Error::store("sqlite", e))
    }

    fn insert_inner(&mut self, events: &[Event]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut row = tx.prepare_cached(&format!(
                "INSERT INTO events ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
                 ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)"
            ))?;
            let mut label = tx.prepare_cached(
                "INSERT OR IGNORE INTO event_labels (label, event_id) VALUES (?1, ?2)",
            )?;
            for e in events {
                row.execute(params![
                    normalise_time(&e.time),
                    e.request_id,
                    e.client_ip,
                    e.user,
                    e.role,
                    e.site,
                    e.method,
                    e.host,
                    e.url,
                    e.search_term,
                    join_list(&e.categories),
                    join_list(&e.themes),
                    join_list(&e.terms),
                    e.verdict,
                    e.alert,
                    e.sensitive,
                    e.flagged(),
                    e.rule,
                    e.reason,
                    e.status,
                    e.bytes.map(|b| b as i64),
                    e.duration_ms,
                    e.decrypted,
                ])?;
                let id = tx.last_insert_rowid();
                for l in e.categories.iter().chain(&e.themes) {
                    label.execute(params![l, id])?;
                }
            }
            let tallies = super::Tallies::of(events);
            let mut minute = tx.prepare_cached(
                "INSERT INTO event_minutes (minute, requests, blocked, alerting) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT(minute) DO UPDATE SET requests = event_minutes.requests + excluded.requests, \
                 blocked = event_minutes.blocked + excluded.blocked, \
                 alerting = event_minutes.alerting + excluded.alerting",
            )?;
            for (m, (n, b, a)) in &tallies.minutes {
                minute.execute(params![m, n, b, a])?;
            }
            let mut top = tx.prepare_cached(
                "INSERT INTO event_tops (hour, kind, key, n) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT(hour, kind, key) DO UPDATE SET n = event_tops.n + excluded.n",
            )?;
            for ((hour, kind, key), n) in &tallies.tops {
                top.execute(params![hour, kind, key, n])?;
            }
        }
        tx.commit()
    }

    pub fn purge_tallies(&mut self, before: &str) -> Result<(), Error> {
        let run = || -> rusqlite::Result<()> {
            self.conn.execute(
                "DELETE FROM event_minutes WHERE minute < substr(?1, 1, 16)",
                [before],
            )?;
            self.conn.execute(
                "DELETE FROM event_tops WHERE hour < substr(?1, 1, 13)",
                [before],
            )?;
            Ok(())
        };
        run().map_err(|e| Error::store("sqlite", e))
    }

    pub fn query(&mut self, q: &Query) -> Result<Vec<Event>, Error> {
        self.query_inner(q).map_err(|e| Error::store("sqlite", e))
    }

    fn query_inner(&mut self, q: &Query) -> rusqlite::Result<Vec<Event>> {
        let mut clauses: Vec<&str> = Vec::new();
        let mut values: Vec<String> = Vec::new();
        let mut add = |clause: &'static str, value: &Option<String>| {
            if let Some(v) = value {
                clauses.push(clause);
                values.push(v.clone());
            }
        };
        add("user_name = ?", &q.user);
        add("client_ip = ?", &q.client_ip);
        add("time >= ?", &q.from);
        add("time < ?", &q.to);
        add("verdict = ?", &q.verdict);
        add("site = ?", &q.site);
        add(
            "id IN (SELECT event_id FROM event_labels WHERE label = ?)",
            &q.label,
        );
        if q.flagged_only {
            clauses.push("flagged = 1");
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM events {filter} ORDER BY time DESC, id DESC LIMIT {}",
            limit_of(q)
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(values.iter()), |r| {
            Ok(Event {
                time: r.get(0)?,
                request_id: r.get(1)?,
                client_ip: r.get(2)?,
                user: r.get(3)?,
                // The events table keeps the account; the people table names it.
                person: None,
                identified_by: String::new(),
                role: r.get(4)?,
                site: r.get(5)?,
                method: r.get(6)?,
                host: r.get(7)?,
                url: r.get(8)?,
                search_term: r.get(9)?,
                categories: split_list(&r.get::<_, String>(10)?),
                themes: split_list(&r.get::<_, String>(11)?),
                terms: split_list(&r.get::<_, String>(12)?),
                verdict: r.get(13)?,
                alert: r.get(14)?,
                sensitive: r.get(15)?,
                rule: r.get(17)?,
                reason: r.get(18)?,
                status: r.get(19)?,
                bytes: r.get::<_, Option<i64>>(20)?.map(|b| b as u64),
                duration_ms: r.get(21)?,
                decrypted: r.get(22)?,
                excerpt: None,
            })
        })?;
        rows.collect()
    }

    pub fn summary(
        &mut self,
        since: &str,
        bucket_chars: usize,
        top: usize,
    ) -> Result<super::Summary, Error> {
        self.summary_inner(since, bucket_chars, top)
            .map_err(|e| Error::store("sqlite", e))
    }

    fn summary_inner(
        &mut self,
        since: &str,
        bucket_chars: usize,
        top: usize,
    ) -> rusqlite::Result<super::Summary> {
        let tops = |kind: &str| -> rusqlite::Result<Vec<(String, i64)>> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT key, SUM(n) FROM event_tops WHERE hour >= substr(?1, 1, 13) AND kind = ?2 \
                 GROUP BY key ORDER BY 2 DESC, 1 LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![since, kind, top as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            rows.collect()
        };
        let top_blocked_labels = tops("label")?;
        let top_blocked_hosts = tops("host")?;
        let top_flagged_people = tops("person")?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT substr(minute, 1, ?2), SUM(requests), SUM(blocked), SUM(alerting) \
             FROM event_minutes WHERE minute >= substr(?1, 1, 16) GROUP BY 1 ORDER BY 1",
        )?;
        let buckets = stmt
            .query_map(params![since, bucket_chars as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(super::Summary {
            buckets,
            top_blocked_labels,
            top_blocked_hosts,
            top_flagged_people,
        })
    }

    pub fn purge(&mut self, kind: Kind, before: &str, limit: usize) -> Result<usize, Error> {
        self.purge_inner(kind, before, limit)
            .map_err(|e| Error::store("sqlite", e))
    }

    fn purge_inner(&mut self, kind: Kind, before: &str, limit: usize) -> rusqlite::Result<usize> {
        let flagged = kind == Kind::Flagged;
        let tx = self.conn.transaction()?;
        tx.execute(
            "CREATE TEMP TABLE IF NOT EXISTS purge_ids (id INTEGER PRIMARY KEY)",
            [],
        )?;
        tx.execute("DELETE FROM purge_ids", [])?;
        tx.execute(
            "INSERT INTO purge_ids SELECT id FROM events WHERE flagged = ?1 AND time < ?2 \
             ORDER BY time LIMIT ?3",
            params![flagged, before, limit as i64],
        )?;
        // Labels are keyed by (label, event): one indexed delete per label in use.
        let labels: Vec<String> = {
            let mut stmt = tx.prepare("SELECT DISTINCT label FROM event_labels")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for label in labels {
            tx.execute(
                "DELETE FROM event_labels WHERE label = ?1 AND event_id IN (SELECT id FROM purge_ids)",
                [label],
            )?;
        }
        let n = tx.execute(
            "DELETE FROM events WHERE id IN (SELECT id FROM purge_ids)",
            [],
        )?;
        tx.commit()?;
        Ok(n)
    }

    pub fn healthy(&mut self) -> bool {
        self.conn
            .query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
            .is_ok()
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}
