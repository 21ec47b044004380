//! The sign-in page: OpenID Connect (authorisation code with PKCE) with the school's
//! Microsoft Entra ID or Google Workspace, for devices that nothing else names
//! (Chromebooks, BYOD, guests with school accounts) on networks marked `signin = true`.
//!
//! The page is the filter's own, at `https://<portal_host>/` reached through the filter
//! (a CONNECT to it is always intercepted; nothing of it goes upstream):
//!
//! 1. `/signin?next=URL` makes a one-use `state` bound to the device's address, a `nonce`
//!    and a PKCE verifier, and sends the browser to the provider;
//! 2. `/signin/callback?code&state` takes the state back (once, from the same address,
//!    within ten minutes), trades the code and the verifier for tokens over the one road
//!    out, and verifies the ID token: its signature with the provider's published keys
//!    (RS256, PS256, ES256; nothing else), the issuer, the audience (and `azp`), the expiry
//!    and the nonce;
//! 3. the device's address is then bound to the person until sign-out, idle time or expiry,
//!    and the browser goes on to where it was going.
//!
//! The provider's discovery document must name the configured issuer exactly; it and the
//! keys are fetched when first needed (a provider that cannot be reached at start does not
//! stop the filter) and the keys again when a token names one not yet seen.

use super::settings::OidcSettings;
use crate::body::{self, Body};
use arc_swap::ArcSwapOption;
use base64::Engine as _;
use dashmap::DashMap;
use http_body_util::BodyExt as _;
use hyper::{header, Method, Request, Response, StatusCode, Uri};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a sign-in may take from the filter's redirect to the callback.
const PENDING_FOR: Duration = Duration::from_secs(10 * 60);
/// Sign-ins under way at most, and per device.
const MAX_PENDING: usize = 20_000;
const MAX_PENDING_PER_DEVICE: usize = 16;
/// ...per IPv6 /64 (a device can spread itself over its /64; classmates share one)...
const MAX_PENDING_PER_NETWORK: usize = 1024;
/// ...and for the admin page's sign-ins, which anyone can start.
const MAX_PENDING_BROWSERS: usize = 256;
/// Devices signed in at most.
const MAX_DEVICES: usize = 250_000;
/// The largest provider answer read (discovery, keys, tokens).
const MAX_ANSWER: usize = 256 * 1024;
/// Clock difference allowed with the provider.
const LEEWAY_SECS: i64 = 120;
/// The keys are fetched again for an unknown key id at most this often.
const KEYS_REFETCH: Duration = Duration::from_secs(60);
/// After the provider could not be reached, sign-ins are refused at once for this long
/// (rather than each waiting its turn to time out).
const RETRY_SECS: u64 = 15;

pub const CALLBACK_PATH: &str = "/signin/callback";

/// Why a sign-in was refused. Each is logged with the device's address; the page says
/// what the person can do.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("the provider could not be reached or answered wrongly: {0}")]
    Provider(String),
    #[error("the state is not one this filter issued, was used already, or is too old")]
    BadState,
    #[error("the sign-in was started from another device ({0})")]
    OtherDevice(Holder),
    #[error("the provider refused the sign-in: {0}")]
    ProviderSaid(String),
    #[error("the ID token is not valid: {0}")]
    BadToken(&'static str),
    #[error("the ID token's issuer is {0:?}, not the school's provider")]
    WrongIssuer(String),
    #[error("the ID token was issued to another application")]
    WrongAudience,
    #[error("the ID token's nonce is not this sign-in's")]
    WrongNonce,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token names no account (claim {0:?})")]
    NoAccount(String),
    #[error("{0} is in none of the groups or domains that give a role")]
    NoRole(String),
    #[error("{0} has left the school")]
    Left(String),
    #[error("too many sign-ins are under way")]
    Busy,
}

/// A device signed in on the page.
#[derive(Debug)]
pub struct Device {
    pub account: String,
    pub person: Option<String>,
    pub role: String,
    pub site: Option<String>,
    pub since: chrono::DateTime<chrono::Utc>,
    expires: Instant,
    /// Seconds since `origin` of the device's last request (idle time).
    last: AtomicU64,
}

/// Who a sign-in under way belongs to: a device (the sign-in page), or a browser by a
/// cookie it holds (the admin page's sign-in with a school account).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    Device(IpAddr),
    Browser(String),
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Device(ip) => write!(f, "{ip}"),
            Holder::Browser(_) => f.write_str("another browser"),
        }
    }
}

/// A sign-in under way: what the callback must match.
#[derive(Debug)]
struct Pending {
    verifier: String,
    nonce: String,
    holder: Holder,
    redirect_uri: String,
    next: String,
    created: Instant,
}

/// What the provider's discovery document and keys say.
#[derive(Debug)]
struct Provider {
    authorization_endpoint: String,
    token_endpoint: Uri,
    /// The authorization endpoint's host and port: reachable before signing in.
    sign_in_host: String,
    sign_in_port: u16,
    /// Send the client secret with HTTP Basic (else in the form).
    basic: bool,
    keys: Vec<Key>,
    keys_fetched: Instant,
    jwks_uri: Uri,
}

/// One of the provider's signing keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub kid: Option<String>,
    pub material: Material,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed P-256 point (`04 || x || y`).
    P256(Vec<u8>),
}

/// What an ID token must say.
#[derive(Debug)]
pub struct Expect<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// Unix seconds.
    pub now: i64,
}

/// The sign-in page's state: settings, the provider, sign-ins under way, devices signed in.
pub struct SignIn {
    settings: OidcSettings,
    secret: String,
    redirect_uri: String,
    provider: ArcSwapOption<Provider>,
    /// One fetch of the provider at a time...
    fetching: tokio::sync::Mutex<()>,
    /// ...and none for a while after one failed (seconds since `origin`, 0: never).
    failed_at: AtomicU64,
    /// Refused sign-ins, logged at most one every ten seconds.
    pub log: std::sync::Mutex<super::Throttle>,
    pending: DashMap<String, Pending>,
    devices: DashMap<IpAddr, Device>,
    origin: Instant,
    /// The page's own certificate, when the school gave one (`portal_cert`).
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// Shown without the client secret or any sign-in's verifier and nonce.
impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("issuer", &self.settings.issuer)
            .field("client_id", &self.settings.client_id)
            .field("portal_host", &self.settings.portal_host)
            .field("pending", &self.pending.len())
            .field("devices", &self.devices.len())
            .finish_non_exhaustive()
    }
}

