//! The routes, the state they share, and the checks every handler starts with: who is signed
//! in, whether their role may do this, and (for every `POST`) the CSRF token and origin.

use crate::accounts::Role;
use crate::html::{problem, CSS};
use crate::session::{cookie, Session, Sessions};
use crate::vouchers::Vouchers;
use crate::{views, Db};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use gatehouse_rules::control::PolicyControl;
use gatehouse_safeguarding::config::StoreSettings;
use gatehouse_safeguarding::store::Store;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Lines for the overview's health card: `(what, value)`.
pub type Health = Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>;

/// A person in the people table, as the People page lists them.
#[derive(Clone, Debug)]
pub struct PersonRow {
    pub account: String,
    /// "Amy Pupil, Year 9, 9B".
    pub display: String,
    pub role: String,
    pub left: bool,
}

/// A device the network names now.
#[derive(Clone, Debug)]
pub struct DeviceRow {
    pub address: String,
    pub account: String,
    pub person: Option<String>,
    pub device: Option<String>,
    /// How the device was named: `radius` (the Wi-Fi's accounting), `signin` (the page).
    pub how: &'static str,
    pub since: String,
}

/// What the proxy knows of people, for the People page.
pub trait PeopleView: Send + Sync {
    /// People whose name or account holds `query`, at most `limit`.
    fn find(&self, query: &str, limit: usize) -> Vec<PersonRow>;
    /// Devices named now.
    fn devices(&self) -> Vec<DeviceRow>;
}

/// Why the school's directory did not sign an admin in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectoryRefusal {
    /// No such person, or the wrong password.
    Wrong,
    /// The password is right, but no group of `[admin] directory_roles` has them.
    NoRole,
    /// The directory could not be asked.
    Unreachable,
}

/// What a directory sign-in comes to: the account and its admin role, or why not.
pub type DirectoryAnswer = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<(String, Role), DirectoryRefusal>> + Send>,
>;

/// Admin sign-in through the school's directory (LDAP / Active Directory): the account and
/// the admin role its groups give.
pub trait DirectorySignIn: Send + Sync {
    fn sign_in(&self, name: String, password: String) -> DirectoryAnswer;
}

/// What the provider's sign-in comes to, or what to tell the person.
pub type ProviderAnswer<T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, String>> + Send>>;

/// Admin sign-in with a school account at the school's OpenID provider (Entra ID, Google).
pub trait ProviderSignIn: Send + Sync {
    /// Where to send the browser that holds `cookie`.
    fn start(&self, cookie: String) -> ProviderAnswer<String>;
    /// The account and admin role the provider's answer (the callback's query) proves for
    /// the browser that holds `cookie`.
    fn finish(
        &self,
        cookie: String,
        query: Vec<(String, String)>,
    ) -> ProviderAnswer<(String, Role)>;
}

/// What the running proxy hands the admin page.
pub struct AdminParts {
    pub db: Arc<Mutex<Db>>,
    pub policy: Arc<PolicyControl>,
    pub vouchers: Arc<Vouchers>,
    /// The event store's settings and data folder; `None` when events are not stored.
    pub store: Option<(StoreSettings, PathBuf)>,
    /// The alert outbox (`outbox.db`).
    pub outbox: PathBuf,
    /// The CA certificate devices install (PEM).
    pub ca_pem: String,
    /// The proxy as devices reach it, `host:port`.
    pub proxy_address: String,
    /// The admin port is TLS (cookies get `Secure`).
    pub secure: bool,
    pub health: Health,
    pub people: Arc<dyn PeopleView>,
    /// Sign-in through the directory, when `[admin] directory_roles` names groups.
    pub directory: Option<Arc<dyn DirectorySignIn>>,
    /// Local accounts must have a second factor (TOTP) to sign in.
    pub require_totp: bool,
    /// Sign-in with a school account, when `[admin] sso_roles` names groups.
    pub provider: Option<Arc<dyn ProviderSignIn>>,
}

impl std::fmt::Debug for AdminParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminParts")
            .field("outbox", &self.outbox)
            .field("proxy_address", &self.proxy_address)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

/// The admin page's shared state.
pub struct Admin {
    pub(crate) parts: AdminParts,
    pub(crate) sessions: Sessions,
    store: Mutex<Option<Store>>,
    /// Verified when an account does not exist, so both failures take as long.
    pub(crate) decoy: String,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

/// What a handler needs of the signed-in person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    Anyone,
    It,
    Dsl,
    ItOrDsl,
}

