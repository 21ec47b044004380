//! Review requests: a person who meets a block page can ask for the page to be opened, with
//! a short reason. The proxy records the request (it knows who is asking); IT approves it for
//! a role and a time, which becomes an approval in the policy edits, or declines it.

use crate::{Db, Error};
use rusqlite::{params, OptionalExtension as _};

/// The longest reason kept.
pub const MAX_REASON: usize = 500;
/// Requests one person may have waiting at once.
const MAX_PENDING_PER_PERSON: i64 = 20;

/// A request as sent from a block page.
#[derive(Clone, Debug)]
pub struct NewReview {
    pub user: Option<String>,
    pub client_ip: String,
    pub role: String,
    pub url: String,
    pub reason: String,
    pub request_id: String,
}

/// A request as stored.
#[derive(Clone, Debug)]
pub struct Review {
    pub id: i64,
    pub at: String,
    pub user: Option<String>,
    pub client_ip: String,
    pub role: String,
    pub url: String,
    pub reason: String,
    pub request_id: String,
    pub state: String,
    pub decided_by: Option<String>,
    pub decision: Option<String>,
}

/// Why a request was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    TooMany,
    Empty,
    /// The page address is not a plain `http(s)://host/...` URL (a pupil can write anything
    /// into the form: `https://www.bbc.co.uk\\@www.bet365.com/` must not become an
    /// approval for either site).
    BadUrl,
}

/// True for a URL a review may name: `http` or `https`, a host with no user part, and no
/// backslash, whitespace or control character anywhere.
pub fn plain_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    !authority.is_empty()
        && !authority.contains('@')
        && url.len() <= 4096
        && !url
            .chars()
            .any(|c| c == '\\' || c.is_whitespace() || c.is_control())
}

/// Records a request; `Ok(Err(..))` when it is refused (too many waiting, no reason).
pub fn submit(db: &Db, r: &NewReview) -> Result<Result<i64, Refused>, Error> {
    let reason: String = r.reason.trim().chars().take(MAX_REASON).collect();
    if reason.is_empty() {
        return Ok(Err(Refused::Empty));
    }
    if !plain_url(&r.url) {
        return Ok(Err(Refused::BadUrl));
    }
    let waiting: i64 = db.conn.query_row(
        "SELECT COUNT(*) FROM reviews WHERE state = 'pending' AND \
         ((?1 IS NOT NULL AND user_name = ?1) OR (?1 IS NULL AND client_ip = ?2))",
        params![r.user, r.client_ip],
        |row| row.get(0),
    )?;
    if waiting >= MAX_PENDING_PER_PERSON {
        return Ok(Err(Refused::TooMany));
    }
    db.conn.execute(
        "INSERT INTO reviews (at, user_name, client_ip, role, url, reason, request_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            crate::now_text(),
            r.user,
            r.client_ip,
            r.role,
            r.url.chars().take(2048).collect::<String>(),
            reason,
            r.request_id.chars().take(64).collect::<String>()
        ],
    )?;
    Ok(Ok(db.conn.last_insert_rowid()))
}

const COLUMNS: &str =
    "id, at, user_name, client_ip, role, url, reason, request_id, state, decided_by, decision";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Review> {
    Ok(Review {
        id: r.get(0)?,
        at: r.get(1)?,
        user: r.get(2)?,
        client_ip: r.get(3)?,
        role: r.get(4)?,
        url: r.get(5)?,
        reason: r.get(6)?,
        request_id: r.get(7)?,
        state: r.get(8)?,
        decided_by: r.get(9)?,
        decision: r.get(10)?,
    })
}

/// Waiting requests (oldest first), then the newest decided ones.
pub fn list(db: &Db, decided: usize) -> Result<(Vec<Review>, Vec<Review>), Error> {
    let mut stmt = db.conn.prepare(&format!(
        "SELECT {COLUMNS} FROM reviews WHERE state = 'pending' ORDER BY id LIMIT 500"
    ))?;
    let pending = stmt.query_map([], row)?.collect::<rusqlite::Result<_>>()?;
    let mut stmt = db.conn.prepare(&format!(
        "SELECT {COLUMNS} FROM reviews WHERE state <> 'pending' ORDER BY decided_at DESC LIMIT ?1"
    ))?;
    let done = stmt
        .query_map([decided as i64], row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok((pending, done))
}

pub fn get(db: &Db, id: i64) -> Result<Option<Review>, Error> {
    Ok(db
        .conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM reviews WHERE id = ?1"),
            [id],
            row,
        )
        .optional()?)
}

/// Marks a waiting request decided (`approved` or `declined`); `false` if it was not waiting.
pub fn decide(db: &Db, id: i64, by: &str, state: &str, decision: &str) -> Result<bool, Error> {
    Ok(db.conn.execute(
        "UPDATE reviews SET state = ?2, decided_by = ?3, decided_at = ?4, decision = ?5 \
         WHERE id = ?1 AND state = 'pending'",
        params![id, state, by, crate::now_text(), decision],
    )? == 1)
}

#[cfg(test)]
mod url_tests {
    #[test]
    fn only_plain_urls_may_be_reviewed() {
        for ok in ["https://www.bet365.com/", "http://games.example/play?x=1"] {
            assert!(super::plain_url(ok), "{ok}");
        }
        for bad in [
            "https://www.bbc.co.uk\\@www.bet365.com/",
            "https://www.bbc.co.uk@www.bet365.com/",
            "https://user:pw@www.bet365.com/",
            "javascript:alert(1)",
            "https://www.bbc.co.uk/\tx",
            "https:///x",
            "ftp://x.example/",
        ] {
            assert!(!super::plain_url(bad), "{bad}");
        }
    }
}
