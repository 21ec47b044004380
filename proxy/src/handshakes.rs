//! Counting failed client TLS handshakes per host, so IT can see which apps pin their
//! certificates (or which devices lack the CA) and exempt them with `no_decrypt`.
//!
//! hudsucker reports a failed handshake only as a log event inside the span of the CONNECT
//! it belongs to; this tracing layer keeps each span's `uri` field (the CONNECT authority)
//! and counts the event against that host.

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// At most this many distinct hosts get their own label; the rest count as `other`.
const MAX_HOSTS: usize = 1000;

/// The CONNECT authority a span was opened for.
struct SpanUri(String);

#[derive(Default)]
struct UriVisitor(Option<String>);

impl Visit for UriVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "uri" {
            self.0 = Some(format!("{value:?}"));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "uri" {
            self.0 = Some(value.to_owned());
        }
    }
}

#[derive(Default)]
struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// The layer: install with `tracing_subscriber::registry().with(HandshakeFailures)`.
#[derive(Debug, Default)]
pub struct HandshakeFailures;

impl<S> Layer<S> for HandshakeFailures
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut visitor = UriVisitor::default();
        attrs.record(&mut visitor);
        if let (Some(uri), Some(span)) = (visitor.0, ctx.span(id)) {
            span.extensions_mut().insert(SpanUri(uri));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut message = MessageVisitor::default();
        event.record(&mut message);
        if message.0 != "Failed to establish TLS connection" {
            return;
        }
        let host = ctx
            .event_scope(event)
            .and_then(|scope| {
                scope
                    .into_iter()
                    .find_map(|span| span.extensions().get::<SpanUri>().map(|u| u.0.clone()))
            })
            .map(|uri| {
                uri.rsplit_once(':')
                    .map_or(uri.clone(), |(h, _)| h.to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let metrics = crate::metrics::get();
        let counter = &metrics.handshake_failures;
        let known = counter.with_label_values(&[host.as_str()]).get() > 0;
        let label = if known {
            host
        } else if metrics.handshake_hosts.get() < MAX_HOSTS as i64 {
            metrics.handshake_hosts.inc();
            host
        } else {
            "other".to_owned()
        };
        counter.with_label_values(&[label.as_str()]).inc();
    }
}

/// Installs the layer as the process's subscriber (once, at start).
pub fn install() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let subscriber = tracing_subscriber::registry().with(HandshakeFailures);
    let _ = tracing::subscriber::set_global_default(subscriber);
}
