//! The request path. For every request, top to bottom:
//!
//! 1. **who**: the client's network gives the role (inside a CONNECT tunnel, the identity
//!    found at CONNECT time); a client from no configured network is refused;
//! 2. **where**: CONNECT only to allowed ports; no loopback, link-local or metadata origins
//!    (unless the lab switch allows loopback);
//! 3. **decide**: `rules::evaluate` on the host (CONNECT) or the full URL (plain HTTP and
//!    decrypted HTTPS);
//! 4. **enforce**: a block page (inside the TLS session when decrypting), a `403` on a CONNECT
//!    that is not decrypted, or the request forwarded with SafeSearch applied and the proxy's
//!    own headers removed.

use crate::events::{Event, EventSink};
use crate::metrics;
use crate::pages;
use crate::safesearch;
use crate::settings::ProxySettings;
use crate::warn;
use gatehouse_rules::{
    evaluate, summarise, Decision, Facts, Live, RoleId, Snapshot, Target, Verdict,
};
use hudsucker::hyper::{header, Method, Request, Response, StatusCode};
use hudsucker::{Body, HttpContext, HttpHandler, RequestOrResponse};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// What every connection shares.
#[derive(Debug)]
pub struct Shared {
    pub live: Arc<Live>,
    /// Loads and edits the policy; holds the no-decrypt list in force.
    pub policy: Arc<gatehouse_dashboard::policy::PolicyControl>,
    pub settings: ProxySettings,
    pub events: EventSink,
    pub users: crate::users::Users,
    /// Guest vouchers in force (made on the admin page).
    pub vouchers: Arc<gatehouse_dashboard::vouchers::Vouchers>,
    /// The admin page's database, where review requests from block pages go.
    pub admin_db: Arc<std::sync::Mutex<gatehouse_dashboard::Db>>,
    pub tokens: crate::warn::ContinueTokens,
    pub safeguarding: Arc<crate::safeguard::Pipeline>,
}

/// Who is asking: the role, and the login when there is one.
#[derive(Clone, Debug)]
struct Identity {
    role: String,
    user: Option<String>,
}

/// Who is on the other end of a CONNECT, carried into every request inside the tunnel.
#[derive(Clone, Debug)]
struct Tunnel {
    who: Identity,
    decrypt: bool,
}

/// The hudsucker handler: one clone per connection, and per tunnel.
#[derive(Clone, Debug)]
pub struct Gatehouse {
    shared: Arc<Shared>,
    tunnel: Option<Tunnel>,
    /// The event of the request being forwarded, completed when its response comes back.
    pending: Option<(Event, Instant)>,
    /// An event whose alert must be durable before the response leaves.
    alerting: Option<Event>,
}

const INTERNAL: &str = "That address is inside the school network or the filter itself.";

impl Gatehouse {
    pub fn new(shared: Arc<Shared>) -> Self {
        Gatehouse {
            shared,
            tunnel: None,
            pending: None,
            alerting: None,
        }
    }

