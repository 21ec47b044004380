//! Sessions, CSRF tokens and login rate limiting.
//!
//! A session is a random 256-bit token in a cookie that is `HttpOnly`, `SameSite=Strict`,
//! and, on TLS, `Secure` with the `__Host-` prefix. Each session has its own CSRF token, which
//! every form carries and every `POST` must return; a `POST` whose `Origin` is another site is
//! refused as well. Sessions live in memory: a restart signs everyone out.

use crate::accounts::Role;
use aws_lc_rs::rand::SecureRandom as _;
use base64::Engine as _;
use dashmap::DashMap;
use std::time::{Duration, Instant};

/// A session ends after this long without a request...
const IDLE: Duration = Duration::from_secs(30 * 60);
/// ...and after this long in any case.
const ABSOLUTE: Duration = Duration::from_secs(10 * 60 * 60);

/// Failed logins allowed per account, and per client address, in [`WINDOW`].
const PER_ACCOUNT: u32 = 5;
const PER_ADDRESS: u32 = 20;
const WINDOW: Duration = Duration::from_secs(15 * 60);

/// A signed-in person.
#[derive(Clone, Debug)]
pub struct Session {
    pub name: String,
    pub role: Role,
    /// Signed in through the school's directory (no local account to re-check).
    pub directory: bool,
    pub csrf: String,
    started: Instant,
    seen: Instant,
}

/// All sessions, and the login failure counters.
#[derive(Debug)]
pub struct Sessions {
    live: DashMap<String, Session>,
    failures: DashMap<String, (u32, Instant)>,
    /// The last TOTP step each account signed in with: a code is good once.
    totp_used: DashMap<String, u64>,
    secure: bool,
}

/// A random URL-safe token of 32 bytes.
pub fn token() -> String {
    let mut bytes = [0u8; 32];
    // The system RNG failing leaves zeros, which the length check below turns into a refusal.
    if aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .is_err()
    {
        return String::new();
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    /// `secure`: the admin port is TLS, so cookies get `Secure` and the `__Host-` prefix.
    pub fn new(secure: bool) -> Sessions {
        Sessions {
            live: DashMap::new(),
            failures: DashMap::new(),
            totp_used: DashMap::new(),
            secure,
        }
    }

    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-gatehouse"
        } else {
            "gatehouse"
        }
    }

    pub fn login_cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-gatehouse-login"
        } else {
            "gatehouse-login"
        }
    }

    /// The `Set-Cookie` value for a cookie of this page.
    pub fn set_cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> String {
        let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
        if self.secure {
            c.push_str("; Secure");
        }
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        c
    }

    /// Checks a TOTP code for `name` and, when it is good, marks its step used.
    pub fn totp(&self, name: &str, secret: &str, code: &str, now: u64) -> bool {
        let mut used = self.totp_used.entry(name.to_owned()).or_insert(0);
        let last = (*used > 0).then_some(*used);
        match crate::totp::check(secret, code, now, last) {
            Some(step) => {
                *used = step;
                true
            }
            None => false,
        }
    }

    /// The cookie that ties a sign-in at the school's provider to this browser: `Lax`, so
    /// the provider's redirect back carries it; only for the sign-in's own paths.
    pub fn provider_cookie(&self, value: &str, max_age: u64) -> String {
        let (name, secure) = if self.secure {
            ("__Host-gatehouse-sso", "; Secure")
        } else {
            ("gatehouse-sso", "")
        };
        // `__Host-` needs `Path=/`.
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}; Max-Age={max_age}")
    }

    pub fn provider_cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-gatehouse-sso"
        } else {
            "gatehouse-sso"
        }
    }

    /// Starts a session; returns its token.
    pub fn start(&self, name: &str, role: Role, directory: bool) -> String {
        let now = Instant::now();
        self.live.retain(|_, s| fresh(s, now));
        let id = token();
        self.live.insert(
            id.clone(),
            Session {
                name: name.to_owned(),
                role,
                directory,
                csrf: token(),
                started: now,
                seen: now,
            },
        );
        id
    }

    /// The session of a token, if it is still fresh (and marks it used).
    pub fn get(&self, id: &str) -> Option<Session> {
        if id.len() < 40 {
            return None;
        }
        let now = Instant::now();
        let mut entry = self.live.get_mut(id)?;
        if !fresh(&entry, now) {
            drop(entry);
            self.live.remove(id);
            return None;
        }
        entry.seen = now;
        Some(entry.clone())
    }

    pub fn end(&self, id: &str) {
        self.live.remove(id);
    }

    /// Ends every session of an account (its password or role changed).
    pub fn end_all_of(&self, name: &str) {
        self.live.retain(|_, s| s.name != name);
    }

    /// Counts a sign-in attempt against the account and the address before the password
    /// is checked, or says how many minutes to wait. Counting first means concurrent
    /// guesses cannot all pass a limit that only the finished ones would have reached; a
    /// good password gives the attempt back ([`Sessions::succeeded`]).
    pub fn reserve(&self, account: &str, address: &str) -> Result<(), u64> {
        let now = Instant::now();
        if self.failures.len() > 100_000 {
            self.failures
                .retain(|_, f| now.duration_since(f.1) < WINDOW);
        }
        let take = |key: String, limit: u32| -> Result<(), u64> {
            let mut f = self.failures.entry(key).or_insert((0, now));
            if now.duration_since(f.1) >= WINDOW {
                *f = (0, now);
            }
            if f.0 >= limit {
                return Err((WINDOW - now.duration_since(f.1)).as_secs() / 60 + 1);
            }
            f.0 += 1;
            Ok(())
        };
        // `Tess` and `TESS` are one account to the directory: one limit.
        let account = account.to_lowercase();
        take(format!("account:{account}"), PER_ACCOUNT)?;
        if let Err(minutes) = take(format!("address:{address}"), PER_ADDRESS) {
            self.give_back(&format!("account:{account}"));
            return Err(minutes);
        }
        Ok(())
    }

    fn give_back(&self, key: &str) {
        if let Some(mut f) = self.failures.get_mut(key) {
            f.0 = f.0.saturating_sub(1);
        }
    }

    /// A good sign-in clears the account's counter and gives back the address's attempt.
    pub fn succeeded(&self, account: &str, address: &str) {
        self.failures
            .remove(&format!("account:{}", account.to_lowercase()));
        self.give_back(&format!("address:{address}"));
    }
}

/// A session proved by the directory or the provider ends after an hour in any case: its
/// group membership is not asked again while it lasts.
const ABSOLUTE_EXTERNAL: Duration = Duration::from_secs(60 * 60);

fn fresh(s: &Session, now: Instant) -> bool {
    let absolute = if s.directory {
        ABSOLUTE_EXTERNAL
    } else {
        ABSOLUTE
    };
    now.duration_since(s.seen) < IDLE && now.duration_since(s.started) < absolute
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}
