//! A zero-allocation splitter for the request targets a proxy sees: absolute URLs
//! (`http://user@Host:8080/path?q#f`) and CONNECT authorities (`host:443`).
//!
//! It only finds the parts; [`crate::host::Host`] normalises the host.

/// The parts of an absolute URL, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// Lower-case is not guaranteed: compare with `eq_ignore_ascii_case`.
    pub scheme: &'a str,
    /// The host as written (brackets kept for IPv6), without user info or port.
    pub host: &'a str,
    pub port: Option<u16>,
    /// Starts with `/`, or is empty.
    pub path: &'a str,
    /// After `?`, before `#`.
    pub query: Option<&'a str>,
    /// Everything after the authority: path, `?query` and `#fragment` (`/a/b?c#d`), or empty.
    /// URL lists and regexes are matched against it, as squidGuard does; browsers never send
    /// a fragment, other clients may.
    pub path_and_query: &'a str,
    /// Everything after `scheme://` and user info: `host:port/path?q#f`.
    pub after_scheme: &'a str,
}

/// Splits an absolute URL. `None` when it has no `scheme://` or no host.
///
/// One forward pass over the bytes: the scheme, then the authority (noting the last `@`),
/// then the first `?` and `#` of the rest.
pub fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let bytes = url.as_bytes();
    let colon = bytes
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.'))?;
    if colon == 0 || bytes.get(colon..colon + 3) != Some(b"://") {
        return None;
    }
    let scheme = &url[..colon];
    let rest_at = colon + 3;
    let mut at = None;
    let mut i = rest_at;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'/' | b'?' | b'#' => break,
            b'@' => at = Some(i),
            _ => {}
        }
        i += 1;
    }
    let host_start = at.map_or(rest_at, |a| a + 1);
    let (host, port) = split_authority(url.get(host_start..i)?)?;
    let target = url.get(i..)?;
    let mut question = None;
    let mut hash = None;
    for (k, &b) in target.as_bytes().iter().enumerate() {
        if b == b'#' {
            hash = Some(k);
            break;
        }
        if b == b'?' && question.is_none() {
            question = Some(k);
        }
    }
    let tail = &target[..hash.unwrap_or(target.len())];
    let (path, query) = match question {
        Some(q) => (&tail[..q], Some(&tail[q + 1..])),
        None => (tail, None),
    };
    Some(UrlParts {
        scheme,
        host,
        port,
        path,
        query,
        path_and_query: target,
        after_scheme: url.get(host_start..)?,
    })
}

/// Splits `host[:port]` (with `[v6]` literals). `None` for an empty host or a bad port.
pub fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        match rest.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if rest.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match authority.as_bytes().iter().rposition(|&b| b == b':') {
            Some(c) => (&authority[..c], Some(&authority[c + 1..])),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some("") | None => None,
        Some(p) => Some(p.parse().ok()?),
    };
    Some((host, port))
}

/// The value of the first `key=value` pair named `key` in a query string, still encoded.
pub fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|pair| match pair.split_once('=') {
            Some((k, v)) if k == key => Some(v),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        let u = split_url("http://user:pw@Example.COM:8080/a/b?q=1&r=2#frag").unwrap();
        assert_eq!(
            (u.scheme, u.host, u.port, u.path, u.query, u.after_scheme),
            (
                "http",
                "Example.COM",
                Some(8080),
                "/a/b",
                Some("q=1&r=2"),
                "Example.COM:8080/a/b?q=1&r=2#frag"
            )
        );
        assert_eq!(u.path_and_query, "/a/b?q=1&r=2#frag");
        let u = split_url("https://h.example#x?y").unwrap();
        assert_eq!(
            (u.host, u.path, u.query, u.path_and_query),
            ("h.example", "", None, "#x?y")
        );
        let u = split_url("https://[::1]:8443/x").unwrap();
        assert_eq!((u.host, u.port, u.path), ("[::1]", Some(8443), "/x"));
        let u = split_url("https://example.com").unwrap();
        assert_eq!(
            (u.host, u.port, u.path, u.query),
            ("example.com", None, "", None)
        );
        let u = split_url("https://example.com?q=a/b").unwrap();
        assert_eq!(
            (u.host, u.path, u.query),
            ("example.com", "", Some("q=a/b"))
        );
        let u = split_url("http://a.example/p?x=1@evil.example").unwrap();
        assert_eq!(u.host, "a.example");
        for bad in [
            "example.com/x",
            "://x",
            "http://",
            "http://:80/",
            "http://h:99999/",
            "ht tp://x/",
        ] {
            assert!(split_url(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn splits_authorities() {
        assert_eq!(
            split_authority("example.com:443"),
            Some(("example.com", Some(443)))
        );
        assert_eq!(split_authority("example.com"), Some(("example.com", None)));
        assert_eq!(
            split_authority("[2001:db8::1]:443"),
            Some(("[2001:db8::1]", Some(443)))
        );
        assert_eq!(split_authority("[2001:db8::1]x"), None);
        assert_eq!(split_authority(":443"), None);
    }

    #[test]
    fn finds_query_params() {
        assert_eq!(query_param("a=1&q=two+words&q=3", "q"), Some("two+words"));
        assert_eq!(query_param("aq=1", "q"), None);
        assert_eq!(query_param("q", "q"), None);
    }
}
