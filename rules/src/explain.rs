//! Decisions in words: the JSON `gatehouse explain` prints, and the sentence a block page,
//! a log line or an alert shows.

use crate::config::Severity;
use crate::evaluate::{parse_target_host, Decision, Facts, Rule, Verdict};
use crate::snapshot::Snapshot;
use serde::Serialize;

/// A decision with every id resolved to its name.
#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub verdict: Verdict,
    pub alert: Option<Severity>,
    pub sensitive: bool,
    pub categories: Vec<String>,
    pub themes: Vec<String>,
    pub terms: Vec<String>,
    /// Themes the search's context lowered to a sensitive log.
    pub lowered: Vec<String>,
    /// The context words that lowered the hits, or the first-person words that kept them.
    pub context: Vec<String>,
    /// For each theme the learned weights fired: every weighted feature of the search,
    /// strongest first, the total and the score it fires at.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub learned: Vec<LearnedReason>,
    /// The search query as typed, when the request was a search.
    pub search: Option<String>,
    pub engine: Option<&'static str>,
    /// Which rule decided: `illegal`, `local-deny:<entry>`, `local-allow:<entry>`,
    /// `category:<name>`, `category:<name>@<time band>`, `theme:<name>`, `role-default`.
    pub rule: String,
    /// One sentence for a person.
    pub reason: String,
    pub role: String,
    pub host: Option<String>,
    pub at: String,
    /// The list entries that matched the request, with their categories.
    pub matched: Vec<String>,
}

/// Why the learned weights fired a theme.
#[derive(Clone, Debug, Serialize)]
pub struct LearnedReason {
    pub theme: String,
    /// `feature: weight`, strongest first (a word, a pair, a beginning `abc…` or a class
    /// `{name}`).
    pub weights: Vec<String>,
    pub score: f32,
    pub fires_at: f32,
}

/// The learned reasons for the themes of a decision that the weights fired.
fn learned_reasons(snap: &Snapshot, d: &Decision) -> Vec<LearnedReason> {
    let Some(search) = &d.search else {
        return Vec::new();
    };
    if d.learned.is_empty() {
        return Vec::new();
    }
    let text = crate::search::normalize(&search.text);
    d.learned
        .iter()
        .map(|t| {
            let (weights, score, fires_at) = snap.themes.learned_reasons(&text, t);
            LearnedReason {
                theme: snap.themes.theme_name(t).to_owned(),
                weights: weights
                    .iter()
                    .map(|(f, w)| format!("{f}: {w:+.2}"))
                    .collect(),
                score,
                fires_at,
            }
        })
        .collect()
}

/// Resolves a decision against the snapshot that made it.
pub fn explain(snap: &Snapshot, facts: &Facts<'_>, d: &Decision) -> Explanation {
    explain_with(snap, facts, d, true)
}

/// As [`explain`] without the `matched` list entries (which cost a second lookup): what a log
/// line or a block page needs.
pub fn summarise(snap: &Snapshot, facts: &Facts<'_>, d: &Decision) -> Explanation {
    explain_with(snap, facts, d, false)
}

fn explain_with(
    snap: &Snapshot,
    facts: &Facts<'_>,
    d: &Decision,
    with_matches: bool,
) -> Explanation {
    let role = snap.role(facts.role).map_or("?", |r| r.name.as_str());
    let host = parse_target_host(facts.target);
    let host_text = host.as_ref().map_or("this address", |h| h.host.as_str());
    let rule = rule_name(snap, facts, d);
    let reason = reason(snap, d, role, host_text);
    let mut matched = Vec::new();
    if let (Some(h), true) = (&host, with_matches) {
        for (entry, kind, _) in snap
            .illegal
            .matches(&h.host, h.path, h.regex_text.as_deref())
        {
            matched.push(format!("{entry} ({kind}, illegal tier)"));
        }
        for (entry, kind, set) in snap.lists.matches(&h.host, h.path, h.regex_text.as_deref()) {
            matched.push(format!(
                "{entry} ({kind}: {})",
                snap.category_names(set).join(", ")
            ));
        }
    }
    Explanation {
        verdict: d.verdict,
        alert: d.alert,
        sensitive: d.sensitive,
        categories: snap
            .category_names(d.categories)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        themes: d
            .themes
            .iter()
            .map(|t| snap.themes.theme_name(t).to_owned())
            .collect(),
        terms: d
            .terms
            .iter()
            .map(|&p| snap.themes.phrase_text(p).to_owned())
            .collect(),
        lowered: d
            .lowered
            .iter()
            .map(|t| snap.themes.theme_name(t).to_owned())
            .collect(),
        context: d
            .context
            .iter()
            .map(|&p| snap.themes.phrase_text(p).to_owned())
            .collect(),
        learned: if with_matches {
            learned_reasons(snap, d)
        } else {
            Vec::new()
        },
        search: d.search.as_ref().map(|s| s.text.clone()),
        engine: d.search.as_ref().map(|s| s.engine.name()),
        rule,
        reason,
        role: role.to_owned(),
        host: host.map(|h| h.host.as_str().to_owned()),
        at: facts
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        matched,
    }
}