impl SignIn {
    pub fn new(
        settings: OidcSettings,
        secret: String,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> SignIn {
        let redirect_uri = format!("https://{}{CALLBACK_PATH}", settings.portal_host);
        SignIn {
            settings,
            secret,
            redirect_uri,
            provider: ArcSwapOption::empty(),
            fetching: tokio::sync::Mutex::new(()),
            failed_at: AtomicU64::new(0),
            log: std::sync::Mutex::new(super::Throttle::new("Sign-in page", 20)),
            pending: DashMap::new(),
            devices: DashMap::new(),
            origin: Instant::now(),
            tls,
        }
    }

    /// The page's own TLS configuration, when the school gave it a certificate.
    pub fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.clone()
    }

    pub fn portal_host(&self) -> &str {
        &self.settings.portal_host
    }

    /// Whether `host` (lower case) is the page itself.
    pub fn is_portal(&self, host: &str) -> bool {
        host == self.settings.portal_host
    }

    /// Whether a device that has not signed in may reach `host`: the provider's sign-in
    /// hosts and the names the school listed (with their subdomains).
    pub fn before_signin(&self, host: &str, port: u16) -> bool {
        if host_and_port(&self.settings.issuer) == Some((host, port)) {
            return true;
        }
        let provider = self.provider.load();
        if provider
            .as_ref()
            .is_some_and(|p| p.sign_in_host == host && p.sign_in_port == port)
        {
            return true;
        }
        if port != 443 && port != 80 {
            return false;
        }
        self.settings.allow_before_signin.iter().any(|allowed| {
            host == allowed
                || host
                    .strip_suffix(allowed.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
        })
    }

    /// Who is signed in on `device`, if anyone still is. Marks the device as active.
    pub fn device(&self, device: IpAddr) -> Option<SignedIn> {
        let found = self.devices.get(&device)?;
        let now = Instant::now();
        let idle = Duration::from_secs(self.settings.idle_minutes * 60);
        let last = Duration::from_secs(found.last.load(Ordering::Relaxed));
        if found.expires <= now || self.origin + last + idle <= now {
            drop(found);
            // Only if still stale: a sign-in since must not be removed with it.
            self.devices.remove_if(&device, |_, d| {
                let last = Duration::from_secs(d.last.load(Ordering::Relaxed));
                d.expires <= now || self.origin + last + idle <= now
            });
            return None;
        }
        found
            .last
            .store(now.duration_since(self.origin).as_secs(), Ordering::Relaxed);
        Some(SignedIn {
            account: found.account.clone(),
            person: found.person.clone(),
            role: found.role.clone(),
            site: found.site.clone(),
        })
    }

    /// Every device signed in now, for the admin page.
    pub fn devices(&self) -> Vec<(IpAddr, String, chrono::DateTime<chrono::Utc>)> {
        let now = Instant::now();
        let idle = Duration::from_secs(self.settings.idle_minutes * 60);
        let mut list: Vec<_> = self
            .devices
            .iter()
            .filter(|d| {
                let last = Duration::from_secs(d.last.load(Ordering::Relaxed));
                d.expires > now && self.origin + last + idle > now
            })
            .map(|d| (*d.key(), d.account.clone(), d.since))
            .collect();
        list.sort_by_key(|d| std::cmp::Reverse(d.2));
        list
    }

    /// Starts a sign-in for `device`: the provider's authorization URL to send it to.
    pub async fn start(
        &self,
        device: IpAddr,
        next: &str,
        client: &crate::handler::Client,
    ) -> Result<String, Refused> {
        let redirect_uri = self.redirect_uri.clone();
        self.begin(Holder::Device(device), redirect_uri, next, client)
            .await
    }

    /// Starts an admin page sign-in for the browser holding `cookie`, coming back to
    /// `redirect_uri` (the admin page's own callback).
    pub async fn start_admin(
        &self,
        cookie: String,
        redirect_uri: String,
        client: &crate::handler::Client,
    ) -> Result<String, Refused> {
        self.begin(Holder::Browser(cookie), redirect_uri, "/", client)
            .await
    }

    async fn begin(
        &self,
        holder: Holder,
        redirect_uri: String,
        next: &str,
        client: &crate::handler::Client,
    ) -> Result<String, Refused> {
        let provider = self.provider(client).await?;
        self.make_room(&holder)?;
        let state = random_token();
        let nonce = random_token();
        let verifier = random_token();
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()),
        );
        let scopes = self.settings.scopes.join(" ");
        let url = format!(
            "{}{}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}\
             &code_challenge={}&code_challenge_method=S256",
            provider.authorization_endpoint,
            if provider.authorization_endpoint.contains('?') {
                '&'
            } else {
                '?'
            },
            encode(&self.settings.client_id),
            encode(&redirect_uri),
            encode(&scopes),
            state,
            nonce,
            challenge,
        );
        self.pending.insert(
            state,
            Pending {
                verifier,
                nonce,
                holder,
                redirect_uri,
                next: safe_next(next),
                created: Instant::now(),
            },
        );
        Ok(url)
    }

    /// The provider's answer: the device is signed in, and where it goes next.
    pub async fn finish(
        &self,
        device: IpAddr,
        query: &[(String, String)],
        client: &crate::handler::Client,
        named: impl Fn(&str) -> super::Named,
    ) -> Result<(SignedIn, String), Refused> {
        let (claims, next) = self.claims(Holder::Device(device), query, client).await?;
        let who = self.person(&claims, named)?;
        self.bind(device, &who)?;
        Ok((who, next))
    }

    /// The provider's answer to an admin page sign-in: the account and its groups.
    pub async fn finish_admin(
        &self,
        cookie: String,
        query: &[(String, String)],
        client: &crate::handler::Client,
    ) -> Result<(String, Vec<String>), Refused> {
        let (claims, _) = self.claims(Holder::Browser(cookie), query, client).await?;
        let account = self.account(&claims)?;
        let groups = claims
            .get("groups")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|g| g.as_str())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok((account, groups))
    }

    /// The verified claims of the ID token the callback's code is traded for, and where
    /// the holder goes next.
    async fn claims(
        &self,
        holder: Holder,
        query: &[(String, String)],
        client: &crate::handler::Client,
    ) -> Result<(serde_json::Map<String, serde_json::Value>, String), Refused> {
        let field = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let state = field("state").ok_or(Refused::BadState)?;
        // One use, whatever happens next.
        let (_, pending) = self.pending.remove(state).ok_or(Refused::BadState)?;
        if pending.created.elapsed() > PENDING_FOR {
            return Err(Refused::BadState);
        }
        if pending.holder != holder {
            return Err(Refused::OtherDevice(pending.holder));
        }
        if let Some(error) = field("error") {
            let described = field("error_description").unwrap_or_default();
            return Err(Refused::ProviderSaid(format!(
                "{} {}",
                printable(error),
                printable(described)
            )));
        }
        let code = field("code")
            .filter(|c| !c.is_empty())
            .ok_or(Refused::ProviderSaid("no code".to_owned()))?;
        let provider = self.provider(client).await?;
        let id_token = self.exchange(&provider, code, &pending, client).await?;
        let expect = Expect {
            issuer: &self.settings.issuer,
            client_id: &self.settings.client_id,
            nonce: &pending.nonce,
            now: chrono::Utc::now().timestamp(),
        };
        let claims = match verify(&id_token, &provider.keys, &expect) {
            Err(Refused::BadToken(UNKNOWN_KEY))
                if provider.keys_fetched.elapsed() >= KEYS_REFETCH =>
            {
                // The provider rolled its keys: fetch them again, once.
                let provider = self.refetch_keys(&provider, client).await?;
                verify(&id_token, &provider.keys, &expect)?
            }
            other => other?,
        };
        Ok((claims, pending.next))
    }

    /// Signs `device` out; true if it was signed in.
    pub fn sign_out(&self, device: IpAddr) -> bool {
        self.devices.remove(&device).is_some()
    }

    /// The account an ID token's claims name: the account claim, lower case, without one
    /// of the school's domains.
    fn account(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, Refused> {
        let claim = &self.settings.account_claim;
        let raw = raw_account(claims, claim).ok_or_else(|| Refused::NoAccount(claim.clone()))?;
        Ok(match raw.rsplit_once('@') {
            Some((local, d))
                if self
                    .settings
                    .domains
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(d)) =>
            {
                local.to_owned()
            }
            _ => raw.clone(),
        })
    }

    /// The person an ID token's claims name, with their role and site.
    fn person(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
        named: impl Fn(&str) -> super::Named,
    ) -> Result<SignedIn, Refused> {
        let account = self.account(claims)?;
        let domain = claims
            .get("hd")
            .and_then(|v| v.as_str())
            .map(str::to_lowercase)
            .or_else(|| {
                // An address the provider has not verified proves no domain.
                let unverified =
                    claims.get("email_verified").and_then(|v| v.as_bool()) == Some(false);
                raw_account(claims, &self.settings.account_claim)
                    .filter(|_| !unverified)
                    .and_then(|raw| raw.rsplit_once('@').map(|(_, d)| d.to_owned()))
            });
        let known = named(&account);
        if known.left {
            return Err(Refused::Left(account));
        }
        let groups: Vec<&str> = claims
            .get("groups")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|g| g.as_str()).collect())
            .unwrap_or_default();
        let matched = self.settings.roles.iter().find(|r| {
            r.group.as_deref().is_some_and(|g| groups.contains(&g))
                || r.domain
                    .as_deref()
                    .is_some_and(|d| domain.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(d)))
        });
        let role = known
            .role
            .or_else(|| matched.map(|r| r.role.clone()))
            .or_else(|| self.settings.default_role.clone())
            .ok_or_else(|| Refused::NoRole(account.clone()))?;
        let person = known.display.or_else(|| {
            claims
                .get("name")
                .and_then(|v| v.as_str())
                .map(|n| n.chars().filter(|c| !c.is_control()).take(120).collect())
        });
        Ok(SignedIn {
            account,
            person,
            role,
            site: matched.and_then(|r| r.site.clone()),
        })
    }

    fn bind(&self, device: IpAddr, who: &SignedIn) -> Result<(), Refused> {
        let now = Instant::now();
        if self.devices.len() >= MAX_DEVICES && !self.devices.contains_key(&device) {
            self.devices.retain(|_, d| d.expires > now);
            if self.devices.len() >= MAX_DEVICES {
                return Err(Refused::Busy);
            }
        }
        self.devices.insert(
            device,
            Device {
                account: who.account.clone(),
                person: who.person.clone(),
                role: who.role.clone(),
                site: who.site.clone(),
                since: chrono::Utc::now(),
                expires: now + Duration::from_secs(self.settings.hours * 3600),
                last: AtomicU64::new(now.duration_since(self.origin).as_secs()),
            },
        );
        Ok(())
    }

    /// Room for one more sign-in by `holder`. A device keeps its newest few, the oldest
    /// giving way (a page of hidden sign-in links cannot lock it out, and one device cannot
    /// push out another's); an IPv6 /64 holds at most [`MAX_PENDING_PER_NETWORK`] (past it,
    /// new ones wait); the admin page's sign-ins keep their newest few hundred. Past the
    /// limit for everyone, sign-ins over ten minutes old are forgotten, and if that is not
    /// enough the new one is refused.
    fn make_room(&self, holder: &Holder) -> Result<(), Refused> {
        let (mut own, mut network) = (Vec::new(), 0usize);
        for p in self.pending.iter() {
            let same = match (&p.holder, holder) {
                (Holder::Device(a), Holder::Device(b)) => {
                    if device_key(*a) == device_key(*b) {
                        network += 1;
                    }
                    a.to_canonical() == b.to_canonical()
                }
                (Holder::Browser(_), Holder::Browser(_)) => true,
                _ => false,
            };
            if same {
                own.push((p.key().clone(), p.created));
            }
        }
        let keep = match holder {
            Holder::Device(_) => MAX_PENDING_PER_DEVICE,
            Holder::Browser(_) => MAX_PENDING_BROWSERS,
        };
        if own.len() >= keep {
            own.sort_by_key(|(_, created)| *created);
            for (state, _) in &own[..=own.len() - keep] {
                self.pending.remove(state);
            }
        }
        if network >= MAX_PENDING_PER_NETWORK {
            return Err(Refused::Busy);
        }
        if self.pending.len() >= MAX_PENDING {
            self.pending
                .retain(|_, p| p.created.elapsed() <= PENDING_FOR);
            if self.pending.len() >= MAX_PENDING {
                return Err(Refused::Busy);
            }
        }
        Ok(())
    }

    /// The provider, fetched now if it never was.
    async fn provider(&self, client: &crate::handler::Client) -> Result<Arc<Provider>, Refused> {
        if let Some(p) = self.provider.load_full() {
            return Ok(p);
        }
        let recently_failed = || {
            let at = self.failed_at.load(Ordering::Relaxed);
            at > 0 && self.origin.elapsed().as_secs() < at + RETRY_SECS
        };
        if recently_failed() {
            return Err(Refused::Provider("it failed moments ago".to_owned()));
        }
        let _one = self.fetching.lock().await;
        if let Some(p) = self.provider.load_full() {
            return Ok(p);
        }
        if recently_failed() {
            return Err(Refused::Provider("it failed moments ago".to_owned()));
        }
        match discover(&self.settings.issuer, client).await {
            Ok(provider) => {
                let provider = Arc::new(provider);
                self.provider.store(Some(Arc::clone(&provider)));
                Ok(provider)
            }
            Err(e) => {
                self.failed_at
                    .store(self.origin.elapsed().as_secs().max(1), Ordering::Relaxed);
                Err(e)
            }
        }
    }

    async fn refetch_keys(
        &self,
        old: &Provider,
        client: &crate::handler::Client,
    ) -> Result<Arc<Provider>, Refused> {
        let _one = self.fetching.lock().await;
        let keys = fetch_keys(&old.jwks_uri, client).await?;
        let provider = Arc::new(Provider {
            authorization_endpoint: old.authorization_endpoint.clone(),
            token_endpoint: old.token_endpoint.clone(),
            sign_in_host: old.sign_in_host.clone(),
            sign_in_port: old.sign_in_port,
            basic: old.basic,
            keys,
            keys_fetched: Instant::now(),
            jwks_uri: old.jwks_uri.clone(),
        });
        self.provider.store(Some(Arc::clone(&provider)));
        Ok(provider)
    }

    /// Trades the code (and the PKCE verifier) for the ID token.
    async fn exchange(
        &self,
        provider: &Provider,
        code: &str,
        pending: &Pending,
        client: &crate::handler::Client,
    ) -> Result<String, Refused> {
        let mut form = format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
            encode(code),
            encode(&pending.redirect_uri),
            encode(&pending.verifier)
        );
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(provider.token_endpoint.clone())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json");
        if provider.basic {
            // RFC 6749 §2.3.1: each part form-encoded, then joined.
            let pair = format!(
                "{}:{}",
                encode(&self.settings.client_id),
                encode(&self.secret)
            );
            let basic = base64::engine::general_purpose::STANDARD.encode(pair);
            req = req.header(header::AUTHORIZATION, format!("Basic {basic}"));
        } else {
            form.push_str(&format!(
                "&client_id={}&client_secret={}",
                encode(&self.settings.client_id),
                encode(&self.secret)
            ));
        }
        let req = req
            .body(body::full(form))
            .map_err(|e| Refused::Provider(e.to_string()))?;
        let (status, answer) = call(client, req).await?;
        let answer: serde_json::Value = serde_json::from_slice(&answer)
            .map_err(|_| Refused::Provider("the token endpoint's answer is not JSON".to_owned()))?;
        if !status.is_success() {
            let error = answer
                .get("error")
                .and_then(|e| e.as_str())
                .unwrap_or("unknown");
            return Err(Refused::ProviderSaid(format!(
                "token endpoint: {status} {}",
                printable(error)
            )));
        }
        answer
            .get("id_token")
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .ok_or(Refused::BadToken("the token endpoint sent no ID token"))
    }
}

