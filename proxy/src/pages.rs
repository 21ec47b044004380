//! The pages a person sees instead of the site: plain words, what was blocked and why, for
//! which role, when, a request id, and how to ask for a review.

use crate::body::{full, Body};
use gatehouse_rules::{summarise, Decision, Facts, Snapshot, Verdict};
use hyper::{header, Response, StatusCode};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A short id that ties the page to the log entry.
pub fn request_id() -> String {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let t = chrono::Utc::now().timestamp() as u64;
    format!("{:x}-{n:x}", t & 0xff_ffff)
}

pub fn escape(text: &str) -> String {
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

/// The block (or warning) page for a decision; a warning carries its signed "continue" link.
pub fn block_page(
    snap: &Snapshot,
    facts: &Facts<'_>,
    decision: &Decision,
    url: &str,
    continue_url: Option<&str>,
    id: &str,
) -> Response<Body> {
    let e = summarise(snap, facts, decision);
    let what = if e.search.is_some() {
        format!(
            "the search &ldquo;{}&rdquo;",
            escape(e.search.as_deref().unwrap_or(""))
        )
    } else {
        escape(e.host.as_deref().unwrap_or(url))
    };
    let title = match decision.verdict {
        Verdict::Warn => "This site needs care",
        _ => "This page is blocked",
    };
    let because = if !e.themes.is_empty() {
        format!("Search topic: {}", escape(&e.themes.join(", ")))
    } else if !e.categories.is_empty() {
        format!("Category: {}", escape(&e.categories.join(", ")))
    } else {
        "School rule".to_owned()
    };
    let offers_help = decision
        .themes
        .iter()
        .any(|t| !decision.lowered.contains(t) && snap.themes().offers_help(t));
    let help = if offers_help { HELP_NOW } else { "" };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;color:#222}}\
h1{{color:#a40000}}dt{{font-weight:bold;margin-top:.6em}}.id{{font-family:monospace}}</style></head><body>\
<h1>{title}</h1>{help}<p>{school}'s web filter stopped {what}.</p><p>{reason}</p><dl>\
<dt>Why</dt><dd>{because}</dd><dt>Your role</dt><dd>{role}</dd><dt>When</dt><dd>{at}</dd>\
<dt>Request id</dt><dd class=\"id\">{id}</dd></dl>\
{continue_link}<h2>Need this page?</h2><form method=\"post\" action=\"{review}\">\
<input type=\"hidden\" name=\"url\" value=\"{url}\"><input type=\"hidden\" name=\"request_id\" value=\"{id}\">\
<p><label for=\"reason\">If you need it for your work, say why and the IT team will review it:</label><br>\
<textarea id=\"reason\" name=\"reason\" rows=\"3\" cols=\"50\" maxlength=\"500\" required></textarea></p>\
<p><button type=\"submit\">Ask for a review</button></p></form>\
<p>You can also ask your teacher or the IT team and give them the request id above.</p>\
</body></html>",
        review = REVIEW_PATH,
        url = escape(url),
        continue_link = continue_url.map_or(String::new(), |u| format!(
            "<p><a id=\"continue\" href=\"{}\">Continue to the page</a> (your visit is logged).</p>",
            escape(u)
        )),
        school = escape(snap.school_name()),
        reason = escape(&e.reason),
        role = escape(&e.role),
        at = escape(&facts.at.with_timezone(&snap.timezone()).format("%-d %B %Y, %H:%M").to_string()),
    );
    html_response(StatusCode::FORBIDDEN, html)
}

/// Shown first on a block page for a theme that offers help (self-harm, suicide, eating
/// disorders, abuse, exploitation): where a child can talk to someone now, written for a
/// child.
const HELP_NOW: &str = "<section id=\"help\" style=\"border:2px solid #1d6b3a;border-radius:8px;padding:0 1em 1em;margin:1em 0;background:#f1faf4\">\
<h2>You are not alone. You can talk to someone now</h2>\
<p>If things feel too much, or someone is hurting you or making you do things you do not want to do, \
these people will listen. It is free and you do not have to give your name.</p><ul>\
<li><strong>Childline</strong>: call <a href=\"tel:08001111\">0800 1111</a> or chat online at \
<a href=\"https://www.childline.org.uk/\">childline.org.uk</a>, any time (for anyone under 19)</li>\
<li><strong>Samaritans</strong>: call <a href=\"tel:116123\">116 123</a>, day or night</li>\
<li><strong>Shout</strong>: text <strong>SHOUT</strong> to <strong>85258</strong></li>\
<li>Worried about someone you met online, or someone asking for pictures: \
<a href=\"https://www.ceop.police.uk/Safety-Centre/\">report it to CEOP</a></li>\
<li>If you are in danger right now, call <strong>999</strong>.</li></ul>\
<p>You can also talk to a teacher you trust or your school's safeguarding lead.</p></section>";

/// The page for a download the role's file rules refuse: what it is, and how to ask for it
/// (a review request, which IT can approve on the admin page).
pub fn download_refused(what: &str, url: &str, id: &str) -> Response<Body> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>This download is blocked</title><style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;color:#222}}\
h1{{color:#a40000}}</style></head><body><h1>This download is blocked</h1><p>{what}</p>\
<p>Request id: <span class=\"id\">{id}</span></p><h2>Need it?</h2><form method=\"post\" action=\"{review}\">\
<input type=\"hidden\" name=\"url\" value=\"{url}\"><input type=\"hidden\" name=\"request_id\" value=\"{id}\">\
<p><label for=\"reason\">Say why you need it and the IT team will review it:</label><br>\
<textarea id=\"reason\" name=\"reason\" rows=\"3\" cols=\"50\" maxlength=\"500\" required></textarea></p>\
<p><button type=\"submit\">Ask for approval</button></p></form></body></html>",
        what = escape(what),
        url = escape(url),
        id = escape(id),
        review = REVIEW_PATH,
    );
    html_response(StatusCode::FORBIDDEN, html)
}

/// The page shown instead of a page whose text the role's theme setting blocks: where to
/// get help first (for the themes that offer it), then how to ask for a review.
pub fn page_text_blocked(
    snap: &Snapshot,
    theme: gatehouse_rules::search::ThemeId,
    url: &str,
    id: &str,
) -> Response<Body> {
    let help = if snap.themes().offers_help(theme) {
        HELP_NOW
    } else {
        ""
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>This page is blocked</title><style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;color:#222}}\
h1{{color:#a40000}}</style></head><body><h1>This page is blocked</h1>{help}\
<p>{school}'s web filter read this page and stopped it: its text is about {topic}.</p>\
<p>Request id: <span class=\"id\">{id}</span></p><h2>Need this page?</h2><form method=\"post\" action=\"{review}\">\
<input type=\"hidden\" name=\"url\" value=\"{url}\"><input type=\"hidden\" name=\"request_id\" value=\"{id}\">\
<p><label for=\"reason\">If you need it for your work, say why and the IT team will review it:</label><br>\
<textarea id=\"reason\" name=\"reason\" rows=\"3\" cols=\"50\" maxlength=\"500\" required></textarea></p>\
<p><button type=\"submit\">Ask for a review</button></p></form></body></html>",
        school = escape(snap.school_name()),
        topic = escape(snap.themes().theme_name(theme)),
        url = escape(url),
        id = escape(id),
        review = REVIEW_PATH,
    );
    html_response(StatusCode::FORBIDDEN, html)
}

/// Where a block page's review form is sent: the same origin as the blocked page, which the
/// proxy answers itself.
pub const REVIEW_PATH: &str = "/.gatehouse/review";

/// The page after a review request is recorded.
pub fn review_sent() -> Response<Body> {
    html_response(
        StatusCode::OK,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Review requested</title></head>\
<body><h1>Review requested</h1><p>Your request was sent to the IT team. They will look at it and may open the page for you.</p></body></html>".to_owned(),
    )
}

/// The fields of an `application/x-www-form-urlencoded` body (decoded as query components
/// are, by the rules engine's decoder).
pub fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                gatehouse_rules::search::decode_component(k),
                gatehouse_rules::search::decode_component(v),
            )
        })
        .collect()
}

