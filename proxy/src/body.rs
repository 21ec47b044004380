//! The one body type the proxy hands around: what a client sent, what an origin answered,
//! or a page the filter wrote itself. Streamed bodies fail with the peer's error (or the
//! filter's, for a download cut at its limit); the filter's own pages cannot fail.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty, Full};

pub type Body = BoxBody<Bytes, BodyError>;

/// A body's failure: a peer's stream broke (hyper's error, its source), or the filter cut
/// it (a download past the role's limit).
#[derive(Debug)]
pub enum BodyError {
    Peer(hyper::Error),
    Cut(&'static str),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Peer(e) => write!(f, "{e}"),
            BodyError::Cut(why) => write!(f, "cut by the filter: {why}"),
        }
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BodyError::Peer(e) => Some(e),
            BodyError::Cut(_) => None,
        }
    }
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|e| match e {}).boxed()
}

pub fn empty() -> Body {
    Empty::new().map_err(|e| match e {}).boxed()
}

/// A body streamed from a peer.
pub fn streamed(incoming: hyper::body::Incoming) -> Body {
    incoming.map_err(BodyError::Peer).boxed()
}

/// The size of a body whose first frames were held (read before it goes on) and come first,
/// then the rest.
pub fn held_then(
    held: &std::collections::VecDeque<Bytes>,
    rest: http_body::SizeHint,
) -> http_body::SizeHint {
    let held: u64 = held.iter().map(|b| b.len() as u64).sum();
    let mut hint = http_body::SizeHint::new();
    hint.set_lower(rest.lower().saturating_add(held));
    if let Some(upper) = rest.upper() {
        hint.set_upper(upper.saturating_add(held));
    }
    hint
}