/// Who a signed-in device belongs to.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub account: String,
    pub person: Option<String>,
    pub role: String,
    pub site: Option<String>,
}

/// The account claim as the token gives it, lower case, if it is a plausible one.
fn raw_account(claims: &serde_json::Map<String, serde_json::Value>, claim: &str) -> Option<String> {
    claims
        .get(claim)
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|a| !a.is_empty() && a.len() <= 256 && !a.chars().any(char::is_control))
        .map(str::to_lowercase)
}

/// Reads the provider's discovery document (its issuer must be the one configured) and keys.
async fn discover(issuer: &str, client: &crate::handler::Client) -> Result<Provider, Refused> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let doc = get_json(&url, client).await?;
    let text = |name: &str| -> Result<String, Refused> {
        doc.get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| Refused::Provider(format!("the discovery document has no {name}")))
    };
    let named = text("issuer")?;
    if named != issuer {
        return Err(Refused::Provider(format!(
            "the discovery document's issuer is {named:?}, not {issuer:?}"
        )));
    }
    let authorization_endpoint = text("authorization_endpoint")?;
    let token_endpoint = endpoint(&text("token_endpoint")?, issuer)?;
    let jwks_uri = endpoint(&text("jwks_uri")?, issuer)?;
    let (sign_in_host, sign_in_port) = host_and_port(&authorization_endpoint)
        .map(|(h, p)| (h.to_owned(), p))
        .ok_or_else(|| Refused::Provider("the authorization endpoint has no host".to_owned()))?;
    let basic = doc
        .get("token_endpoint_auth_methods_supported")
        .and_then(|m| m.as_array())
        .is_none_or(|m| m.iter().any(|x| x.as_str() == Some("client_secret_basic")));
    let keys = fetch_keys(&jwks_uri, client).await?;
    Ok(Provider {
        authorization_endpoint,
        token_endpoint,
        sign_in_host,
        sign_in_port,
        basic,
        keys,
        keys_fetched: Instant::now(),
        jwks_uri,
    })
}