impl Need {
    fn allows(self, role: Role) -> bool {
        match self {
            Need::Anyone => true,
            Need::It => role == Role::It,
            Need::Dsl => role == Role::Dsl,
            Need::ItOrDsl => matches!(role, Role::It | Role::Dsl),
        }
    }
    fn words(self) -> &'static str {
        match self {
            Need::Anyone => "an account",
            Need::It => "an IT account",
            Need::Dsl => "a DSL account",
            Need::ItOrDsl => "an IT or DSL account",
        }
    }
}

/// The fields of a submitted form, in order.
#[derive(Debug, Default)]
pub(crate) struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// A field that must be there and not blank; the error page names it.
    pub fn need(&self, name: &str, back: &str) -> Result<&str, Response> {
        match self.get(name).map(str::trim) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(problem(
                StatusCode::BAD_REQUEST,
                &format!("The form is missing \u{201c}{name}\u{201d}. Nothing was changed."),
                back,
            )),
        }
    }
}

impl Admin {
    pub fn new(parts: AdminParts) -> Arc<Admin> {
        Arc::new(Admin {
            sessions: Sessions::new(parts.secure),
            parts,
            store: Mutex::new(None),
            decoy: crate::accounts::decoy_hash(),
        })
    }

    pub fn vouchers(&self) -> &Arc<Vouchers> {
        &self.parts.vouchers
    }

    pub(crate) fn timezone(&self) -> chrono_tz::Tz {
        self.parts.policy.live().load().timezone()
    }

    /// The session a request's cookie names, if its account may still sign in with the
    /// same role (an account disabled, removed or changed from the command line ends its
    /// sessions here, at their next request).
    fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let token = cookie(headers, self.sessions.cookie_name())?;
        let s = self.sessions.get(token)?;
        if s.directory {
            // The directory proved it at sign-in; a same-named local account that is
            // disabled still ends it.
            let disabled = self.parts.db.lock().ok().is_some_and(|db| {
                crate::accounts::list(&db).is_ok_and(|all| {
                    all.iter()
                        .any(|a| a.name.eq_ignore_ascii_case(&s.name) && a.disabled)
                })
            });
            if disabled {
                self.sessions.end(token);
                return None;
            }
            return Some(s);
        }
        let current = self
            .parts
            .db
            .lock()
            .ok()
            .and_then(|db| crate::accounts::lookup(&db, &s.name).ok().flatten());
        if current.is_some_and(|(_, role)| role == s.role) {
            Some(s)
        } else {
            self.sessions.end(token);
            None
        }
    }

    /// The signed-in person, if their role may do what `need` says. Otherwise the response
    /// to send: the sign-in page for a `GET` without a session, `403` for the wrong role.
    pub(crate) fn who(
        &self,
        headers: &HeaderMap,
        need: Need,
        path: &str,
    ) -> Result<Session, Response> {
        let session = self.session(headers);
        let Some(s) = session else {
            return Err(
                Redirect::to(&format!("/login?next={}", crate::html::url_value(path)))
                    .into_response(),
            );
        };
        if !need.allows(s.role) {
            return Err(problem(
                StatusCode::FORBIDDEN,
                &format!(
                    "This needs {}; you are signed in as {} ({}).",
                    need.words(),
                    s.name,
                    s.role.title()
                ),
                "/",
            ));
        }
        Ok(s)
    }

    /// As [`Admin::who`] for a form post: also checks the CSRF token and the `Origin`.
    pub(crate) fn who_posting(
        &self,
        headers: &HeaderMap,
        fields: &Fields,
        need: Need,
        back: &str,
    ) -> Result<Session, Response> {
        let session = self.session(headers);
        let Some(s) = session else {
            return Err(problem(
                StatusCode::UNAUTHORIZED,
                "Your session has ended. Sign in again; nothing was changed.",
                "/login",
            ));
        };
        if !same_origin(headers) || !crate::session::same(fields.get("csrf").unwrap_or(""), &s.csrf)
        {
            return Err(problem(
                StatusCode::FORBIDDEN,
                "This form did not come from this admin page (its security token is missing or stale). Nothing was changed.",
                back,
            ));
        }
        if !need.allows(s.role) {
            return Err(problem(
                StatusCode::FORBIDDEN,
                &format!(
                    "This needs {}; you are signed in as {} ({}). Nothing was changed.",
                    need.words(),
                    s.name,
                    s.role.title()
                ),
                back,
            ));
        }
        Ok(s)
    }

    /// Runs `f` with `admin.db` on a blocking thread.
    pub(crate) async fn with_db<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Db) -> Result<T, crate::Error> + Send + 'static,
    ) -> Result<T, Response> {
        let db = Arc::clone(&self.parts.db);
        blocking(move || {
            let db = db
                .lock()
                .map_err(|_| crate::Error::Invalid("admin database lock".into()))?;
            f(&db)
        })
        .await
    }

    /// Runs `f` with the event store on a blocking thread (opened on first use).
    pub(crate) async fn with_store<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Store) -> Result<T, gatehouse_safeguarding::Error> + Send + 'static,
    ) -> Result<T, Response> {
        let Some((settings, dir)) = self.parts.store.clone() else {
            return Err(problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Events are not stored ([store] backend = \"none\"), so there is nothing to search.",
                "/",
            ));
        };
        let me = Arc::clone(self);
        blocking(move || {
            let mut slot = me
                .store
                .lock()
                .map_err(|_| crate::Error::Invalid("event store lock".into()))?;
            if slot.is_none() {
                *slot = Some(Store::open(&settings, &dir)?);
            }
            let Some(store) = slot.as_mut() else {
                return Err(crate::Error::Invalid("event store".into()));
            };
            let result = f(store);
            if result.is_err() {
                *slot = None;
            }
            Ok(result?)
        })
        .await
    }

    /// Runs `f` with the alert outbox on a blocking thread.
    pub(crate) async fn with_outbox<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(
                &mut gatehouse_safeguarding::outbox::Outbox,
            ) -> Result<T, gatehouse_safeguarding::Error>
            + Send
            + 'static,
    ) -> Result<T, Response> {
        let path = self.parts.outbox.clone();
        blocking(move || {
            let mut outbox = gatehouse_safeguarding::outbox::Outbox::open(&path)?;
            Ok(f(&mut outbox)?)
        })
        .await
    }
}

