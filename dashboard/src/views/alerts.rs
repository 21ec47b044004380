//! The DSL's inbox: safeguarding alerts with severity, theme, who, device, when and the
//! evidence; each can be acknowledged, noted, and resolved as a concern, no concern or a
//! false positive. An alert's page shows the requests around it and the person's history.

use super::{fields, FormBody, Page};
use crate::app::{Admin, Need};
use crate::html::{csrf_field, esc, layout, problem, url_value, when};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use gatehouse_safeguarding::outbox::{AlertRow, InboxFilter};
use gatehouse_safeguarding::store::Query as EventQuery;
use std::collections::HashMap;
use std::sync::Arc;

fn state_words(state: &str) -> &str {
    match state {
        "open" => "New",
        "acknowledged" => "Acknowledged",
        "resolved:concern" => "Resolved: concern",
        "resolved:no-concern" => "Resolved: no concern",
        "resolved:false-positive" => "Resolved: false positive",
        other => other,
    }
}

/// "Amy Pupil, Year 9, 9B (amy.pupil)" when the directory names the account.
fn who(a: &AlertRow) -> String {
    match (&a.person, &a.user) {
        (Some(p), Some(u)) => format!("{p} ({u})"),
        (_, Some(u)) => u.clone(),
        (_, None) => a.client_ip.clone(),
    }
}

fn rows(alerts: &[AlertRow], tz: chrono_tz::Tz) -> String {
    if alerts.is_empty() {
        return "<p class=\"muted\">No alerts here.</p>".to_owned();
    }
    let mut out = String::from(
        "<table><thead><tr><th>Severity</th><th>Theme</th><th>Who</th><th>Device</th><th>Role</th>\
         <th>Evidence</th><th>Last seen</th><th>Times</th><th>State</th></tr></thead><tbody>",
    );
    for a in alerts {
        let evidence = a
            .search_term
            .clone()
            .map_or_else(|| a.url.clone(), |t| format!("search \u{201c}{t}\u{201d}"));
        out.push_str(&format!(
            "<tr><td class=\"sev-{sev}\">{sev}</td><td>{theme}</td><td><a href=\"/alerts/{id}\">{who}</a></td><td>{ip}</td>\
             <td>{role}</td><td>{evidence}</td><td>{at}</td><td class=\"num\">{count}</td><td>{state}</td></tr>",
            sev = esc(&a.severity),
            theme = esc(&a.theme),
            id = a.id,
            who = esc(&who(a)),
            ip = esc(&a.client_ip),
            role = esc(&a.role),
            evidence = esc(&evidence),
            at = esc(&when(&a.last_seen, tz)),
            count = a.count,
            state = esc(state_words(&a.state)),
        ));
    }
    out.push_str("</tbody></table>");
    out
}

pub async fn inbox(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    let s = admin.who(&headers, Need::Dsl, "/alerts")?;
    let show = q.get("show").map_or("open", String::as_str);
    let filter = match show {
        "resolved" => InboxFilter::Resolved,
        "all" => InboxFilter::All,
        _ => InboxFilter::Open,
    };
    let person = q.get("person").filter(|p| !p.is_empty()).cloned();
    let p = person.clone();
    let alerts = admin
        .with_outbox(move |o| o.inbox(filter, p.as_deref(), 500))
        .await?;
    let mut body = String::from("<p class=\"noprint\">Show: ");
    for (key, label) in [("open", "to do"), ("resolved", "resolved"), ("all", "all")] {
        if key == show {
            body.push_str(&format!("<strong>{label}</strong> "));
        } else {
            body.push_str(&format!("<a href=\"/alerts?show={key}\">{label}</a> "));
        }
    }
    body.push_str("</p>");
    if let Some(p) = &person {
        body.push_str(&format!("<p>History of <strong>{}</strong>.</p>", esc(p)));
    }
    body.push_str(&rows(&alerts, admin.timezone()));
    Ok(layout(&s, "/alerts", "Safeguarding alerts", &body))
}