/// An endpoint of the provider: https (or plain http only when the issuer is too: a
/// provider on this machine).
fn endpoint(url: &str, issuer: &str) -> Result<Uri, Refused> {
    let uri: Uri = url
        .parse()
        .map_err(|_| Refused::Provider(format!("{url:?} is not a URL")))?;
    let plain_ok = issuer.starts_with("http://");
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if plain_ok => Ok(uri),
        _ => Err(Refused::Provider(format!("{url:?} is not https"))),
    }
}

async fn fetch_keys(jwks_uri: &Uri, client: &crate::handler::Client) -> Result<Vec<Key>, Refused> {
    let doc = get_json(&jwks_uri.to_string(), client).await?;
    let keys = parse_keys(&doc);
    if keys.is_empty() {
        return Err(Refused::Provider(
            "the provider publishes no RSA or P-256 signing key".to_owned(),
        ));
    }
    Ok(keys)
}

/// The signing keys of a JWK set that this filter can check (RSA, EC P-256).
pub fn parse_keys(doc: &serde_json::Value) -> Vec<Key> {
    let b64 = |v: Option<&serde_json::Value>| {
        v.and_then(|v| v.as_str()).and_then(|s| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .ok()
        })
    };
    let Some(keys) = doc.get("keys").and_then(|k| k.as_array()) else {
        return Vec::new();
    };
    keys.iter()
        .filter(|k| {
            k.get("use")
                .and_then(|u| u.as_str())
                .is_none_or(|u| u == "sig")
        })
        .filter_map(|k| {
            let kid = k.get("kid").and_then(|v| v.as_str()).map(str::to_owned);
            let material = match k.get("kty").and_then(|v| v.as_str())? {
                "RSA" => Material::Rsa {
                    n: b64(k.get("n"))?,
                    e: b64(k.get("e"))?,
                },
                "EC" if k.get("crv").and_then(|v| v.as_str()) == Some("P-256") => {
                    let (x, y) = (b64(k.get("x"))?, b64(k.get("y"))?);
                    if x.len() != 32 || y.len() != 32 {
                        return None;
                    }
                    let mut point = vec![4u8];
                    point.extend_from_slice(&x);
                    point.extend_from_slice(&y);
                    Material::P256(point)
                }
                _ => return None,
            };
            Some(Key { kid, material })
        })
        .collect()
}

