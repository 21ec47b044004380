//! One parser per line format. Each reads a line and hands its entries to a callback.

use super::ListFormat;
use crate::host::{Host, HostKind};
use std::borrow::Cow;

/// One usable thing read from a list line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry<'a> {
    /// A normalised host name or IP address: matches itself and every name below it.
    Domain(Cow<'a, str>),
    /// A normalised host and a path prefix (`""` matches every path).
    Url { host: Cow<'a, str>, path: &'a str },
    /// A regular expression over `host/path?query` (compiled later).
    Regex(&'a str),
}

/// What one line turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineOutcome {
    /// This many entries were emitted.
    Used(usize),
    /// Blank or a comment.
    Blank,
    /// Valid in its format, of no use to Gatehouse (the reason says why).
    Ignored(&'static str),
    /// Broken: the message says what is wrong.
    Bad(String),
}

/// Parses one line of `format`. `SquidGuard` folders are read file by file with the
/// `Domains`, `Urls` and `Regex` formats, so those two never reach this function.
pub fn parse_line<'a>(
    format: ListFormat,
    line: &'a str,
    emit: &mut impl FnMut(Entry<'a>),
) -> LineOutcome {
    let line = line.trim_end_matches(['\r', '\n']);
    match format {
        ListFormat::Domains | ListFormat::Squidguard | ListFormat::SquidguardTree => {
            domains_line(line, emit)
        }
        ListFormat::Hosts => hosts_line(line, emit),
        ListFormat::Adblock => adblock_line(line, emit),
        ListFormat::Dnsmasq => dnsmasq_line(line, emit),
        ListFormat::Urls => urls_line(line, emit),
        ListFormat::Regex => regex_line(line, emit),
    }
}

/// Normalises a host name from a list, refusing what cannot be one. Leading `*.` and `.`
/// (wildcard spellings) mean the same as the bare name: every entry covers its subdomains.
pub fn valid_domain(raw: &str) -> Result<Cow<'_, str>, String> {
    let name = raw.trim_start_matches("*.").trim_start_matches('.');
    let host = Host::parse(name).ok_or_else(|| format!("not a host name: {raw:?}"))?;
    if host.kind() == HostKind::Name && !host.as_str().contains('.') {
        return Err(format!(
            "{raw:?} is a single label: it would block a whole top-level domain"
        ));
    }
    Ok(host.into_cow())
}

/// Removes a comment: `#` at the start of the line or after white space (a `#` inside a
/// URL, as in `host/#page`, is part of it).
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let at = bytes
        .iter()
        .enumerate()
        .position(|(i, &b)| b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()));
    match at {
        Some(i) => &line[..i],
        None => line,
    }
    .trim()
}

fn domains_line<'a>(line: &'a str, emit: &mut impl FnMut(Entry<'a>)) -> LineOutcome {
    let text = strip_comment(line);
    if text.is_empty() {
        return LineOutcome::Blank;
    }
    if text.split_whitespace().nth(1).is_some() {
        return LineOutcome::Bad(format!("more than one name on the line: {text:?}"));
    }
    if text.contains('/') {
        return LineOutcome::Bad(format!("{text:?} has a path: put it in a urls list"));
    }
    match valid_domain(text) {
        Ok(name) => {
            emit(Entry::Domain(name));
            LineOutcome::Used(1)
        }
        Err(e) => LineOutcome::Bad(e),
    }
}

/// Names that hosts files carry for the machine itself, not as blocks.
const HOSTS_SELF_NAMES: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-localnet",
    "ip6-mcastprefix",
    "ip6-allnodes",
    "ip6-allrouters",
    "ip6-allhosts",
    "0.0.0.0",
];

fn hosts_line<'a>(line: &'a str, emit: &mut impl FnMut(Entry<'a>)) -> LineOutcome {
    let text = strip_comment(line);
    if text.is_empty() {
        return LineOutcome::Blank;
    }
    let mut words = text.split_whitespace();
    let Some(addr) = words.next() else {
        return LineOutcome::Blank;
    };
    if addr.parse::<std::net::IpAddr>().is_err() {
        return LineOutcome::Bad(format!(
            "expected an address then names, found {addr:?} first"
        ));
    }
    let mut used = 0;
    let mut bad = None;
    for word in words {
        if HOSTS_SELF_NAMES.contains(&word) {
            continue;
        }
        match valid_domain(word) {
            Ok(name) => {
                emit(Entry::Domain(name));
                used += 1;
            }
            Err(e) => bad = Some(e),
        }
    }
    match (used, bad) {
        (0, Some(e)) => LineOutcome::Bad(e),
        (0, None) => LineOutcome::Ignored("names the machine itself"),
        (n, _) => LineOutcome::Used(n),
    }
}

/// Adblock options that still mean "the whole host".
const WHOLE_HOST_OPTIONS: &[&str] = &["important", "all", "document", "doc", "popup"];

