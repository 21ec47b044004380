//! The request path. For every request, top to bottom ([`serve`]):
//!
//! 1. **where**: inside a CONNECT tunnel the request goes to the tunnel's host, whatever its
//!    own line says; a request to the proxy itself gets the PAC file or a short refusal;
//! 2. **who**: the tunnel's identity, else the proxy login (on networks that require one),
//!    else the client network's role;
//! 3. **decide**: `rules::evaluate` on the host (CONNECT) or the full URL;
//! 4. **enforce**: a block page (inside the TLS session when decrypting), or the request
//!    forwarded through the one upstream connector with SafeSearch applied and the
//!    client's hop-by-hop and proxy headers removed ([`forward`]); a CONNECT continues in
//!    [`connect`];
//! 5. **record**: one event per request (and per CONNECT), its alert made durable before
//!    the response leaves ([`record`]).

mod connect;
mod forward;
mod headers;
mod identify;
mod record;
mod signin;

use crate::body::{self, Body};
use crate::metrics;
use crate::pages;
use crate::settings::ProxySettings;
use crate::upstream::{Road, Upstream};
use crate::warn;
use gatehouse_rules::{Facts, Live, Snapshot, Target, Verdict};
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode, Uri};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

pub use identify::{Identity, Logins};

/// The HTTP client every forwarded request and WebSocket goes through.
pub type Client = hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<Upstream>, Body>;

/// What every connection shares.
#[derive(Debug)]
pub struct Shared {
    pub live: Arc<Live>,
    pub settings: ProxySettings,
    pub events: crate::events::EventSink,
    pub logins: identify::Logins,
    /// The admin page's database, where review requests from block pages go.
    pub admin_db: Arc<std::sync::Mutex<gatehouse_dashboard::Db>>,
    pub tokens: crate::warn::ContinueTokens,
    pub safeguarding: Arc<crate::safeguard::Pipeline>,
    /// The one road out.
    pub upstream: Upstream,
    pub client: Client,
    pub leaves: crate::certs::Leaves,
}

/// A CONNECT tunnel the filter admitted and decrypts: every request inside it goes to its
/// host with its identity.
#[derive(Debug)]
pub struct Tunnel {
    pub who: Identity,
    /// `host:port` as the client asked for it.
    pub authority: hyper::http::uri::Authority,
    /// `https` for an intercepted TLS session, `http` for plain HTTP sent through CONNECT.
    pub scheme: &'static str,
}

/// One client connection, or one tunnel inside it.
#[derive(Debug)]
pub struct Conn {
    pub shared: Arc<Shared>,
    pub client: SocketAddr,
    pub tunnel: Option<Tunnel>,
    /// The client connection's place in the connection limits. Every task that outlives the
    /// HTTP exchange (a tunnel, an intercepted session, a WebSocket) holds a clone, so an
    /// upgraded connection still counts until it closes.
    pub slot: Arc<crate::limits::Open>,
    /// Who a `Negotiate` login proved on this connection (it authenticates the connection):
    /// replaced by the next login on it, cleared by a failed one.
    pub negotiated: std::sync::Mutex<Option<Identity>>,
}

impl Conn {
    pub fn new(shared: Arc<Shared>, client: SocketAddr, slot: crate::limits::Open) -> Conn {
        Conn {
            shared,
            client,
            tunnel: None,
            slot: Arc::new(slot),
            negotiated: std::sync::Mutex::new(None),
        }
    }

    /// The same client, inside `tunnel`.
    pub fn inside(&self, tunnel: Tunnel) -> Conn {
        Conn {
            shared: Arc::clone(&self.shared),
            client: self.client,
            tunnel: Some(tunnel),
            slot: Arc::clone(&self.slot),
            negotiated: std::sync::Mutex::new(None),
        }
    }

    fn client_ip(&self) -> IpAddr {
        self.client.ip().to_canonical()
    }

    fn decrypted(&self) -> bool {
        self.tunnel.as_ref().is_some_and(|t| t.scheme == "https")
    }
}

const INTERNAL: &str = "That address is inside the school network or the filter itself.";

