//! `evaluate(snapshot, facts) -> Decision`: what happens to one request, for one role.
//!
//! Precedence, first match wins:
//! 1. the **illegal tier** blocks for every role, with a critical alert;
//! 2. the school's **local** allow and deny entries (the most specific wins);
//! 3. for a role that names the AI services it may use, an **AI service**'s host: approved,
//!    allowed whatever its categories; not approved, blocked. Otherwise the **categories** the
//!    request is listed under; and the **themes** its search terms hit:
//!    the strictest action among them wins (block > warn > log > allow); time bands can change
//!    a category's action for a role at some times of the week;
//! 4. the role's **default**.
//!
//! A search is judged on its words as well as its site: theme hits apply even where a local
//! allow entry opened the site, so an allowed search engine still raises safeguarding alerts.
//! Alerts and the sensitive-log flag are independent of the verdict: the strongest alert of
//! everything that matched is kept.
//!
//! Nothing here allocates unless the request is a search with a query (the query text is
//! kept for the log) or a theme matched.

use crate::category::{CategoryId, CategorySet};
use crate::config::{Action, ActionSpec, Severity};
use crate::host::Host;
use crate::policy::RoleId;
use crate::search::{self, Engine, PhraseId, ThemeId, ThemeSet};
use crate::snapshot::Snapshot;
use crate::url::{split_authority, split_url};
use chrono::{DateTime, Datelike, Timelike, Utc};
use std::borrow::Cow;
use std::net::IpAddr;

/// What is being asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// An absolute URL (`http://host/path?q`), as in a proxied request or a decrypted one.
    Url(&'a str),
    /// `host:port` of a CONNECT that will not be decrypted: only the host is known.
    Authority(&'a str),
}

/// Everything `evaluate` is told about a request.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    pub role: RoleId,
    pub user: Option<&'a str>,
    pub client: Option<IpAddr>,
    /// When the request was made (time bands are read in the school's time zone).
    pub at: DateTime<Utc>,
    pub method: &'a str,
    pub target: Target<'a>,
}

/// The outcome a person sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Warn,
    Block,
}

/// Which rule decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    Illegal,
    LocalDeny {
        entry: u32,
    },
    LocalAllow {
        entry: u32,
    },
    Category {
        category: CategoryId,
        band: Option<u8>,
    },
    Theme {
        theme: ThemeId,
    },
    /// An AI chat service, for a role that names the ones it may use.
    AiService {
        service: crate::ai::AiServiceId,
        approved: bool,
    },
    RoleDefault,
    /// The request named no usable host; it is blocked.
    Unreadable,
    /// The role id is not in this policy (a policy reload removed it); blocked.
    UnknownRole,
}

/// A search query found in the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchQuery {
    pub engine: Engine,
    /// The query as typed (decoded).
    pub text: String,
}

/// The decision: a value, never an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// Log the request as sensitive (a safeguarding-relevant hit, even if allowed).
    pub sensitive: bool,
    /// Tell the DSL, with this severity.
    pub alert: Option<Severity>,
    pub categories: CategorySet,
    pub themes: ThemeSet,
    /// Themes whose hits the search's context (study, news, help-seeking) lowered to a
    /// sensitive log: no alert, no block.
    pub lowered: ThemeSet,
    /// Themes a `kept` combination fired, which context does not lower.
    pub kept: ThemeSet,
    /// Themes the learned weights fired (their features are among `terms`).
    pub learned: ThemeSet,
    pub terms: Vec<PhraseId>,
    /// The context words that lowered the hits, or the first-person words that kept them.
    pub context: Vec<PhraseId>,
    /// Words read as slips of listed words: (as typed, as read).
    pub slips: Vec<(String, String)>,
    pub search: Option<SearchQuery>,
    pub rule: Rule,
    /// For a CONNECT (`Target::Authority`): whether the tunnel is decrypted, so the block
    /// page and every request inside it can be seen (the role decrypts and the host is not
    /// on the no-decrypt list). Always false for a URL.
    pub decrypt: bool,
}

impl Decision {
    fn fixed(verdict: Verdict, rule: Rule) -> Decision {
        Decision {
            decrypt: false,
            verdict,
            sensitive: false,
            alert: None,
            categories: CategorySet::EMPTY,
            themes: ThemeSet::default(),
            lowered: ThemeSet::default(),
            kept: ThemeSet::default(),
            learned: ThemeSet::default(),
            terms: Vec::new(),
            context: Vec::new(),
            slips: Vec::new(),
            search: None,
            rule,
        }
    }
}

fn verdict_of(action: Action) -> Verdict {
    match action {
        Action::Allow | Action::Log => Verdict::Allow,
        Action::Warn => Verdict::Warn,
        Action::Block => Verdict::Block,
    }
}

/// The request's target split into what the indexes need.
pub(crate) struct Parsed<'a> {
    pub(crate) host: Host<'a>,
    /// Path and query (`/a?b`); `None` for a tunnel.
    pub(crate) path: Option<&'a str>,
    /// The URL without scheme, user info and port, for regexes: `host/a?b`.
    pub(crate) regex_text: Option<Cow<'a, str>>,
    pub(crate) url: Option<crate::url::UrlParts<'a>>,
}