    /// The identity of a request: the tunnel's, else the login (on networks that require
    /// one), else the client network's role. `Err` is the response to send instead.
    #[expect(
        clippy::result_large_err,
        reason = "once per request; the refusal goes straight back to hudsucker"
    )]
    fn identify(
        &self,
        snap: &Snapshot,
        client: IpAddr,
        req: &Request<Body>,
    ) -> Result<Identity, RequestOrResponse> {
        if let Some(t) = &self.tunnel {
            return Ok(t.who.clone());
        }
        let Some(network) = snap.network_of(client) else {
            return Err(self.refuse(
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
        let login = req
            .headers()
            .get(header::PROXY_AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                self.shared.users.authenticate(v).or_else(|| {
                    // Most schools have no voucher in force: skip the decode and hash.
                    let vouchers = &self.shared.vouchers;
                    vouchers
                        .any()
                        .then(|| vouchers.authenticate(v, chrono::Utc::now()))
                        .flatten()
                })
            });
        match login {
            Some((user, role)) => Ok(Identity {
                role,
                user: Some(user),
            }),
            None => {
                metrics::get().refused.with_label_values(&["login"]).inc();
                Err(pages::login_required().into())
            }
        }
    }

    fn no_decrypt(&self, host: &str) -> bool {
        self.shared.policy.no_decrypt().iter().any(|entry| {
            let entry = entry.trim_start_matches("*.").trim_start_matches('.');
            host == entry
                || host
                    .strip_suffix(entry)
                    .is_some_and(|rest| rest.ends_with('.'))
        })
    }

    /// True for origins a filter must never relay to: loopback, link-local (cloud metadata),
    /// unspecified; loopback allowed only by the lab switch.
    fn forbidden_origin(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let allow_loopback = self.shared.settings.allow_loopback_origins;
        match host.parse::<IpAddr>() {
            Ok(ip) => crate::resolve::forbidden(ip, allow_loopback),
            Err(_) => {
                let named_loopback =
                    host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost");
                named_loopback && !allow_loopback
            }
        }
    }

    /// The checks every request passes before a rule runs: an origin the filter may relay
    /// to, and a role the policy in force still has.
    #[expect(
        clippy::result_large_err,
        reason = "once per request; the refusal goes straight back to hudsucker"
    )]
    fn admit(
        &self,
        snap: &Snapshot,
        who: &Identity,
        host: &str,
    ) -> Result<RoleId, RequestOrResponse> {
        if self.forbidden_origin(host) {
            return Err(self.refuse("internal-origin", StatusCode::FORBIDDEN, INTERNAL));
        }
        snap.role_id(&who.role).ok_or_else(|| {
            self.refuse(
                "role",
                StatusCode::FORBIDDEN,
                "Your role is not in the current policy.",
            )
        })
    }

    fn refuse(&self, reason: &'static str, status: StatusCode, message: &str) -> RequestOrResponse {
        metrics::get().refused.with_label_values(&[reason]).inc();
        pages::refusal(status, message).into()
    }

    /// The event for a decided request (status and size are filled in by `finish`).
    fn event(
        &self,
        snap: &Snapshot,
        facts: &Facts<'_>,
        decision: &Decision,
        url: &str,
        host: &str,
    ) -> Event {
        let e = summarise(snap, facts, decision);
        let m = metrics::get();
        let verdict = format!("{:?}", decision.verdict).to_lowercase();
        m.requests
            .with_label_values(&[verdict.as_str(), e.role.as_str()])
            .inc();
        if decision.verdict == Verdict::Block {
            for c in &e.categories {
                m.blocked_categories.with_label_values(&[c.as_str()]).inc();
            }
        }
        let alert = e
            .alert
            .map(|s| gatehouse_rules::explain::severity_name(s).to_owned());
        if let Some(a) = &alert {
            m.alerts.with_label_values(&[a.as_str()]).inc();
        }
        let site = facts
            .client
            .and_then(|ip| snap.network_of(ip))
            .and_then(|n| n.site.clone());
        Event {
            time: e.at.clone(),
            request_id: pages::request_id(),
            client_ip: facts.client.map(|c| c.to_string()).unwrap_or_default(),
            user: facts.user.map(str::to_owned),
            role: e.role,
            site,
            method: facts.method.to_owned(),
            host: host.to_owned(),
            url: url.split('?').next().unwrap_or(url).to_owned(),
            search_term: e.search,
            categories: e.categories,
            themes: e.themes,
            terms: e.terms,
            verdict,
            alert,
            sensitive: e.sensitive,
            rule: e.rule,
            reason: e.reason,
            status: 0,
            bytes: None,
            duration_ms: 0.0,
            decrypted: self.tunnel.as_ref().is_some_and(|t| t.decrypt),
        }
    }

    fn finish(&mut self, mut event: Event, status: u16, bytes: Option<u64>, started: Instant) {
        event.status = status;
        event.bytes = bytes;
        event.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        if event.alert.is_some() {
            self.alerting = Some(event.clone());
        }
        self.shared.events.send(event);
    }

    /// Makes the alert of the request just decided durable before its response is sent
    /// (rare: only decisions the policy marks as alerting; off the async workers).
    async fn raise_alert(&mut self) {
        if let Some(event) = self.alerting.take() {
            let pipeline = Arc::clone(&self.shared.safeguarding);
            let _ = tokio::task::spawn_blocking(move || pipeline.raise(&event)).await;
        }
    }

    fn decide(&self, snap: &Snapshot, facts: &Facts<'_>) -> Decision {
        let started = Instant::now();
        let decision = evaluate(snap, facts);
        metrics::get()
            .decision_seconds
            .observe(started.elapsed().as_secs_f64());
        decision
    }

    fn connect(
        &mut self,
        snap: &Snapshot,
        who: Identity,
        client: IpAddr,
        req: Request<Body>,
    ) -> RequestOrResponse {
        let started = Instant::now();
        let Some(authority) = req.uri().authority().cloned() else {
            return self.refuse(
                "bad-request",
                StatusCode::BAD_REQUEST,
                "A CONNECT request needs host:port.",
            );
        };
        let port = authority.port_u16().unwrap_or(443);
        if !self.shared.settings.connect_ports.contains(&port) {
            return self.refuse(
                "port",
                StatusCode::FORBIDDEN,
                &format!("Connections to port {port} are not allowed."),
            );
        }
        let host = authority.host().to_ascii_lowercase();
        let role_id = match self.admit(snap, &who, &host) {
            Ok(id) => id,
            Err(refusal) => return refusal,
        };
        let facts = Facts {
            role: role_id,
            user: who.user.as_deref(),
            client: Some(client),
            at: chrono::Utc::now(),
            method: "CONNECT",
            target: Target::Authority(authority.as_str()),
        };
        let decision = self.decide(snap, &facts);
        let decrypt =
            snap.role(role_id).is_some_and(|r| r.decrypt_https) && !self.no_decrypt(&host);
        if decision.verdict != Verdict::Allow && !decrypt {
            // Not decrypted: the browser shows its own error for a refused CONNECT.
            let event = self.event(snap, &facts, &decision, authority.as_str(), &host);
            self.finish(event, 403, None, started);
            return pages::block_page(snap, &facts, &decision, authority.as_str(), None).into();
        }
        if !decrypt {
            // A tunnel the filter cannot see into is logged once, by its host.
            let event = self.event(snap, &facts, &decision, authority.as_str(), &host);
            self.finish(event, 200, None, started);
        }
        self.tunnel = Some(Tunnel { who, decrypt });
        req.into()
    }

    fn request(
        &mut self,
        snap: &Snapshot,
        who: Identity,
        client: IpAddr,
        mut req: Request<Body>,
    ) -> RequestOrResponse {
        let started = Instant::now();
        let full_url = req.uri().to_string();
        let (url, token) = warn::take_token(&full_url);
        let Some(host) = req.uri().host().map(str::to_ascii_lowercase) else {
            return self.refuse(
                "bad-request",
                StatusCode::BAD_REQUEST,
                "This proxy needs absolute URLs (http://host/path).",
            );
        };
        let role_id = match self.admit(snap, &who, &host) {
            Ok(id) => id,
            Err(refusal) => return refusal,
        };
        let now = chrono::Utc::now();
        let facts = Facts {
            role: role_id,
            user: who.user.as_deref(),
            client: Some(client),
            at: now,
            method: req.method().as_str(),
            target: Target::Url(&url),
        };
        let mut decision = self.decide(snap, &facts);
        // A warning the person chose to continue past, with a valid link: allowed, logged.
        let tokens = &self.shared.tokens;
        let continued = decision.verdict == Verdict::Warn
            && token.is_some_and(|t| tokens.check(&who.role, &url, t, now.timestamp()));
        if continued {
            decision.verdict = Verdict::Allow;
            decision.sensitive = true;
        }
        let mut event = self.event(snap, &facts, &decision, &url, &host);
        if continued {
            event.rule.push_str("+continued");
            event.reason.push_str(" Continued past the warning.");
        }
        if decision.verdict != Verdict::Allow {
            let link = (decision.verdict == Verdict::Warn)
                .then(|| warn::with_token(&url, &tokens.issue(&who.role, &url, now.timestamp())));
            self.finish(event, 403, None, started);
            return pages::block_page(snap, &facts, &decision, &url, link.as_deref()).into();
        }
        if token.is_some() {
            if let Ok(uri) = url.parse() {
                *req.uri_mut() = uri;
            }
        }
        self.pending = Some((event, started));
        if snap.role(role_id).is_some_and(|r| r.safesearch) {
            safesearch::enforce(&mut req);
        }
        strip_proxy_headers(&mut req);
        req.into()
    }
}

