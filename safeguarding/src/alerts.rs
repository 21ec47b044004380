//! Which events alert the DSL, and how repeats are folded together.
//!
//! The policy decides which decisions alert and at which severity (per role, category and
//! theme); here an alerting event becomes an alert, unless the same person, theme and term
//! has an open one within the de-duplication window, which then counts the hit instead.
//! Enough hits in the escalation window raise the severity one step and send an update.
//! Alerts and their messages are written to the outbox in one transaction per batch.

use crate::config::AlertSettings;
use crate::event::Event;
use crate::metrics::Metrics;
use crate::outbox::{queue, NewDelivery, Outbox};
use crate::Error;
use rusqlite::params;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

pub const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

fn rank(severity: &str) -> usize {
    SEVERITIES.iter().position(|s| *s == severity).unwrap_or(1)
}

/// An alert still collecting repeats.
#[derive(Debug)]
struct Open {
    id: i64,
    last_seen_ms: i64,
    count: i64,
    severity: usize,
    /// Hits inside the escalation window since the last escalation.
    hits: VecDeque<i64>,
}

#[derive(Debug)]
pub struct AlertEngine {
    settings: AlertSettings,
    outbox: Outbox,
    open: HashMap<String, Open>,
    metrics: Arc<Metrics>,
}

/// The parts of an event an alert is about.
struct Subject<'a> {
    key: String,
    theme: &'a str,
    term: String,
}

fn subject(e: &Event) -> Subject<'_> {
    let theme = e
        .themes
        .first()
        .or_else(|| e.categories.first())
        .map_or("unlisted", String::as_str);
    let term = e
        .terms
        .first()
        .cloned()
        .or_else(|| e.search_term.clone())
        .unwrap_or_else(|| e.host.clone())
        .to_lowercase();
    Subject {
        key: format!(
            "{}|{}|{theme}|{term}",
            e.site.as_deref().unwrap_or(""),
            e.who()
        ),
        theme,
        term,
    }
}

fn event_ms(e: &Event, now_ms: i64) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&e.time).map_or(now_ms, |t| t.timestamp_millis())
}

impl AlertEngine {
    /// Starts with the alerts of the last de-duplication window, so a restart does not
    /// raise a second alert for the same burst.
    pub fn new(
        settings: AlertSettings,
        outbox: Outbox,
        metrics: Arc<Metrics>,
        now_ms: i64,
    ) -> Result<AlertEngine, Error> {
        let window = settings.dedup_minutes as i64 * 60_000;
        let mut open = HashMap::new();
        for (key, row) in outbox.recent_alerts(now_ms - window)? {
            open.insert(
                key,
                Open {
                    id: row.id,
                    last_seen_ms: row.last_seen_ms,
                    count: row.count,
                    severity: rank(&row.severity),
                    hits: VecDeque::new(),
                },
            );
        }
        Ok(AlertEngine {
            settings,
            outbox,
            open,
            metrics,
        })
    }

    /// Raises or updates the alerts for one batch of events.
    pub fn observe(&mut self, events: &[Event], now_ms: i64) -> Result<(), Error> {
        if !events.iter().any(|e| e.alert.is_some()) {
            return Ok(());
        }
        let settings = &self.settings;
        let open = &mut self.open;
        let metrics = &self.metrics;
        let window = settings.dedup_minutes as i64 * 60_000;
        let escalate_window = settings.escalate_minutes as i64 * 60_000;
        self.outbox.transaction(|tx| {
            for e in events {
                let Some(severity) = e.alert.as_deref() else {
                    continue;
                };
                let s = subject(e);
                let at = event_ms(e, now_ms);
                if let Some(o) = open
                    .get_mut(&s.key)
                    .filter(|o| at - o.last_seen_ms <= window)
                {
                    o.count += 1;
                    o.last_seen_ms = o.last_seen_ms.max(at);
                    o.hits.push_back(at);
                    while o.hits.front().is_some_and(|&h| h < at - escalate_window) {
                        o.hits.pop_front();
                    }
                    let mut escalated = false;
                    if o.hits.len() as u64 >= settings.escalate_hits.max(1)
                        && o.severity + 1 < SEVERITIES.len()
                    {
                        o.severity += 1;
                        o.hits.clear();
                        escalated = true;
                    }
                    o.severity = o.severity.max(rank(severity));
                    tx.execute(
                        "UPDATE alerts SET count = ?2, last_seen = ?3, last_seen_ms = ?4, \
                         severity = ?5 WHERE id = ?1",
                        params![o.id, o.count, e.time, o.last_seen_ms, SEVERITIES[o.severity]],
                    )?;
                    metrics.alerts_repeated.inc();
                    if escalated {
                        metrics.alerts_escalated.inc();
                        // A message still waiting will carry the new severity itself; only
                        // an alert already sent gets an update.
                        let waiting: i64 = tx.query_row(
                            "SELECT COUNT(*) FROM deliveries WHERE alert_id = ?1                              AND state = 'pending'",
                            [o.id],
                            |r| r.get(0),
                        )?;
                        if waiting == 0 {
                            queue_messages(tx, settings, o.id, e, "escalation", now_ms)?;
                        }
                    }
                    continue;
                }
                tx.execute(
                    "INSERT INTO alerts (dedup_key, site, user_name, client_ip, role, theme, \
                     term, host, url, search_term, severity, first_seen, last_seen, \
                     last_seen_ms, count, excerpt, person) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, \
                     ?8, ?9, ?10, ?11, ?12, ?12, ?13, 1, ?14, ?15)",
                    params![
                        s.key,
                        e.site,
                        e.user,
                        e.client_ip,
                        e.role,
                        s.theme,
                        s.term,
                        e.host,
                        e.url,
                        e.search_term,
                        severity,
                        e.time,
                        at,
                        e.excerpt,
                        e.person
                    ],
                )?;
                let id = tx.last_insert_rowid();
                metrics.alerts_raised.with_label_values(&[severity]).inc();
                queue_messages(tx, settings, id, e, "alert", now_ms)?;
                open.insert(
                    s.key,
                    Open {
                        id,
                        last_seen_ms: at,
                        count: 1,
                        severity: rank(severity),
                        hits: VecDeque::from([at]),
                    },
                );
            }
            Ok(())
        })?;
        // Forget alerts whose window has passed.
        self.open.retain(|_, o| now_ms - o.last_seen_ms <= window);
        Ok(())
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }
}

/// Queues the messages of an alert for its site's DSLs and webhooks. They are rendered
/// when sent, so they carry the count reached by then.
fn queue_messages(
    tx: &rusqlite::Transaction<'_>,
    settings: &AlertSettings,
    alert_id: i64,
    e: &Event,
    kind: &'static str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let Some(route) = settings.route(e.site.as_deref()) else {
        return Ok(());
    };
    let due = now_ms + settings.hold_secs as i64 * 1000;
    for dsl in &route.dsl {
        let d = NewDelivery {
            kind,
            channel: "email",
            target: dsl.clone(),
            ..NewDelivery::default()
        };
        queue(tx, Some(alert_id), &d, due)?;
    }
    for hook in &route.webhooks {
        let d = NewDelivery {
            kind,
            channel: "webhook",
            target: hook.url.clone(),
            format: format!("{:?}", hook.format).to_lowercase(),
            secret_file: hook.secret_file.clone(),
            ..NewDelivery::default()
        };
        queue(tx, Some(alert_id), &d, due)?;
    }
    Ok(())
}
