//! The outbox: alerts and the messages that carry them, in a local SQLite file (in the
//! data folder, whatever the event store is), written in the same transaction that raises
//! or updates the alert. A message stays `pending` until its channel accepted it; the
//! delivery thread retries with back-off, so an alert survives a restart or a mail server
//! outage and is then sent.

use crate::Error;
use rusqlite::{params, Connection, OptionalExtension as _};
use std::path::Path;

const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS alerts (
  id INTEGER PRIMARY KEY,
  dedup_key TEXT NOT NULL,
  site TEXT,
  user_name TEXT,
  client_ip TEXT NOT NULL,
  role TEXT NOT NULL,
  theme TEXT NOT NULL,
  term TEXT NOT NULL,
  host TEXT NOT NULL,
  url TEXT NOT NULL,
  search_term TEXT,
  severity TEXT NOT NULL,
  first_seen TEXT NOT NULL,
  last_seen TEXT NOT NULL,
  last_seen_ms INTEGER NOT NULL,
  count INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'open',
  note TEXT NOT NULL DEFAULT '',
  excerpt TEXT
);
CREATE INDEX IF NOT EXISTS alerts_key ON alerts(dedup_key, last_seen_ms);
CREATE TABLE IF NOT EXISTS deliveries (
  id INTEGER PRIMARY KEY,
  alert_id INTEGER,
  kind TEXT NOT NULL,
  channel TEXT NOT NULL,
  target TEXT NOT NULL,
  format TEXT NOT NULL DEFAULT '',
  secret_file TEXT,
  subject TEXT NOT NULL DEFAULT '',
  body TEXT NOT NULL DEFAULT '',
  html TEXT NOT NULL DEFAULT '',
  due_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL DEFAULT 'pending',
  last_error TEXT NOT NULL DEFAULT '',
  sent_at TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, due_ms);
CREATE TABLE IF NOT EXISTS alert_notes (
  id INTEGER PRIMARY KEY,
  alert_id INTEGER NOT NULL,
  at TEXT NOT NULL,
  author TEXT NOT NULL,
  action TEXT NOT NULL,
  text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_notes_alert ON alert_notes(alert_id, id);
CREATE TABLE IF NOT EXISTS digests (site TEXT NOT NULL, day TEXT NOT NULL, PRIMARY KEY (site, day));
";

/// Which alerts the inbox shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboxFilter {
    Open,
    Resolved,
    All,
}

/// One alert as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRow {
    pub id: i64,
    pub site: Option<String>,
    pub user: Option<String>,
    pub client_ip: String,
    pub role: String,
    pub theme: String,
    pub term: String,
    pub host: String,
    pub url: String,
    pub search_term: Option<String>,
    pub severity: String,
    pub first_seen: String,
    pub last_seen: String,
    pub last_seen_ms: i64,
    pub count: i64,
    pub state: String,
    /// For an alert on a page's or a chat's text: the passage that matched, with the
    /// page's title.
    pub excerpt: Option<String>,
    /// The person behind the account ("Amy Pupil, Year 9, 9B"), from the directory.
    pub person: Option<String>,
}

/// One message to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub alert_id: Option<i64>,
    /// `alert`, `escalation` or `digest`.
    pub kind: String,
    /// `email` or `webhook`.
    pub channel: String,
    /// An address or a URL.
    pub target: String,
    pub format: String,
    pub secret_file: Option<String>,
    pub subject: String,
    pub body: String,
    pub html: String,
    pub attempts: i64,
    pub state: String,
    pub last_error: String,
}

/// A message to queue.
#[derive(Clone, Debug, Default)]
pub struct NewDelivery {
    pub kind: &'static str,
    pub channel: &'static str,
    pub target: String,
    pub format: String,
    pub secret_file: Option<String>,
    pub subject: String,
    pub body: String,
    pub html: String,
}

#[derive(Debug)]
pub struct Outbox {
    conn: Connection,
}

const ALERT_COLUMNS: &str = "id, site, user_name, client_ip, role, theme, term, host, url, \
search_term, severity, first_seen, last_seen, last_seen_ms, count, state, excerpt, person";

fn alert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        id: r.get(0)?,
        site: r.get(1)?,
        user: r.get(2)?,
        client_ip: r.get(3)?,
        role: r.get(4)?,
        theme: r.get(5)?,
        term: r.get(6)?,
        host: r.get(7)?,
        url: r.get(8)?,
        search_term: r.get(9)?,
        severity: r.get(10)?,
        first_seen: r.get(11)?,
        last_seen: r.get(12)?,
        last_seen_ms: r.get(13)?,
        count: r.get(14)?,
        state: r.get(15)?,
        excerpt: r.get(16)?,
        person: r.get(17)?,
    })
}

