//! Admin accounts, for IT: who can use this page, as what, with or without a second factor;
//! disable, enable or remove one (audited; its open sessions end at their next request).
//! Accounts are added, and second factors given, from the command line (`gatehouse admin`),
//! where a password or a secret can be typed and shown without crossing the network.

use super::{fields, FormBody, Page};
use crate::app::{Admin, Need};
use crate::html::{csrf_field, esc, layout, problem, url_value};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use std::sync::Arc;

pub async fn page(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Page {
    let s = admin.who(&headers, Need::It, "/accounts")?;
    let accounts = admin.with_db(crate::accounts::list).await?;
    let mut body = String::from(
        "<p>Add an account or give it a second factor with <code>gatehouse admin add</code> and \
         <code>gatehouse admin totp</code> on the server. People in the directory groups of \
         <code>[admin] directory_roles</code> sign in with their school account and are not listed.</p>\
         <table id=\"accounts\"><thead><tr><th>Account</th><th>Role</th><th>Second factor</th>\
         <th>Created</th><th>State</th><th></th></tr></thead><tbody>",
    );
    for a in &accounts {
        let actions = if a.name == s.name {
            "<span class=\"muted\">you</span>".to_owned()
        } else {
            let toggle = if a.disabled { "enable" } else { "disable" };
            format!(
                "<form method=\"post\" action=\"/accounts/{n}/{toggle}\" class=\"inline\">{c}\
                 <button>{label}</button></form> \
                 <form method=\"post\" action=\"/accounts/{n}/remove\" class=\"inline\">{c}\
                 <button class=\"danger\">Remove</button></form>",
                n = url_value(&a.name),
                c = csrf_field(&s),
                label = if a.disabled { "Enable" } else { "Disable" },
            )
        };
        body.push_str(&format!(
            "<tr data-account=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{actions}</td></tr>",
            esc(&a.name),
            esc(&a.name),
            esc(&a.role),
            if a.totp { "yes" } else { "no" },
            esc(&a.created),
            if a.disabled { "disabled" } else { "active" },
        ));
    }
    body.push_str("</tbody></table>");
    Ok(layout(&s, "/accounts", "Admin accounts", &body))
}

pub async fn act(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path((name, action)): Path<(String, String)>,
    form: FormBody,
) -> Page {
    let f = fields(form);
    let s = admin.who_posting(&headers, &f, Need::It, "/accounts")?;
    if name == s.name {
        return Err(problem(
            StatusCode::FORBIDDEN,
            "You cannot disable or remove the account you are signed in with.",
            "/accounts",
        ));
    }
    let actor = s.name.clone();
    let done = admin
        .with_db(move |db| {
            let (done, audit, after) = match action.as_str() {
                "disable" => (
                    crate::accounts::set_disabled(db, &name, true)?,
                    "account-disable",
                    "disabled",
                ),
                "enable" => (
                    crate::accounts::set_disabled(db, &name, false)?,
                    "account-enable",
                    "enabled",
                ),
                "remove" => (crate::accounts::remove(db, &name)?, "account-remove", ""),
                _ => return Ok(None),
            };
            if done {
                crate::audit::record(db, &actor, audit, &name, "", after)?;
            }
            Ok(Some(done))
        })
        .await?;
    match done {
        Some(true) => Ok(Redirect::to("/accounts").into_response()),
        Some(false) => Err(problem(
            StatusCode::NOT_FOUND,
            "There is no such account.",
            "/accounts",
        )),
        None => Err(problem(
            StatusCode::NOT_FOUND,
            "There is no such action.",
            "/accounts",
        )),
    }
}