pub async fn detail(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Page {
    let s = admin.who(&headers, Need::Dsl, &format!("/alerts/{id}"))?;
    let found = admin
        .with_outbox(move |o| Ok((o.alert(id)?, o.history(id)?)))
        .await?;
    let (Some(a), history) = found else {
        return Err(problem(
            StatusCode::NOT_FOUND,
            "There is no such alert.",
            "/alerts",
        ));
    };
    let tz = admin.timezone();
    let person = who(&a);
    let mut body = format!(
        "<table><tbody>\
         <tr><th scope=\"row\">Severity</th><td class=\"sev-{sev}\">{sev}</td></tr>\
         <tr><th scope=\"row\">Theme</th><td>{theme}</td></tr>\
         <tr><th scope=\"row\">Matched</th><td>{term}</td></tr>\
         <tr><th scope=\"row\">Who</th><td>{who} <span class=\"muted\">(role {role}{site})</span></td></tr>\
         <tr><th scope=\"row\">Device</th><td>{ip}</td></tr>\
         <tr><th scope=\"row\">Search</th><td id=\"evidence-search\">{search}</td></tr>\
         <tr><th scope=\"row\">Address</th><td>{url}</td></tr>\
         <tr><th scope=\"row\">First seen</th><td>{first}</td></tr>\
         <tr><th scope=\"row\">Last seen</th><td>{last} ({count} time{plural})</td></tr>\
         <tr><th scope=\"row\">State</th><td id=\"alert-state\">{state}</td></tr>\
         </tbody></table>",
        sev = esc(&a.severity),
        theme = esc(&a.theme),
        term = esc(&a.term),
        who = esc(&person),
        role = esc(&a.role),
        site = a.site.as_deref().map_or(String::new(), |s| format!(", site {}", esc(s))),
        ip = esc(&a.client_ip),
        search = esc(a.search_term.as_deref().unwrap_or("\u{2014}")),
        url = esc(&a.url),
        first = esc(&when(&a.first_seen, tz)),
        last = esc(&when(&a.last_seen, tz)),
        count = a.count,
        plural = if a.count == 1 { "" } else { "s" },
        state = esc(state_words(&a.state)),
    );
    body.push_str(&format!(
        "<h2>Triage</h2><form method=\"post\" action=\"/alerts/{id}\" class=\"stack\">{csrf}\
         <label for=\"note\">Note</label><textarea id=\"note\" name=\"note\" maxlength=\"4000\"></textarea>\
         <label for=\"outcome\">Outcome (when resolving)</label><select id=\"outcome\" name=\"outcome\">\
         <option value=\"concern\">Concern: action taken</option><option value=\"no-concern\">No concern</option>\
         <option value=\"false-positive\">False positive</option></select>\
         <p><button name=\"action\" value=\"acknowledge\" class=\"secondary\">Acknowledge</button> \
         <button name=\"action\" value=\"note\" class=\"secondary\">Add note</button> \
         <button name=\"action\" value=\"resolve\">Resolve</button> \
         <button name=\"action\" value=\"reopen\" class=\"secondary\">Reopen</button></p></form>",
        id = a.id,
        csrf = csrf_field(&s)
    ));
    body.push_str("<h2>History of this alert</h2>");
    if history.is_empty() {
        body.push_str("<p class=\"muted\">Nobody has acted on it yet.</p>");
    } else {
        body.push_str("<table id=\"history\"><thead><tr><th>When</th><th>Who</th><th>Action</th><th>Note</th></tr></thead><tbody>");
        for (at, author, action, note) in &history {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&when(at, tz)),
                esc(author),
                esc(state_words(action)),
                esc(note)
            ));
        }
        body.push_str("</tbody></table>");
    }
    // The requests of this person around the alert: ten minutes either side of it.
    let around = surrounding(&admin, &a).await;
    body.push_str("<h2>Requests around it</h2>");
    body.push_str(&around);
    body.push_str(&format!(
        "<p><a href=\"/alerts?show=all&amp;person={p}\">Every alert of {pe}</a> · \
         <a href=\"/timeline?person={p}\">{pe}'s timeline</a></p>",
        p = url_value(&person),
        pe = esc(&person)
    ));
    Ok(layout(&s, "/alerts", &format!("Alert {}", a.id), &body))
}