pub(crate) fn parse_target_host(target: Target<'_>) -> Option<Parsed<'_>> {
    match target {
        Target::Url(url) => {
            let parts = split_url(url)?;
            let host = Host::parse(parts.host)?;
            let path = if parts.path_and_query.is_empty() {
                "/"
            } else {
                parts.path_and_query
            };
            let regex_text = match parts.port {
                None => Cow::Borrowed(parts.after_scheme),
                Some(_) => Cow::Owned(format!("{}{}", parts.host, parts.path_and_query)),
            };
            Some(Parsed {
                host,
                path: Some(path),
                regex_text: Some(regex_text),
                url: Some(parts),
            })
        }
        Target::Authority(authority) => {
            let (host, _) = split_authority(authority)?;
            Some(Parsed {
                host: Host::parse(host)?,
                path: None,
                regex_text: None,
                url: None,
            })
        }
    }
}

/// Decides one request.
pub fn evaluate(snap: &Snapshot, facts: &Facts<'_>) -> Decision {
    let Some(role) = snap.role(facts.role) else {
        return Decision::fixed(Verdict::Block, Rule::UnknownRole);
    };
    let Some(target) = parse_target_host(facts.target) else {
        return Decision::fixed(Verdict::Block, Rule::Unreadable);
    };
    let suffixes = target.host.suffixes();
    let host = target.host.as_str();
    let regex_text = target.regex_text.as_deref();
    let decrypt = matches!(facts.target, Target::Authority(_))
        && role.decrypt_https
        && !snap.no_decrypt.matches(host, &suffixes);

    // 1. The illegal tier.
    if !snap.illegal.is_empty()
        && !snap
            .illegal
            .lookup(host, &suffixes, target.path, regex_text)
            .is_empty()
    {
        let mut d = Decision::fixed(Verdict::Block, Rule::Illegal);
        d.sensitive = true;
        d.alert = Some(Severity::Critical);
        d.decrypt = decrypt;
        return d;
    }

    let categories = snap.lists.lookup(host, &suffixes, target.path, regex_text);
    let mut search = None;
    let mut hits = search::ThemeHits::default();
    if let Some(parts) = &target.url {
        if let Some(q) = search::extract_from(parts, host) {
            let text = q.decoded();
            hits = snap.themes.find(&search::normalize(&text));
            search = Some(SearchQuery {
                engine: q.engine,
                text,
            });
        }
    }

    let mut pick = Strictest::default();
    // 2. Local entries.
    let local = snap
        .local
        .find(&suffixes, target.path.unwrap_or("/"), facts.role);
    match local.and_then(|i| snap.local.entry(i).map(|e| (i, e.kind))) {
        Some((entry, crate::index::LocalKind::Deny)) => {
            pick.offer(ActionSpec::Plain(Action::Block), Rule::LocalDeny { entry })
        }
        Some((entry, crate::index::LocalKind::Allow)) => {
            pick.offer(ActionSpec::Plain(Action::Allow), Rule::LocalAllow { entry })
        }
        None => {
            // 3. An AI service, for a role that names the ones it may use: an approved one
            //    is allowed whatever its categories, any other blocked.
            let ai = role
                .ai_approved
                .as_ref()
                .and_then(|approved| snap.ai.lookup(host).map(|s| (s, approved.contains(&s))));
            if let Some((service, approved)) = ai {
                let action = if approved {
                    Action::Allow
                } else {
                    Action::Block
                };
                pick.offer(
                    ActionSpec::Plain(action),
                    Rule::AiService { service, approved },
                );
            }
            // Categories, with time bands read only when one could apply.
            let local_time = role
                .band_categories
                .intersects(categories)
                .then(|| local_minute(snap, facts.at));
            for category in categories.iter().filter(|_| ai.is_none()) {
                let (spec, band) = role.category_action(category, local_time);
                pick.offer(
                    spec,
                    Rule::Category {
                        category,
                        band: band.map(|b| b as u8),
                    },
                );
            }
        }
    }
    for theme in hits.themes.iter() {
        // A hit the context lowered is logged for the DSL's digest, not alerted or blocked.
        let spec = if hits.lowered.contains(theme) {
            ActionSpec::Plain(Action::Log)
        } else if hits.kept.contains(theme) {
            // A particular child harmed, told by a pupil (often asking how to help): the DSL
            // is told, the search is never blocked, like a disclosure.
            let spec = role.theme_action(theme);
            let action = match spec.action() {
                Action::Warn | Action::Block => Action::Log,
                other => other,
            };
            ActionSpec::Full {
                action,
                alert: spec.alert(),
            }
        } else {
            role.theme_action(theme)
        };
        pick.offer(spec, Rule::Theme { theme });
    }
    // 4. The role's default.
    if pick.rule.is_none() {
        pick.offer(role.default, Rule::RoleDefault);
    }
    let action = pick.action.unwrap_or(Action::Block);
    Decision {
        verdict: verdict_of(action),
        sensitive: pick.sensitive || pick.alert.is_some(),
        alert: pick.alert,
        categories,
        themes: hits.themes,
        lowered: hits.lowered,
        kept: hits.kept,
        learned: hits.learned,
        terms: hits.terms,
        context: hits.context,
        slips: hits.slips,
        search,
        rule: pick.rule.unwrap_or(Rule::RoleDefault),
        decrypt,
    }
}

/// Keeps the strictest action offered (the first on ties), the strongest alert, and whether
/// anything asked for a sensitive log.
#[derive(Default)]
struct Strictest {
    action: Option<Action>,
    rule: Option<Rule>,
    alert: Option<Severity>,
    sensitive: bool,
}

impl Strictest {
    #[inline]
    fn offer(&mut self, spec: ActionSpec, rule: Rule) {
        let action = spec.action();
        if self.action.is_none_or(|a| action > a) {
            self.action = Some(action);
            self.rule = Some(rule);
        }
        self.alert = self.alert.max(spec.alert());
        self.sensitive |= action == Action::Log;
    }
}

/// (weekday with Monday = 0, minute of the day) in the school's time zone.
fn local_minute(snap: &Snapshot, at: DateTime<Utc>) -> (u8, u16) {
    let local = at.with_timezone(&snap.tz);
    (
        local.weekday().num_days_from_monday() as u8,
        (local.hour() * 60 + local.minute()) as u16,
    )
}
