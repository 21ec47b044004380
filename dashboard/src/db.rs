//! The admin page's own SQLite file (`admin.db` in the data folder, readable by its owner
//! only): accounts, the audit trail, review requests and guest vouchers.

use crate::Error;
use rusqlite::Connection;
use std::path::Path;

const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS accounts (
  name TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  hash TEXT NOT NULL,
  created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  before TEXT NOT NULL,
  after TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TABLE IF NOT EXISTS reviews (
  id INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  user_name TEXT,
  client_ip TEXT NOT NULL,
  role TEXT NOT NULL,
  url TEXT NOT NULL,
  reason TEXT NOT NULL,
  request_id TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending',
  decided_by TEXT,
  decided_at TEXT,
  decision TEXT
);
CREATE INDEX IF NOT EXISTS reviews_state ON reviews(state, id);
CREATE TABLE IF NOT EXISTS vouchers (
  name TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  role TEXT NOT NULL,
  created TEXT NOT NULL,
  created_by TEXT NOT NULL,
  expires TEXT NOT NULL,
  note TEXT NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0
);
";

/// An open `admin.db`.
#[derive(Debug)]
pub struct Db {
    pub(crate) conn: Connection,
}

impl Db {
    /// Opens (creating it readable by its owner only) and brings the schema up to date.
    pub fn open(path: &Path) -> Result<Db, Error> {
        use std::os::unix::fs::OpenOptionsExt as _;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
        )?;
        conn.execute_batch(SCHEMA)?;
        // A database from before accounts could be disabled gains the column.
        let has_disabled = conn
            .prepare("SELECT 1 FROM pragma_table_info('accounts') WHERE name = 'disabled'")?
            .exists([])?;
        if !has_disabled {
            conn.execute_batch(
                "ALTER TABLE accounts ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0",
            )?;
        }
        // ... and the second factor (a TOTP secret, base32) of local accounts.
        let has_totp = conn
            .prepare("SELECT 1 FROM pragma_table_info('accounts') WHERE name = 'totp'")?
            .exists([])?;
        if !has_totp {
            conn.execute_batch("ALTER TABLE accounts ADD COLUMN totp TEXT")?;
        }
        Ok(Db { conn })
    }
}
