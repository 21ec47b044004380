//! People: find a person by name or account in the people table (the MIS export or the
//! directory), and see who is on which device now (addresses the Wi-Fi's accounting has
//! named). For IT and the DSL; the proxy supplies both through [`crate::app::PeopleView`].

use super::Page;
use crate::app::{Admin, Need};
use crate::html::{esc, layout};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use std::collections::HashMap;
use std::sync::Arc;

/// People shown for one search at most.
const FOUND: usize = 100;

pub async fn page(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    let s = admin.who(&headers, Need::ItOrDsl, "/people")?;
    // A search is a name, not a document: the table is scanned once per search.
    let query: String = q
        .get("q")
        .map(|v| v.trim().chars().take(100).collect())
        .unwrap_or_default();
    let query = query.as_str();
    let view = &admin.parts.people;
    let mut body = format!(
        "<form method=\"get\" action=\"/people\"><label>Find a person (name or account) \
         <input name=\"q\" value=\"{}\" maxlength=\"100\"></label> <button>Find</button></form>",
        esc(query)
    );
    if !query.is_empty() {
        let found = view.find(query, FOUND);
        if found.is_empty() {
            body.push_str(&format!(
                "<p class=\"muted\">No one matches {}.</p>",
                esc(query)
            ));
        } else {
            body.push_str(
                "<table id=\"people\"><thead><tr><th>Person</th><th>Account</th><th>Role</th>\
                 <th></th></tr></thead><tbody>",
            );
            for p in &found {
                body.push_str(&format!(
                    "<tr><td>{}</td><td><a href=\"/logs?user={}\">{}</a></td><td>{}</td><td>{}</td></tr>",
                    esc(&p.display),
                    crate::html::url_value(&p.account),
                    esc(&p.account),
                    esc(&p.role),
                    if p.left { "left" } else { "" }
                ));
            }
            body.push_str("</tbody></table>");
        }
    }
    let devices = view.devices();
    body.push_str(&format!(
        "<h2>On the network now</h2><p>{} device{} named by the Wi-Fi's accounting or the \
         sign-in page.</p>",
        devices.len(),
        if devices.len() == 1 { "" } else { "s" }
    ));
    if !devices.is_empty() {
        body.push_str(
            "<table id=\"devices\"><thead><tr><th>Address</th><th>Person</th><th>Account</th>\
             <th>Device</th><th>Named by</th><th>Since</th></tr></thead><tbody>",
        );
        for d in &devices {
            body.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td></tr>",
                esc(&d.address),
                esc(d.person.as_deref().unwrap_or_default()),
                esc(&d.account),
                esc(d.device.as_deref().unwrap_or_default()),
                esc(d.how),
                esc(&d.since)
            ));
        }
        body.push_str("</tbody></table>");
    }
    Ok(layout(&s, "/people", "People", &body))
}
