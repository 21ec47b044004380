//! The audit trail, read-only: every change with who, when, what, before and after.

use super::Page;
use crate::app::{Admin, Need};
use crate::html::{esc, layout, when};
use axum::extract::State;
use axum::http::HeaderMap;
use std::sync::Arc;

pub async fn page(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Page {
    let s = admin.who(&headers, Need::Anyone, "/audit")?;
    let entries = admin.with_db(|db| crate::audit::recent(db, 1000)).await?;
    let tz = admin.timezone();
    let mut body = String::from(
        "<p>Every change made on this page, newest first. Nobody can edit or delete an entry.</p>\
         <table id=\"audit\"><thead><tr><th>When</th><th>Who</th><th>What</th><th>Where</th><th>Before</th><th>After</th></tr></thead><tbody>",
    );
    for e in &entries {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(&when(&e.at, tz)),
            esc(&e.actor),
            esc(&e.action),
            esc(&e.target),
            esc(&e.before),
            esc(&e.after)
        ));
    }
    body.push_str("</tbody></table>");
    Ok(layout(&s, "/audit", "Audit trail", &body))
}