fn adblock_line<'a>(line: &'a str, emit: &mut impl FnMut(Entry<'a>)) -> LineOutcome {
    let text = line.trim();
    if text.is_empty() || text.starts_with('!') || text.starts_with('[') {
        return LineOutcome::Blank;
    }
    if text.starts_with("@@") {
        return LineOutcome::Ignored("exception rule");
    }
    if text.contains("##") || text.contains("#@#") || text.contains("#?#") || text.contains("#$#") {
        return LineOutcome::Ignored("cosmetic rule");
    }
    let Some(rest) = text.strip_prefix("||") else {
        return LineOutcome::Ignored("not a host rule");
    };
    let (pattern, options) = match rest.split_once('$') {
        Some((p, o)) => (p, o),
        None => (rest, ""),
    };
    if !options.is_empty()
        && !options
            .split(',')
            .all(|o| WHOLE_HOST_OPTIONS.contains(&o.trim()))
    {
        return LineOutcome::Ignored("options limit it to some requests");
    }
    let Some(host) = pattern
        .strip_suffix('^')
        .or_else(|| pattern.strip_suffix("^|"))
    else {
        return LineOutcome::Ignored("not a whole-host rule");
    };
    if host.contains(['/', '*', '^', '|']) {
        return LineOutcome::Ignored("not a whole-host rule");
    }
    match valid_domain(host) {
        Ok(name) => {
            emit(Entry::Domain(name));
            LineOutcome::Used(1)
        }
        Err(e) => LineOutcome::Bad(e),
    }
}

fn dnsmasq_line<'a>(line: &'a str, emit: &mut impl FnMut(Entry<'a>)) -> LineOutcome {
    let text = strip_comment(line);
    if text.is_empty() {
        return LineOutcome::Blank;
    }
    let Some((key, value)) = text.split_once('=') else {
        return LineOutcome::Bad(format!("expected key=/name/..., found {text:?}"));
    };
    if !matches!(key.trim(), "server" | "address" | "local") {
        return LineOutcome::Ignored("not a server, address or local line");
    }
    let Some(value) = value.trim().strip_prefix('/') else {
        return LineOutcome::Bad(format!("expected /name/ after {key}=, found {value:?}"));
    };
    let mut parts: Vec<&str> = value.split('/').collect();
    // The last part is the upstream or address (possibly empty): not a name.
    parts.pop();
    let mut used = 0;
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        match valid_domain(part) {
            Ok(name) => {
                emit(Entry::Domain(name));
                used += 1;
            }
            Err(e) => return LineOutcome::Bad(e),
        }
    }
    if used == 0 {
        return LineOutcome::Bad(format!("no name between slashes in {text:?}"));
    }
    LineOutcome::Used(used)
}

