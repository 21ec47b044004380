//! The one body type the proxy hands around: what a client sent, what an origin answered,
//! or a page the filter wrote itself. Streamed bodies fail with hyper's error; the filter's
//! own pages cannot fail.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty, Full};

pub type Body = BoxBody<Bytes, hyper::Error>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|e| match e {}).boxed()
}

pub fn empty() -> Body {
    Empty::new().map_err(|e| match e {}).boxed()
}

/// A body streamed from a peer.
pub fn streamed(incoming: hyper::body::Incoming) -> Body {
    incoming.boxed()
}
