//! Forwarding an allowed request through the one upstream connector, and answering every
//! way that can fail with a page that says which, decided on the error's type.

use super::{headers, record, Conn};
use crate::body::{self, Body};
use crate::error::{Error, Refusal};
use crate::events::Event;
use crate::metrics;
use crate::pages;
use gatehouse_rules::config::PageText;
use hyper::{header, Request, Response, StatusCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why an upstream exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// The filter refused the address or port (no socket was opened).
    Refused(Refusal),
    /// The client's own request body was malformed (bad chunk sizes...).
    ClientBody,
    /// The origin's certificate did not verify.
    Certificate,
    Timeout,
    Unreachable,
}

impl Failure {
    fn of(err: &(dyn std::error::Error + 'static)) -> Failure {
        if let Some(ours) = Error::find(err) {
            return match ours {
                Error::Refused { refusal, .. } => Failure::Refused(*refusal),
                Error::Timeout { .. } => Failure::Timeout,
                _ => Failure::Unreachable,
            };
        }
        // Walk every cause: an io::Error's source() skips the error it wraps (and the TLS
        // connector wraps the certificate error in two of them), so look inside those too.
        let mut causes: Vec<&(dyn std::error::Error + 'static)> = vec![err];
        let mut seen = 0;
        while let Some(e) = causes.pop() {
            seen += 1;
            if seen > 32 {
                break;
            }
            if e.downcast_ref::<hyper::Error>()
                .is_some_and(|h| h.is_user())
            {
                return Failure::ClientBody;
            }
            if let Some(tls) = e.downcast_ref::<rustls::Error>() {
                if matches!(
                    tls,
                    rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
                ) {
                    return Failure::Certificate;
                }
            }
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::TimedOut {
                    return Failure::Timeout;
                }
                if let Some(inner) = io.get_ref() {
                    causes.push(inner);
                }
            }
            if let Some(next) = e.source() {
                causes.push(next);
            }
        }
        Failure::Unreachable
    }

    fn label(self) -> &'static str {
        match self {
            Failure::Refused(_) => "refused",
            Failure::ClientBody => "client-body",
            Failure::Certificate => "certificate",
            Failure::Timeout => "timeout",
            Failure::Unreachable => "unreachable",
        }
    }

    fn page(self) -> Response<Body> {
        let (status, message) = match self {
            Failure::Refused(Refusal::Port(port)) => (
                StatusCode::FORBIDDEN,
                format!("Connections to port {port} are not allowed."),
            ),
            Failure::Refused(_) => (StatusCode::FORBIDDEN, super::INTERNAL.to_owned()),
            Failure::ClientBody => (
                StatusCode::BAD_REQUEST,
                "The request's body was malformed, so it was not sent on.".to_owned(),
            ),
            Failure::Certificate => (
                StatusCode::BAD_GATEWAY,
                "The site's security certificate is not valid, so the filter did not connect to it. It may be misconfigured or an impostor.".to_owned(),
            ),
            Failure::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "The site did not answer in time. Try again later.".to_owned(),
            ),
            Failure::Unreachable => (
                StatusCode::BAD_GATEWAY,
                "The site could not be reached.".to_owned(),
            ),
        };
        pages::refusal(status, &message)
    }
}

/// The page for an upstream the filter refused before connecting, counted as such.
pub fn refused_upstream(err: &Error) -> Response<Body> {
    let failure = Failure::of(err);
    let reason = match failure {
        Failure::Refused(Refusal::Port(_)) => "port",
        _ => "internal-origin",
    };
    metrics::get().refused.with_label_values(&[reason]).inc();
    failure.page()
}

