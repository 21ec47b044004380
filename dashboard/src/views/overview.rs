//! The overview: requests, blocks and alerts over the last hour, day or week as a chart; the
//! top blocked categories and sites and the people with most flagged events as bar charts;
//! the policy's generation and how fresh its lists are; the proxy's health.

use super::Page;
use crate::app::{Admin, Need};
use crate::charts::{bars, lines, Series};
use crate::html::{esc, layout};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Duration, DurationRound as _, Utc};
use std::collections::HashMap;
use std::sync::Arc;

/// A range the overview can show: its length, the bucket width, and the stored timestamp's
/// prefix that names a bucket.
struct Range {
    name: &'static str,
    length: Duration,
    step: Duration,
    chars: usize,
    label: &'static str,
}

const RANGES: [Range; 3] = [
    Range {
        name: "hour",
        length: Duration::hours(1),
        step: Duration::minutes(1),
        chars: 16,
        label: "%H:%M",
    },
    Range {
        name: "day",
        length: Duration::days(1),
        step: Duration::hours(1),
        chars: 13,
        label: "%H:00",
    },
    Range {
        name: "week",
        length: Duration::days(7),
        step: Duration::hours(1),
        chars: 13,
        label: "%a %H:00",
    },
];

pub async fn page(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    let s = admin.who(&headers, Need::Anyone, "/")?;
    let range = RANGES
        .iter()
        .find(|r| Some(r.name) == q.get("range").map(String::as_str))
        .unwrap_or(&RANGES[1]);
    let now = Utc::now();
    let start = (now - range.length)
        .duration_trunc(range.step)
        .unwrap_or(now - range.length);
    let since = gatehouse_safeguarding::store::timestamp(start);
    let chars = range.chars;
    let summary = if admin.parts.store.is_some() {
        admin
            .with_store(move |store| store.summary(&since, chars, 10))
            .await
            .ok()
    } else {
        None
    };
    let tz = admin.timezone();
    let mut body = String::from("<p class=\"noprint\">Show the last ");
    for r in &RANGES {
        if r.name == range.name {
            body.push_str(&format!("<strong>{}</strong> ", r.name));
        } else {
            body.push_str(&format!("<a href=\"/?range={0}\">{0}</a> ", r.name));
        }
    }
    body.push_str("</p>");
    match &summary {
        Some(sum) => {
            let (labels, series, totals) = fill(sum, start, now, range, tz);
            body.push_str(&format!(
                "<div class=\"cards\"><div class=\"card\"><div class=\"muted\">Requests</div><div class=\"big\" id=\"total-requests\">{}</div></div>\
                 <div class=\"card\"><div class=\"muted\">Blocked</div><div class=\"big\" id=\"total-blocked\">{}</div></div>\
                 <div class=\"card\"><div class=\"muted\">Alerting requests</div><div class=\"big\" id=\"total-alerts\">{}</div></div></div>",
                totals.0, totals.1, totals.2
            ));
            body.push_str("<h2>Over time</h2>");
            body.push_str(&lines(
                &format!("Requests, blocks and alerts, last {}", range.name),
                &labels,
                &series,
            ));
            body.push_str("<div class=\"cards\"><div><h2>Top blocked categories</h2>");
            body.push_str(&bars("Top blocked categories", &sum.top_blocked_labels, "#a40000"));
            body.push_str("</div><div><h2>Top blocked sites</h2>");
            body.push_str(&bars("Top blocked sites", &sum.top_blocked_hosts, "#c0504d"));
            body.push_str("</div>");
            if matches!(s.role, crate::accounts::Role::Dsl | crate::accounts::Role::It) {
                body.push_str("<div><h2>People with most flagged events</h2>");
                body.push_str(&bars(
                    "People with most flagged events",
                    &sum.top_flagged_people,
                    "#9a5b00",
                ));
                body.push_str("</div>");
            }
            body.push_str("</div>");
        }
        None => body.push_str(
            "<p class=\"muted\">Events are not stored or the store cannot be read, so there is no history to chart.</p>",
        ),
    }
    body.push_str(&policy_card(&admin));
    body.push_str("<h2>Proxy health</h2><table><tbody>");
    for (what, value) in (admin.parts.health)() {
        body.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td class=\"num\">{}</td></tr>",
            esc(&what),
            esc(&value)
        ));
    }
    body.push_str("</tbody></table>");
    Ok(layout(&s, "/", "Overview", &body))
}

type Filled<'a> = (Vec<String>, Vec<Series<'a>>, (i64, i64, i64));

/// Every bucket from `start` to `now`, zero where the store has none.
fn fill<'a>(
    sum: &gatehouse_safeguarding::store::Summary,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
    range: &Range,
    tz: chrono_tz::Tz,
) -> Filled<'a> {
    let found: HashMap<&str, (i64, i64, i64)> = sum
        .buckets
        .iter()
        .map(|(b, n, blocked, alerts)| (b.as_str(), (*n, *blocked, *alerts)))
        .collect();
    let (mut labels, mut req, mut blk, mut alr) = (vec![], vec![], vec![], vec![]);
    let mut t = start;
    while t <= now {
        let key = gatehouse_safeguarding::store::timestamp(t);
        let (n, b, a) = found
            .get(&key[..range.chars.min(key.len())])
            .copied()
            .unwrap_or_default();
        labels.push(t.with_timezone(&tz).format(range.label).to_string());
        req.push(n);
        blk.push(b);
        alr.push(a);
        t += range.step;
    }
    let totals = (req.iter().sum(), blk.iter().sum(), alr.iter().sum());
    let series = vec![
        Series {
            name: "requests",
            colour: "#1f5fbf",
            values: req,
        },
        Series {
            name: "blocked",
            colour: "#a40000",
            values: blk,
        },
        Series {
            name: "alerting",
            colour: "#e08a00",
            values: alr,
        },
    ];
    (labels, series, totals)
}

/// The policy in force: generation, size, and the age of its newest and oldest list files.
fn policy_card(admin: &Admin) -> String {
    let control = &admin.parts.policy;
    let report = control.report();
    let generation = control.live().generation();
    let now = std::time::SystemTime::now();
    let ages: Vec<u64> = report
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(&f.path).and_then(|m| m.modified()).ok())
        .filter_map(|m| now.duration_since(m).ok())
        .map(|d| d.as_secs() / 86_400)
        .collect();
    let freshness = match (ages.iter().min(), ages.iter().max()) {
        (Some(newest), Some(oldest)) => format!(
            "newest list file {newest} day{} old, oldest {oldest} day{} old",
            if *newest == 1 { "" } else { "s" },
            if *oldest == 1 { "" } else { "s" }
        ),
        _ => "no list files".to_owned(),
    };
    format!(
        "<h2>Policy</h2><div class=\"cards\"><div class=\"card\"><div class=\"muted\">Generation</div><div class=\"big\" id=\"policy-generation\">{generation}</div></div>\
         <div class=\"card\"><div class=\"muted\">Domains listed</div><div class=\"big\">{}</div><div class=\"muted\">{} URL prefixes, {} list files, {} bad lines skipped</div></div>\
         <div class=\"card\"><div class=\"muted\">List freshness</div><div>{}</div></div></div>",
        report.distinct_domains,
        report.url_prefixes,
        report.files.len(),
        report.skipped_lines(),
        esc(&freshness)
    )
}
