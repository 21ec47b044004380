//! Log search (by person, address, time range, category or theme, verdict), CSV export of
//! the same search, and one person's timeline.

use super::Page;
use crate::app::{Admin, Need};
use crate::html::{esc, layout, problem, url_value, when};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDateTime, TimeZone as _};
use gatehouse_safeguarding::store::Query as EventQuery;
use gatehouse_safeguarding::Event;
use std::collections::HashMap;
use std::sync::Arc;

/// Rows shown on the page; the CSV export takes up to [`CSV_LIMIT`].
const PAGE_LIMIT: usize = 500;
const CSV_LIMIT: usize = 100_000;

/// The search in the query string, checked. `Err` names the bad field.
fn parse(q: &HashMap<String, String>, tz: chrono_tz::Tz) -> Result<EventQuery, String> {
    let text = |k: &str| {
        q.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let time = |k: &str| -> Result<Option<String>, String> {
        let Some(v) = text(k) else { return Ok(None) };
        let naive = NaiveDateTime::parse_from_str(&v, "%Y-%m-%dT%H:%M")
            .or_else(|_| NaiveDateTime::parse_from_str(&v, "%Y-%m-%dT%H:%M:%S"))
            .map_err(|_| {
                format!(
                    "\u{201c}{k}\u{201d} must be a date and time like 2026-11-23T09:30 (got {v:?})"
                )
            })?;
        let local = tz.from_local_datetime(&naive).earliest().ok_or_else(|| {
            format!("\u{201c}{k}\u{201d}: {v} does not exist in {tz} (clocks changed)")
        })?;
        Ok(Some(gatehouse_safeguarding::store::timestamp(
            local.with_timezone(&chrono::Utc),
        )))
    };
    let verdict = text("verdict");
    if let Some(v) = &verdict {
        if !matches!(v.as_str(), "allow" | "block" | "warn") {
            return Err(format!(
                "\u{201c}verdict\u{201d} must be allow, warn or block (got {v:?})"
            ));
        }
    }
    let client_ip = text("ip");
    if let Some(ip) = &client_ip {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!(
                "\u{201c}ip\u{201d} must be an IP address (got {ip:?})"
            ));
        }
    }
    Ok(EventQuery {
        user: text("user"),
        client_ip,
        from: time("from")?,
        to: time("to")?,
        label: text("category"),
        verdict,
        site: text("site"),
        flagged_only: q.get("flagged").is_some_and(|v| v == "on" || v == "1"),
        limit: PAGE_LIMIT,
    })
}

/// Events as a table, newest first.
pub(crate) fn table(events: &[Event], tz: chrono_tz::Tz) -> String {
    if events.is_empty() {
        return "<p class=\"muted\">No matching requests.</p>".to_owned();
    }
    let mut out = String::from(
        "<table class=\"events\"><thead><tr><th>Time</th><th>Who</th><th>Device</th><th>Role</th><th>Address or search</th>\
         <th>Categories</th><th>Decision</th><th>Alert</th></tr></thead><tbody>",
    );
    for e in events {
        let what = e.search_term.as_ref().map_or_else(
            || esc(&e.url),
            |t| {
                format!(
                    "search \u{201c}{}\u{201d} <span class=\"muted\">{}</span>",
                    esc(t),
                    esc(&e.host)
                )
            },
        );
        let labels: Vec<&str> = e
            .categories
            .iter()
            .chain(&e.themes)
            .map(String::as_str)
            .collect();
        out.push_str(&format!(
            "<tr><td>{}</td><td><a href=\"/timeline?person={}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"verdict-{v}\">{v}</td><td class=\"sev-{a}\">{a}</td></tr>",
            esc(&when(&e.time, tz)),
            url_value(e.who()),
            esc(e.who()),
            esc(&e.client_ip),
            esc(&e.role),
            what,
            esc(&labels.join(", ")),
            v = esc(&e.verdict),
            a = esc(e.alert.as_deref().unwrap_or("")),
        ));
    }
    out.push_str("</tbody></table>");
    out
}

fn filters(q: &HashMap<String, String>) -> String {
    let v = |k: &str| esc(q.get(k).map_or("", String::as_str));
    let verdicts = ["", "allow", "warn", "block"]
        .iter()
        .map(|o| {
            let sel = if q.get("verdict").map(String::as_str) == Some(o) {
                " selected"
            } else {
                ""
            };
            format!(
                "<option value=\"{o}\"{sel}>{}</option>",
                if o.is_empty() { "any" } else { o }
            )
        })
        .collect::<String>();
    format!(
        "<form method=\"get\" action=\"/logs\" class=\"filters\">\
         <label>User<input type=\"search\" name=\"user\" value=\"{}\"></label>\
         <label>IP address<input type=\"search\" name=\"ip\" value=\"{}\"></label>\
         <label>From<input type=\"datetime-local\" name=\"from\" value=\"{}\"></label>\
         <label>To<input type=\"datetime-local\" name=\"to\" value=\"{}\"></label>\
         <label>Category or theme<input type=\"search\" name=\"category\" value=\"{}\"></label>\
         <label>Decision<select name=\"verdict\">{verdicts}</select></label>\
         <label>Flagged only<input type=\"checkbox\" name=\"flagged\" value=\"on\"{}></label>\
         <button>Search</button></form>",
        v("user"),
        v("ip"),
        v("from"),
        v("to"),
        v("category"),
        if q.get("flagged").is_some() {
            " checked"
        } else {
            ""
        }
    )
}

