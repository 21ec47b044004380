//! What belongs to one hop and never goes further: credentials for the proxy, the
//! hop-by-hop headers (RFC 9110 section 7.6.1), every header the `Connection` header names,
//! and the framing headers hyper sets again itself. Only a WebSocket upgrade keeps
//! `Connection: upgrade` and `Upgrade: websocket`.

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response};

const HOP_BY_HOP: [&str; 9] = [
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "connection",
];

/// True for a WebSocket handshake (the only upgrade the filter relays).
pub fn is_websocket<B>(req: &Request<B>) -> bool {
    let has = |name: header::HeaderName, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    has(header::CONNECTION, "upgrade") && has(header::UPGRADE, "websocket")
}

/// Strips a request before it is forwarded. `Host` goes too: the client sets it again from
/// the URI the filter decided on, so a different `Host` cannot steer the request elsewhere.
pub fn strip_request<B>(req: &mut Request<B>, websocket: bool) {
    strip(req.headers_mut(), websocket);
    req.headers_mut().remove(header::HOST);
    *req.version_mut() = hyper::Version::HTTP_11;
}

/// Strips a response before it goes back to the client; also drops `Alt-Svc`, to keep
/// browsers on TCP where the filter sees them (no HTTP/3).
pub fn strip_response<B>(res: &mut Response<B>, websocket: bool) {
    strip(res.headers_mut(), websocket);
    res.headers_mut().remove(header::ALT_SVC);
}

fn strip(headers: &mut HeaderMap, websocket: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if websocket {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_removed() {
        let mut req = Request::builder()
            .uri("http://example.com/")
            .header("host", "elsewhere.example")
            .header("connection", "close, X-Secret-Hop, keep-alive")
            .header("x-secret-hop", "1")
            .header("keep-alive", "timeout=5")
            .header("transfer-encoding", "xchunked")
            .header("Transfer-Encoding", "chunked, identity")
            .header("proxy-authorization", "Basic YTpi")
            .header("te", "trailers")
            .header("upgrade", "h2c")
            .header("x-kept", "yes")
            .body(())
            .unwrap();
        assert!(!is_websocket(&req));
        strip_request(&mut req, false);
        let names: Vec<_> = req.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-kept"]);
    }

    #[test]
    fn a_websocket_keeps_exactly_its_upgrade() {
        let mut req = Request::builder()
            .uri("http://example.com/ws")
            .header("connection", "keep-alive, Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-key", "x")
            .body(())
            .unwrap();
        assert!(is_websocket(&req));
        strip_request(&mut req, true);
        assert_eq!(req.headers()["connection"], "upgrade");
        assert_eq!(req.headers()["upgrade"], "websocket");
        assert_eq!(req.headers()["sec-websocket-key"], "x");
    }
}