/// Runs blocking work off the async workers; an error becomes a `500` page that says what.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::Error> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            &e.to_string(),
            "/",
        )),
        Err(e) => Err(problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            &e.to_string(),
            "/",
        )),
    }
}

/// A `POST` with an `Origin` (every current browser sends one) must come from this page.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

/// Security headers on every response: no framing, no sniffing, nothing loaded from
/// elsewhere, nothing cached.
async fn harden(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// Every route of the admin page.
pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/login", get(views::login::form).post(views::login::submit))
        .route("/logout", post(views::login::logout))
        .route("/login/sso", get(views::login::sso_start))
        .route("/login/sso/callback", get(views::login::sso_callback))
        .route("/", get(views::overview::page))
        .route("/alerts", get(views::alerts::inbox))
        .route(
            "/alerts/{id}",
            get(views::alerts::detail).post(views::alerts::triage),
        )
        .route("/logs", get(views::logs::search))
        .route("/logs.csv", get(views::logs::csv))
        .route("/timeline", get(views::logs::timeline))
        .route("/policy", get(views::policy::page))
        .route("/policy/grid", post(views::policy::save_grid))
        .route(
            "/policy/category-alert",
            post(views::policy::category_alert),
        )
        .route("/policy/themes", post(views::policy::save_themes))
        .route("/policy/role", post(views::policy::role))
        .route("/policy/content", post(views::policy::content_settings))
        .route("/policy/local", post(views::policy::local))
        .route("/policy/no-decrypt", post(views::policy::no_decrypt))
        .route("/policy/time-band", post(views::policy::time_band))
        .route("/explain", get(views::explain::page))
        .route("/reviews", get(views::reviews::queue))
        .route("/reviews/{id}", post(views::reviews::decide))
        .route(
            "/guests",
            get(views::guests::page).post(views::guests::create),
        )
        .route("/guests/{name}/revoke", post(views::guests::revoke))
        .route("/audit", get(views::audit::page))
        .route("/people", get(views::people::page))
        .route("/accounts", get(views::accounts::page))
        .route("/accounts/{name}/{action}", post(views::accounts::act))
        .route("/setup", get(views::setup::page))
        .route("/setup/ca.pem", get(views::setup::ca))
        .route("/setup/proxy.pac", get(views::setup::pac))
        .route("/static/app.css", get(stylesheet))
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "There is no such page.", "/") })
        .layer(axum::middleware::from_fn(harden))
        .layer(axum::extract::DefaultBodyLimit::max(256 * 1024))
        .with_state(admin)
}
