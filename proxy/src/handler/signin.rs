//! The sign-in page on the request path: requests to `portal_host` are answered here (the
//! provider's redirects, the device's status, sign-out), and a device that has not signed
//! in is sent to it: a plain HTTP page load by redirect, anything inside an intercepted
//! tunnel by a page with the link (`511 Network Authentication Required`, RFC 6585).

use super::Conn;
use crate::body::{self, Body};
use crate::identity::oidc::{self, Refused, SignIn};
use crate::identity::How;
use crate::metrics;
use crate::pages;
use hyper::{header, Method, Request, Response, StatusCode};

/// The response for a device that must sign in before reaching `host`, if it must.
pub fn required(
    conn: &Conn,
    who: &super::Identity,
    host: &str,
    port: u16,
    url: &str,
    method: &Method,
) -> Option<Response<Body>> {
    if who.how != How::NotSignedIn {
        return None;
    }
    let page = conn.shared.logins.sources.signin.as_ref()?;
    if page.before_signin(host, port) {
        return None;
    }
    metrics::get().refused.with_label_values(&["signin"]).inc();
    let link = format!(
        "https://{}/signin?next={}",
        page.portal_host(),
        oidc::encode(url)
    );
    if conn.tunnel.is_none() && (method == Method::GET || method == Method::HEAD) {
        return Some(oidc::redirect(&link));
    }
    Some(html(
        StatusCode::NETWORK_AUTHENTICATION_REQUIRED,
        "Sign in to use the internet",
        &format!(
            "<p>This network needs you to sign in with your school account first.</p>\
             <p><a id=\"signin\" href=\"{}\">Sign in</a></p>",
            pages::escape(&link)
        ),
    ))
}

/// The host (lower case) and port a request is for (a CONNECT's authority, else its URL).
pub fn target(req: &Request<Body>) -> (String, u16) {
    let uri = req.uri();
    let https = req.method() == Method::CONNECT || uri.scheme_str() == Some("https");
    let host = uri.host().unwrap_or_default().to_ascii_lowercase();
    (host, uri.port_u16().unwrap_or(if https { 443 } else { 80 }))
}

/// A `407` whose page links to the sign-in page, for browsers with no login to give.
pub fn with_link(
    mut challenge: Response<Body>,
    page: Option<&std::sync::Arc<SignIn>>,
    req: &Request<Body>,
) -> Response<Body> {
    if let Some(page) = page {
        let link = format!(
            "https://{}/signin?next={}",
            page.portal_host(),
            oidc::encode(&req.uri().to_string())
        );
        let text = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in</title></head>\
             <body><h1>Sign in to use the internet</h1><p>Log in to the proxy with your school \
             account, or <a id=\"signin\" href=\"{}\">sign in on the sign-in page</a>.</p></body></html>",
            pages::escape(&link)
        );
        *challenge.body_mut() = body::full(text);
    }
    challenge
}

/// A request to the sign-in page itself.
pub async fn serve(conn: &Conn, page: &SignIn, req: Request<Body>) -> Response<Body> {
    let device = conn.client_ip();
    let query: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| pages::form_fields(q.as_bytes()))
        .unwrap_or_default();
    let field = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/signin") => {
            let next = field("next").unwrap_or("/");
            match page.start(device, next, &conn.shared.client).await {
                Ok(url) => oidc::redirect(&url),
                Err(why) => failed(page, device, &why),
            }
        }
        (&Method::GET, oidc::CALLBACK_PATH) => {
            let sources = &conn.shared.logins.sources;
            let outcome = page
                .finish(device, &query, &conn.shared.client, |a| sources.named(a))
                .await;
            match outcome {
                Ok((who, next)) => {
                    tracing::info!(
                        "Sign-in page: {} signed in on {device} (role {})",
                        who.account,
                        who.role
                    );
                    metrics::get()
                        .signins
                        .with_label_values(&["signed-in"])
                        .inc();
                    oidc::redirect(&next)
                }
                Err(why) => failed(page, device, &why),
            }
        }
        (&Method::GET, "/") => status(page, device),
        (&Method::POST, "/signout") => {
            // Only the page itself may sign a device out (no cross-site form).
            let origin = req
                .headers()
                .get(header::ORIGIN)
                .and_then(|o| o.to_str().ok());
            if origin.is_none_or(|o| o != format!("https://{}", page.portal_host())) {
                return pages::refusal(StatusCode::FORBIDDEN, "Sign out from the sign-in page.");
            }
            if page.sign_out(device) {
                tracing::info!("Sign-in page: {device} signed out");
            }
            html(
                StatusCode::OK,
                "Signed out",
                "<p id=\"signed-out\">You are signed out on this device.</p>",
            )
        }
        _ => pages::refusal(StatusCode::NOT_FOUND, "There is no such page here."),
    }
}

/// Who is signed in on this device, with a sign-out button; or a link to sign in.
fn status(page: &SignIn, device: std::net::IpAddr) -> Response<Body> {
    match page.device(device) {
        Some(who) => html(
            StatusCode::OK,
            "Signed in",
            &format!(
                "<p id=\"who\">Signed in as {} ({}).</p>\
                 <form method=\"post\" action=\"/signout\"><button type=\"submit\">Sign out</button></form>",
                pages::escape(who.person.as_deref().unwrap_or(&who.account)),
                pages::escape(&who.account)
            ),
        ),
        None => html(
            StatusCode::OK,
            "Sign in",
            "<p>This device is not signed in.</p><p><a id=\"signin\" href=\"/signin\">Sign in</a></p>",
        ),
    }
}

/// A refused sign-in: logged with the reason, and a page that says what to do.
fn failed(page: &SignIn, device: std::net::IpAddr, why: &Refused) -> Response<Body> {
    if let Ok(mut log) = page.log.lock() {
        log.warn(|| format!("refused a sign-in from {device}: {why}"));
    }
    let (status, label, say) = match why {
        Refused::Provider(_) => (
            StatusCode::BAD_GATEWAY,
            "provider",
            "The school's sign-in service could not be reached. Try again in a few minutes.",
        ),
        Refused::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Too many sign-ins are under way. Try again in a minute.",
        ),
        Refused::NoRole(_) => (
            StatusCode::FORBIDDEN,
            "no-role",
            "Your account is in none of the school's groups that can use the internet here. \
             Ask the IT team.",
        ),
        Refused::Left(_) => (
            StatusCode::FORBIDDEN,
            "left",
            "This account belongs to someone who has left the school. Ask the IT team.",
        ),
        Refused::ProviderSaid(_) => (
            StatusCode::FORBIDDEN,
            "provider-refused",
            "The school's sign-in service did not sign you in. Try again.",
        ),
        Refused::BadState
        | Refused::OtherDevice(_)
        | Refused::BadToken(_)
        | Refused::WrongIssuer(_)
        | Refused::WrongAudience
        | Refused::WrongNonce
        | Refused::Expired
        | Refused::NoAccount(_) => (
            StatusCode::BAD_REQUEST,
            "refused",
            "This sign-in could not be checked, so it was not accepted. Start again from any \
             web page.",
        ),
    };
    metrics::get().signins.with_label_values(&[label]).inc();
    pages::refusal(status, say)
}

fn html(status: StatusCode, title: &str, body_html: &str) -> Response<Body> {
    let text = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title></head>\
         <body><h1>{t}</h1>{body_html}</body></html>",
        t = pages::escape(title)
    );
    let mut res = Response::new(body::full(text));
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
