//! Squid's `url_rewrite_program` helper protocol, so a school running Squid can replace
//! squidGuard with Gatehouse's engine by one line of `squid.conf`:
//!
//! ```text
//! url_rewrite_program /usr/bin/gatehouse squid-helper --config /etc/gatehouse/gatehouse.toml
//! url_rewrite_children 4 concurrency=8
//! ```
//!
//! Requests are `[channel-ID ]URL [client-ip/fqdn user method ...]`; answers are
//! `[channel-ID ]ERR` (leave the request alone) or `[channel-ID ]OK status=302 url="..."`
//! (send the browser to the block page), or `BH message="..."` for a line that cannot be read.

use std::io::Write;
use std::net::IpAddr;

/// One request line, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelperRequest<'a> {
    pub channel: Option<&'a str>,
    pub url: &'a str,
    pub client: Option<IpAddr>,
    pub user: Option<&'a str>,
    pub method: Option<&'a str>,
}

impl HelperRequest<'_> {
    /// CONNECT requests carry `host:port`, not a URL.
    pub fn is_connect(&self) -> bool {
        self.method
            .is_some_and(|m| m.eq_ignore_ascii_case("CONNECT"))
            || !self.url.contains("://")
    }
}

/// Reads one line. The channel id is present when squid runs the helper with
/// `concurrency=N`: a leading number followed by more fields.
pub fn parse_request(line: &str) -> Result<HelperRequest<'_>, (Option<&str>, &'static str)> {
    let mut fields = line.split_ascii_whitespace();
    let first = fields.next().ok_or((None, "empty line"))?;
    let (channel, url) = if first.bytes().all(|b| b.is_ascii_digit()) {
        match fields.next() {
            Some(url) => (Some(first), url),
            None => return Err((Some(first), "no URL after the channel id")),
        }
    } else {
        (None, first)
    };
    let client = fields
        .next()
        .and_then(|f| f.split('/').next())
        .and_then(|ip| ip.parse().ok());
    let user = fields.next().filter(|u| *u != "-");
    let method = fields.next().filter(|m| *m != "-");
    Ok(HelperRequest {
        channel,
        url,
        client,
        user,
        method,
    })
}

/// Writes "leave it alone".
pub fn write_pass(out: &mut impl Write, channel: Option<&str>) -> std::io::Result<()> {
    match channel {
        Some(c) => writeln!(out, "{c} ERR"),
        None => out.write_all(b"ERR\n"),
    }
}

/// Writes "redirect to `location`".
pub fn write_redirect(
    out: &mut impl Write,
    channel: Option<&str>,
    location: &str,
) -> std::io::Result<()> {
    if let Some(c) = channel {
        write!(out, "{c} ")?;
    }
    writeln!(out, "OK status=302 url=\"{location}\"")
}

/// Writes "this line is broken".
pub fn write_broken(
    out: &mut impl Write,
    channel: Option<&str>,
    message: &str,
) -> std::io::Result<()> {
    if let Some(c) = channel {
        write!(out, "{c} ")?;
    }
    writeln!(out, "BH message=\"{message}\"")
}

/// Percent-encodes a query-string value.
pub fn encode_component(text: &str, out: &mut String) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[(b >> 4) as usize]));
            out.push(char::from(b"0123456789ABCDEF"[(b & 15) as usize]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        let r = parse_request("http://www.example.com/x 10.0.0.1/- - GET").unwrap();
        assert_eq!(r.channel, None);
        assert_eq!(r.url, "http://www.example.com/x");
        assert_eq!(r.client, Some("10.0.0.1".parse().unwrap()));
        assert_eq!((r.user, r.method), (None, Some("GET")));
        let r = parse_request(
            "12 http://a.example/ 10.0.0.2/pc1.school alice GET myip=1.2.3.4 myport=3128",
        )
        .unwrap();
        assert_eq!(
            (r.channel, r.url, r.user),
            (Some("12"), "http://a.example/", Some("alice"))
        );
        let r = parse_request("0 www.example.com:443 10.0.0.3/- - CONNECT").unwrap();
        assert!(r.is_connect());
        let r = parse_request("http://only.example/").unwrap();
        assert_eq!((r.client, r.user, r.method), (None, None, None));
        assert_eq!(parse_request("   "), Err((None, "empty line")));
        assert_eq!(
            parse_request("7"),
            Err((Some("7"), "no URL after the channel id"))
        );
    }

    #[test]
    fn writes_answers() {
        let mut out = Vec::new();
        write_pass(&mut out, None).unwrap();
        write_pass(&mut out, Some("3")).unwrap();
        write_redirect(&mut out, Some("4"), "http://block/?u=x").unwrap();
        write_broken(&mut out, None, "bad").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ERR\n3 ERR\n4 OK status=302 url=\"http://block/?u=x\"\nBH message=\"bad\"\n"
        );
        let mut s = String::new();
        encode_component("a b&c/é", &mut s);
        assert_eq!(s, "a%20b%26c%2F%C3%A9");
    }
}