/// Sends `req` upstream and returns the origin's response (or a page saying why not);
/// a WebSocket handshake the origin accepts becomes a relay of the two connections.
/// With `read_text`, a text response's body is read for themes as it streams
/// ([`crate::content`]).
pub async fn send(
    conn: &Conn,
    mut req: Request<Body>,
    event: Event,
    started: Instant,
    read_text: Option<(Arc<gatehouse_rules::Snapshot>, gatehouse_rules::RoleId)>,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let websocket = headers::is_websocket(&req);
    let client_side = websocket.then(|| hyper::upgrade::on(&mut req));
    headers::strip_request(&mut req, websocket);
    // The response head must come within the limit (an origin that accepts and never
    // answers would otherwise hold the request for ever).
    let limit = Duration::from_secs(conn.shared.settings.response_timeout_secs);
    let result = match tokio::time::timeout(limit, conn.shared.client.request(req)).await {
        Ok(result) => result,
        Err(_) => {
            metrics::get()
                .upstream_errors
                .with_label_values(&[Failure::Timeout.label()])
                .inc();
            let page = Failure::Timeout.page();
            record::finish(conn, event, page.status().as_u16(), None, started).await;
            return page;
        }
    };
    metrics::get()
        .upstream_seconds
        .observe(started.elapsed().as_secs_f64());
    let mut res = match result {
        Ok(res) => res,
        Err(err) => {
            let failure = Failure::of(&err);
            tracing::debug!(failure = failure.label(), error = ?err, "upstream request failed");
            match failure {
                Failure::Refused(_) => {
                    metrics::get()
                        .refused
                        .with_label_values(&["internal-origin"])
                        .inc();
                }
                _ => {
                    metrics::get()
                        .upstream_errors
                        .with_label_values(&[failure.label()])
                        .inc();
                }
            }
            let page = failure.page();
            record::finish(conn, event, page.status().as_u16(), None, started).await;
            return page;
        }
    };
    let upgraded = res.status() == StatusCode::SWITCHING_PROTOCOLS;
    match (upgraded, client_side) {
        (true, Some(client_side)) => {
            let origin_side = hyper::upgrade::on(&mut res);
            let idle = Duration::from_secs(conn.shared.settings.tunnel_idle_secs);
            let slot = Arc::clone(&conn.slot);
            tokio::spawn(async move {
                let _slot = slot;
                if let (Ok(client), Ok(origin)) = (client_side.await, origin_side.await) {
                    let client = hyper_util::rt::TokioIo::new(client);
                    let origin = hyper_util::rt::TokioIo::new(origin);
                    let _ = crate::intercept::relay(client, origin, idle).await;
                }
            });
        }
        (true, None) => {
            // An upgrade nobody asked for: the connection cannot be relayed as HTTP.
            let page = Failure::Unreachable.page();
            record::finish(conn, event, 502, None, started).await;
            return page;
        }
        (false, _) => {}
    }
    let bytes = res
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    headers::strip_response(&mut res, upgraded);
    let mut event = event;
    let mut res = res.map(body::streamed);
    // Downloads: what the file really is, and its size, against the role's file rules.
    let role = read_text
        .as_ref()
        .and_then(|(snap, role)| snap.role(*role))
        .filter(|r| !upgraded && r.checks_downloads());
    if let Some(role) = role {
        let wait = Duration::from_secs(conn.shared.settings.response_timeout_secs);
        match crate::downloads::check(role, &path, res, wait).await {
            crate::downloads::Checked::Deliver(checked, found) => {
                res = checked;
                if let Some((kind, spec)) = found {
                    event.rule = format!("file:{}", kind.name());
                    event.sensitive |= spec.action() == gatehouse_rules::Action::Log;
                    if let Some(a) = spec.alert() {
                        event.alert = Some(gatehouse_rules::explain::severity_name(a).to_owned());
                    }
                }
            }
            crate::downloads::Checked::Refused { why, kind, spec } => {
                record::refused(
                    &mut event,
                    &kind.map_or("download-size".to_owned(), |k| format!("file:{}", k.name())),
                    format!("Refused download: {why}"),
                );
                event.sensitive = true;
                if let Some(a) = spec.and_then(|s| s.alert()) {
                    event.alert = Some(gatehouse_rules::explain::severity_name(a).to_owned());
                }
                metrics::get()
                    .refused
                    .with_label_values(&["download"])
                    .inc();
                let id = event.request_id.clone();
                let url = event.url.clone();
                let page = pages::download_refused(&why, &url, &id);
                record::finish(conn, event, 403, None, started).await;
                return page;
            }
        }
    }
    let page_text = read_text
        .as_ref()
        .and_then(|(snap, role)| snap.role(*role))
        .map_or(PageText::Off, |r| r.page_text);
    let mut plan = read_text
        .filter(|_| {
            !upgraded
                && page_text != PageText::Off
                && crate::content::reads(&conn.shared.settings, res.headers())
        })
        .map(|(snap, role)| crate::content::Plan {
            shared: Arc::clone(&conn.shared),
            snap,
            role,
            event: event.clone(),
        });
    // A role whose pages are held: the first part is read before any of it is delivered.
    if let Some(plan) = plan.take_if(|_| page_text == PageText::Hold) {
        let (snap, role) = (Arc::clone(&plan.snap), plan.role);
        let settings = &conn.shared.settings;
        let limit = settings.hold_kib.saturating_mul(1024);
        let wait = Duration::from_secs(settings.response_timeout_secs);
        let status = res.status().as_u16();
        match crate::content::hold(plan, res, limit, wait).await {
            crate::content::Held::Deliver(res) => {
                record::finish(conn, event, status, bytes, started).await;
                return res;
            }
            crate::content::Held::Block { finding, title } => {
                use crate::content::Source;
                crate::content::annotate(
                    &mut event,
                    &snap,
                    role,
                    &finding,
                    &title,
                    Source::PageBlocked,
                );
                event.verdict = "block".to_owned();
                let theme = gatehouse_rules::content::verdict(&snap, role, &finding).theme;
                let id = event.request_id.clone();
                let url = event.url.clone();
                let page = match theme {
                    Some(t) => pages::page_text_blocked(&snap, t, &url, &id),
                    None => Failure::Unreachable.page(),
                };
                record::finish(conn, event, 403, None, started).await;
                return page;
            }
        }
    }
    record::finish(conn, event, res.status().as_u16(), bytes, started).await;
    match plan {
        Some(plan) => crate::content::scan(plan, res),
        None => res,
    }
}
