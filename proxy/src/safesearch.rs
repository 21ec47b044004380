//! SafeSearch enforced on the request: Google `safe=active`, Bing `adlt=strict`,
//! DuckDuckGo `kp=1`, YouTube's `YouTube-Restrict: Strict` header.

use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Uri};

/// Sets `key=value` in a URI's query, replacing any value the client sent.
fn set_param(uri: &Uri, key: &str, value: &str) -> Option<Uri> {
    let path = uri.path();
    let mut pairs: Vec<&str> = uri
        .query()
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty() && p.split('=').next() != Some(key))
                .collect()
        })
        .unwrap_or_default();
    let setting = format!("{key}={value}");
    pairs.push(&setting);
    let pq = format!("{path}?{}", pairs.join("&"));
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = pq.parse().ok();
    Uri::from_parts(parts).ok()
}

/// `google.<country>` with an optional `www.`: com, de, co.uk, com.au (short labels only).
fn google(host: &str) -> bool {
    let host = host.strip_prefix("www.").unwrap_or(host);
    host.strip_prefix("google.").is_some_and(|tld| {
        let labels: Vec<&str> = tld.split('.').collect();
        labels.len() <= 2
            && labels
                .iter()
                .all(|l| (2..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_lowercase()))
    })
}

/// Rewrites a request for SafeSearch. Returns true when it changed something.
pub fn enforce<B>(req: &mut Request<B>) -> bool {
    let Some(host) = req.uri().host().map(str::to_ascii_lowercase) else {
        return false;
    };
    let path = req.uri().path().to_owned();
    let rewrite = if google(&host)
        && (path == "/search" || path.starts_with("/images") || path == "/complete/search")
    {
        Some(("safe", "active"))
    } else if (host == "www.bing.com" || host == "bing.com") && path.ends_with("/search") {
        Some(("adlt", "strict"))
    } else if host.ends_with("duckduckgo.com") && req.uri().query().is_some() {
        Some(("kp", "1"))
    } else {
        None
    };
    if matches!(
        host.as_str(),
        "www.youtube.com"
            | "youtube.com"
            | "m.youtube.com"
            | "youtubei.googleapis.com"
            | "www.youtube-nocookie.com"
    ) {
        req.headers_mut().insert(
            HeaderName::from_static("youtube-restrict"),
            HeaderValue::from_static("Strict"),
        );
        return true;
    }
    match rewrite.and_then(|(k, v)| set_param(req.uri(), k, v)) {
        Some(uri) => {
            *req.uri_mut() = uri;
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(url: &str) -> (String, Option<String>) {
        let mut req = Request::builder().uri(url).body(()).unwrap();
        enforce(&mut req);
        let yt = req
            .headers()
            .get("youtube-restrict")
            .map(|v| v.to_str().unwrap().to_owned());
        (req.uri().to_string(), yt)
    }

    #[test]
    fn safesearch_table() {
        let cases = [
            (
                "https://www.google.co.uk/search?q=cats&safe=off",
                "https://www.google.co.uk/search?q=cats&safe=active",
            ),
            (
                "https://www.google.com/search?q=cats",
                "https://www.google.com/search?q=cats&safe=active",
            ),
            (
                "https://www.bing.com/search?q=cats&adlt=off",
                "https://www.bing.com/search?q=cats&adlt=strict",
            ),
            (
                "https://www.bing.com/images/search?q=cats",
                "https://www.bing.com/images/search?q=cats&adlt=strict",
            ),
            (
                "https://duckduckgo.com/?q=cats&kp=-2",
                "https://duckduckgo.com/?q=cats&kp=1",
            ),
            (
                "https://www.example.com/search?q=cats",
                "https://www.example.com/search?q=cats",
            ),
            (
                "https://www.google.evil.example/search?q=x",
                "https://www.google.evil.example/search?q=x",
            ),
        ];
        for (from, to) in cases {
            assert_eq!(rewritten(from).0, to, "{from}");
        }
        assert_eq!(
            rewritten("https://www.youtube.com/watch?v=x").1.as_deref(),
            Some("Strict")
        );
    }
}
