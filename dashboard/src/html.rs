//! The page shell: head, navigation for the signed-in role, and escaping.

use crate::accounts::Role;
use crate::session::Session;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// The stylesheet, served from `/static/app.css`.
pub const CSS: &str = include_str!("../assets/app.css");

/// HTML-escapes text for element content and quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value.
pub fn url_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The hidden field every form carries.
pub fn csrf_field(s: &Session) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&s.csrf)
    )
}

fn nav(s: &Session, current: &str) -> String {
    let mut links = vec![("/", "Overview")];
    if s.role == Role::Dsl {
        links.push(("/alerts", "Alerts"));
    }
    if matches!(s.role, Role::It | Role::Dsl) {
        links.push(("/logs", "Logs"));
        links.push(("/people", "People"));
    }
    links.push(("/policy", "Policy"));
    links.push(("/explain", "Explain"));
    if s.role == Role::It {
        links.push(("/reviews", "Reviews"));
        links.push(("/guests", "Guests"));
        links.push(("/accounts", "Accounts"));
    }
    links.push(("/audit", "Audit trail"));
    links.push(("/setup", "Device set-up"));
    let items: String = links
        .iter()
        .map(|(href, label)| {
            let here = if *href == current {
                " aria-current=\"page\""
            } else {
                ""
            };
            format!("<a href=\"{href}\"{here}>{label}</a>")
        })
        .collect();
    format!(
        "<nav>{items}<form method=\"post\" action=\"/logout\" class=\"logout\">{}\
         <span class=\"who\">{} ({})</span><button>Sign out</button></form></nav>",
        csrf_field(s),
        esc(&s.name),
        s.role.title()
    )
}

/// A whole page for a signed-in person.
pub fn layout(s: &Session, current: &str, title: &str, body: &str) -> Response {
    document(
        title,
        &format!(
            "{}<main><h1>{}</h1>{body}</main>",
            nav(s, current),
            esc(title)
        ),
    )
}

/// A page without navigation (sign-in, set-up for devices).
pub fn document(title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{} · Gatehouse</title>\
         <link rel=\"stylesheet\" href=\"/static/app.css\"></head><body>{body}</body></html>",
        esc(title)
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// A page that says what was wrong with a request, with a link back.
pub fn problem(status: StatusCode, message: &str, back: &str) -> Response {
    let body = format!(
        "<main><h1>{}</h1><p class=\"error\" role=\"alert\">{}</p><p><a href=\"{}\">Back</a></p></main>",
        esc(status.canonical_reason().unwrap_or("Error")),
        esc(message),
        esc(back)
    );
    (status, document("Problem", &body)).into_response()
}

/// `2026-11-23T10:15:02.123Z` as `23 Nov 10:15` in the school's time zone.
pub fn when(text: &str, tz: chrono_tz::Tz) -> String {
    text.parse::<chrono::DateTime<chrono::Utc>>()
        .map(|t| {
            t.with_timezone(&tz)
                .format("%-d %b %Y %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| text.to_owned())
}