impl Gatehouse {
    /// A review request sent from a block page: recorded for IT with who asked (known from
    /// the connection, not from the form), and answered with a page that says so.
    async fn review(&self, who: Identity, client: IpAddr, req: Request<Body>) -> RequestOrResponse {
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
                .into()
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
            client_ip: client.to_string(),
            role: who.role,
            url: field("url"),
            reason: field("reason"),
            request_id: field("request_id"),
        };
        let db = Arc::clone(&self.shared.admin_db);
        let result = tokio::task::spawn_blocking(move || {
            let db = db.lock().map_err(|_| "admin database lock".to_owned())?;
            gatehouse_dashboard::reviews::submit(&db, &review).map_err(|e| e.to_string())
        })
        .await;
        use gatehouse_dashboard::reviews::Refused;
        match result {
            Ok(Ok(Ok(_))) => pages::review_sent().into(),
            Ok(Ok(Err(Refused::Empty))) => pages::refusal(
                StatusCode::BAD_REQUEST,
                "Please say why you need the page, then send the request again.",
            )
            .into(),
            Ok(Ok(Err(Refused::TooMany))) => pages::refusal(
                StatusCode::TOO_MANY_REQUESTS,
                "You already have many review requests waiting; the IT team will look at them.",
            )
            .into(),
            Ok(Err(e)) => {
                crate::cli::eprint(&format!("Review request not recorded: {e}"));
                pages::refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The review request could not be recorded; please ask the IT team directly.",
                )
                .into()
            }
            Err(_) => pages::refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "The review request could not be recorded; please ask the IT team directly.",
            )
            .into(),
        }
    }

    fn own_page(&self, snap: &Snapshot, client: IpAddr, req: &Request<Body>) -> RequestOrResponse {
        if snap.network_of(client).is_none() {
            return self.refuse(
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
                    .unwrap_or_else(|| self.shared.settings.listen.to_string());
                pages::pac_file(&host).into()
            }
            _ => self.refuse(
                "bad-request",
                StatusCode::BAD_REQUEST,
                "This is the school's web filter. Set it as your proxy, or use /proxy.pac.",
            ),
        }
    }
}

