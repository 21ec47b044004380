//! Review requests from block pages: IT approves one for a role and a time (an approval in
//! the policy edits, which runs out by itself) or declines it.

use super::{fields, FormBody, Page};
use crate::app::{Admin, Need};
use crate::html::{csrf_field, esc, layout, problem, when};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use gatehouse_rules::overrides::Approval;
use std::sync::Arc;

/// The durations IT can approve for: `(form value, words, hours)`.
const DURATIONS: [(&str, &str, i64); 5] = [
    ("1h", "1 hour", 1),
    ("1d", "1 day", 24),
    ("1w", "1 week", 24 * 7),
    ("30d", "30 days", 24 * 30),
    ("1y", "1 year", 24 * 365),
];

pub async fn queue(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Page {
    let s = admin.who(&headers, Need::It, "/reviews")?;
    let (pending, done) = admin.with_db(|db| crate::reviews::list(db, 100)).await?;
    let snap = admin.parts.policy.live().load();
    let tz = admin.timezone();
    let mut body = String::new();
    if pending.is_empty() {
        body.push_str("<p class=\"muted\">No requests are waiting.</p>");
    } else {
        body.push_str("<table id=\"pending\"><thead><tr><th>When</th><th>Who</th><th>Address</th><th>Reason</th><th>Request id</th><th>Decision</th></tr></thead><tbody>");
        for r in &pending {
            let roles: String = snap
                .roles()
                .iter()
                .map(|x| {
                    let sel = if x.name == r.role { " selected" } else { "" };
                    format!("<option value=\"{0}\"{sel}>{0}</option>", esc(&x.name))
                })
                .collect();
            let durations: String = DURATIONS
                .iter()
                .map(|(v, w, _)| format!("<option value=\"{v}\">{w}</option>"))
                .collect();
            body.push_str(&format!(
                "<tr><td>{at}</td><td>{who} <span class=\"muted\">({role}, {ip})</span></td><td>{url}</td><td>{reason}</td><td><code>{rid}</code></td>\
                 <td><form method=\"post\" action=\"/reviews/{id}\">{csrf}\
                 <label>Role <select name=\"role\">{roles}</select></label> \
                 <label>For <select name=\"duration\">{durations}</select></label> \
                 <label>Scope <select name=\"scope\"><option value=\"host\">the whole site</option><option value=\"page\">this address only</option></select></label> \
                 <button name=\"decision\" value=\"approve\">Approve</button> <button name=\"decision\" value=\"decline\" class=\"danger\">Decline</button></form></td></tr>",
                at = esc(&when(&r.at, tz)),
                who = esc(r.user.as_deref().unwrap_or(&r.client_ip)),
                role = esc(&r.role),
                ip = esc(&r.client_ip),
                url = esc(&r.url),
                reason = esc(&r.reason),
                rid = esc(&r.request_id),
                id = r.id,
                csrf = csrf_field(&s),
            ));
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("<h2>Decided</h2>");
    if done.is_empty() {
        body.push_str("<p class=\"muted\">None yet.</p>");
    } else {
        body.push_str("<table><thead><tr><th>When asked</th><th>Who</th><th>Address</th><th>Reason</th><th>Decision</th><th>By</th></tr></thead><tbody>");
        for r in &done {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&when(&r.at, tz)),
                esc(r.user.as_deref().unwrap_or(&r.client_ip)),
                esc(&r.url),
                esc(&r.reason),
                esc(r.decision.as_deref().unwrap_or(&r.state)),
                esc(r.decided_by.as_deref().unwrap_or(""))
            ));
        }
        body.push_str("</tbody></table>");
    }
    Ok(layout(&s, "/reviews", "Review requests", &body))
}

/// The host or URL prefix an approval covers.
fn entry_for(url: &str, scope: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let host = rest
        .split('/')
        .next()?
        .rsplit_once('@')
        .map_or(rest.split('/').next()?, |(_, h)| h);
    let host = host.split(':').next()?.to_ascii_lowercase();
    if host.is_empty() || !host.contains('.') {
        return None;
    }
    match scope {
        "page" => {
            let path = rest.strip_prefix(rest.split('/').next()?).unwrap_or("");
            Some(format!("{host}{path}"))
        }
        _ => Some(host),
    }
}

