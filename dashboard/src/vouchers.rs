//! Guest vouchers: time-limited proxy logins that IT prints and hands out. A guest on a
//! network with `login = true` types the voucher's name and code into the browser's proxy
//! login box; the voucher's role (normally `guest`) applies until it expires or is revoked.
//!
//! Codes use an alphabet without look-alike characters (no 0/O, 1/I/L) and carry about 49
//! bits; only a SHA-256 of name and code is stored.

use crate::{Db, Error};
use arc_swap::ArcSwap;
use aws_lc_rs::rand::SecureRandom as _;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rusqlite::params;
use std::collections::HashMap;
use std::sync::Arc;

const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// The most vouchers made in one go.
pub const MAX_BATCH: usize = 200;

#[derive(Clone, Debug)]
struct Valid {
    hash: String,
    role: String,
    expires: DateTime<Utc>,
}

/// A voucher as listed on the page.
#[derive(Clone, Debug)]
pub struct Voucher {
    pub name: String,
    pub role: String,
    pub created: String,
    pub created_by: String,
    pub expires: String,
    pub note: String,
    pub revoked: bool,
}

/// A voucher just made: the only time its code is known.
#[derive(Clone, Debug)]
pub struct NewVoucher {
    pub name: String,
    pub code: String,
    pub role: String,
    pub expires: DateTime<Utc>,
}

/// The vouchers in force, read by the proxy for every login on a guest network.
#[derive(Debug, Default)]
pub struct Vouchers {
    valid: ArcSwap<HashMap<String, Valid>>,
}

fn random_text(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn digest(name: &str, code: &str) -> String {
    let d = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{name}:{}", code.to_ascii_uppercase().replace('-', "")).as_bytes(),
    );
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl Vouchers {
    /// Reads the vouchers in force from `admin.db`.
    pub fn load(db: &Db) -> Result<Vouchers, Error> {
        let v = Vouchers::default();
        v.refresh(db)?;
        Ok(v)
    }

    /// Reads the vouchers in force again (after one is made or revoked).
    pub fn refresh(&self, db: &Db) -> Result<(), Error> {
        let now = Utc::now();
        let mut stmt = db.conn.prepare(
            "SELECT name, secret_hash, role, expires FROM vouchers WHERE revoked = 0 AND expires > ?1",
        )?;
        let rows = stmt.query_map([crate::now_text()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut valid = HashMap::new();
        for row in rows {
            let (name, hash, role, expires) = row?;
            if let Ok(expires) = expires.parse::<DateTime<Utc>>() {
                if expires > now {
                    valid.insert(
                        name,
                        Valid {
                            hash,
                            role,
                            expires,
                        },
                    );
                }
            }
        }
        self.valid.store(Arc::new(valid));
        Ok(())
    }

    /// `(name, role)` for a `Proxy-Authorization: Basic` value that holds a voucher in force.
    pub fn authenticate(&self, header: &str, now: DateTime<Utc>) -> Option<(String, String)> {
        let encoded = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (name, code) = text.split_once(':')?;
        let valid = self.valid.load();
        let v = valid.get(name)?;
        (v.expires > now && crate::session::same(&v.hash, &digest(name, code)))
            .then(|| (name.to_owned(), v.role.clone()))
    }

    /// Whether any voucher is in force (the proxy skips the lookup when none is).
    pub fn any(&self) -> bool {
        !self.valid.load().is_empty()
    }
}

/// Makes `count` vouchers for `role`, valid for `hours`.
pub fn create(
    db: &Db,
    by: &str,
    role: &str,
    count: usize,
    hours: u32,
    note: &str,
) -> Result<Vec<NewVoucher>, Error> {
    let expires = Utc::now() + chrono::Duration::hours(i64::from(hours));
    let expires_text = gatehouse_safeguarding::store::timestamp(expires);
    let mut made = Vec::with_capacity(count);
    for _ in 0..count {
        let name = format!("guest-{}", random_text(5).to_ascii_lowercase());
        let code = format!("{}-{}", random_text(5), random_text(5));
        db.conn.execute(
            "INSERT INTO vouchers (name, secret_hash, role, created, created_by, expires, note) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                name,
                digest(&name, &code),
                role,
                crate::now_text(),
                by,
                expires_text,
                note
            ],
        )?;
        made.push(NewVoucher {
            name,
            code,
            role: role.to_owned(),
            expires,
        });
    }
    Ok(made)
}

/// Revokes a voucher; `false` if there is none of that name.
pub fn revoke(db: &Db, name: &str) -> Result<bool, Error> {
    Ok(db
        .conn
        .execute("UPDATE vouchers SET revoked = 1 WHERE name = ?1", [name])?
        == 1)
}

/// The newest vouchers, newest first.
pub fn list(db: &Db, limit: usize) -> Result<Vec<Voucher>, Error> {
    let mut stmt = db.conn.prepare(
        "SELECT name, role, created, created_by, expires, note, revoked FROM vouchers \
         ORDER BY created DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(Voucher {
            name: r.get(0)?,
            role: r.get(1)?,
            created: r.get(2)?,
            created_by: r.get(3)?,
            expires: r.get(4)?,
            note: r.get(5)?,
            revoked: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