/// Removes what belongs to the hop between client and proxy: credentials for the proxy and
/// the hop-by-hop headers (keeping `Connection: upgrade` for WebSockets).
fn strip_proxy_headers(req: &mut Request<Body>) {
    let headers = req.headers_mut();
    headers.remove(header::PROXY_AUTHORIZATION);
    headers.remove("proxy-connection");
    headers.remove(header::PROXY_AUTHENTICATE);
    headers.remove("keep-alive");
    headers.remove(header::TE);
    headers.remove(header::TRAILER);
    if !headers.contains_key(header::UPGRADE) {
        headers.remove(header::CONNECTION);
    }
}

impl HttpHandler for Gatehouse {
    async fn handle_request(&mut self, ctx: &HttpContext, req: Request<Body>) -> RequestOrResponse {
        let snap = self.shared.live.load();
        let client = ctx.client_addr.ip();
        if self.tunnel.is_none() && req.uri().authority().is_none() {
            // Asked of the proxy itself (origin-form): only the PAC file lives here, and it
            // is served to every network the filter serves, before any login.
            return self.own_page(&snap, client, &req);
        }
        let who = match self.identify(&snap, client, &req) {
            Ok(who) => who,
            Err(response) => return response,
        };
        if req.method() == Method::POST && req.uri().path() == pages::REVIEW_PATH {
            return self.review(who, client, req).await;
        }
        let outcome = if req.method() == Method::CONNECT {
            self.connect(&snap, who, client, req)
        } else {
            self.request(&snap, who, client, req)
        };
        self.raise_alert().await;
        outcome
    }

    async fn handle_response(
        &mut self,
        _ctx: &HttpContext,
        mut res: Response<Body>,
    ) -> Response<Body> {
        // Keep browsers on TCP, where the filter sees them: no HTTP/3 advertisement.
        res.headers_mut().remove(header::ALT_SVC);
        if let Some((event, started)) = self.pending.take() {
            metrics::get()
                .upstream_seconds
                .observe(started.elapsed().as_secs_f64());
            let bytes = res
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            self.finish(event, res.status().as_u16(), bytes, started);
            self.raise_alert().await;
        }
        res
    }

    async fn handle_error(
        &mut self,
        _ctx: &HttpContext,
        err: hudsucker::hyper_util::client::legacy::Error,
    ) -> Response<Body> {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        let (mut certificate, mut timeout, mut client_body) = (false, false, false);
        while let Some(e) = source {
            let text = e.to_string();
            certificate |= text.contains("certificate") || text.contains("UnknownIssuer");
            timeout |= e.is::<tokio::time::error::Elapsed>()
                || e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
            // The request body the client sent could not be read (bad chunk sizes...).
            client_body |= e
                .downcast_ref::<hudsucker::hyper::Error>()
                .is_some_and(|h| h.is_user());
            source = e.source();
        }
        let kind = if client_body {
            "client-body"
        } else if certificate {
            "certificate"
        } else if timeout {
            "timeout"
        } else {
            "unreachable"
        };
        metrics::get()
            .upstream_errors
            .with_label_values(&[kind])
            .inc();
        if let Some((event, started)) = self.pending.take() {
            let status = if client_body { 400 } else { 502 };
            self.finish(event, status, None, started);
            self.raise_alert().await;
        }
        if client_body {
            return pages::refusal(
                StatusCode::BAD_REQUEST,
                "The request's body was malformed, so it was not sent on.",
            );
        }
        if certificate {
            return pages::refusal(
                StatusCode::BAD_GATEWAY,
                "The site's security certificate is not valid, so the filter did not connect to it. It may be misconfigured or an impostor.",
            );
        }
        if timeout {
            return pages::refusal(
                StatusCode::GATEWAY_TIMEOUT,
                "The site did not answer in time. Try again later.",
            );
        }
        pages::refusal(StatusCode::BAD_GATEWAY, "The site could not be reached.")
    }

    async fn should_intercept_connect(&mut self, _ctx: &HttpContext, _req: &Request<Body>) -> bool {
        self.tunnel.as_ref().is_some_and(|t| t.decrypt)
    }

    fn handle_tls_failure(
        &mut self,
        _ctx: &HttpContext,
        authority: &hudsucker::hyper::http::uri::Authority,
    ) {
        crate::handshakes::count_failure(&authority.host().to_ascii_lowercase());
    }
}
