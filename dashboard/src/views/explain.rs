//! "Explain": a URL (or `host:port`) and a role in, the decision the policy in force makes
//! now and why out: the verdict, the rule, the categories and list entries that matched, the
//! search term and themes.

use super::Page;
use crate::app::{Admin, Need};
use crate::html::{esc, layout};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use gatehouse_rules::{evaluate, explain, Facts, Target};
use std::collections::HashMap;
use std::sync::Arc;

pub async fn page(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    let s = admin.who(&headers, Need::Anyone, "/explain")?;
    let snap = admin.parts.policy.live().load();
    let url = q
        .get("url")
        .map(|u| u.trim().to_owned())
        .unwrap_or_default();
    let role = q.get("role").cloned().unwrap_or_default();
    let options: String = snap
        .roles()
        .iter()
        .map(|r| {
            let sel = if r.name == role { " selected" } else { "" };
            format!("<option value=\"{0}\"{sel}>{0}</option>", esc(&r.name))
        })
        .collect();
    let mut body = format!(
        "<form method=\"get\" action=\"/explain\" class=\"filters\">\
         <label>Address<input type=\"text\" name=\"url\" size=\"60\" value=\"{}\" placeholder=\"https://www.example.org/page or example.org:443\"></label>\
         <label>Role<select name=\"role\">{options}</select></label><button>Explain</button></form>",
        esc(&url)
    );
    let mut status = StatusCode::OK;
    if !url.is_empty() {
        match snap.role_id(&role) {
            None => {
                status = StatusCode::BAD_REQUEST;
                body.push_str(&format!(
                    "<p class=\"error\" role=\"alert\">&ldquo;{}&rdquo; is not a role of this policy.</p>",
                    crate::html::esc(&role)
                ));
            }
            Some(id) => {
                let target = if url.contains("://") {
                    Target::Url(&url)
                } else {
                    Target::Authority(&url)
                };
                let facts = Facts {
                    role: id,
                    user: None,
                    client: None,
                    at: chrono::Utc::now(),
                    method: "GET",
                    target,
                };
                let decision = evaluate(&snap, &facts);
                let e = explain(&snap, &facts, &decision);
                let verdict = format!("{:?}", e.verdict).to_lowercase();
                let row =
                    |k: &str, v: String| format!("<tr><th scope=\"row\">{k}</th><td>{v}</td></tr>");
                body.push_str("<table id=\"explanation\"><tbody>");
                body.push_str(&row(
                    "Decision",
                    format!(
                        "<strong class=\"verdict-{0}\" id=\"verdict\">{0}</strong>",
                        esc(&verdict)
                    ),
                ));
                body.push_str(&row("Why", esc(&e.reason)));
                body.push_str(&row("Rule", format!("<code>{}</code>", esc(&e.rule))));
                body.push_str(&row("Categories", esc(&e.categories.join(", "))));
                if let Some(search) = &e.search {
                    body.push_str(&row("Search", esc(search)));
                    body.push_str(&row("Themes", esc(&e.themes.join(", "))));
                    body.push_str(&row("Matched terms", esc(&e.terms.join(", "))));
                    for l in &e.learned {
                        body.push_str(&row(
                            &esc(&format!("Learned weights ({})", l.theme)),
                            esc(&format!(
                                "{} = {:.2}, fires at {:.2}",
                                l.weights.join(", "),
                                l.score,
                                l.fires_at
                            )),
                        ));
                    }
                }
                body.push_str(&row(
                    "Alert",
                    esc(&e
                        .alert
                        .map_or("none".to_owned(), |a| format!("{a:?}").to_lowercase())),
                ));
                body.push_str(&row("List entries", esc(&e.matched.join("; "))));
                body.push_str(&row(
                    "Policy generation",
                    admin.parts.policy.live().generation().to_string(),
                ));
                body.push_str("</tbody></table>");
            }
        }
    }
    let mut res = layout(&s, "/explain", "Explain a decision", &body);
    *res.status_mut() = status;
    Ok(res)
}