const UNKNOWN_KEY: &str = "it is signed with a key the provider does not publish";

/// Verifies an ID token (a JWS in compact form) and returns its claims.
pub fn verify(
    token: &str,
    keys: &[Key],
    expect: &Expect<'_>,
) -> Result<serde_json::Map<String, serde_json::Value>, Refused> {
    use aws_lc_rs::signature;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = token.split('.');
    let (Some(head), Some(payload), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refused::BadToken("it is not a signed JWT"));
    };
    let header: serde_json::Value = b64
        .decode(head)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or(Refused::BadToken("its header is not JSON"))?;
    let signature_bytes = b64
        .decode(sig)
        .map_err(|_| Refused::BadToken("its signature is not base64url"))?;
    let alg = header.get("alg").and_then(|a| a.as_str()).unwrap_or("");
    let kid = header.get("kid").and_then(|k| k.as_str());
    let wants_rsa = match alg {
        "RS256" | "PS256" => true,
        "ES256" => false,
        // `none`, HMAC (a public key used as a secret) and anything else: refused.
        _ => {
            return Err(Refused::BadToken(
                "its algorithm is not RS256, PS256 or ES256",
            ))
        }
    };
    let candidates: Vec<&Key> = keys
        .iter()
        .filter(|k| matches!(k.material, Material::Rsa { .. }) == wants_rsa)
        .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
        .collect();
    let key = match candidates.as_slice() {
        [one] => *one,
        [] => return Err(Refused::BadToken(UNKNOWN_KEY)),
        _ => {
            return Err(Refused::BadToken(
                "it names no key, and the provider has several",
            ))
        }
    };
    let signed = &token.as_bytes()[..head.len() + 1 + payload.len()];
    let checked = match (&key.material, alg) {
        (Material::Rsa { n, e }, "RS256") => signature::RsaPublicKeyComponents { n, e }.verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            signed,
            &signature_bytes,
        ),
        (Material::Rsa { n, e }, _) => signature::RsaPublicKeyComponents { n, e }.verify(
            &signature::RSA_PSS_2048_8192_SHA256,
            signed,
            &signature_bytes,
        ),
        (Material::P256(point), _) => {
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(signed, &signature_bytes)
        }
    };
    checked.map_err(|_| Refused::BadToken("its signature does not verify"))?;
    let claims: serde_json::Map<String, serde_json::Value> = b64
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or(Refused::BadToken("its claims are not a JSON object"))?;
    let issuer = claims.get("iss").and_then(|v| v.as_str()).unwrap_or("");
    if issuer != expect.issuer {
        return Err(Refused::WrongIssuer(issuer.chars().take(200).collect()));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => vec![a.as_str()],
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&expect.client_id) {
        return Err(Refused::WrongAudience);
    }
    let azp = claims.get("azp").and_then(|v| v.as_str());
    if (audiences.len() > 1 || azp.is_some()) && azp != Some(expect.client_id) {
        return Err(Refused::WrongAudience);
    }
    let exp = claims
        .get("exp")
        .and_then(|v| v.as_i64())
        .ok_or(Refused::BadToken("it has no expiry"))?;
    if exp + LEEWAY_SECS <= expect.now {
        return Err(Refused::Expired);
    }
    if claims
        .get("iat")
        .and_then(|v| v.as_i64())
        .is_some_and(|iat| iat > expect.now + LEEWAY_SECS)
    {
        return Err(Refused::BadToken("it was issued in the future"));
    }
    let nonce = claims.get("nonce").and_then(|v| v.as_str());
    if !nonce.is_some_and(|n| constant_eq(n.as_bytes(), expect.nonce.as_bytes())) {
        return Err(Refused::WrongNonce);
    }
    Ok(claims)
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// A GET for JSON from the provider, through the one road out.
async fn get_json(
    url: &str,
    client: &crate::handler::Client,
) -> Result<serde_json::Value, Refused> {
    let uri: Uri = url
        .parse()
        .map_err(|_| Refused::Provider(format!("{url:?} is not a URL")))?;
    let req = Request::builder()
        .uri(uri)
        .header(header::ACCEPT, "application/json")
        .body(body::empty())
        .map_err(|e| Refused::Provider(e.to_string()))?;
    let (status, answer) = call(client, req).await?;
    if !status.is_success() {
        return Err(Refused::Provider(format!("{url}: {status}")));
    }
    serde_json::from_slice(&answer).map_err(|_| Refused::Provider(format!("{url}: not JSON")))
}