fn query_string(q: &HashMap<String, String>) -> String {
    let mut keys: Vec<_> = q.keys().collect();
    keys.sort();
    keys.iter()
        .map(|k| format!("{}={}", url_value(k), url_value(&q[*k])))
        .collect::<Vec<_>>()
        .join("&amp;")
}

pub async fn search(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    let s = admin.who(&headers, Need::ItOrDsl, "/logs")?;
    let tz = admin.timezone();
    let mut body = filters(&q);
    match parse(&q, tz) {
        Err(message) => {
            body.push_str(&format!(
                "<p class=\"error\" role=\"alert\">{}</p>",
                esc(&message)
            ));
            let mut res = layout(&s, "/logs", "Logs", &body);
            *res.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(res);
        }
        Ok(query) => {
            let events = admin.with_store(move |store| store.query(&query)).await?;
            body.push_str(&format!(
                "<p>{} request{} (newest first, at most {PAGE_LIMIT}). <a href=\"/logs.csv?{}\">Download as CSV</a></p>",
                events.len(),
                if events.len() == 1 { "" } else { "s" },
                query_string(&q)
            ));
            body.push_str(&table(&events, tz));
        }
    }
    Ok(layout(&s, "/logs", "Logs", &body))
}

/// A CSV cell: quoted, and a leading `=`, `+`, `-` or `@` defused so a spreadsheet does not
/// run it as a formula.
fn cell(text: &str) -> String {
    let guarded = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

pub async fn csv(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let s = admin.who(&headers, Need::ItOrDsl, "/logs")?;
    let mut query =
        parse(&q, admin.timezone()).map_err(|m| problem(StatusCode::BAD_REQUEST, &m, "/logs"))?;
    query.limit = CSV_LIMIT;
    let audit_what = format!("{query:?}");
    let events = admin.with_store(move |store| store.query(&query)).await?;
    let actor = s.name.clone();
    let n = events.len();
    admin
        .with_db(move |db| {
            crate::audit::record(
                db,
                &actor,
                "logs-export",
                &audit_what,
                "",
                &format!("{n} rows"),
            )
        })
        .await?;
    let mut out = String::from(
        "time,client_ip,user,role,site,method,host,url,search_term,categories,themes,verdict,alert,reason,status,decrypted\r\n",
    );
    for e in &events {
        let row = [
            e.time.clone(),
            e.client_ip.clone(),
            e.user.clone().unwrap_or_default(),
            e.role.clone(),
            e.site.clone().unwrap_or_default(),
            e.method.clone(),
            e.host.clone(),
            e.url.clone(),
            e.search_term.clone().unwrap_or_default(),
            e.categories.join(" "),
            e.themes.join(" "),
            e.verdict.clone(),
            e.alert.clone().unwrap_or_default(),
            e.reason.clone(),
            e.status.to_string(),
            e.decrypted.to_string(),
        ];
        out.push_str(&row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"gatehouse-logs.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}

pub async fn timeline(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    let s = admin.who(&headers, Need::ItOrDsl, "/timeline")?;
    let Some(person) = q
        .get("person")
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
    else {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            "Say whose timeline: a user name or an IP address.",
            "/logs",
        ));
    };
    let days: i64 = match q.get("days").map(|d| d.parse::<i64>()) {
        None => 7,
        Some(Ok(d)) if (1..=90).contains(&d) => d,
        Some(_) => {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "\u{201c}days\u{201d} must be a number from 1 to 90.",
                "/logs",
            ))
        }
    };
    let tz = admin.timezone();
    let from =
        gatehouse_safeguarding::store::timestamp(chrono::Utc::now() - chrono::Duration::days(days));
    let is_ip = person.parse::<std::net::IpAddr>().is_ok();
    let query = EventQuery {
        user: (!is_ip).then(|| person.clone()),
        client_ip: is_ip.then(|| person.clone()),
        from: Some(from),
        limit: 2000,
        ..EventQuery::default()
    };
    let mut events = admin.with_store(move |store| store.query(&query)).await?;
    events.reverse();
    let mut body = format!(
        "<p>{} request{} by <strong>{}</strong> in the last {days} day{}, oldest first. Flagged requests are marked.</p>",
        events.len(),
        if events.len() == 1 { "" } else { "s" },
        esc(&person),
        if days == 1 { "" } else { "s" }
    );
    let mut day = String::new();
    for e in &events {
        let local = e
            .time
            .parse::<chrono::DateTime<chrono::Utc>>()
            .map(|t| t.with_timezone(&tz));
        let (d, t) = local.map_or((String::new(), e.time.clone()), |l| {
            (
                l.format("%A %-d %B %Y").to_string(),
                l.format("%H:%M:%S").to_string(),
            )
        });
        if d != day {
            if !day.is_empty() {
                body.push_str("</ol>");
            }
            body.push_str(&format!("<h2>{}</h2><ol class=\"timeline\">", esc(&d)));
            day = d;
        }
        let what = e.search_term.as_ref().map_or_else(
            || esc(&e.url),
            |s| format!("searched \u{201c}{}\u{201d}", esc(s)),
        );
        let flag = if e.flagged() {
            " <strong class=\"sev-high\">flagged</strong>"
        } else {
            ""
        };
        body.push_str(&format!(
            "<li>{} <span class=\"verdict-{v}\">{v}</span> {what}{flag}</li>",
            esc(&t),
            v = esc(&e.verdict)
        ));
    }
    if !day.is_empty() {
        body.push_str("</ol>");
    }
    Ok(layout(&s, "/logs", &format!("Timeline of {person}"), &body))
}
