//! Guest vouchers: IT makes a batch of time-limited logins for a role (normally `guest`),
//! prints them, and can revoke any before it runs out.

use super::{fields, FormBody, Page};
use crate::app::{Admin, Need};
use crate::html::{csrf_field, esc, layout, problem, when};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use std::sync::Arc;

pub async fn page(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Page {
    let s = admin.who(&headers, Need::It, "/guests")?;
    let list = admin.with_db(|db| crate::vouchers::list(db, 500)).await?;
    let snap = admin.parts.policy.live().load();
    let tz = admin.timezone();
    let roles: String = snap
        .roles()
        .iter()
        .map(|r| {
            let sel = if r.name == "guest" { " selected" } else { "" };
            format!("<option value=\"{0}\"{sel}>{0}</option>", esc(&r.name))
        })
        .collect();
    let guest_networks: Vec<String> = snap
        .networks()
        .iter()
        .filter(|n| n.login)
        .map(|n| n.net.to_string())
        .collect();
    let mut body = format!(
        "<p>A voucher is a proxy login for a visitor: they type its name and code when the browser asks them to sign in to the proxy. \
         Vouchers work on networks that require a login ({}).</p>\
         <form method=\"post\" action=\"/guests\" class=\"filters\">{}\
         <label>How many<input type=\"text\" name=\"count\" value=\"1\" size=\"4\"></label>\
         <label>Valid for (hours)<input type=\"text\" name=\"hours\" value=\"8\" size=\"4\"></label>\
         <label>Role<select name=\"role\">{roles}</select></label>\
         <label>Note (who or what for)<input type=\"text\" name=\"note\" maxlength=\"200\"></label>\
         <button>Make vouchers</button></form>",
        if guest_networks.is_empty() { "none are configured yet: set login = true on the guest network".to_owned() } else { esc(&guest_networks.join(", ")) },
        csrf_field(&s)
    );
    body.push_str("<h2>Vouchers</h2><table id=\"vouchers\"><thead><tr><th>Name</th><th>Role</th><th>Made</th><th>By</th><th>Expires</th><th>Note</th><th></th></tr></thead><tbody>");
    let now = crate::now_text();
    for v in &list {
        let state = if v.revoked {
            "revoked".to_owned()
        } else if v.expires <= now {
            "expired".to_owned()
        } else {
            format!(
                "<form method=\"post\" action=\"/guests/{}/revoke\" class=\"inline\">{}<button class=\"danger\">Revoke</button></form>",
                esc(&v.name),
                csrf_field(&s)
            )
        };
        body.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{state}</td></tr>",
            esc(&v.name),
            esc(&v.role),
            esc(&when(&v.created, tz)),
            esc(&v.created_by),
            esc(&when(&v.expires, tz)),
            esc(&v.note)
        ));
    }
    body.push_str("</tbody></table>");
    Ok(layout(&s, "/guests", "Guest vouchers", &body))
}

pub async fn create(State(admin): State<Arc<Admin>>, headers: HeaderMap, form: FormBody) -> Page {
    let f = fields(form);
    let s = admin.who_posting(&headers, &f, Need::It, "/guests")?;
    let bad = |m: &str| {
        problem(
            StatusCode::BAD_REQUEST,
            &format!("{m} No vouchers were made."),
            "/guests",
        )
    };
    let count: usize = f
        .need("count", "/guests")?
        .parse()
        .ok()
        .filter(|n| (1..=crate::vouchers::MAX_BATCH).contains(n))
        .ok_or_else(|| {
            bad(&format!(
                "\u{201c}How many\u{201d} must be a number from 1 to {}.",
                crate::vouchers::MAX_BATCH
            ))
        })?;
    let hours: u32 = f
        .need("hours", "/guests")?
        .parse()
        .ok()
        .filter(|h| (1..=24 * 31).contains(h))
        .ok_or_else(|| {
            bad("\u{201c}Valid for\u{201d} must be a number of hours from 1 to 744 (31 days).")
        })?;
    let role = f.need("role", "/guests")?.to_owned();
    if admin.parts.policy.live().load().role_id(&role).is_none() {
        return Err(bad(&format!("{role:?} is not a role of this policy.")));
    }
    let note: String = f
        .get("note")
        .unwrap_or("")
        .trim()
        .chars()
        .take(200)
        .collect();
    let actor = s.name.clone();
    let vouchers = Arc::clone(admin.vouchers());
    let made = admin
        .with_db(move |db| {
            let made = crate::vouchers::create(db, &actor, &role, count, hours, &note)?;
            let names: Vec<&str> = made.iter().map(|v| v.name.as_str()).collect();
            crate::audit::record(
                db,
                &actor,
                "vouchers-create",
                &format!("{count} for {role}, {hours} h"),
                "",
                &names.join(" "),
            )?;
            vouchers.refresh(db)?;
            Ok(made)
        })
        .await?;
    let tz = admin.timezone();
    let school = esc(admin.parts.policy.live().load().school_name());
    let mut body = String::from(
        "<p class=\"noprint\">Print this page now: the codes are not shown again. <a href=\"/guests\">Back to vouchers</a></p>",
    );
    for v in &made {
        body.push_str(&format!(
            "<div class=\"voucher\"><strong>{school}</strong> guest internet<br>Proxy user name: <code class=\"voucher-name\">{}</code><br>\
             Password: <code class=\"voucher-code\">{}</code><br><span class=\"muted\">Valid until {}</span></div>",
            esc(&v.name),
            esc(&v.code),
            esc(&v.expires.with_timezone(&tz).format("%-d %b %Y %H:%M").to_string())
        ));
    }
    Ok(layout(&s, "/guests", "New guest vouchers", &body))
}

pub async fn revoke(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    form: FormBody,
) -> Page {
    let f = fields(form);
    let s = admin.who_posting(&headers, &f, Need::It, "/guests")?;
    let actor = s.name.clone();
    let vouchers = Arc::clone(admin.vouchers());
    let done = admin
        .with_db(move |db| {
            let done = crate::vouchers::revoke(db, &name)?;
            if done {
                crate::audit::record(db, &actor, "voucher-revoke", &name, "valid", "revoked")?;
                vouchers.refresh(db)?;
            }
            Ok(done)
        })
        .await?;
    if !done {
        return Err(problem(
            StatusCode::NOT_FOUND,
            "There is no such voucher.",
            "/guests",
        ));
    }
    Ok(Redirect::to("/guests").into_response())
}
