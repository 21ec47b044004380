//! A CONNECT. Decided on its host like any request and always recorded. For a role that
//! does not decrypt (or a `no_decrypt` host) the tunnel is opened to the origin through the
//! upstream connector before the client is told `200`, then relayed. For a role that
//! decrypts, the client's first bytes decide: a TLS handshake is intercepted with a leaf
//! from the school's CA, a plain HTTP request is served as HTTP to the tunnel's host, and
//! anything else is closed and logged; nothing is ever relayed unseen.

use super::{record, refuse, Conn, Identity, Tunnel};
use crate::body::{self, Body};
use crate::events::Event;
use crate::identity::How;
use crate::intercept::{self, classify::Classified, tunnel};
use crate::metrics;
use crate::pages;
use crate::upstream::Road;
use gatehouse_rules::{Facts, Snapshot, Target, Verdict};
use hyper::{Request, Response, StatusCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn open(
    conn: Arc<Conn>,
    snap: &Snapshot,
    who: Identity,
    mut req: Request<Body>,
) -> Response<Body> {
    let started = Instant::now();
    let Some(authority) = req.uri().authority().cloned() else {
        return refuse(
            "bad-request",
            StatusCode::BAD_REQUEST,
            "A CONNECT request needs host:port.",
        );
    };
    let port = authority.port_u16().unwrap_or(443);
    let host = authority.host().to_ascii_lowercase();
    let Some(role_id) = snap.role_id(&who.role) else {
        return refuse(
            "role",
            StatusCode::FORBIDDEN,
            "Your role is not in the current policy.",
        );
    };
    let facts = Facts {
        role: role_id,
        user: who.user.as_deref(),
        client: Some(conn.client_ip()),
        at: chrono::Utc::now(),
        method: "CONNECT",
        target: Target::Authority(authority.as_str()),
    };
    let decision = record::decide(snap, &facts);
    // The sign-in page is always decrypted (it is served here, from inside the tunnel).
    let signin = conn.shared.logins.sources.signin.as_ref();
    let portal = signin.is_some_and(|s| s.is_portal(&host));
    let decrypt = decision.decrypt || portal;
    let url = authority.as_str();
    if who.how == How::NotSignedIn
        && !decrypt
        && !signin.is_some_and(|s| s.before_signin(&host, port))
    {
        // Not decrypted, so no sign-in page can be shown inside it: refused, and why.
        metrics::get().refused.with_label_values(&["signin"]).inc();
        let mut event = record::event(&conn, &who, snap, &facts, &decision, url, &host);
        record::refused(
            &mut event,
            "signin",
            "Not signed in, and this tunnel is not decrypted, so the sign-in page could not \
             be shown in it."
                .to_owned(),
        );
        record::finish(&conn, event, 403, None, started).await;
        return pages::refusal(
            StatusCode::FORBIDDEN,
            "Sign in to use the internet on this network: open any web page in a browser.",
        );
    }
    if let Err(e) = conn.shared.upstream.precheck(&host, port, Road::Tunnel) {
        let page = super::forward::refused_upstream(&e);
        let mut event = record::tunnel(&conn, &who, snap, &facts, &decision, url, &host);
        record::refused(&mut event, "upstream", format!("Refused: {e}."));
        event.decrypted = false;
        record::finish(&conn, event, page.status().as_u16(), None, started).await;
        return page;
    }
    if !decrypt {
        let event = record::event(&conn, &who, snap, &facts, &decision, url, &host);
        if decision.verdict != Verdict::Allow {
            // Not decrypted: the browser shows its own error for a refused CONNECT.
            let id = event.request_id.clone();
            record::finish(&conn, event, 403, None, started).await;
            return pages::block_page(snap, &facts, &decision, url, None, &id);
        }
        return relay(conn, req, event, &host, port, started).await;
    }
    let mut event = record::tunnel(&conn, &who, snap, &facts, &decision, url, &host);
    event.decrypted = true;
    // What the host itself was decided: recorded instead of the tunnel when the tunnel
    // never carries a request (a failed handshake, other bytes), so a blocked or alerting
    // host is never logged as a plain "allow" and its alert is not lost.
    let mut decided = record::uncounted(&conn, &who, snap, &facts, &decision, url, &host);
    decided.decrypted = true;
    let tunnel = Tunnel {
        who,
        authority,
        scheme: "https",
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let events = TunnelEvents {
                    opened: event,
                    decided,
                };
                intercept_tunnel(conn, upgraded, tunnel, events, started).await;
            }
            Err(_) => {
                event
                    .reason
                    .push_str(" The client closed the connection before the tunnel opened.");
                record::finish(&conn, event, 200, None, started).await;
            }
        }
    });
    Response::new(body::empty())
}

