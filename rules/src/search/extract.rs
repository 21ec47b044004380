//! Which URLs are searches, and where their query is.
//!
//! Engines are a table: a host rule, the paths that carry a query, and the parameter. Image,
//! video and autocomplete endpoints are included: a pupil's typed-ahead words are as telling
//! as the search they end in.

use super::normalize::decode_component;
use crate::host::Host;
use crate::url::{query_param, UrlParts};

/// The search engines Gatehouse reads queries from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Google,
    Bing,
    DuckDuckGo,
    Yahoo,
    YouTube,
    Wikipedia,
    Ecosia,
    Brave,
    Yandex,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Google => "google",
            Engine::Bing => "bing",
            Engine::DuckDuckGo => "duckduckgo",
            Engine::Yahoo => "yahoo",
            Engine::YouTube => "youtube",
            Engine::Wikipedia => "wikipedia",
            Engine::Ecosia => "ecosia",
            Engine::Brave => "brave",
            Engine::Yandex => "yandex",
        }
    }
}

/// How an engine's hosts are recognised.
enum HostRule {
    /// One of these names exactly.
    Exact(&'static [&'static str]),
    /// `<label>.<country tld>` with an optional `www.` (google.co.uk, yandex.ru).
    AnyTld(&'static str),
    /// Any name ending in this suffix (`en.wikipedia.org`).
    Suffix(&'static str),
}

struct Rule {
    engine: Engine,
    hosts: HostRule,
    /// Paths that carry the query; a trailing `*` matches any rest.
    paths: &'static [&'static str],
    param: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        engine: Engine::Google,
        hosts: HostRule::AnyTld("google"),
        paths: &["/search", "/images", "/complete/search", "/webhp", "/"],
        param: "q",
    },
    Rule {
        engine: Engine::Bing,
        hosts: HostRule::Exact(&["bing.com", "www.bing.com", "cn.bing.com"]),
        paths: &[
            "/search",
            "/images/search",
            "/videos/search",
            "/news/search",
            "/shop",
            "/AS/Suggestions",
        ],
        param: "q",
    },
    Rule {
        engine: Engine::Bing,
        hosts: HostRule::Exact(&["bing.com", "www.bing.com"]),
        paths: &["/AS/Suggestions"],
        param: "qry",
    },
    Rule {
        engine: Engine::DuckDuckGo,
        hosts: HostRule::Exact(&[
            "duckduckgo.com",
            "www.duckduckgo.com",
            "html.duckduckgo.com",
            "lite.duckduckgo.com",
            "start.duckduckgo.com",
        ]),
        paths: &["/", "/html", "/html/", "/lite", "/lite/", "/ac/", "/ac"],
        param: "q",
    },
    Rule {
        engine: Engine::Yahoo,
        hosts: HostRule::Suffix("search.yahoo.com"),
        paths: &["/search*", "/yhs/search", "/images/search", "/video/search"],
        param: "p",
    },
    Rule {
        engine: Engine::YouTube,
        hosts: HostRule::Exact(&[
            "youtube.com",
            "www.youtube.com",
            "m.youtube.com",
            "music.youtube.com",
        ]),
        paths: &["/results", "/search"],
        param: "search_query",
    },
    Rule {
        engine: Engine::YouTube,
        hosts: HostRule::Exact(&[
            "suggestqueries.google.com",
            "suggestqueries-clients6.youtube.com",
        ]),
        paths: &["/complete/search"],
        param: "q",
    },
    Rule {
        engine: Engine::Wikipedia,
        hosts: HostRule::Suffix("wikipedia.org"),
        paths: &[
            "/w/index.php",
            "/wiki/Special:Search",
            "/w/api.php",
            "/w/rest.php/v1/search/title",
            "/w/rest.php/v1/search/page",
        ],
        param: "search",
    },
    Rule {
        engine: Engine::Wikipedia,
        hosts: HostRule::Suffix("wikipedia.org"),
        paths: &["/w/rest.php/v1/search/title", "/w/rest.php/v1/search/page"],
        param: "q",
    },
    Rule {
        engine: Engine::Ecosia,
        hosts: HostRule::Exact(&["ecosia.org", "www.ecosia.org"]),
        paths: &["/search", "/images", "/videos", "/news"],
        param: "q",
    },
    Rule {
        engine: Engine::Brave,
        hosts: HostRule::Exact(&["search.brave.com"]),
        paths: &["/search", "/images", "/videos", "/news", "/api/suggest"],
        param: "q",
    },
    Rule {
        engine: Engine::Yandex,
        hosts: HostRule::AnyTld("yandex"),
        paths: &[
            "/search",
            "/search/",
            "/images/search",
            "/video/search",
            "/images/search/",
        ],
        param: "text",
    },
    Rule {
        engine: Engine::Yandex,
        hosts: HostRule::Exact(&["ya.ru", "www.ya.ru"]),
        paths: &["/search", "/search/"],
        param: "text",
    },
];

/// A query found in a URL, still percent-encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawQuery<'a> {
    pub engine: Engine,
    pub raw: &'a str,
}

impl RawQuery<'_> {
    /// The query as the person typed it: `+` and percent escapes decoded.
    pub fn decoded(&self) -> String {
        decode_component(self.raw)
    }
}

/// The search query in `url`, if it is a search on a known engine with a non-empty query.
pub fn extract_query(url: &str) -> Option<RawQuery<'_>> {
    let parts = crate::url::split_url(url)?;
    let host = Host::parse(parts.host)?;
    extract_from(&parts, host.as_str())
}

