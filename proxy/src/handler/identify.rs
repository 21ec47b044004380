//! Who is asking. Inside a tunnel, the identity found at CONNECT time; else, on a network
//! that requires a login, the proxy login or guest voucher; else the network's role.
//!
//! Passwords are checked off the async workers, a few at a time, and every check is
//! reserved against two limits before it runs (per account name, per client address), so
//! concurrent guesses cannot slip past a limit that is only counted afterwards.

use super::Conn;
use crate::body::Body;
use crate::metrics;
use crate::pages;
use crate::users::{BasicLogin, Users};
use arc_swap::ArcSwap;
use dashmap::DashMap;
use gatehouse_rules::Snapshot;
use hyper::{header, Request, Response, StatusCode};
use std::hash::Hash;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Who is asking: the role, and the login when there is one.
#[derive(Clone, Debug)]
pub struct Identity {
    pub role: String,
    pub user: Option<String>,
}

/// Failed logins allowed per account name, and per client address, in [`WINDOW`].
pub const PER_ACCOUNT: u32 = 10;
pub const PER_ADDRESS: u32 = 30;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Proxy logins and guest vouchers, and the limits on guessing them.
#[derive(Debug)]
pub struct Logins {
    users: ArcSwap<Users>,
    path: PathBuf,
    vouchers: Arc<gatehouse_dashboard::vouchers::Vouchers>,
    accounts: Failures<String>,
    addresses: Failures<IpAddr>,
    /// Password checks running at once (each takes a core for ~15 ms).
    checking: tokio::sync::Semaphore,
}

impl Logins {
    pub fn load(
        path: PathBuf,
        vouchers: Arc<gatehouse_dashboard::vouchers::Vouchers>,
    ) -> anyhow::Result<Logins> {
        let users = Users::load(&path)?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Logins {
            users: ArcSwap::from_pointee(users),
            path,
            vouchers,
            accounts: Failures::default(),
            addresses: Failures::default(),
            checking: tokio::sync::Semaphore::new(cores.max(1)),
        })
    }

    /// Reads the users file again (with the policy: SIGHUP, or the file changing). A bad
    /// file keeps the logins in force.
    pub fn reload(&self) -> anyhow::Result<()> {
        let users = Users::load(&self.path)?;
        self.users.store(Arc::new(users));
        Ok(())
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// `(user, role)` for a `Proxy-Authorization` value, or why not.
    async fn check(&self, header: &str, client: IpAddr) -> Result<(String, String), Denied> {
        let users = self.users.load_full();
        let login = BasicLogin::parse(header).ok_or(Denied::Wrong)?;
        if let Some(hit) = users.cached(&login) {
            return Ok(hit);
        }
        // The device's own limit first: a device past it cannot spend anyone's account
        // attempts (or grow the account table) at all.
        let Some(address) = self.addresses.reserve(client, PER_ADDRESS) else {
            return Err(Denied::Limited);
        };
        let Some(account) = self.accounts.reserve(login.name.clone(), PER_ACCOUNT) else {
            address.succeeded();
            return Err(Denied::Limited);
        };
        let _slot = self.checking.acquire().await.map_err(|_| Denied::Wrong)?;
        let vouchers = Arc::clone(&self.vouchers);
        let verified = tokio::task::spawn_blocking(move || {
            users.verify(&login).or_else(|| {
                // Most schools have no voucher in force: skip the decode and hash.
                vouchers
                    .any()
                    .then(|| vouchers.authenticate(&login.header, chrono::Utc::now()))
                    .flatten()
            })
        })
        .await
        .ok()
        .flatten();
        match verified {
            Some(found) => {
                account.succeeded();
                address.succeeded();
                Ok(found)
            }
            None => Err(Denied::Wrong),
        }
    }
}

enum Denied {
    Wrong,
    Limited,
}

/// The identity of a request, or the response to send instead.
pub async fn identify(
    conn: &Conn,
    snap: &Snapshot,
    req: &Request<Body>,
) -> Result<Identity, Response<Body>> {
    if let Some(t) = &conn.tunnel {
        return Ok(t.who.clone());
    }
    let client = conn.client_ip();
    let Some(network) = snap.network_of(client) else {
        return Err(super::refuse(
            "network",
            StatusCode::FORBIDDEN,
            "This filter does not serve your network.",
        ));
    };
    if !network.login {
        let role = snap
            .role(network.role)
            .map(|r| r.name.clone())
            .unwrap_or_default();
        return Ok(Identity { role, user: None });
    }
    let header = req
        .headers()
        .get(header::PROXY_AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let outcome = match header {
        Some(h) => conn.shared.logins.check(h, client).await,
        None => Err(Denied::Wrong),
    };
    match outcome {
        Ok((user, role)) => Ok(Identity {
            role,
            user: Some(user),
        }),
        Err(Denied::Wrong) => {
            metrics::get().refused.with_label_values(&["login"]).inc();
            Err(pages::login_required())
        }
        Err(Denied::Limited) => {
            metrics::get()
                .refused
                .with_label_values(&["login-limit"])
                .inc();
            Err(pages::refusal(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many wrong logins. Wait 15 minutes, or ask the IT team.",
            ))
        }
    }
}

/// Failed attempts per key in a sliding window. A check is counted when it is reserved,
/// before the password is looked at, and given back only if it succeeds.
#[derive(Debug)]
struct Failures<K: Hash + Eq> {
    counts: Arc<DashMap<K, (Instant, u32)>>,
}

impl<K: Hash + Eq> Default for Failures<K> {
    fn default() -> Self {
        Failures {
            counts: Arc::new(DashMap::new()),
        }
    }
}

/// Keys remembered at most; past it, windows that have ended are forgotten.
const MAX_KEYS: usize = 100_000;

impl<K: Hash + Eq + Clone> Failures<K> {
    fn reserve(&self, key: K, limit: u32) -> Option<Reservation<K>> {
        if self.counts.len() >= MAX_KEYS && !self.counts.contains_key(&key) {
            self.counts.retain(|_, (start, _)| start.elapsed() < WINDOW);
            if self.counts.len() >= MAX_KEYS {
                // Full of live windows: refuse new keys rather than grow.
                return None;
            }
        }
        let mut entry = self
            .counts
            .entry(key.clone())
            .or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        if entry.1 >= limit {
            return None;
        }
        entry.1 += 1;
        Some(Reservation {
            counts: Arc::clone(&self.counts),
            key,
        })
    }
}

/// One attempt counted against a key; [`Reservation::succeeded`] gives it back.
struct Reservation<K: Hash + Eq> {
    counts: Arc<DashMap<K, (Instant, u32)>>,
    key: K,
}

impl<K: Hash + Eq> Reservation<K> {
    fn succeeded(self) {
        if let Some(mut entry) = self.counts.get_mut(&self.key) {
            entry.1 = entry.1.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_counted_before_the_check_and_given_back_on_success() {
        let failures: Failures<&str> = Failures::default();
        let held: Vec<_> = (0..3)
            .map(|_| failures.reserve("amy", 3).unwrap())
            .collect();
        // Three checks in flight: a fourth is refused before any finishes.
        assert!(failures.reserve("amy", 3).is_none());
        assert!(failures.reserve("bob", 3).is_some());
        let mut held = held.into_iter();
        held.next().unwrap().succeeded();
        assert!(failures.reserve("amy", 3).is_some());
        assert!(failures.reserve("amy", 3).is_none());
    }
}