fn rule_name(snap: &Snapshot, facts: &Facts<'_>, d: &Decision) -> String {
    let entry = |id: u32| snap.local.entry(id).map(|e| e.text()).unwrap_or_default();
    match d.rule {
        Rule::Illegal => "illegal".into(),
        Rule::LocalDeny { entry: id } => format!("local-deny:{}", entry(id)),
        Rule::LocalAllow { entry: id } => format!("local-allow:{}", entry(id)),
        Rule::Category {
            category,
            band: None,
        } => format!("category:{}", snap.category_name(category)),
        Rule::Category {
            category,
            band: Some(b),
        } => {
            let band = snap
                .role(facts.role)
                .and_then(|r| r.bands.get(b as usize))
                .map_or("?", |b| b.name.as_str());
            format!("category:{}@{band}", snap.category_name(category))
        }
        Rule::Theme { theme } => format!("theme:{}", snap.themes.theme_name(theme)),
        Rule::AiService { service, approved } => format!(
            "ai-service:{}{}",
            snap.ai.get(service).map_or("?", |s| s.name.as_str()),
            if approved { "" } else { ":not-approved" }
        ),
        Rule::RoleDefault => "role-default".into(),
        Rule::Unreadable => "unreadable".into(),
        Rule::UnknownRole => "unknown-role".into(),
    }
}

fn verb(v: Verdict) -> &'static str {
    match v {
        Verdict::Allow => "Allowed",
        Verdict::Warn => "Warned",
        Verdict::Block => "Blocked",
    }
}

/// The one-line reason for a person.
pub fn reason(snap: &Snapshot, d: &Decision, role: &str, host: &str) -> String {
    let verb = verb(d.verdict);
    let mut text = match d.rule {
        Rule::Illegal => format!("Blocked for everyone: {host} is on the illegal-content list, which no setting can allow."),
        Rule::LocalDeny { entry } => format!(
            "Blocked: the school's deny list has {}.",
            snap.local.entry(entry).map(|e| e.text()).unwrap_or_default()
        ),
        Rule::LocalAllow { entry } => format!(
            "Allowed: the school's allow list has {}.",
            snap.local.entry(entry).map(|e| e.text()).unwrap_or_default()
        ),
        Rule::Category { category, band } => {
            let band_text = band
                .and_then(|b| snap.roles.iter().find(|r| r.name == role).and_then(|r| r.bands.get(b as usize)))
                .map(|b| format!(" during the time band {}", b.name))
                .unwrap_or_default();
            format!(
                "{verb} for {role}{band_text}: {host} is in the category {} ({}).",
                snap.category_name(category),
                snap.category_description(category).to_lowercase()
            )
        }
        Rule::Theme { theme } => {
            let query = d.search.as_ref().map_or("", |s| s.text.as_str());
            let listed = d
                .terms
                .iter()
                .find(|&&p| snap.themes.phrase_theme(p) == Some(theme));
            // A hit of the learned weights alone is named by its strongest features.
            let (term, lang) = match listed {
                Some(&p) => (
                    snap.themes.phrase_text(p).to_owned(),
                    Some(snap.themes.phrase_language(p)).filter(|l| !l.is_empty()),
                ),
                // A hit of the learned weights alone: named by this theme's strongest
                // features in the search (a decision's learned terms may be another's).
                None if d.learned.contains(theme) => {
                    let (weights, _, _) = snap
                        .themes
                        .learned_reasons(&crate::search::normalize(query), theme);
                    let strongest: Vec<String> = weights
                        .into_iter()
                        .filter(|(_, w)| *w > 0.0)
                        .take(3)
                        .map(|(f, _)| f)
                        .collect();
                    (strongest.join(" + "), Some(crate::search::LEARNED))
                }
                None => (String::new(), None),
            };
            let lang = lang.map(|l| format!(", {l}")).unwrap_or_default();
            // A theme decides without a search for text a person sent (a form, a prompt).
            let what = match &d.search {
                Some(_) => format!("the search \"{query}\""),
                None => "the text sent".to_owned(),
            };
            let mut text = format!(
                "{verb} for {role}: {what} matches the {} theme (\"{term}\"{lang}).",
                snap.themes.theme_name(theme)
            );
            for (typed, read) in &d.slips {
                text.push_str(&format!(" \"{typed}\" was read as \"{read}\"."));
            }
            let context = d
                .context
                .first()
                .map(|&p| snap.themes.phrase_text(p))
                .unwrap_or("");
            if d.lowered.contains(theme) {
                text.push_str(&format!(
                    " Lowered to a sensitive log: \"{context}\" reads as study, news or help-seeking."
                ));
            } else if d.kept.contains(theme) && !context.is_empty() {
                text.push_str(
                    " Not lowered: it reads as a particular child being harmed, a concern for the safeguarding lead today.",
                );
            } else if !context.is_empty() {
                text.push_str(&format!(
                    " Not lowered: \"{context}\" reads as the person's own plan."
                ));
            }
            text
        }
        Rule::AiService { service, approved } => {
            let label = snap.ai.get(service).map_or("an AI service", |s| s.label.as_str());
            if approved {
                format!("{verb} for {role}: {host} is {label}, an AI service this role may use; what is typed and answered is read.")
            } else {
                format!("{verb} for {role}: {host} is {label}, an AI service not approved for this role.")
            }
        }
        Rule::RoleDefault => format!("{verb} for {role}: no list or rule matched {host}; this is the role's default."),
        Rule::Unreadable => "Blocked: the address could not be read.".to_owned(),
        Rule::UnknownRole => "Blocked: the role is not in the current policy.".to_owned(),
    };
    if d.sensitive && d.verdict == Verdict::Allow && d.alert.is_none() {
        text.push_str(" Logged as sensitive.");
    }
    if let Some(sev) = d.alert {
        text.push_str(&format!(
            " The safeguarding lead is alerted ({}).",
            severity_name(sev)
        ));
    }
    text
}

pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}
