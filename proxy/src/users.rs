//! Proxy logins: a users file of argon2 hashes (`name role $argon2id$...`, one a line), the
//! `407` challenge, and a cache so a password is verified once, not on every request.

use anyhow::{bail, Context as _};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};

use argon2::Argon2;
use base64::Engine as _;
use dashmap::DashMap;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a verified login is trusted before its password is checked again.
const CACHE_FOR: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct User {
    role: String,
    hash: String,
}

/// The users file, loaded, and the cache of verified credentials.
#[derive(Debug, Default)]
pub struct Users {
    users: HashMap<String, User>,
    /// Keyed by a keyed hash of the name and password: the password itself is never kept.
    verified: DashMap<u64, (String, String, Instant)>,
    keys: RandomState,
}

impl Users {
    /// Reads the users file; a missing file is no users. Every bad line is an error that
    /// names it.
    pub fn load(path: &Path) -> anyhow::Result<Users> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Users::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(name), Some(role), Some(hash), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                bail!(
                    "{}:{}: expected `name role argon2-hash`",
                    path.display(),
                    i + 1
                );
            };
            if PasswordHash::new(hash).is_err() {
                bail!(
                    "{}:{}: the password hash of {name:?} is not a PHC string",
                    path.display(),
                    i + 1
                );
            }
            users.insert(
                name.to_owned(),
                User {
                    role: role.to_owned(),
                    hash: hash.to_owned(),
                },
            );
        }
        Ok(Users {
            users,
            ..Users::default()
        })
    }

    /// `(user, role)` for a login verified in the last five minutes:
    /// no password check, so it may run on the async workers.
    pub fn cached(&self, login: &BasicLogin) -> Option<(String, String)> {
        let key = self.keys.hash_one((&login.name, &login.password));
        let hit = self.verified.get(&key)?;
        (hit.2.elapsed() < CACHE_FOR).then(|| (hit.0.clone(), hit.1.clone()))
    }

    /// Checks a `Basic` login's password (slow by design: run it off the async workers).
    /// An unknown name is checked against a decoy hash, so it costs the same as a wrong
    /// password and a guesser cannot tell which names exist.
    pub fn verify(&self, login: &BasicLogin) -> Option<(String, String)> {
        let user = self.users.get(&login.name);
        let hash = PasswordHash::new(user.map_or(decoy(), |u| u.hash.as_str())).ok()?;
        let ok = Argon2::default()
            .verify_password(login.password.as_bytes(), &hash)
            .is_ok();
        let user = user.filter(|_| ok)?;
        // Keyed on the name and password, not the header's spelling: spaces or `basic` in
        // another case must not buy a fresh password check.
        let key = self.keys.hash_one((&login.name, &login.password));
        if self.verified.len() >= MAX_CACHED {
            self.verified.clear();
        }
        self.verified
            .insert(key, (login.name.clone(), user.role.clone(), Instant::now()));
        Some((login.name.clone(), user.role.clone()))
    }
}

/// Verified logins kept at most (one per device, in practice).
const MAX_CACHED: usize = 100_000;

/// A `Proxy-Authorization: Basic` value, decoded.
#[derive(Clone)]
pub struct BasicLogin {
    pub header: String,
    pub name: String,
    password: String,
}

impl std::fmt::Debug for BasicLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicLogin")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl BasicLogin {
    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn parse(header: &str) -> Option<BasicLogin> {
        let (scheme, encoded) = header.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (name, password) = text.split_once(':')?;
        if name.is_empty() || name.len() > 256 || password.len() > 1024 {
            return None;
        }
        Some(BasicLogin {
            header: header.to_owned(),
            name: name.to_owned(),
            password: password.to_owned(),
        })
    }
}

/// A hash of a random password, made once: unknown names are checked against it.
fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let mut secret = [0u8; 24];
        let _ = aws_lc_rs::rand::fill(&mut secret);
        Argon2::default()
            .hash_password(&secret, &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Adds (or replaces) a user in the users file, which is created readable by its owner only.
pub fn add(path: &Path, name: &str, role: &str, password: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if name.is_empty() || name.contains(char::is_whitespace) || name.contains(':') {
        bail!("a user name cannot be empty or hold spaces or ':'");
    }
    if password.len() < 8 {
        bail!("the password must be at least 8 characters");
    }
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?
        .to_string();
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let mut text: String = existing
        .lines()
        .filter(|l| l.split_whitespace().next() != Some(name))
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(&format!("{name} {role} {hash}\n"));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}
