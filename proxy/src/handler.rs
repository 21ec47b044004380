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

use crate::pages;
use crate::safesearch;
use crate::settings::ProxySettings;
use gatehouse_rules::{evaluate, Facts, Live, Snapshot, Target, Verdict};
use hudsucker::hyper::{header, Method, Request, Response, StatusCode};
use hudsucker::{Body, HttpContext, HttpHandler, RequestOrResponse};
use std::net::IpAddr;
use std::sync::Arc;

/// What every connection shares.
#[derive(Debug)]
pub struct Shared {
    pub live: Arc<Live>,
    pub settings: ProxySettings,
}

/// Who is on the other end of a CONNECT, carried into every request inside the tunnel.
#[derive(Clone, Debug)]
struct Tunnel {
    role: String,
    decrypt: bool,
}

/// The hudsucker handler: one clone per connection, and per tunnel.
#[derive(Clone, Debug)]
pub struct Gatehouse {
    shared: Arc<Shared>,
    tunnel: Option<Tunnel>,
}

impl Gatehouse {
    pub fn new(shared: Arc<Shared>) -> Self {
        Gatehouse {
            shared,
            tunnel: None,
        }
    }

    fn role_for(&self, snap: &Snapshot, client: IpAddr) -> Option<String> {
        if let Some(t) = &self.tunnel {
            return Some(t.role.clone());
        }
        snap.network_of(client)
            .and_then(|n| snap.role(n.role))
            .map(|r| r.name.clone())
    }

    fn no_decrypt(&self, host: &str) -> bool {
        self.shared.settings.no_decrypt.iter().any(|entry| {
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
        let loopback = host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost");
        let ip: Option<IpAddr> = host.parse().ok();
        let is_loopback = loopback || ip.is_some_and(|ip| ip.is_loopback());
        let link_local = ip.is_some_and(|ip| match ip {
            IpAddr::V4(v4) => v4.is_link_local() || v4.is_unspecified(),
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80 || v6.is_unspecified(),
        });
        link_local || (is_loopback && !self.shared.settings.allow_loopback_origins)
    }

    fn connect(
        &mut self,
        snap: &Snapshot,
        role: String,
        client: IpAddr,
        req: Request<Body>,
    ) -> RequestOrResponse {
        let Some(authority) = req.uri().authority().cloned() else {
            return pages::refusal(
                StatusCode::BAD_REQUEST,
                "A CONNECT request needs host:port.",
            )
            .into();
        };
        let port = authority.port_u16().unwrap_or(443);
        if !self.shared.settings.connect_ports.contains(&port) {
            return pages::refusal(
                StatusCode::FORBIDDEN,
                &format!("Connections to port {port} are not allowed."),
            )
            .into();
        }
        let host = authority.host().to_ascii_lowercase();
        if self.forbidden_origin(&host) {
            return pages::refusal(
                StatusCode::FORBIDDEN,
                "That address is inside the school network or the filter itself.",
            )
            .into();
        }
        let Some(role_id) = snap.role_id(&role) else {
            return pages::refusal(
                StatusCode::FORBIDDEN,
                "Your role is not in the current policy.",
            )
            .into();
        };
        let facts = Facts {
            role: role_id,
            user: None,
            client: Some(client),
            at: chrono::Utc::now(),
            method: "CONNECT",
            target: Target::Authority(authority.as_str()),
        };
        let decision = evaluate(snap, &facts);
        let decrypt =
            snap.role(role_id).is_some_and(|r| r.decrypt_https) && !self.no_decrypt(&host);
        if decision.verdict != Verdict::Allow && !decrypt {
            // Not decrypted: the browser shows its own error for a refused CONNECT.
            return pages::block_page(snap, &facts, &decision, authority.as_str()).into();
        }
        self.tunnel = Some(Tunnel { role, decrypt });
        req.into()
    }

    fn request(
        &self,
        snap: &Snapshot,
        role: String,
        client: IpAddr,
        mut req: Request<Body>,
    ) -> RequestOrResponse {
        let url = req.uri().to_string();
        let Some(host) = req.uri().host().map(str::to_ascii_lowercase) else {
            return pages::refusal(
                StatusCode::BAD_REQUEST,
                "This proxy needs absolute URLs (http://host/path).",
            )
            .into();
        };
        if self.forbidden_origin(&host) {
            return pages::refusal(
                StatusCode::FORBIDDEN,
                "That address is inside the school network or the filter itself.",
            )
            .into();
        }
        let Some(role_id) = snap.role_id(&role) else {
            return pages::refusal(
                StatusCode::FORBIDDEN,
                "Your role is not in the current policy.",
            )
            .into();
        };
        let facts = Facts {
            role: role_id,
            user: None,
            client: Some(client),
            at: chrono::Utc::now(),
            method: req.method().as_str(),
            target: Target::Url(&url),
        };
        let decision = evaluate(snap, &facts);
        if decision.verdict != Verdict::Allow {
            return pages::block_page(snap, &facts, &decision, &url).into();
        }
        if snap.role(role_id).is_some_and(|r| r.safesearch) {
            safesearch::enforce(&mut req);
        }
        strip_proxy_headers(&mut req);
        req.into()
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
    let upgrade = headers.contains_key(header::UPGRADE);
    if !upgrade {
        headers.remove(header::CONNECTION);
    }
}

impl HttpHandler for Gatehouse {
    async fn handle_request(&mut self, ctx: &HttpContext, req: Request<Body>) -> RequestOrResponse {
        let snap = self.shared.live.load();
        let client = ctx.client_addr.ip();
        let Some(role) = self.role_for(&snap, client) else {
            return pages::refusal(
                StatusCode::FORBIDDEN,
                "This filter does not serve your network.",
            )
            .into();
        };
        if req.method() == Method::CONNECT {
            self.connect(&snap, role, client, req)
        } else {
            self.request(&snap, role, client, req)
        }
    }

    async fn handle_response(
        &mut self,
        _ctx: &HttpContext,
        mut res: Response<Body>,
    ) -> Response<Body> {
        // Keep browsers on TCP, where the filter sees them: no HTTP/3 advertisement.
        res.headers_mut().remove(header::ALT_SVC);
        res
    }

    async fn handle_error(
        &mut self,
        _ctx: &HttpContext,
        err: hudsucker::hyper_util::client::legacy::Error,
    ) -> Response<Body> {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        let mut certificate = false;
        while let Some(e) = source {
            let text = e.to_string();
            certificate |= text.contains("certificate") || text.contains("UnknownIssuer");
            source = e.source();
        }
        if certificate {
            return pages::refusal(
                StatusCode::BAD_GATEWAY,
                "The site's security certificate is not valid, so the filter did not connect to it. It may be misconfigured or an impostor.",
            );
        }
        pages::refusal(StatusCode::BAD_GATEWAY, "The site could not be reached.")
    }

    async fn should_intercept_connect(&mut self, _ctx: &HttpContext, _req: &Request<Body>) -> bool {
        self.tunnel.as_ref().is_some_and(|t| t.decrypt)
    }
}
