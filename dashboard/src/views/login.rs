//! Signing in and out. Failed sign-ins are counted per account and per address and refused
//! for a while past a limit; the password check runs on a blocking thread and costs the same
//! whether or not the account exists.

use super::{fields, FormBody, Page};
use crate::app::Admin;
use crate::html::{document, esc};
use crate::session::{cookie, same, token};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

fn login_page(admin: &Admin, next: &str, message: Option<&str>) -> Response {
    let csrf = token();
    let error = message.map_or(String::new(), |m| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", esc(m))
    });
    let body = format!(
        "<div class=\"login\"><h1>Gatehouse</h1><p class=\"muted\">{school}: admin sign-in</p>{error}\
         <form method=\"post\" action=\"/login\" class=\"stack\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"next\" value=\"{next}\">\
         <label for=\"name\">Account</label><input type=\"text\" id=\"name\" name=\"name\" autocomplete=\"username\" required>\
         <label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <label for=\"code\">Code from your authenticator app (if your account has one)</label>\
         <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\"8\">\
         <p><button type=\"submit\">Sign in</button></p></form>{sso}</div>",
        school = esc(admin.parts.policy.live().load().school_name()),
        next = esc(next),
        sso = if admin.parts.provider.is_some() {
            "<p><a id=\"sso\" href=\"/login/sso\">Sign in with your school account</a></p>"
        } else {
            ""
        },
    );
    let mut res = document("Sign in", &body);
    if let Ok(v) = admin
        .sessions
        .set_cookie(admin.sessions.login_cookie_name(), &csrf, Some(3600))
        .parse()
    {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

/// Only paths of this page are followed after signing in.
fn safe_next(next: &str) -> &str {
    // Browsers drop tabs and newlines from URLs (`/\t/evil.example/` becomes
    // `//evil.example/`), so only visible ASCII is followed.
    let visible = next.bytes().all(|b| b.is_ascii_graphic());
    if visible && next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

pub async fn form(
    State(admin): State<Arc<Admin>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    login_page(
        &admin,
        safe_next(q.get("next").map_or("/", String::as_str)),
        None,
    )
}

pub async fn submit(
    State(admin): State<Arc<Admin>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: FormBody,
) -> Page {
    let f = fields(form);
    let next = safe_next(f.get("next").unwrap_or("/")).to_owned();
    let expected = cookie(&headers, admin.sessions.login_cookie_name()).unwrap_or("");
    if !same(f.get("csrf").unwrap_or(""), expected) {
        let mut res = login_page(
            &admin,
            &next,
            Some("The sign-in form had expired or did not come from this page. Please try again."),
        );
        *res.status_mut() = StatusCode::FORBIDDEN;
        return Ok(res);
    }
    let name = f.get("name").unwrap_or("").trim().to_owned();
    let password = f.get("password").unwrap_or("").to_owned();
    let address = peer.ip().to_string();
    if let Err(minutes) = admin.sessions.reserve(&name, &address) {
        let mut res = login_page(
            &admin,
            &next,
            Some(&format!(
                "Too many failed sign-ins. Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            )),
        );
        *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        return Ok(res);
    }
    let code = f.get("code").unwrap_or("").to_owned();
    let (account, role, directory) = match check(&admin, &name, password, &code).await? {
        Ok(found) => found,
        Err(message) => {
            let mut res = login_page(&admin, &next, Some(message));
            *res.status_mut() = StatusCode::UNAUTHORIZED;
            return Ok(res);
        }
    };
    admin.sessions.succeeded(&name, &address);
    let name = account;
    let id = admin.sessions.start(&name, role, directory);
    let actor = name.clone();
    let at = address.clone();
    let after = if directory {
        format!("{} (directory)", role.name())
    } else {
        role.name().to_owned()
    };
    admin
        .with_db(move |db| crate::audit::record(db, &actor, "sign-in", &at, "", &after))
        .await?;
    let mut res = Redirect::to(&next).into_response();
    let h = res.headers_mut();
    for c in [
        admin
            .sessions
            .set_cookie(admin.sessions.cookie_name(), &id, None),
        admin
            .sessions
            .set_cookie(admin.sessions.login_cookie_name(), "", Some(0)),
    ] {
        if let Ok(v) = c.parse() {
            h.append(header::SET_COOKIE, v);
        }
    }
    Ok(res)
}

const NO_MATCH: &str = "That account, password and code do not match.";

/// Checks a sign-in: a local account (its password, then its code when it has a second
/// factor, or when every local account must), else the school's directory. The role and
/// whether the directory proved it, or what to tell the person.
async fn check(
    admin: &Arc<Admin>,
    name: &str,
    password: String,
    code: &str,
) -> Result<Result<(String, crate::accounts::Role, bool), &'static str>, Response> {
    let typed = name.to_owned();
    let account = admin
        .with_db(move |db| {
            // `Tess` is the local account `tess` (it must not reach the directory, where
            // its second factor would not be asked for).
            let listed = crate::accounts::list(db)?;
            let Some(local) = listed.iter().find(|a| a.name.eq_ignore_ascii_case(&typed)) else {
                return Ok(None);
            };
            let found = crate::accounts::lookup(db, &local.name)?;
            let totp = crate::accounts::totp_secret(db, &local.name)?;
            Ok(Some((local.name.clone(), found, totp)))
        })
        .await?;
    let local_exists = account.is_some();
    let (name, found, totp) = match account {
        Some((local, found, totp)) => (local, found, totp),
        None => (name.to_owned(), None, None),
    };
    let name = name.as_str();
    let Some((hash, role)) = found else {
        // A directory sign-in has no second factor here: with `require_totp` only local
        // accounts (and the provider's sign-in, whose own second factor applies) sign in.
        if let Some(directory) = admin
            .parts
            .directory
            .as_ref()
            .filter(|_| !admin.parts.require_totp && !local_exists)
        {
            return Ok(match directory.sign_in(name.to_owned(), password).await {
                Ok((account, role)) => Ok((account, role, true)),
                // Said as a wrong password: the page must not confirm a password.
                Err(crate::app::DirectoryRefusal::Wrong | crate::app::DirectoryRefusal::NoRole) => {
                    Err(NO_MATCH)
                }
                Err(crate::app::DirectoryRefusal::Unreachable) => Err(
                    "The school's directory cannot be reached; try again, or use a local account.",
                ),
            });
        }
        // No such account: the same work as a wrong password.
        let decoy = admin.decoy.clone();
        let _ =
            tokio::task::spawn_blocking(move || crate::accounts::verify(&decoy, &password)).await;
        return Ok(Err(NO_MATCH));
    };
    let ok = tokio::task::spawn_blocking(move || crate::accounts::verify(&hash, &password))
        .await
        .unwrap_or(false);
    if !ok {
        return Ok(Err(NO_MATCH));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match totp {
        Some(secret) if admin.sessions.totp(name, &secret, code, now) => {
            Ok(Ok((name.to_owned(), role, false)))
        }
        Some(_) => Ok(Err(NO_MATCH)),
        None if admin.parts.require_totp => Ok(Err(
            "This account has no second factor, which this page requires: ask IT to run \
             `gatehouse admin totp` for it.",
        )),
        None => Ok(Ok((name.to_owned(), role, false))),
    }
}

/// `GET /login/sso`: to the school's provider, with a cookie that ties the answer to this
/// browser.
pub async fn sso_start(State(admin): State<Arc<Admin>>) -> Response {
    let Some(provider) = admin.parts.provider.clone() else {
        return login_page(
            &admin,
            "/",
            Some("Sign-in with a school account is not set up."),
        );
    };
    let cookie = token();
    match provider.start(cookie.clone()).await {
        Ok(url) => {
            let mut res = Redirect::to(&url).into_response();
            if let Ok(v) = admin.sessions.provider_cookie(&cookie, 600).parse() {
                res.headers_mut().insert(header::SET_COOKIE, v);
            }
            res
        }
        Err(why) => {
            let mut res = login_page(&admin, "/", Some(&why));
            *res.status_mut() = StatusCode::BAD_GATEWAY;
            res
        }
    }
}

/// `GET /login/sso/callback`: the provider's answer; a session when it proves an account
/// in one of `[admin] sso_roles`.
pub async fn sso_callback(
    State(admin): State<Arc<Admin>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Page {
    let Some(provider) = admin.parts.provider.clone() else {
        return Ok(login_page(
            &admin,
            "/",
            Some("Sign-in with a school account is not set up."),
        ));
    };
    let cookie = cookie(&headers, admin.sessions.provider_cookie_name())
        .filter(|c| c.len() >= 40)
        .unwrap_or("")
        .to_owned();
    let (account, role) = match provider.finish(cookie, query).await {
        Ok(found) => found,
        Err(why) => {
            let mut res = login_page(&admin, "/", Some(&why));
            *res.status_mut() = StatusCode::UNAUTHORIZED;
            return Ok(res);
        }
    };
    let id = admin.sessions.start(&account, role, true);
    let at = peer.ip().to_string();
    let actor = account.clone();
    let after = format!("{} (school account)", role.name());
    admin
        .with_db(move |db| crate::audit::record(db, &actor, "sign-in", &at, "", &after))
        .await?;
    // A page, not a redirect: the session cookie is `SameSite=Strict`, and a redirect that
    // began at the provider's site would not carry it to the next page.
    let mut res = document(
        "Signed in",
        "<div class=\"login\"><p>Signed in.</p><p><a id=\"continue\" href=\"/\">Continue</a></p>\
         <meta http-equiv=\"refresh\" content=\"0;url=/\"></div>",
    );
    let h = res.headers_mut();
    for c in [
        admin
            .sessions
            .set_cookie(admin.sessions.cookie_name(), &id, None),
        admin.sessions.provider_cookie("", 0),
    ] {
        if let Ok(v) = c.parse() {
            h.append(header::SET_COOKIE, v);
        }
    }
    Ok(res)
}

pub async fn logout(State(admin): State<Arc<Admin>>, headers: HeaderMap, form: FormBody) -> Page {
    let f = fields(form);
    admin.who_posting(&headers, &f, crate::app::Need::Anyone, "/")?;
    if let Some(id) = cookie(&headers, admin.sessions.cookie_name()) {
        admin.sessions.end(id);
    }
    let mut res = Redirect::to("/login").into_response();
    if let Ok(v) = admin
        .sessions
        .set_cookie(admin.sessions.cookie_name(), "", Some(0))
        .parse()
    {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}