async fn call(
    client: &crate::handler::Client,
    req: Request<Body>,
) -> Result<(StatusCode, bytes::Bytes), Refused> {
    let what = req.uri().to_string();
    let exchange = async {
        let res = client
            .request(req)
            .await
            .map_err(|e| Refused::Provider(format!("{what}: {e}")))?;
        let status = res.status();
        let limited = http_body_util::Limited::new(res.into_body(), MAX_ANSWER);
        let bytes = limited
            .collect()
            .await
            .map_err(|e| Refused::Provider(format!("{what}: {e}")))?
            .to_bytes();
        Ok((status, bytes))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| Refused::Provider(format!("{what}: no answer in 10 s")))?
}

/// 32 random bytes, base64url.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system's generator does not fail on Linux; a zeroed token would still be
    // refused as a repeat only by chance, so fall back to the clock and a counter mixed
    // through SHA-256 rather than panic.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let seed = format!(
            "{:?}{}",
            std::time::SystemTime::now(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        bytes.copy_from_slice(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, seed.as_bytes()).as_ref(),
        );
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The unit a device's limits are counted in: its address, or an IPv6 device's /64 (which
/// one device can spread itself over).
fn device_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Text from the provider's redirect, fit for a log line: printable, short.
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(100).collect()
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where to go after signing in: an absolute http(s) URL, else the page's own status.
fn safe_next(next: &str) -> String {
    let ok = next
        .parse::<Uri>()
        .ok()
        .filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some());
    match ok {
        Some(_) if next.len() <= 4096 => next.to_owned(),
        _ => "/".to_owned(),
    }
}

/// The host and port of an absolute http(s) URL.
fn host_and_port(url: &str) -> Option<(&str, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let default = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default,
    };
    (!host.is_empty()).then_some((host, port))
}