fn urls_line<'a>(line: &'a str, emit: &mut impl FnMut(Entry<'a>)) -> LineOutcome {
    let text = strip_comment(line);
    if text.is_empty() {
        return LineOutcome::Blank;
    }
    if text.split_whitespace().nth(1).is_some() {
        return LineOutcome::Bad(format!("white space inside a URL: {text:?}"));
    }
    let text = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .unwrap_or(text);
    let (host, path) = match text.find('/') {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let host = host.split(':').next().unwrap_or(host);
    match valid_domain(host) {
        Ok(host) => {
            emit(Entry::Url { host, path });
            LineOutcome::Used(1)
        }
        Err(e) => LineOutcome::Bad(e),
    }
}

fn regex_line<'a>(line: &'a str, emit: &mut impl FnMut(Entry<'a>)) -> LineOutcome {
    let text = line.trim();
    if text.is_empty() || text.starts_with('#') {
        return LineOutcome::Blank;
    }
    emit(Entry::Regex(text));
    LineOutcome::Used(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Outcome = (LineOutcome, Vec<String>);

    fn run(format: ListFormat, line: &str) -> Outcome {
        let mut got = Vec::new();
        let outcome = parse_line(format, line, &mut |e| {
            got.push(match e {
                Entry::Domain(d) => d.into_owned(),
                Entry::Url { host, path } => format!("{host}{path}"),
                Entry::Regex(r) => format!("re:{r}"),
            })
        });
        (outcome, got)
    }

    fn used(names: &[&str]) -> Outcome {
        (
            LineOutcome::Used(names.len()),
            names.iter().map(|s| s.to_string()).collect(),
        )
    }

    #[test]
    fn domains_table() {
        use ListFormat::Domains as D;
        let cases: &[(&str, Option<Outcome>)] = &[
            ("0-casino.info", Some(used(&["0-casino.info"]))),
            ("Example.COM\r", Some(used(&["example.com"]))),
            ("*.wild.example", Some(used(&["wild.example"]))),
            (".dot.example", Some(used(&["dot.example"]))),
            ("münchen.de", Some(used(&["xn--mnchen-3ya.de"]))),
            ("1.2.3.4", Some(used(&["1.2.3.4"]))),
            ("site.example # a comment", Some(used(&["site.example"]))),
            ("# comment only", Some((LineOutcome::Blank, vec![]))),
            ("   ", Some((LineOutcome::Blank, vec![]))),
            // The glitch in the Sinfonietta list: two names run together still parse as one
            // (valid) name; it blocks nothing real and is reported by nobody.
            (
                "rahaporn.commanhwax.top",
                Some(used(&["rahaporn.commanhwax.top"])),
            ),
            ("localhost", None),
            ("two names.example", None),
            ("example.com/path", None),
            ("bad..name", None),
            ("spaces in", None),
            ("<html>", None),
        ];
        for (line, want) in cases {
            let got = run(D, line);
            match want {
                Some(want) => assert_eq!(&got, want, "{line:?}"),
                None => assert!(matches!(got.0, LineOutcome::Bad(_)), "{line:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn hosts_table() {
        use ListFormat::Hosts as H;
        assert_eq!(run(H, "0.0.0.0 10bet.com"), used(&["10bet.com"]));
        assert_eq!(
            run(H, "127.0.0.1\ta.example b.example # c"),
            used(&["a.example", "b.example"])
        );
        assert_eq!(run(H, ":: ipv6.example"), used(&["ipv6.example"]));
        assert_eq!(
            run(H, "127.0.0.1 localhost").0,
            LineOutcome::Ignored("names the machine itself")
        );
        assert_eq!(
            run(H, "0.0.0.0 0.0.0.0").0,
            LineOutcome::Ignored("names the machine itself")
        );
        assert_eq!(run(H, "# 0.0.0.0 commented.example").0, LineOutcome::Blank);
        assert!(matches!(run(H, "name.example").0, LineOutcome::Bad(_)));
        assert!(matches!(
            run(H, "0.0.0.0 bad..example").0,
            LineOutcome::Bad(_)
        ));
    }

    #[test]
    fn adblock_table() {
        use ListFormat::Adblock as A;
        assert_eq!(run(A, "||ads.example^"), used(&["ads.example"]));
        assert_eq!(run(A, "||ads.example^$important"), used(&["ads.example"]));
        assert_eq!(run(A, "||ads.example^|"), used(&["ads.example"]));
        assert_eq!(run(A, "! comment").0, LineOutcome::Blank);
        assert_eq!(run(A, "[Adblock Plus 2.0]").0, LineOutcome::Blank);
        assert_eq!(
            run(A, "example.com##.ad").0,
            LineOutcome::Ignored("cosmetic rule")
        );
        assert_eq!(
            run(A, "@@||good.example^").0,
            LineOutcome::Ignored("exception rule")
        );
        assert_eq!(
            run(A, "||ads.example^$third-party").0,
            LineOutcome::Ignored("options limit it to some requests")
        );
        assert_eq!(
            run(A, "||ads.example/banner^").0,
            LineOutcome::Ignored("not a whole-host rule")
        );
        assert_eq!(
            run(A, "||ads.*.example^").0,
            LineOutcome::Ignored("not a whole-host rule")
        );
        assert_eq!(
            run(A, "/banner/*/img^").0,
            LineOutcome::Ignored("not a host rule")
        );
        assert!(matches!(run(A, "||bad..example^").0, LineOutcome::Bad(_)));
    }

    #[test]
    fn dnsmasq_table() {
        use ListFormat::Dnsmasq as M;
        assert_eq!(run(M, "server=/drugs.example/"), used(&["drugs.example"]));
        assert_eq!(
            run(M, "address=/a.example/b.example/0.0.0.0"),
            used(&["a.example", "b.example"])
        );
        assert_eq!(run(M, "local=/x.example/"), used(&["x.example"]));
        assert_eq!(
            run(M, "cache-size=100").0,
            LineOutcome::Ignored("not a server, address or local line")
        );
        assert!(matches!(
            run(M, "server=drugs.example").0,
            LineOutcome::Bad(_)
        ));
        assert!(matches!(run(M, "nonsense").0, LineOutcome::Bad(_)));
    }

    #[test]
    fn urls_table() {
        use ListFormat::Urls as U;
        assert_eq!(
            run(U, "101soundboards.com/boards/231587-x"),
            used(&["101soundboards.com/boards/231587-x"])
        );
        assert_eq!(
            run(U, "http://WWW.Example.com/a/"),
            used(&["www.example.com/a/"])
        );
        assert_eq!(run(U, "example.com:8080/p"), used(&["example.com/p"]));
        assert_eq!(run(U, "example.com"), used(&["example.com"]));
        assert_eq!(
            run(U, "telegsaop.boats/#ce"),
            used(&["telegsaop.boats/#ce"])
        );
        assert_eq!(run(U, "example.com/p # note"), used(&["example.com/p"]));
        assert!(matches!(run(U, "bad..host/p").0, LineOutcome::Bad(_)));
        assert!(matches!(run(U, "a.com/x b").0, LineOutcome::Bad(_)));
    }

    #[test]
    fn regex_lines_pass_through() {
        assert_eq!(
            run(ListFormat::Regex, r".*/ymsgr*\.exe"),
            used(&[r"re:.*/ymsgr*\.exe"])
        );
        assert_eq!(run(ListFormat::Regex, "").0, LineOutcome::Blank);
    }
}
