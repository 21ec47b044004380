//! Who is asking. Inside a tunnel, the identity found at CONNECT time; else a device the
//! Wi-Fi has named (RADIUS accounting); else, on a network that requires a login, the proxy
//! login (the users file, a guest voucher, then the school's directory); else the network's
//! role. The people table names the person behind the account.
//!
//! Passwords are checked off the async workers, a few at a time, and every check is
//! reserved against two limits before it runs (per account name, per client address), so
//! concurrent guesses cannot slip past a limit that is only counted afterwards.

use super::Conn;
use crate::body::Body;
use crate::identity::{ldap, How, Sources};
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

/// Who is asking: the role, the account when there is one, the person behind it, and how
/// they were identified.
#[derive(Clone, Debug)]
pub struct Identity {
    pub role: String,
    pub user: Option<String>,
    /// "Amy Pupil, Year 9, 9B", from the directory or the people table.
    pub person: Option<String>,
    pub how: How,
    /// The site the directory's group gives the person (else the network's).
    pub site: Option<String>,
}

impl Identity {
    fn not_signed_in(role: &str) -> Identity {
        Identity {
            how: How::NotSignedIn,
            ..Identity::network(role.to_owned())
        }
    }

    fn network(role: String) -> Identity {
        Identity {
            role,
            user: None,
            person: None,
            how: How::Network,
            site: None,
        }
    }
}

/// A login accepted: the account, its role, the person, and how.
struct Accepted {
    user: String,
    role: String,
    person: Option<String>,
    how: How,
    site: Option<String>,
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
    /// The directory, the Wi-Fi's bindings, the people table.
    pub sources: Sources,
}

