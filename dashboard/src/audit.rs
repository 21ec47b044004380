//! The audit trail: every change made through the admin page (and by `gatehouse admin add`),
//! with who, when, what, and the value before and after. The table refuses `UPDATE` and
//! `DELETE` (triggers in `admin.db`), and the page has no route that edits it.

use crate::{Db, Error};
use rusqlite::params;

/// One change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before: String,
    pub after: String,
}

/// Appends a change.
pub fn record(
    db: &Db,
    actor: &str,
    action: &str,
    target: &str,
    before: &str,
    after: &str,
) -> Result<(), Error> {
    db.conn.execute(
        "INSERT INTO audit (at, actor, action, target, before, after) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![crate::now_text(), actor, action, target, before, after],
    )?;
    Ok(())
}

/// The newest `limit` changes, newest first.
pub fn recent(db: &Db, limit: usize) -> Result<Vec<Entry>, Error> {
    let mut stmt = db.conn.prepare(
        "SELECT id, at, actor, action, target, before, after FROM audit \
         ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(Entry {
            id: r.get(0)?,
            at: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            target: r.get(4)?,
            before: r.get(5)?,
            after: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