/// As [`extract_query`], for a URL already split and a host already normalised.
pub fn extract_from<'a>(parts: &UrlParts<'a>, host: &str) -> Option<RawQuery<'a>> {
    let query = parts.query?;
    RULES.iter().find_map(|rule| {
        if !host_matches(&rule.hosts, host) || !path_matches(rule.paths, parts.path) {
            return None;
        }
        let raw = query_param(query, rule.param)?;
        (!raw.is_empty()).then_some(RawQuery {
            engine: rule.engine,
            raw,
        })
    })
}

fn host_matches(rule: &HostRule, host: &str) -> bool {
    match rule {
        HostRule::Exact(names) => names.contains(&host),
        HostRule::Suffix(suffix) => {
            host == *suffix
                || (host.ends_with(suffix)
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.')
        }
        HostRule::AnyTld(label) => {
            let host = host.strip_prefix("www.").unwrap_or(host);
            let Some(tld) = host.strip_prefix(label).and_then(|r| r.strip_prefix('.')) else {
                return false;
            };
            // com, de, co.uk, com.au: one or two short labels.
            let labels: Vec<&str> = tld.split('.').collect();
            !tld.is_empty()
                && labels.len() <= 2
                && labels.iter().all(|l| {
                    (2..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_lowercase())
                })
        }
    }
}

fn path_matches(paths: &[&str], path: &str) -> bool {
    let path = if path.is_empty() { "/" } else { path };
    paths.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => path == *p,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_queries_from_every_engine() {
        let cases: &[(&str, Option<(Engine, &str)>)] = &[
            (
                "https://www.google.com/search?q=self+harm&oq=self",
                Some((Engine::Google, "self harm")),
            ),
            (
                "https://www.google.co.uk/search?client=firefox&q=how%20to%20vote",
                Some((Engine::Google, "how to vote")),
            ),
            (
                "https://www.google.co.uk/search?q=cats&tbm=isch",
                Some((Engine::Google, "cats")),
            ),
            (
                "https://google.de/search?q=katze",
                Some((Engine::Google, "katze")),
            ),
            (
                "https://www.google.com/complete/search?q=how+to+k&client=gws-wiz",
                Some((Engine::Google, "how to k")),
            ),
            ("https://www.google.com/maps?q=london", None),
            ("https://www.google.evil.example/search?q=x", None),
            ("https://notgoogle.com/search?q=x", None),
            (
                "https://www.bing.com/search?q=bing+query&form=QBLH",
                Some((Engine::Bing, "bing query")),
            ),
            (
                "https://www.bing.com/images/search?q=img",
                Some((Engine::Bing, "img")),
            ),
            (
                "https://www.bing.com/videos/search?q=vid",
                Some((Engine::Bing, "vid")),
            ),
            (
                "https://duckduckgo.com/?q=duck&t=h_",
                Some((Engine::DuckDuckGo, "duck")),
            ),
            (
                "https://html.duckduckgo.com/html/?q=duck+html",
                Some((Engine::DuckDuckGo, "duck html")),
            ),
            (
                "https://duckduckgo.com/?q=duck&iax=images&ia=images",
                Some((Engine::DuckDuckGo, "duck")),
            ),
            (
                "https://search.yahoo.com/search?p=yahoo+q",
                Some((Engine::Yahoo, "yahoo q")),
            ),
            (
                "https://uk.search.yahoo.com/search;_ylt=x?p=uk+yahoo",
                Some((Engine::Yahoo, "uk yahoo")),
            ),
            (
                "https://images.search.yahoo.com/search/images?p=pics",
                Some((Engine::Yahoo, "pics")),
            ),
            (
                "https://www.youtube.com/results?search_query=yt+query",
                Some((Engine::YouTube, "yt query")),
            ),
            (
                "https://m.youtube.com/results?search_query=mobile",
                Some((Engine::YouTube, "mobile")),
            ),
            ("https://www.youtube.com/watch?v=abc", None),
            (
                "https://en.wikipedia.org/w/index.php?search=wiki+query&title=Special:Search",
                Some((Engine::Wikipedia, "wiki query")),
            ),
            (
                "https://en.wikipedia.org/wiki/Special:Search?search=wiki2",
                Some((Engine::Wikipedia, "wiki2")),
            ),
            (
                "https://www.ecosia.org/search?q=eco&method=index",
                Some((Engine::Ecosia, "eco")),
            ),
            (
                "https://www.ecosia.org/images?q=eco+img",
                Some((Engine::Ecosia, "eco img")),
            ),
            (
                "https://search.brave.com/search?q=brave&source=web",
                Some((Engine::Brave, "brave")),
            ),
            (
                "https://search.brave.com/images?q=brave+img",
                Some((Engine::Brave, "brave img")),
            ),
            (
                "https://yandex.ru/search/?text=yandex+q&lr=213",
                Some((Engine::Yandex, "yandex q")),
            ),
            (
                "https://yandex.com/images/search?text=ya+img",
                Some((Engine::Yandex, "ya img")),
            ),
            ("https://www.google.com/search?q=", None),
            ("https://www.google.com/search", None),
            ("not a url", None),
        ];
        for (url, want) in cases {
            let got = extract_query(url).map(|q| (q.engine, q.decoded()));
            assert_eq!(got, want.map(|(e, s)| (e, s.to_owned())), "{url}");
        }
    }
}
