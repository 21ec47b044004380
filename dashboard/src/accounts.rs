//! Admin accounts: a name, a role and an argon2 hash of the password, in `admin.db`.
//! Created with `gatehouse admin add --role it|dsl|viewer NAME` (the password on stdin).

use crate::{Db, Error};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use rusqlite::{params, OptionalExtension as _};

/// What an account may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Edits policy, decides review requests, makes guest vouchers, reads the logs.
    It,
    /// Sees and triages safeguarding alerts and the logs behind them.
    Dsl,
    /// Reads the overview, the policy and the audit trail; changes nothing.
    Viewer,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "it" => Some(Role::It),
            "dsl" => Some(Role::Dsl),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Role::It => "it",
            Role::Dsl => "dsl",
            Role::Viewer => "viewer",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Role::It => "IT",
            Role::Dsl => "DSL",
            Role::Viewer => "Viewer",
        }
    }
}

/// The smallest password the page accepts.
pub const MIN_PASSWORD: usize = 10;

/// Adds an account, or replaces the password and role of one.
pub fn add(db: &Db, name: &str, role: Role, password: &str) -> Result<(), Error> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'))
    {
        return Err(Error::Invalid(
            "an account name is 1-64 letters, digits, '.', '-', '_' or '@'".into(),
        ));
    }
    if password.chars().count() < MIN_PASSWORD {
        return Err(Error::Invalid(format!(
            "the password must be at least {MIN_PASSWORD} characters"
        )));
    }
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| Error::Invalid(format!("hashing the password: {e}")))?
        .to_string();
    db.conn.execute(
        "INSERT INTO accounts (name, role, hash, created) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT(name) DO UPDATE SET role = excluded.role, hash = excluded.hash",
        params![name, role.name(), hash, crate::now_text()],
    )?;
    Ok(())
}

/// The stored hash and role of an account that may sign in (a disabled account is none).
pub fn lookup(db: &Db, name: &str) -> Result<Option<(String, Role)>, Error> {
    let row: Option<(String, String)> = db
        .conn
        .query_row(
            "SELECT hash, role FROM accounts WHERE name = ?1 AND disabled = 0",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(row.and_then(|(hash, role)| Role::parse(&role).map(|r| (hash, r))))
}

/// A hash to verify against when the account does not exist, so a wrong name costs the same
/// time as a wrong password.
pub fn decoy_hash() -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(b"no such account", &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
}

/// Whether `password` matches a stored PHC hash (slow on purpose: call off the async workers).
pub fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// One account as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub role: String,
    pub created: String,
    pub disabled: bool,
    /// The account has a second factor (TOTP).
    pub totp: bool,
}

/// Every account.
pub fn list(db: &Db) -> Result<Vec<Listed>, Error> {
    let mut stmt = db.conn.prepare(
        "SELECT name, role, created, disabled, totp IS NOT NULL FROM accounts ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Listed {
            name: r.get(0)?,
            role: r.get(1)?,
            created: r.get(2)?,
            disabled: r.get(3)?,
            totp: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Disables (or enables again) an account: a disabled account cannot sign in, and its
/// open sessions end at their next request. False when there is no such account.
pub fn set_disabled(db: &Db, name: &str, disabled: bool) -> Result<bool, Error> {
    let n = db.conn.execute(
        "UPDATE accounts SET disabled = ?2 WHERE name = ?1",
        rusqlite::params![name, disabled],
    )?;
    Ok(n > 0)
}

/// Removes an account (its entries in the audit trail stay). False when there is none.
pub fn remove(db: &Db, name: &str) -> Result<bool, Error> {
    let n = db
        .conn
        .execute("DELETE FROM accounts WHERE name = ?1", [name])?;
    Ok(n > 0)
}

/// The TOTP secret (base32) of an account, if it has a second factor.
pub fn totp_secret(db: &Db, name: &str) -> Result<Option<String>, Error> {
    let secret: Option<Option<String>> = db
        .conn
        .query_row("SELECT totp FROM accounts WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(secret.flatten())
}

/// Sets (or, with `None`, removes) an account's TOTP secret. False when there is no such
/// account.
pub fn set_totp(db: &Db, name: &str, secret: Option<&str>) -> Result<bool, Error> {
    let n = db.conn.execute(
        "UPDATE accounts SET totp = ?2 WHERE name = ?1",
        params![name, secret],
    )?;
    Ok(n > 0)
}