/// The two ways a decrypted CONNECT can be recorded.
struct TunnelEvents {
    /// The tunnel, when it carries requests (each decided and logged on its own).
    opened: Event,
    /// The host's own decision, when it carries none.
    decided: Event,
}

impl TunnelEvents {
    /// The event for a tunnel that carried nothing: the host's decision when it blocks or
    /// alerts, else the tunnel's; `what` says what happened.
    fn carried_nothing(self, what: &str) -> Event {
        let blocks = self.decided.verdict != "allow" || self.decided.alert.is_some();
        let mut event = if blocks { self.decided } else { self.opened };
        event.reason.push(' ');
        event.reason.push_str(what);
        event
    }
}

/// A tunnel the filter does not decrypt: connected first (so a refused or unreachable
/// origin is a status, not a `200` that closes), then relayed until idle.
async fn relay(
    conn: Arc<Conn>,
    mut req: Request<Body>,
    event: Event,
    host: &str,
    port: u16,
    started: Instant,
) -> Response<Body> {
    let origin = match conn.shared.upstream.connect(host, port, Road::Tunnel).await {
        Ok(origin) => origin,
        Err(e) => {
            let page = match &e {
                crate::error::Error::Refused { .. } => super::forward::refused_upstream(&e),
                crate::error::Error::Timeout { .. } => pages::refusal(
                    StatusCode::GATEWAY_TIMEOUT,
                    "The site did not answer in time. Try again later.",
                ),
                _ => pages::refusal(StatusCode::BAD_GATEWAY, "The site could not be reached."),
            };
            record::finish(&conn, event, page.status().as_u16(), None, started).await;
            return page;
        }
    };
    record::finish(&conn, event, 200, None, started).await;
    let idle = Duration::from_secs(conn.shared.settings.tunnel_idle_secs);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let slot = Arc::clone(&conn.slot);
    tokio::spawn(async move {
        let _slot = slot;
        if let Ok(upgraded) = on_upgrade.await {
            let client = hyper_util::rt::TokioIo::new(upgraded);
            let _ = intercept::relay(client, origin, idle).await;
        }
    });
    Response::new(body::empty())
}

/// Inside a tunnel from a role that decrypts: classify, then intercept TLS, serve HTTP, or
/// close. The CONNECT's event is written here, with what the tunnel turned out to carry.
async fn intercept_tunnel(
    conn: Arc<Conn>,
    upgraded: hyper::upgrade::Upgraded,
    mut tunnel: Tunnel,
    events: TunnelEvents,
    started: Instant,
) {
    let limit = Duration::from_secs(conn.shared.settings.header_timeout_secs);
    let io = hyper_util::rt::TokioIo::new(upgraded);
    let (answer, io) = tunnel::first_bytes(io, limit).await;
    let host = tunnel.authority.host().to_ascii_lowercase();
    match answer {
        Classified::Tls => {
            // The sign-in page with the school's own certificate, else a leaf from the CA.
            let own = (conn.shared.logins.sources.signin.as_ref())
                .filter(|s| s.is_portal(&host))
                .and_then(|s| s.tls());
            let minted = match own {
                Some(config) => Ok(config),
                None => conn.shared.leaves.server_config(&host),
            };
            let config = match minted {
                Ok(config) => config,
                Err(e) => {
                    tracing::warn!(host, error = %e, "no certificate could be made");
                    let event =
                        events.carried_nothing("No certificate could be made for the host.");
                    record::finish(&conn, event, 502, None, started).await;
                    return;
                }
            };
            match tunnel::accept_tls(io, config, limit).await {
                Ok(tls) => {
                    record::finish(&conn, events.opened, 200, None, started).await;
                    intercept::serve_inner(Arc::new(conn.inside(tunnel)), tls).await;
                }
                Err(_) => {
                    crate::handshakes::count_failure(&host);
                    let event = events.carried_nothing(
                        "The device's TLS handshake with the filter failed (no school CA installed, or an app that pins its certificates), so no page could be shown.",
                    );
                    record::finish(&conn, event, 403, None, started).await;
                }
            }
        }
        Classified::Http => {
            record::finish(&conn, events.opened, 200, None, started).await;
            tunnel.scheme = "http";
            intercept::serve_inner(Arc::new(conn.inside(tunnel)), io).await;
        }
        Classified::Other(_) | Classified::NeedMore => {
            let what = match answer {
                Classified::Other(what) => what,
                _ => "too little",
            };
            metrics::get()
                .refused
                .with_label_values(&["tunnel-protocol"])
                .inc();
            let mut event = events.carried_nothing("");
            record::refused(
                &mut event,
                "tunnel-protocol",
                format!("Closed: the client sent {what} inside the tunnel, and only TLS or HTTP is allowed through."),
            );
            record::finish(&conn, event, 400, None, started).await;
        }
    }
}