impl Logins {
    pub fn load(
        path: PathBuf,
        vouchers: Arc<gatehouse_dashboard::vouchers::Vouchers>,
        sources: Sources,
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
            sources,
        })
    }

    /// Reads the users file again (with the policy: SIGHUP, or the file changing). A bad
    /// file keeps the logins in force.
    pub fn reload(&self) -> anyhow::Result<()> {
        let users = Users::load(&self.path)?;
        self.users.store(Arc::new(users));
        self.sources.reload_people()
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The login a `Proxy-Authorization` value proves, or why not. A leaver's account
    /// (the people table says so) is refused whatever proved it.
    async fn check(&self, header: &str, client: IpAddr) -> Result<Accepted, Denied> {
        let accepted = self.check_login(header, client).await?;
        if self.sources.named(&accepted.user).left {
            return Err(Denied::Left);
        }
        Ok(accepted)
    }

    async fn check_login(&self, header: &str, client: IpAddr) -> Result<Accepted, Denied> {
        let users = self.users.load_full();
        let login = BasicLogin::parse(header).ok_or(Denied::Wrong)?;
        if let Some((user, role)) = users.cached(&login) {
            return Ok(self.accepted(user, role, None, How::Login));
        }
        let directory = self.sources.directory.as_ref();
        if let Some(found) = directory.and_then(|d| d.cached(&login.name, login.password())) {
            return Ok(self.directory_login(found));
        }
        // The device's own limit first: a device past it cannot spend anyone's account
        // attempts (or grow the account table) at all.
        let Some(address) = self.addresses.reserve(client, PER_ADDRESS) else {
            return Err(Denied::Limited);
        };
        // `tess `, ` TESS` and `ｔｅｓｓ` are one account to the directory: one limit.
        let key = ldap::canonical_name(&login.name);
        let Some(account) = self.accounts.reserve(key, PER_ACCOUNT) else {
            address.succeeded();
            return Err(Denied::Limited);
        };
        let outcome = self.verify(users, login).await;
        // A check the directory could not make is not a wrong guess: an outage must not
        // lock people out once it is over.
        if matches!(outcome, Ok(_) | Err(Denied::DirectoryDown)) {
            account.succeeded();
            address.succeeded();
        }
        outcome
    }

    /// The users file and vouchers (off the async workers), then the directory.
    async fn verify(&self, users: Arc<Users>, login: BasicLogin) -> Result<Accepted, Denied> {
        let local = {
            let _slot = self.checking.acquire().await.map_err(|_| Denied::Wrong)?;
            let vouchers = Arc::clone(&self.vouchers);
            let login = login.clone();
            tokio::task::spawn_blocking(move || {
                if let Some(found) = users.verify(&login) {
                    return Some((found, How::Login));
                }
                // Most schools have no voucher in force: skip the decode and hash.
                vouchers
                    .any()
                    .then(|| vouchers.authenticate(&login.header, chrono::Utc::now()))
                    .flatten()
                    .map(|found| (found, How::Voucher))
            })
            .await
            .ok()
            .flatten()
        };
        if let Some(((user, role), how)) = local {
            return Ok(self.accepted(user, role, None, how));
        }
        let Some(directory) = &self.sources.directory else {
            return Err(Denied::Wrong);
        };
        match directory.login(&login.name, login.password()).await {
            Ok(found) => Ok(self.directory_login(found)),
            Err(ldap::Refused::Wrong) => Err(Denied::Wrong),
            Err(ldap::Refused::NoRole) => Err(Denied::NoRole),
            Err(ldap::Refused::Unreachable) => Err(Denied::DirectoryDown),
        }
    }

    fn directory_login(&self, found: ldap::Found) -> Accepted {
        let display = found.display();
        let site = found.site.clone();
        Accepted {
            site,
            ..self.accepted(found.account, found.role, display, How::Ldap)
        }
    }

    /// A login with the people table's name for it (the table's name wins: the MIS is
    /// what the DSL knows people by).
    fn accepted(&self, user: String, role: String, person: Option<String>, how: How) -> Accepted {
        let named = self.sources.named(&user);
        Accepted {
            person: named.display.or(person),
            // The MIS's role, where it gives one, whatever proved the login (as for
            // Kerberos and the Wi-Fi): a pupil is a pupil however they sign in.
            role: named.role.unwrap_or(role),
            user,
            how,
            site: None,
        }
    }

    /// The account a `Negotiate` (Kerberos) token proves, with its role: the people
    /// table's, else the directory's groups, else the network's. Counted against the
    /// address's limit like a password, so a flood of bad tokens stops early.
    async fn negotiate(
        &self,
        encoded: &str,
        client: IpAddr,
        network_role: &str,
    ) -> Result<Accepted, Denied> {
        use base64::Engine as _;
        let Some(kerberos) = &self.sources.kerberos else {
            return Err(Denied::Wrong);
        };
        let token = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .filter(|t| !t.is_empty() && t.len() <= 64 * 1024)
            .ok_or(Denied::Wrong)?;
        let Some(address) = self.addresses.reserve(client, PER_ADDRESS) else {
            return Err(Denied::Limited);
        };
        let principal = {
            let _slot = self.checking.acquire().await.map_err(|_| Denied::Wrong)?;
            tokio::task::spawn_blocking(move || crate::identity::kerberos::accept(&token))
                .await
                .map_err(|_| Denied::Wrong)?
        };
        let principal = match principal {
            Ok(p) => p,
            Err(why @ crate::identity::kerberos::Failed::MoreRounds) => {
                address.succeeded();
                tracing::info!("Kerberos: no ticket from {client}: {why}");
                return Err(Denied::Wrong);
            }
            Err(why) => {
                tracing::warn!("Kerberos: refused a Negotiate login from {client}: {why}");
                return Err(Denied::Wrong);
            }
        };
        let Some(account) = crate::identity::kerberos::account_of(&principal, &kerberos.realms)
        else {
            tracing::warn!(
                "Kerberos: {principal} from {client} is not a person of the school's realms"
            );
            return Err(Denied::Wrong);
        };
        address.succeeded();
        let named = self.sources.named(&account);
        if named.left {
            return Err(Denied::Left);
        }
        if let Some(role) = named.role {
            return Ok(Accepted {
                user: account,
                role,
                person: named.display,
                how: How::Kerberos,
                site: None,
            });
        }
        let Some(directory) = &self.sources.directory else {
            return Ok(Accepted {
                user: account,
                role: network_role.to_owned(),
                person: named.display,
                how: How::Kerberos,
                site: None,
            });
        };
        match directory.lookup(&account).await {
            Ok(found) => Ok(Accepted {
                person: named.display.or_else(|| found.display()),
                user: account,
                role: found.role,
                how: How::Kerberos,
                site: found.site,
            }),
            Err(ldap::Refused::Wrong) | Err(ldap::Refused::NoRole) => Err(Denied::NoRole),
            Err(ldap::Refused::Unreachable) => Err(Denied::DirectoryDown),
        }
    }

    /// The `407` for this school: Negotiate when Kerberos is on, Basic unless turned off.
    fn challenge(&self) -> Response<Body> {
        let kerberos = self.sources.kerberos.as_ref();
        pages::login_required(
            kerberos.is_some(),
            kerberos.is_none_or(|k| k.basic_fallback),
        )
    }

    /// The person signed in on `client` on the sign-in page (a leaver marked since names
    /// no one).
    fn signed_in(&self, client: IpAddr) -> Option<Identity> {
        let found = self.sources.signin.as_ref()?.device(client)?;
        if self.sources.named(&found.account).left {
            return None;
        }
        Some(Identity {
            role: found.role,
            user: Some(found.account),
            person: found.person,
            how: How::SignIn,
            site: found.site,
        })
    }

    /// The person the Wi-Fi has bound to `client`, with the role the people table gives
    /// them (else `network_role`). A leaver names no one.
    fn bound(&self, client: IpAddr, network_role: &str) -> Option<Identity> {
        let binding = self.sources.bindings.get(client)?;
        let named = self.sources.named(&binding.account);
        if named.left {
            return None;
        }
        Some(Identity {
            role: named.role.unwrap_or_else(|| network_role.to_owned()),
            user: Some(binding.account.to_string()),
            person: named.display,
            how: How::Radius,
            site: None,
        })
    }
}

