//! Deciding and recording: the decision timed into its histogram, one event per request
//! with the DfE fields, and the alert of an alerting decision made durable before the
//! response leaves.

use super::{Conn, Identity};
use crate::events::Event;
use crate::metrics;
use gatehouse_rules::{evaluate, summarise, Decision, Facts, Snapshot, Verdict};
use std::sync::Arc;
use std::time::Instant;

pub fn decide(snap: &Snapshot, facts: &Facts<'_>) -> Decision {
    let started = Instant::now();
    let decision = evaluate(snap, facts);
    metrics::get()
        .decision_seconds
        .observe(started.elapsed().as_secs_f64());
    decision
}

/// The event for a decided request (status, size and duration are filled in by
/// [`finish`]), counted in the request metrics.
pub fn event(
    conn: &Conn,
    who: &Identity,
    snap: &Snapshot,
    facts: &Facts<'_>,
    decision: &Decision,
    url: &str,
    host: &str,
) -> Event {
    let event = uncounted(conn, who, snap, facts, decision, url, host);
    let m = metrics::get();
    m.requests
        .with_label_values(&[event.verdict.as_str(), event.role.as_str()])
        .inc();
    if decision.verdict == Verdict::Block {
        for c in &event.categories {
            m.blocked_categories.with_label_values(&[c.as_str()]).inc();
        }
    }
    if let Some(a) = &event.alert {
        m.alerts.with_label_values(&[a.as_str()]).inc();
    }
    event
}

/// The event of a CONNECT the filter decrypts: the tunnel itself is logged, but every
/// request inside it is decided, counted and alerted on its own, so this one carries no
/// verdict of its own and raises nothing.
pub fn tunnel(
    conn: &Conn,
    who: &Identity,
    snap: &Snapshot,
    facts: &Facts<'_>,
    decision: &Decision,
    url: &str,
    host: &str,
) -> Event {
    let mut event = uncounted(conn, who, snap, facts, decision, url, host);
    event.verdict = "allow".to_owned();
    event.alert = None;
    event.sensitive = false;
    event.rule = "tunnel".to_owned();
    event.reason =
        "Tunnel opened and decrypted; every request inside it is decided and logged on its own."
            .to_owned();
    event
}

/// The mark on an event's rule when the search's context lowered the theme that decided.
pub const LOWERED: &str = gatehouse_safeguarding::digest::LOWERED;

/// The event of a decision as decided, without counting it (for a tunnel whose requests
/// would have been counted had it carried any).
pub fn uncounted(
    conn: &Conn,
    who: &Identity,
    snap: &Snapshot,
    facts: &Facts<'_>,
    decision: &Decision,
    url: &str,
    host: &str,
) -> Event {
    let e = summarise(snap, facts, decision);
    let verdict = format!("{:?}", decision.verdict).to_lowercase();
    let alert = e
        .alert
        .map(|s| gatehouse_rules::explain::severity_name(s).to_owned());
    // The directory's site for the person, else the network's.
    let site = who.site.clone().or_else(|| {
        facts
            .client
            .and_then(|ip| snap.network_of(ip))
            .and_then(|n| n.site.clone())
    });
    // A theme hit the search's context lowered is marked, so the digest can show the DSL
    // what the model judged to be study, news or help-seeking.
    let mut rule = e.rule;
    if let gatehouse_rules::Rule::Theme { theme } = decision.rule {
        if decision.lowered.contains(theme) {
            rule.push_str(LOWERED);
        }
    }
    Event {
        time: e.at.clone(),
        request_id: crate::pages::request_id(),
        client_ip: facts.client.map(|c| c.to_string()).unwrap_or_default(),
        user: facts.user.map(str::to_owned),
        person: who.person.clone(),
        identified_by: who.how.label().to_owned(),
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
        rule,
        reason: e.reason,
        status: 0,
        bytes: None,
        duration_ms: 0.0,
        decrypted: conn.decrypted(),
        excerpt: None,
    }
}

/// Marks an event as refused by the filter itself (not by a rule): a CONNECT to an
/// address or port the filter never reaches, a tunnel that carried neither TLS nor HTTP.
pub fn refused(event: &mut Event, rule: &str, reason: String) {
    event.verdict = "block".to_owned();
    event.rule = rule.to_owned();
    event.reason = reason;
}

/// Completes and sends the event; an alerting one is made durable first (rare: only
/// decisions the policy marks as alerting; off the async workers).
pub async fn finish(
    conn: &Conn,
    mut event: Event,
    status: u16,
    bytes: Option<u64>,
    started: Instant,
) {
    event.status = status;
    event.bytes = bytes;
    event.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let alerting = event.alert.is_some().then(|| event.clone());
    conn.shared.events.send(event);
    if let Some(event) = alerting {
        let pipeline = Arc::clone(&conn.shared.safeguarding);
        let _ = tokio::task::spawn_blocking(move || pipeline.raise(&event)).await;
    }
}