async fn surrounding(admin: &Arc<Admin>, a: &AlertRow) -> String {
    let (Ok(first), Ok(last)) = (
        a.first_seen.parse::<chrono::DateTime<chrono::Utc>>(),
        a.last_seen.parse::<chrono::DateTime<chrono::Utc>>(),
    ) else {
        return String::new();
    };
    let q = EventQuery {
        user: a.user.clone(),
        client_ip: a.user.is_none().then(|| a.client_ip.clone()),
        from: Some(gatehouse_safeguarding::store::timestamp(
            first - chrono::Duration::minutes(10),
        )),
        to: Some(gatehouse_safeguarding::store::timestamp(
            last + chrono::Duration::minutes(10),
        )),
        limit: 200,
        ..EventQuery::default()
    };
    match admin.with_store(move |store| store.query(&q)).await {
        Ok(events) => super::logs::table(&events, admin.timezone()),
        Err(_) => "<p class=\"muted\">The event store cannot be read.</p>".to_owned(),
    }
}

pub async fn triage(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: FormBody,
) -> Page {
    let back = format!("/alerts/{id}");
    let f = fields(form);
    let s = admin.who_posting(&headers, &f, Need::Dsl, &back)?;
    let note = f.get("note").unwrap_or("").trim().to_owned();
    if note.chars().count() > 4000 {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            "A note can be at most 4,000 characters. Nothing was changed.",
            &back,
        ));
    }
    let state = match f.get("action") {
        Some("acknowledge") => "acknowledged".to_owned(),
        Some("reopen") => "open".to_owned(),
        Some("resolve") => match f.get("outcome") {
            Some(o @ ("concern" | "no-concern" | "false-positive")) => format!("resolved:{o}"),
            _ => {
                return Err(problem(
                    StatusCode::BAD_REQUEST,
                    "Choose an outcome (concern, no concern or false positive) to resolve an alert. Nothing was changed.",
                    &back,
                ))
            }
        },
        Some("note") => {
            if note.is_empty() {
                return Err(problem(
                    StatusCode::BAD_REQUEST,
                    "The note is empty. Nothing was changed.",
                    &back,
                ));
            }
            String::new()
        }
        _ => {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "Unknown action: choose acknowledge, add note, resolve or reopen. Nothing was changed.",
                &back,
            ))
        }
    };
    let (name, at) = (s.name.clone(), crate::now_text());
    let n = note.clone();
    let st = state.clone();
    let before = admin
        .with_outbox(move |o| {
            let Some(current) = o.alert(id)? else {
                return Ok(None);
            };
            let new_state = if st.is_empty() {
                current.state.clone()
            } else {
                st
            };
            o.triage(id, &new_state, &name, &at, &n)?;
            Ok(Some((current.state, new_state)))
        })
        .await?;
    let Some((before, after)) = before else {
        return Err(problem(
            StatusCode::NOT_FOUND,
            "There is no such alert.",
            "/alerts",
        ));
    };
    let (actor, target) = (s.name.clone(), format!("alert {id}"));
    admin
        .with_db(move |db| {
            crate::audit::record(
                db,
                &actor,
                "alert-triage",
                &target,
                &before,
                &if note.is_empty() {
                    after
                } else {
                    format!("{after}; note: {note}")
                },
            )
        })
        .await?;
    Ok(Redirect::to(&back).into_response())
}