/// The page's answers to a device, for `handler`: a redirect, or a short HTML page.
pub fn redirect(to: &str) -> Response<Body> {
    let mut res = Response::new(body::empty());
    *res.status_mut() = StatusCode::FOUND;
    if let Ok(v) = header::HeaderValue::from_str(to) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};

    const ISSUER: &str = "https://login.example/tenant/v2.0";

    struct Signer {
        pair: EcdsaKeyPair,
        key: Key,
    }

    fn signer(kid: &str) -> Signer {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        Signer {
            pair,
            key: Key {
                kid: Some(kid.to_owned()),
                material: Material::P256(point),
            },
        }
    }

    fn token(s: &Signer, header: serde_json::Value, claims: serde_json::Value) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signed = format!(
            "{}.{}",
            b64.encode(header.to_string()),
            b64.encode(claims.to_string())
        );
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = s.pair.sign(&rng, signed.as_bytes()).unwrap();
        format!("{signed}.{}", b64.encode(sig.as_ref()))
    }

    fn good_claims(now: i64) -> serde_json::Value {
        serde_json::json!({
            "iss": ISSUER, "aud": "gatehouse", "exp": now + 600, "iat": now,
            "nonce": "n-123", "preferred_username": "amy.pupil@school.org", "name": "Amy Pupil"
        })
    }

    fn expect(now: i64) -> Expect<'static> {
        Expect {
            issuer: ISSUER,
            client_id: "gatehouse",
            nonce: "n-123",
            now,
        }
    }

    fn header(kid: &str) -> serde_json::Value {
        serde_json::json!({"alg": "ES256", "kid": kid, "typ": "JWT"})
    }

    #[test]
    fn a_good_token_verifies() {
        let s = signer("k1");
        let now = 1_800_000_000;
        let t = token(&s, header("k1"), good_claims(now));
        let claims = verify(&t, std::slice::from_ref(&s.key), &expect(now)).unwrap();
        assert_eq!(claims["preferred_username"], "amy.pupil@school.org");
    }

    #[test]
    fn wrong_issuer_audience_nonce_expiry_are_refused() {
        let s = signer("k1");
        let now = 1_800_000_000;
        let keys = [s.key.clone()];
        let with = |k: &str, v: serde_json::Value| {
            let mut c = good_claims(now);
            c[k] = v;
            token(&s, header("k1"), c)
        };
        let t = with("iss", "https://evil.example/v2.0".into());
        assert!(matches!(
            verify(&t, &keys, &expect(now)),
            Err(Refused::WrongIssuer(_))
        ));
        let t = with("aud", "another-app".into());
        assert!(matches!(
            verify(&t, &keys, &expect(now)),
            Err(Refused::WrongAudience)
        ));
        // Several audiences: the authorised party must be this filter.
        let t = with("aud", serde_json::json!(["gatehouse", "another-app"]));
        assert!(matches!(
            verify(&t, &keys, &expect(now)),
            Err(Refused::WrongAudience)
        ));
        let t = with("nonce", "n-other".into());
        assert!(matches!(
            verify(&t, &keys, &expect(now)),
            Err(Refused::WrongNonce)
        ));
        let mut c = good_claims(now);
        c.as_object_mut().unwrap().remove("nonce");
        let t = token(&s, header("k1"), c);
        assert!(matches!(
            verify(&t, &keys, &expect(now)),
            Err(Refused::WrongNonce)
        ));
        let t = with("exp", (now - 3600).into());
        assert!(matches!(
            verify(&t, &keys, &expect(now)),
            Err(Refused::Expired)
        ));
        let t = with("iat", (now + 3600).into());
        assert!(matches!(
            verify(&t, &keys, &expect(now)),
            Err(Refused::BadToken(_))
        ));
    }

    #[test]
    fn forged_and_downgraded_tokens_are_refused() {
        let s = signer("k1");
        let other = signer("k1");
        let now = 1_800_000_000;
        // Signed by another key under the same key id.
        let t = token(&other, header("k1"), good_claims(now));
        assert!(matches!(
            verify(&t, std::slice::from_ref(&s.key), &expect(now)),
            Err(Refused::BadToken(_))
        ));
        // Claims changed after signing.
        let t = token(&s, header("k1"), good_claims(now));
        let mut parts: Vec<&str> = t.split('.').collect();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut c = good_claims(now);
        c["preferred_username"] = "tess.teacher@school.org".into();
        let forged = b64.encode(c.to_string());
        parts[1] = &forged;
        let t = parts.join(".");
        assert!(matches!(
            verify(&t, std::slice::from_ref(&s.key), &expect(now)),
            Err(Refused::BadToken(_))
        ));
        // `alg: none` and HMAC are never accepted.
        for alg in ["none", "HS256", "RS512", ""] {
            let h = serde_json::json!({"alg": alg, "kid": "k1"});
            let unsigned = format!(
                "{}.{}.",
                b64.encode(h.to_string()),
                b64.encode(good_claims(now).to_string())
            );
            assert!(
                matches!(
                    verify(&unsigned, std::slice::from_ref(&s.key), &expect(now)),
                    Err(Refused::BadToken(_))
                ),
                "{alg}"
            );
        }
        // An unknown key id.
        let t = token(&s, header("k9"), good_claims(now));
        assert!(matches!(
            verify(&t, std::slice::from_ref(&s.key), &expect(now)),
            Err(Refused::BadToken(UNKNOWN_KEY))
        ));
        // Not a JWT at all.
        for junk in ["", "a.b", "a.b.c.d", "....", "e30.e30.e30"] {
            assert!(
                verify(junk, std::slice::from_ref(&s.key), &expect(now)).is_err(),
                "{junk}"
            );
        }
    }

    #[test]
    fn keys_are_read_from_a_jwk_set() {
        let s = signer("k1");
        let Material::P256(point) = &s.key.material else {
            panic!()
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let doc = serde_json::json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
             "x": b64.encode(&point[1..33]), "y": b64.encode(&point[33..])},
            {"kty": "EC", "crv": "P-384", "kid": "k2", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "oct", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "r1", "n": "AQAB", "e": "AQAB"}
        ]});
        let keys = parse_keys(&doc);
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], s.key);
        assert_eq!(keys[1].kid.as_deref(), Some("r1"));
    }

    #[test]
    fn next_urls_and_hosts() {
        assert_eq!(
            safe_next("http://www.bbc.co.uk/news"),
            "http://www.bbc.co.uk/news"
        );
        assert_eq!(safe_next("javascript:alert(1)"), "/");
        assert_eq!(safe_next("//evil.example/"), "/");
        assert_eq!(safe_next("/local"), "/");
        assert_eq!(
            host_and_port("https://login.example:8443/x"),
            Some(("login.example", 8443))
        );
        assert_eq!(host_and_port("http://[::1]/"), Some(("::1", 80)));
        assert_eq!(
            host_and_port("https://login.example"),
            Some(("login.example", 443))
        );
        assert_eq!(host_and_port("ftp://x/"), None);
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }

    fn signin(roles: Vec<super::super::settings::ClaimRole>) -> SignIn {
        let settings: OidcSettings = toml::from_str(&format!(
            "issuer = {ISSUER:?}\nclient_id = \"gatehouse\"\nclient_secret_file = \"s\"\n\
             portal_host = \"signin.school.org\"\ndomains = [\"school.org\"]\n\
             allow_before_signin = [\"msauth.net\"]"
        ))
        .unwrap();
        SignIn::new(
            OidcSettings { roles, ..settings },
            "secret".to_owned(),
            None,
        )
    }

    #[test]
    fn roles_come_from_groups_or_domain_and_the_people_table_wins() {
        use super::super::settings::ClaimRole;
        let role = |group: Option<&str>, domain: Option<&str>, role: &str| ClaimRole {
            group: group.map(str::to_owned),
            domain: domain.map(str::to_owned),
            role: role.to_owned(),
            site: Some("north".to_owned()),
        };
        let s = signin(vec![
            role(Some("g-staff"), None, "staff"),
            role(None, Some("school.org"), "pupil"),
        ]);
        let claims = |v: serde_json::Value| v.as_object().unwrap().clone();
        let nobody = |_: &str| super::super::Named::default();
        let who = s
            .person(
                &claims(serde_json::json!({"preferred_username": "Tess@School.org", "groups": ["g-staff"]})),
                nobody,
            )
            .unwrap();
        assert_eq!((who.account.as_str(), who.role.as_str()), ("tess", "staff"));
        let who = s
            .person(
                &claims(serde_json::json!({"preferred_username": "amy@school.org"})),
                nobody,
            )
            .unwrap();
        assert_eq!(who.role, "pupil");
        assert_eq!(who.site.as_deref(), Some("north"));
        // Another domain: no role, refused (no default).
        assert!(matches!(
            s.person(
                &claims(serde_json::json!({"preferred_username": "x@gmail.com"})),
                nobody
            ),
            Err(Refused::NoRole(_))
        ));
        // No account claim.
        assert!(matches!(
            s.person(
                &claims(serde_json::json!({"email": "amy@school.org"})),
                nobody
            ),
            Err(Refused::NoAccount(_))
        ));
        // The people table names and roles the person, and a leaver is refused.
        let mis = |a: &str| super::super::Named {
            display: (a == "amy").then(|| "Amy Pupil, Year 9, 9B".to_owned()),
            role: (a == "amy").then(|| "pupil".to_owned()),
            left: a == "ben",
        };
        let who = s
            .person(
                &claims(serde_json::json!({"preferred_username": "amy@school.org", "groups": ["g-staff"]})),
                mis,
            )
            .unwrap();
        assert_eq!(who.role, "pupil");
        assert_eq!(who.person.as_deref(), Some("Amy Pupil, Year 9, 9B"));
        assert!(matches!(
            s.person(
                &claims(serde_json::json!({"preferred_username": "ben@school.org"})),
                mis
            ),
            Err(Refused::Left(_))
        ));
    }

    #[test]
    fn settings_refuse_a_plain_issuer_off_this_machine_and_hosts_that_are_not_names() {
        let check = |issuer: &str, allow: &str| {
            let table: toml::Table = toml::from_str(&format!(
                "[oidc]\nissuer = {issuer:?}\nclient_id = \"g\"\nclient_secret_file = \"s\"\n\
                 portal_host = \"signin.school.org\"\nallow_before_signin = [{allow}]\n"
            ))
            .unwrap();
            super::super::settings::IdentitySettings::from_table(Some(&table))
                .map(|_| ())
                .map_err(|e| format!("{e:#}"))
        };
        assert!(check("https://login.example/tenant/v2.0", "").is_ok());
        assert!(check("http://127.0.0.1:9000", "").is_ok());
        assert!(check("http://[::1]:9000", "").is_ok());
        for bad in [
            "http://127.attacker.example",
            "http://127.0.0.1.nip.io/",
            "http://login.example",
            "ftp://login.example",
            "https://",
        ] {
            assert!(check(bad, "").is_err(), "{bad}");
        }
        for bad in [
            "\"\"",
            "\".\"",
            "\"net\"",
            "\"AADCDN.msauth.net\"",
            "\"10.0.0.1\"",
        ] {
            let said = check("https://login.example", bad).unwrap_err();
            assert!(said.contains("allow_before_signin[0]"), "{bad}: {said}");
        }
    }

    #[test]
    fn hosts_reachable_before_signing_in() {
        let s = signin(Vec::new());
        assert!(s.before_signin("login.example", 443));
        assert!(!s.before_signin("login.example", 8080));
        assert!(s.before_signin("aadcdn.msauth.net", 443));
        assert!(!s.before_signin("aadcdn.msauth.net", 22));
        assert!(s.before_signin("msauth.net", 80));
        assert!(!s.before_signin("evilmsauth.net", 443));
        assert!(!s.before_signin("www.bbc.co.uk", 443));
    }

    #[test]
    fn devices_sign_out_and_expire() {
        let s = signin(Vec::new());
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let who = SignedIn {
            account: "amy".to_owned(),
            person: None,
            role: "pupil".to_owned(),
            site: None,
        };
        s.bind(ip, &who).unwrap();
        assert_eq!(s.device(ip).unwrap().account, "amy");
        assert!(s.device("10.0.0.6".parse().unwrap()).is_none());
        assert_eq!(s.devices().len(), 1);
        assert!(s.sign_out(ip));
        assert!(s.device(ip).is_none());
    }

    #[tokio::test]
    async fn a_callback_needs_a_state_this_filter_issued_from_the_same_device() {
        let s = signin(Vec::new());
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        s.pending.insert(
            "st".to_owned(),
            Pending {
                verifier: "v".to_owned(),
                nonce: "n".to_owned(),
                holder: Holder::Device(ip),
                redirect_uri: "https://signin.school.org/signin/callback".to_owned(),
                next: "/".to_owned(),
                created: Instant::now(),
            },
        );
        let client = test_client();
        let nobody = |_: &str| super::super::Named::default();
        let q = |state: &str| {
            vec![
                ("state".to_owned(), state.to_owned()),
                ("code".to_owned(), "c".to_owned()),
            ]
        };
        // A state never issued.
        assert!(matches!(
            s.finish(ip, &q("forged"), &client, nobody).await,
            Err(Refused::BadState)
        ));
        // The right state from another device: refused, and used up.
        let other: IpAddr = "10.0.0.9".parse().unwrap();
        assert!(matches!(
            s.finish(other, &q("st"), &client, nobody).await,
            Err(Refused::OtherDevice(_))
        ));
        assert!(matches!(
            s.finish(ip, &q("st"), &client, nobody).await,
            Err(Refused::BadState)
        ));
    }

    fn test_client() -> crate::handler::Client {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let upstream = crate::upstream::Upstream::new(crate::upstream::Setup {
            pins: Default::default(),
            rules: crate::upstream::AddressRules {
                allow_loopback: false,
                internal_allow: Vec::new(),
            },
            http_ports: crate::upstream::Ports(vec![(443, 443)]),
            tunnel_ports: crate::upstream::Ports(vec![(443, 443)]),
            connect_timeout: Duration::from_secs(1),
        });
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(upstream);
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector)
    }
}