impl Outbox {
    pub fn open(path: &Path) -> Result<Outbox, Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let conn = Connection::open(path)?;
        // FULL: an alert written is an alert that survives power loss.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
        )?;
        conn.execute_batch(SCHEMA)?;
        // An outbox written before alerts carried excerpts gains the column.
        let has_excerpt = conn
            .prepare("SELECT 1 FROM pragma_table_info('alerts') WHERE name = 'excerpt'")?
            .exists([])?;
        if !has_excerpt {
            conn.execute_batch("ALTER TABLE alerts ADD COLUMN excerpt TEXT")?;
        }
        // ...and, from before alerts named the person, that column.
        let has_person = conn
            .prepare("SELECT 1 FROM pragma_table_info('alerts') WHERE name = 'person'")?
            .exists([])?;
        if !has_person {
            conn.execute_batch("ALTER TABLE alerts ADD COLUMN person TEXT")?;
        }
        Ok(Outbox { conn })
    }

    /// Runs `f` in one transaction.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, Error> {
        let tx = self.conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Alerts seen since `since_ms`, for picking up de-duplication after a restart.
    pub fn recent_alerts(&self, since_ms: i64) -> Result<Vec<(String, AlertRow)>, Error> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ALERT_COLUMNS}, dedup_key FROM alerts WHERE last_seen_ms >= ?1 ORDER BY id"
        ))?;
        // The key follows the alert's columns, so `alert_row` reads the rest.
        let rows = stmt.query_map([since_ms], |r| Ok((r.get(18)?, alert_row(r)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn alert(&self, id: i64) -> Result<Option<AlertRow>, Error> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"),
                [id],
                alert_row,
            )
            .optional()?)
    }

    pub fn alerts(&self, limit: usize) -> Result<Vec<AlertRow>, Error> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit as i64], alert_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Alerts for the DSL's inbox, newest first: `open` is every state but `resolved:*`,
    /// `resolved` only those; a user or address narrows to one person.
    pub fn inbox(
        &self,
        states: InboxFilter,
        person: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AlertRow>, Error> {
        let state = match states {
            InboxFilter::Open => "state NOT LIKE 'resolved%'",
            InboxFilter::Resolved => "state LIKE 'resolved%'",
            InboxFilter::All => "1 = 1",
        };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE {state} \
             AND (?1 IS NULL OR user_name = ?1 OR (user_name IS NULL AND client_ip = ?1)) \
             ORDER BY last_seen_ms DESC, id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![person, limit as i64], alert_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Moves an alert to `state` (`open`, `acknowledged`, `resolved:concern`, ...) and keeps
    /// who did it, when, and their note, in the alert's history. `false` if there is no such
    /// alert.
    pub fn triage(
        &mut self,
        id: i64,
        state: &str,
        author: &str,
        at: &str,
        note: &str,
    ) -> Result<bool, Error> {
        self.transaction(|tx| {
            let changed = tx.execute(
                "UPDATE alerts SET state = ?2, note = CASE WHEN ?3 = '' THEN note ELSE ?3 END \
                 WHERE id = ?1",
                params![id, state, note],
            )?;
            if changed == 1 {
                tx.execute(
                    "INSERT INTO alert_notes (alert_id, at, author, action, text) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, at, author, state, note],
                )?;
            }
            Ok(changed == 1)
        })
    }

    /// An alert's history: `(at, author, action, note)`, oldest first.
    pub fn history(&self, id: i64) -> Result<Vec<(String, String, String, String)>, Error> {
        let mut stmt = self.conn.prepare(
            "SELECT at, author, action, text FROM alert_notes WHERE alert_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Messages due by `now_ms`, oldest first.
    pub fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, Error> {
        let mut stmt = self.conn.prepare(
            "SELECT id, alert_id, kind, channel, target, format, secret_file, subject, body, \
             html, attempts, state, last_error FROM deliveries \
             WHERE state = 'pending' AND due_ms <= ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now_ms, limit as i64], delivery_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every message, newest first (for the admin page and tests).
    pub fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>, Error> {
        let mut stmt = self.conn.prepare(
            "SELECT id, alert_id, kind, channel, target, format, secret_file, subject, body, \
             html, attempts, state, last_error FROM deliveries ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], delivery_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn mark_sent(&self, id: i64, at: &str) -> Result<(), Error> {
        self.conn.execute(
            "UPDATE deliveries SET state = 'sent', attempts = attempts + 1, sent_at = ?2, \
             last_error = '' WHERE id = ?1",
            params![id, at],
        )?;
        Ok(())
    }

    /// A failed attempt: try again at `retry_ms`, or give up (`failed`) when `None`.
    pub fn mark_failed(&self, id: i64, error: &str, retry_ms: Option<i64>) -> Result<(), Error> {
        match retry_ms {
            Some(at) => self.conn.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2, due_ms = ?3 \
                 WHERE id = ?1",
                params![id, error, at],
            )?,
            None => self.conn.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2, \
                 state = 'failed' WHERE id = ?1",
                params![id, error],
            )?,
        };
        Ok(())
    }

    /// Deliveries per state.
    pub fn counts(&self) -> Result<Vec<(String, i64)>, Error> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, COUNT(*) FROM deliveries GROUP BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes alerts last seen before `before_ms`, with their messages, and digest records
    /// older than that; returns the number of alerts removed.
    pub fn purge(&mut self, before_ms: i64) -> Result<usize, Error> {
        let day = chrono::DateTime::from_timestamp_millis(before_ms)
            .map(|t| t.date_naive().to_string())
            .unwrap_or_default();
        self.transaction(|tx| {
            tx.execute(
                "DELETE FROM deliveries WHERE alert_id IN \
                 (SELECT id FROM alerts WHERE last_seen_ms < ?1)",
                [before_ms],
            )?;
            tx.execute(
                "DELETE FROM deliveries WHERE alert_id IS NULL AND state <> 'pending' \
                 AND due_ms < ?1",
                [before_ms],
            )?;
            tx.execute("DELETE FROM digests WHERE day < ?1", [day])?;
            tx.execute(
                "DELETE FROM alert_notes WHERE alert_id IN \
                 (SELECT id FROM alerts WHERE last_seen_ms < ?1)",
                [before_ms],
            )?;
            tx.execute("DELETE FROM alerts WHERE last_seen_ms < ?1", [before_ms])
        })
    }

    /// Whether the digest of `site` for `day` was queued already.
    pub fn digest_done(&self, site: &str, day: &str) -> Result<bool, Error> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM digests WHERE site = ?1 AND day = ?2",
                params![site, day],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        alert_id: r.get(1)?,
        kind: r.get(2)?,
        channel: r.get(3)?,
        target: r.get(4)?,
        format: r.get(5)?,
        secret_file: r.get(6)?,
        subject: r.get(7)?,
        body: r.get(8)?,
        html: r.get(9)?,
        attempts: r.get(10)?,
        state: r.get(11)?,
        last_error: r.get(12)?,
    })
}

/// Queues `d` (inside a transaction), due at `due_ms`.
pub fn queue(
    tx: &rusqlite::Transaction<'_>,
    alert_id: Option<i64>,
    d: &NewDelivery,
    due_ms: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO deliveries (alert_id, kind, channel, target, format, secret_file, subject, \
         body, html, due_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            alert_id,
            d.kind,
            d.channel,
            d.target,
            d.format,
            d.secret_file,
            d.subject,
            d.body,
            d.html,
            due_ms
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// An outbox written before alerts carried excerpts opens, gains the column, and its
    /// alerts read with none.
    #[test]
    fn an_older_outbox_gains_the_excerpt_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.db");
        {
            let conn = Connection::open(&path).unwrap();
            let old = SCHEMA.replace(",\n  excerpt TEXT\n", "\n");
            assert!(!old.contains("excerpt"));
            conn.execute_batch(&old).unwrap();
            conn.execute(
                "INSERT INTO alerts (dedup_key, client_ip, role, theme, term, host, url, severity, \
                 first_seen, last_seen, last_seen_ms, count) VALUES ('k', '10.0.0.1', 'pupil', \
                 'suicide', 'kms', 'example.org', '/', 'high', 't', 't', 1, 1)",
                [],
            )
            .unwrap();
        }
        let outbox = Outbox::open(&path).unwrap();
        let row = outbox.alert(1).unwrap().unwrap();
        assert_eq!(row.excerpt, None);
        assert_eq!(row.theme, "suicide");
        // Opening again changes nothing.
        drop(outbox);
        assert!(Outbox::open(&path).is_ok());
    }
}
