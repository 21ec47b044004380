//! A CONNECT. Decided on its host like any request and always recorded. For a role that
//! does not decrypt (or a `no_decrypt` host) the tunnel is opened to the origin through the
//! upstream connector before the client is told `200`, then relayed. For a role that
//! decrypts, the client's first bytes decide: a TLS handshake is intercepted with a leaf
//! from the school's CA, a plain HTTP request is served as HTTP to the tunnel's host, and
//! anything else is closed and logged; nothing is ever relayed unseen.

use super::{record, refuse, Conn, Identity, Tunnel};
use crate::body::{self, Body};
use crate::events::Event;
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
    let decrypt = decision.decrypt;
    let url = authority.as_str();
    if let Err(e) = conn.shared.upstream.precheck(&host, port, Road::Tunnel) {
        let page = super::forward::refused_upstream(&e);
        let mut event = record::tunnel(&conn, snap, &facts, &decision, url, &host);
        record::refused(&mut event, "upstream", format!("Refused: {e}."));
        event.decrypted = false;
        record::finish(&conn, event, page.status().as_u16(), None, started).await;
        return page;
    }
    if !decrypt {
        let event = record::event(&conn, snap, &facts, &decision, url, &host);
        if decision.verdict != Verdict::Allow {
            // Not decrypted: the browser shows its own error for a refused CONNECT.
            let id = event.request_id.clone();
            record::finish(&conn, event, 403, None, started).await;
            return pages::block_page(snap, &facts, &decision, url, None, &id);
        }
        return relay(conn, req, event, &host, port, started).await;
    }
    let mut event = record::tunnel(&conn, snap, &facts, &decision, url, &host);
    event.decrypted = true;
    let tunnel = Tunnel {
        who,
        authority,
        scheme: "https",
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            intercept_tunnel(conn, upgraded, tunnel, event, started).await;
        }
    });
    Response::new(body::empty())
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
    tokio::spawn(async move {
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
    mut event: Event,
    started: Instant,
) {
    let limit = Duration::from_secs(conn.shared.settings.header_timeout_secs);
    let io = hyper_util::rt::TokioIo::new(upgraded);
    let (answer, io) = tunnel::first_bytes(io, limit).await;
    let host = tunnel.authority.host().to_ascii_lowercase();
    match answer {
        Classified::Tls => {
            record::finish(&conn, event, 200, None, started).await;
            let config = match conn.shared.leaves.server_config(&host) {
                Ok(config) => config,
                Err(e) => {
                    tracing::warn!(host, error = %e, "no certificate could be made");
                    return;
                }
            };
            match tunnel::accept_tls(io, config, limit).await {
                Ok(tls) => {
                    let inner = Conn {
                        shared: Arc::clone(&conn.shared),
                        client: conn.client,
                        tunnel: Some(tunnel),
                    };
                    intercept::serve_inner(Arc::new(inner), tls).await;
                }
                Err(_) => crate::handshakes::count_failure(&host),
            }
        }
        Classified::Http => {
            record::finish(&conn, event, 200, None, started).await;
            tunnel.scheme = "http";
            let inner = Conn {
                shared: Arc::clone(&conn.shared),
                client: conn.client,
                tunnel: Some(tunnel),
            };
            intercept::serve_inner(Arc::new(inner), io).await;
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
            record::refused(
                &mut event,
                "tunnel-protocol",
                format!("Closed: the client sent {what} inside the tunnel, and only TLS or HTTP is allowed through."),
            );
            record::finish(&conn, event, 400, None, started).await;
        }
    }
}