/// A short page for requests refused before any rule runs.
pub fn refusal(status: StatusCode, message: &str) -> Response<Body> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Refused</title></head><body><h1>Refused</h1><p>{}</p><p>Request id: {}</p></body></html>",
        escape(message),
        request_id()
    );
    html_response(status, html)
}

/// The proxy auto-configuration file: everything through `proxy` (as the client reached
/// it), except plain host names and loopback.
pub fn pac_file(proxy: &str) -> Response<Body> {
    let proxy: String = proxy
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '[' | ']'))
        .collect();
    let body = format!(
        "function FindProxyForURL(url, host) {{\n  if (isPlainHostName(host) || host === \"localhost\" || shExpMatch(host, \"127.*\")) {{\n    return \"DIRECT\";\n  }}\n  return \"PROXY {proxy}\";\n}}\n"
    );
    let mut res = Response::new(full(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/x-ns-proxy-autoconfig"),
    );
    res
}

/// The `407` that asks for a login: `Negotiate` (Kerberos single sign-on) when it is on,
/// and `Basic` unless the school turned the fallback off.
pub fn login_required(negotiate: bool, basic: bool) -> Response<Body> {
    let mut res = refusal(
        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        "Log in with your school account to use the web on this network.",
    );
    if negotiate {
        res.headers_mut().append(
            header::PROXY_AUTHENTICATE,
            header::HeaderValue::from_static("Negotiate"),
        );
    }
    if basic {
        res.headers_mut().append(
            header::PROXY_AUTHENTICATE,
            header::HeaderValue::from_static(
                "Basic realm=\"School web filter\", charset=\"UTF-8\"",
            ),
        );
    }
    res
}

fn html_response(status: StatusCode, html: String) -> Response<Body> {
    let mut res = Response::new(full(html));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}