pub async fn decide(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: FormBody,
) -> Page {
    let f = fields(form);
    let s = admin.who_posting(&headers, &f, Need::It, "/reviews")?;
    let review = admin.with_db(move |db| crate::reviews::get(db, id)).await?;
    let Some(review) = review.filter(|r| r.state == "pending") else {
        return Err(problem(StatusCode::NOT_FOUND, "There is no such request waiting (it may have been decided already). Nothing was changed.", "/reviews"));
    };
    let actor = s.name.clone();
    match f.need("decision", "/reviews")? {
        "decline" => {
            let a = actor.clone();
            admin
                .with_db(move |db| {
                    if crate::reviews::decide(db, id, &a, "declined", "declined")? {
                        crate::audit::record(
                            db,
                            &a,
                            "review-decline",
                            &format!("review {id}"),
                            &review.url,
                            "declined",
                        )?;
                    }
                    Ok(())
                })
                .await?;
        }
        "approve" => {
            let role = f.need("role", "/reviews")?.to_owned();
            if admin.parts.policy.live().load().role_id(&role).is_none() {
                return Err(problem(
                    StatusCode::BAD_REQUEST,
                    &format!("{role:?} is not a role of this policy. Nothing was changed."),
                    "/reviews",
                ));
            }
            let Some((_, words, hours)) = DURATIONS.iter().find(|d| Some(d.0) == f.get("duration"))
            else {
                return Err(problem(
                    StatusCode::BAD_REQUEST,
                    "Choose how long the approval lasts. Nothing was changed.",
                    "/reviews",
                ));
            };
            let scope = f.get("scope").unwrap_or("host");
            let Some(entry) = entry_for(&review.url, scope) else {
                return Err(problem(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "{:?} has no host name to approve. Nothing was changed.",
                        review.url
                    ),
                    "/reviews",
                ));
            };
            let until = chrono::Utc::now() + chrono::Duration::hours(*hours);
            let approval = Approval {
                role: role.clone(),
                entry: entry.clone(),
                until,
                review: Some(id),
            };
            let control = Arc::clone(&admin.parts.policy);
            let edited = tokio::task::spawn_blocking(move || {
                control.edit(
                    move |o| {
                        o.approvals.push(approval);
                        Ok(())
                    },
                    chrono::Utc::now(),
                )
            })
            .await;
            let generation = match edited {
                Ok(Ok((_, _, g))) => g,
                Ok(Err(e)) => {
                    return Err(problem(
                        StatusCode::BAD_REQUEST,
                        &format!("The approval does not load: {e}. Nothing was changed."),
                        "/reviews",
                    ))
                }
                Err(e) => {
                    return Err(problem(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &e.to_string(),
                        "/reviews",
                    ))
                }
            };
            let decision = format!(
                "approved: {entry} for {role}, {words} (until {})",
                gatehouse_safeguarding::store::timestamp(until)
            );
            admin
                .with_db(move |db| {
                    crate::reviews::decide(db, id, &actor, "approved", &decision)?;
                    crate::audit::record(
                        db,
                        &actor,
                        &format!("review-approve (generation {generation})"),
                        &format!("roles.{role}.allow"),
                        "",
                        &decision,
                    )
                })
                .await?;
        }
        _ => {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "The decision must be approve or decline. Nothing was changed.",
                "/reviews",
            ))
        }
    }
    Ok(Redirect::to("/reviews").into_response())
}

#[cfg(test)]
mod tests {
    use super::entry_for;

    #[test]
    fn approvals_cover_the_host_or_the_page() {
        assert_eq!(
            entry_for("https://www.Games.example:443/play?x=1", "host").as_deref(),
            Some("www.games.example")
        );
        assert_eq!(
            entry_for("https://www.games.example/play/now?x=1", "page").as_deref(),
            Some("www.games.example/play/now")
        );
        assert_eq!(
            entry_for("http://user@site.example/a", "host").as_deref(),
            Some("site.example")
        );
        assert_eq!(entry_for("localhost", "host"), None);
    }
}