enum Denied {
    Wrong,
    Limited,
    /// The directory proved the password, but no group gives the person a role.
    NoRole,
    /// The directory is down and this login was not known before.
    DirectoryDown,
    /// The people table marks the account as a leaver.
    Left,
}

/// The identity of a request, or the response to send instead.
pub async fn identify(
    conn: &Conn,
    snap: &Snapshot,
    req: &Request<Body>,
) -> Result<Identity, Response<Body>> {
    if let Some(t) = &conn.tunnel {
        // A login proved at CONNECT holds for its tunnel. What the device's address says
        // is asked again for every request: the person may have signed out (or in) on the
        // page, or the Wi-Fi may have handed the address to someone else, since the tunnel
        // opened, and an alert must name who is there now.
        if !matches!(t.who.how, How::NotSignedIn | How::SignIn | How::Radius) {
            return Ok(t.who.clone());
        }
    }
    let client = conn.client_ip();
    let Some(network) = snap.network_of(client) else {
        return Err(super::refuse(
            "network",
            StatusCode::FORBIDDEN,
            "This filter does not serve your network.",
        ));
    };
    let network_role = snap
        .role(network.role)
        .map(|r| r.name.as_str())
        .unwrap_or_default();
    if let Some(named) = conn.shared.logins.bound(client, network_role) {
        if snap.role_id(&named.role).is_some() {
            return Ok(named);
        }
    }
    let header = req
        .headers()
        .get(header::PROXY_AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let logins = &conn.shared.logins;
    if network.signin && !network.login {
        return Ok(logins
            .signed_in(client)
            .filter(|who| snap.role_id(&who.role).is_some())
            .unwrap_or_else(|| Identity::not_signed_in(network_role)));
    }
    if !network.login {
        return Ok(Identity::network(network_role.to_owned()));
    }
    // Negotiate authenticates the connection (RFC 4559): later requests on it carry no
    // token, and a token may not be used twice.
    let kept: Option<Identity> = conn.negotiated.lock().ok().and_then(|mut n| {
        if header.is_some() {
            // A new login on the connection replaces the old, whatever its outcome.
            n.take();
        }
        n.clone()
    });
    if let Some(who) = kept {
        // Still re-checked against the people table: a leaver marked since is refused.
        let account = who.user.as_deref().unwrap_or_default();
        if !logins.sources.named(account).left {
            return Ok(who);
        }
        if let Ok(mut n) = conn.negotiated.lock() {
            n.take();
        }
    }
    // A network that takes both a proxy login and the sign-in page: a device signed in on
    // the page is its person; without a login, the page and the provider stay reachable
    // and anything else is asked for a login (Kerberos machines answer it), with the page's
    // link in the 407 for browsers that have no login to give.
    if network.signin {
        if let Some(who) = logins.signed_in(client) {
            if snap.role_id(&who.role).is_some() {
                return Ok(who);
            }
        }
        if header.is_none() {
            let (host, port) = super::signin::target(req);
            let page = logins.sources.signin.as_ref();
            if page.is_some_and(|p| p.is_portal(&host) || p.before_signin(&host, port)) {
                return Ok(Identity::not_signed_in(network_role));
            }
            metrics::get().refused.with_label_values(&["login"]).inc();
            return Err(super::signin::with_link(logins.challenge(), page, req));
        }
    }
    let kerberos = logins.sources.kerberos.as_ref();
    let outcome = match header.map(|h| h.trim().split_once(' ').unwrap_or((h, ""))) {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("negotiate") => {
            logins.negotiate(token, client, network_role).await
        }
        Some(_) if kerberos.is_some_and(|k| !k.basic_fallback) => Err(Denied::Wrong),
        Some(_) => logins.check(header.unwrap_or_default(), client).await,
        None => Err(Denied::Wrong),
    };
    match outcome {
        Ok(a) => {
            let who = Identity {
                role: a.role,
                user: Some(a.user),
                person: a.person,
                how: a.how,
                site: a.site,
            };
            if who.how == How::Kerberos {
                if let Ok(mut n) = conn.negotiated.lock() {
                    *n = Some(who.clone());
                }
            }
            Ok(who)
        }
        Err(Denied::Wrong) => {
            metrics::get().refused.with_label_values(&["login"]).inc();
            Err(logins.challenge())
        }
        Err(Denied::NoRole) => {
            metrics::get()
                .refused
                .with_label_values(&["login-role"])
                .inc();
            Err(pages::refusal(
                StatusCode::FORBIDDEN,
                "Your account is in none of the school's groups that can use the internet here. \
                 Ask the IT team.",
            ))
        }
        Err(Denied::Left) => {
            metrics::get()
                .refused
                .with_label_values(&["login-left"])
                .inc();
            Err(pages::refusal(
                StatusCode::FORBIDDEN,
                "This account belongs to someone who has left the school. Ask the IT team.",
            ))
        }
        Err(Denied::DirectoryDown) => {
            metrics::get()
                .refused
                .with_label_values(&["directory-down"])
                .inc();
            Err(pages::refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "The school's directory cannot be reached, so new sign-ins cannot be checked. \
                 Try again in a few minutes, or ask the IT team.",
            ))
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
