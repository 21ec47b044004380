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

/// A body whose first frames were read before it goes on: they come first, then the
/// origin's or client's error met while reading them (if any), then the rest.
#[derive(Debug)]
pub struct Prefixed {
    pub held: std::collections::VecDeque<Bytes>,
    pub failed: Option<BodyError>,
    pub rest: Body,
}

impl http_body::Body for Prefixed {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BodyError>>> {
        use std::task::Poll;
        if let Some(data) = self.held.pop_front() {
            return Poll::Ready(Some(Ok(http_body::Frame::data(data))));
        }
        if let Some(e) = self.failed.take() {
            return Poll::Ready(Some(Err(e)));
        }
        std::pin::Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_empty() && self.failed.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        held_then(&self.held, self.rest.size_hint())
    }
}