/// One request, from the client's bytes to the response it gets. Boxed: a tunnel's
/// requests are served from inside a CONNECT's, so the future is recursive.
pub fn serve(
    conn: Arc<Conn>,
    req: Request<Incoming>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>> {
    Box::pin(serve_request(conn, req))
}

async fn serve_request(conn: Arc<Conn>, req: Request<Incoming>) -> Response<Body> {
    let req = req.map(body::streamed);
    let snap = conn.shared.live.load();
    let req = match &conn.tunnel {
        Some(tunnel) => match aim_at_tunnel(tunnel, req) {
            Ok(req) => req,
            Err(refusal) => return refusal,
        },
        None if req.method() != Method::CONNECT && req.uri().authority().is_none() => {
            return own_page(&conn, &snap, &req);
        }
        None => req,
    };
    // The sign-in page is the filter's own, whoever asks.
    if let Some(page) = conn.shared.logins.sources.signin.as_ref() {
        let host = req.uri().host().map(str::to_ascii_lowercase);
        if req.method() != Method::CONNECT && host.is_some_and(|h| page.is_portal(&h)) {
            return signin::serve(&conn, page, req).await;
        }
    }
    let who = match identify::identify(&conn, &snap, &req).await {
        Ok(who) => who,
        Err(refusal) => return refusal,
    };
    if req.method() == Method::POST
        && req.uri().path() == pages::REVIEW_PATH
        && who.how != crate::identity::How::NotSignedIn
    {
        return review(&conn, who, req).await;
    }
    if req.method() == Method::CONNECT {
        return connect::open(conn, &snap, who, req).await;
    }
    request(&conn, &snap, who, req).await
}

/// Inside a tunnel, every request goes to the tunnel's host: the scheme and authority of
/// its request line are replaced (and the `Host` header is rewritten when forwarded).
#[expect(
    clippy::result_large_err,
    reason = "once per request; either way a whole request or response moves on"
)]
fn aim_at_tunnel(tunnel: &Tunnel, req: Request<Body>) -> Result<Request<Body>, Response<Body>> {
    if req.method() == Method::CONNECT {
        return Err(refuse(
            "bad-request",
            StatusCode::BAD_REQUEST,
            "A tunnel cannot be opened inside a tunnel.",
        ));
    }
    let (mut parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let uri = Uri::builder()
        .scheme(tunnel.scheme)
        .authority(tunnel.authority.clone())
        .path_and_query(path)
        .build();
    match uri {
        Ok(uri) => parts.uri = uri,
        Err(_) => {
            return Err(refuse(
                "bad-request",
                StatusCode::BAD_REQUEST,
                "The request's path is not valid.",
            ))
        }
    }
    Ok(Request::from_parts(parts, body))
}

/// A plain request (HTTP, or HTTPS inside a decrypted tunnel): decide, then block or
/// forward.
async fn request(
    conn: &Conn,
    snap: &Arc<Snapshot>,
    who: Identity,
    mut req: Request<Body>,
) -> Response<Body> {
    let started = Instant::now();
    let full_url = req.uri().to_string();
    let (url, token) = warn::take_token(&full_url);
    let Some(host) = req.uri().host().map(str::to_ascii_lowercase) else {
        return refuse(
            "bad-request",
            StatusCode::BAD_REQUEST,
            "This proxy needs absolute URLs (http://host/path).",
        );
    };
    let https = req.uri().scheme_str() == Some("https");
    let port = req.uri().port_u16().unwrap_or(if https { 443 } else { 80 });
    let Some(role_id) = snap.role_id(&who.role) else {
        return refuse(
            "role",
            StatusCode::FORBIDDEN,
            "Your role is not in the current policy.",
        );
    };
    let now = chrono::Utc::now();
    let method = req.method().clone();
    let facts = Facts {
        role: role_id,
        user: who.user.as_deref(),
        client: Some(conn.client_ip()),
        at: now,
        method: method.as_str(),
        target: Target::Url(&url),
    };
    let mut decision = record::decide(snap, &facts);
    // A warning the person chose to continue past, with a valid link: allowed, logged.
    let tokens = &conn.shared.tokens;
    let continued = decision.verdict == Verdict::Warn
        && token.is_some_and(|t| tokens.check(&who.role, &url, t, now.timestamp()));
    if continued {
        decision.verdict = Verdict::Allow;
        decision.sensitive = true;
    }
    let mut event = record::event(conn, &who, snap, &facts, &decision, &url, &host);
    if continued {
        event.rule.push_str("+continued");
        event.reason.push_str(" Continued past the warning.");
    }
    if let Some(page) = signin::required(conn, &who, &host, port, &url, req.method()) {
        record::refused(
            &mut event,
            "signin",
            "Not signed in: sent to the sign-in page.".to_owned(),
        );
        record::finish(conn, event, page.status().as_u16(), None, started).await;
        return page;
    }
    // An address or port the filter never reaches: refused and logged (probing the
    // school's network through the filter leaves a trace), before any rule's page.
    if let Err(e) = conn.shared.upstream.precheck(&host, port, Road::Http) {
        let page = forward::refused_upstream(&e);
        record::refused(&mut event, "upstream", format!("Refused: {e}."));
        record::finish(conn, event, page.status().as_u16(), None, started).await;
        return page;
    }
    if decision.verdict != Verdict::Allow {
        let link = (decision.verdict == Verdict::Warn)
            .then(|| warn::with_token(&url, &tokens.issue(&who.role, &url, now.timestamp())));
        let id = event.request_id.clone();
        let page = pages::block_page(snap, &facts, &decision, &url, link.as_deref(), &id);
        record::finish(conn, event, 403, None, started).await;
        return page;
    }
    if token.is_some() {
        if let Ok(uri) = url.parse() {
            *req.uri_mut() = uri;
        }
    }
    if snap.role(role_id).is_some_and(|r| r.safesearch) {
        crate::safesearch::enforce(&mut req);
    }
    // Signing in to Microsoft and Google limited to the school's own accounts: the headers
    // both read from a school's filter, replacing any the client sent.
    if snap.role(role_id).is_some_and(|r| r.school_accounts_only) {
        for (name, value) in snap.school_accounts().headers(&host) {
            let name = hyper::header::HeaderName::from_bytes(name.as_bytes());
            if let (Ok(name), Ok(value)) = (name, hyper::header::HeaderValue::from_str(value)) {
                req.headers_mut().insert(name, value);
            }
        }
    }
    // What the person sends (a form, a post, a prompt to an AI chat) is read before it goes.
    let settings = &conn.shared.settings;
    let ai = snap.ai_services();
    let ai_chat = ai
        .lookup(&host)
        .is_some_and(|id| ai.is_chat(id, req.uri().path()));
    let limit = if ai_chat && settings.scan_request_kib > 0 {
        settings.scan_ai_request_kib.max(settings.scan_request_kib)
    } else {
        settings.scan_request_kib
    }
    .saturating_mul(1024);
    let wait = std::time::Duration::from_secs(settings.header_timeout_secs);
    let req = match crate::content::sent::read(snap, req, limit, wait).await {
        crate::content::sent::Read::BadBody => {
            let page = refuse(
                "client-body",
                StatusCode::BAD_REQUEST,
                "The request's body was cut off or came too slowly, so it was not sent on.",
            );
            record::refused(
                &mut event,
                "client-body",
                "Refused: the request's body failed.".to_owned(),
            );
            record::finish(conn, event, page.status().as_u16(), None, started).await;
            return page;
        }
        crate::content::sent::Read::On(req, finding) => {
            let finding = finding.filter(|f| !f.hit.is_empty());
            if let Some(f) = &finding {
                let verdict = gatehouse_rules::content::verdict(snap, role_id, f);
                if verdict.action == gatehouse_rules::Action::Block {
                    use crate::content::Source;
                    crate::content::annotate(&mut event, snap, role_id, f, "", Source::SentBlocked);
                    event.verdict = "block".to_owned();
                    let decision = sent_decision(&decision, f, &verdict);
                    let id = event.request_id.clone();
                    let page = pages::block_page(snap, &facts, &decision, &url, None, &id);
                    record::finish(conn, event, 403, None, started).await;
                    return page;
                }
                crate::content::annotate(
                    &mut event,
                    snap,
                    role_id,
                    f,
                    "",
                    crate::content::Source::Sent,
                );
            }
            req
        }
    };
    let read_text = Some((Arc::clone(snap), role_id));
    forward::send(conn, req, event, started, read_text).await
}

/// The decision shown on the block page for text a person sent that the role blocks.
fn sent_decision(
    request: &gatehouse_rules::Decision,
    finding: &gatehouse_rules::content::ContentFinding,
    verdict: &gatehouse_rules::content::ContentVerdict,
) -> gatehouse_rules::Decision {
    let mut d = request.clone();
    d.verdict = Verdict::Block;
    d.sensitive = true;
    d.alert = verdict.alert;
    d.themes = finding.fired;
    d.lowered = gatehouse_rules::search::ThemeSet::default();
    d.search = None;
    d.terms = finding.terms.clone();
    d.learned = gatehouse_rules::search::ThemeSet::default();
    d.slips = Vec::new();
    d.context = Vec::new();
    if let Some(theme) = verdict.theme {
        d.rule = gatehouse_rules::Rule::Theme { theme };
    }
    d
}

/// A review request sent from a block page: recorded for IT with who asked (known from
/// the connection, not from the form), and answered with a page that says so.
async fn review(conn: &Conn, who: Identity, req: Request<Body>) -> Response<Body> {
    use http_body_util::BodyExt as _;
    let body = match http_body_util::Limited::new(req.into_body(), 8 * 1024)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return pages::refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The review request was too long; keep the reason short.",
            )
        }
    };
    let form = pages::form_fields(&body);
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let review = gatehouse_dashboard::reviews::NewReview {
        user: who.user,
        client_ip: conn.client_ip().to_string(),
        role: who.role,
        url: field("url"),
        reason: field("reason"),
        request_id: field("request_id"),
    };
    let db = Arc::clone(&conn.shared.admin_db);
    let result = tokio::task::spawn_blocking(move || {
        let db = db.lock().map_err(|_| "admin database lock".to_owned())?;
        gatehouse_dashboard::reviews::submit(&db, &review).map_err(|e| e.to_string())
    })
    .await;
    use gatehouse_dashboard::reviews::Refused;
    let unavailable = || {
        pages::refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "The review request could not be recorded; please ask the IT team directly.",
        )
    };
    match result {
        Ok(Ok(Ok(_))) => pages::review_sent(),
        Ok(Ok(Err(Refused::Empty))) => pages::refusal(
            StatusCode::BAD_REQUEST,
            "Please say why you need the page, then send the request again.",
        ),
        Ok(Ok(Err(Refused::BadUrl))) => pages::refusal(
            StatusCode::BAD_REQUEST,
            "The page address in the request is not valid.",
        ),
        Ok(Ok(Err(Refused::TooMany))) => pages::refusal(
            StatusCode::TOO_MANY_REQUESTS,
            "You already have many review requests waiting; the IT team will look at them.",
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "review request not recorded");
            unavailable()
        }
        Err(_) => unavailable(),
    }
}

/// A request to the proxy itself (origin-form): only the PAC file lives here.
fn own_page(conn: &Conn, snap: &Snapshot, req: &Request<Body>) -> Response<Body> {
    if snap.network_of(conn.client_ip()).is_none() {
        return refuse(
            "network",
            StatusCode::FORBIDDEN,
            "This filter does not serve your network.",
        );
    }
    match req.uri().path() {
        "/proxy.pac" | "/wpad.dat" => {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
                .unwrap_or_else(|| conn.shared.settings.listen.to_string());
            pages::pac_file(&host)
        }
        _ => refuse(
            "bad-request",
            StatusCode::BAD_REQUEST,
            "This is the school's web filter. Set it as your proxy, or use /proxy.pac.",
        ),
    }
}

/// A refusal before any rule runs, counted by reason.
fn refuse(reason: &'static str, status: StatusCode, message: &str) -> Response<Body> {
    metrics::get().refused.with_label_values(&[reason]).inc();
    pages::refusal(status, message)
}
