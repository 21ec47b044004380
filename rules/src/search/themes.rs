//! The theme matcher: every theme's phrases in two Aho-Corasick automata (one per
//! normalised form), with word boundaries checked on each match.
//!
//! Aho-Corasick finds substrings; a phrase counts only where it starts and ends at a word
//! boundary, so `ass` is not found in `class`. Exceptions (`!suicide prevention`) are matched
//! the same way and cancel the phrase hits that lie inside them. e2guardian weighted entries
//! add their points to their theme when all their parts are present; the theme fires when
//! its total reaches the threshold.

use super::normalize::{normalize, Normalized};
use crate::lists::phrases::WeightedPart;
use aho_corasick::{AhoCorasick, MatchKind};
use serde::Serialize;

/// A theme's index in one compiled policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ThemeId(pub u8);

/// At most 64 themes (the width of [`ThemeSet`]).
pub const MAX_THEMES: usize = 64;

/// A set of themes, one bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ThemeSet(pub u64);

impl ThemeSet {
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn contains(self, id: ThemeId) -> bool {
        self.0 & (1 << id.0) != 0
    }
    pub fn insert(&mut self, id: ThemeId) {
        self.0 |= 1 << id.0;
    }
    pub fn iter(self) -> impl Iterator<Item = ThemeId> {
        crate::category::set_bits(u128::from(self.0)).map(ThemeId)
    }
}

/// A phrase (or weighted entry) of some theme: what a decision names as the matched term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PhraseId(pub u32);

#[derive(Clone, Debug)]
struct Phrase {
    theme: ThemeId,
    text: String,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Phrase {
        phrase: PhraseId,
        prefix: bool,
    },
    Exception,
    Part {
        group: u32,
        bit: u8,
        word_start: bool,
        word_end: bool,
    },
}

#[derive(Clone, Debug)]
struct Group {
    theme: ThemeId,
    phrase: PhraseId,
    all_parts: u8,
    points: i32,
}

/// The two normalised forms: phrases with doubled letters whose loose form is short go to
/// the strict form, everything else to the loose one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Loose,
    Strict,
}

/// Collects themes and phrases, then builds a [`ThemeMatcher`].
#[derive(Debug, Default)]
pub struct ThemeMatcherBuilder {
    themes: Vec<String>,
    thresholds: Vec<i32>,
    phrases: Vec<Phrase>,
    groups: Vec<Group>,
    loose: Vec<(String, Kind)>,
    strict: Vec<(String, Kind)>,
}

impl ThemeMatcherBuilder {
    /// Adds a theme (or finds it) by name.
    pub fn theme(&mut self, name: &str) -> Result<ThemeId, String> {
        if let Some(i) = self.themes.iter().position(|t| t == name) {
            return Ok(ThemeId(i as u8));
        }
        if self.themes.len() >= MAX_THEMES {
            return Err(format!("more than {MAX_THEMES} themes"));
        }
        self.themes.push(name.to_owned());
        self.thresholds.push(i32::MAX);
        Ok(ThemeId((self.themes.len() - 1) as u8))
    }

    /// Sets the score at which a theme's weighted entries fire (e2guardian's
    /// `naughtynesslimit`, 50 by default).
    pub fn set_threshold(&mut self, theme: ThemeId, threshold: i32) {
        if let Some(t) = self.thresholds.get_mut(theme.0 as usize) {
            *t = threshold;
        }
    }

    /// Adds a whole-word phrase; `prefix` lets its last word run on.
    pub fn phrase(&mut self, theme: ThemeId, text: &str, prefix: bool) -> Result<PhraseId, String> {
        let n = normalize(text);
        if n.loose.is_empty() {
            return Err(format!("{text:?} has nothing left after normalisation"));
        }
        let phrase = PhraseId(self.phrases.len() as u32);
        self.phrases.push(Phrase {
            theme,
            text: text.trim().to_owned(),
        });
        let kind = Kind::Phrase { phrase, prefix };
        let (form, pattern) = pick_form(&n);
        self.push(form, pattern.clone(), kind);
        // Hashtag spelling of multi-word phrases: `killmyself`.
        if pattern.contains(' ') {
            let joined: String = pattern.split(' ').collect();
            if joined.len() >= 6 {
                self.push(form, joined, kind);
            }
        }
        Ok(phrase)
    }

    /// Adds an exception: phrase hits inside it do not count.
    pub fn exception(&mut self, text: &str) -> Result<(), String> {
        let n = normalize(text);
        if n.loose.is_empty() {
            return Err(format!("{text:?} has nothing left after normalisation"));
        }
        self.loose.push((n.loose, Kind::Exception));
        self.strict.push((n.strict, Kind::Exception));
        Ok(())
    }

    /// Adds an e2guardian weighted entry: `points` when all `parts` are present.
    pub fn weighted(
        &mut self,
        theme: ThemeId,
        parts: &[WeightedPart<'_>],
        points: i32,
    ) -> Result<(), String> {
        if parts.is_empty() || parts.len() > 8 {
            return Err("a weighted entry needs 1 to 8 parts".to_owned());
        }
        let mut normalized = Vec::with_capacity(parts.len());
        for part in parts {
            let n = normalize(part.text);
            if n.loose.is_empty() {
                return Err(format!(
                    "{:?} has nothing left after normalisation",
                    part.text
                ));
            }
            normalized.push(n);
        }
        let group = self.groups.len() as u32;
        let phrase = PhraseId(self.phrases.len() as u32);
        let text = parts.iter().map(|p| p.text).collect::<Vec<_>>().join(" + ");
        self.phrases.push(Phrase { theme, text });
        self.groups.push(Group {
            theme,
            phrase,
            all_parts: ((1u16 << parts.len()) - 1) as u8,
            points,
        });
        for (bit, (part, n)) in parts.iter().zip(normalized).enumerate() {
            let (form, pattern) = pick_form(&n);
            let kind = Kind::Part {
                group,
                bit: bit as u8,
                word_start: part.word_start,
                word_end: part.word_end,
            };
            self.push(form, pattern, kind);
        }
        Ok(())
    }

    fn push(&mut self, form: Form, pattern: String, kind: Kind) {
        match form {
            Form::Loose => self.loose.push((pattern, kind)),
            Form::Strict => self.strict.push((pattern, kind)),
        }
    }

    pub fn build(self) -> Result<ThemeMatcher, String> {
        let automaton = |patterns: &[(String, Kind)]| -> Result<Option<AhoCorasick>, String> {
            if patterns.is_empty() {
                return Ok(None);
            }
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(patterns.iter().map(|(p, _)| p.as_str()))
                .map(Some)
                .map_err(|e| e.to_string())
        };
        Ok(ThemeMatcher {
            loose_ac: automaton(&self.loose)?,
            strict_ac: automaton(&self.strict)?,
            loose: self.loose.into_iter().map(|(_, k)| k).collect(),
            strict: self.strict.into_iter().map(|(_, k)| k).collect(),
            themes: self.themes,
            thresholds: self.thresholds,
            phrases: self.phrases,
            groups: self.groups,
        })
    }
}

fn pick_form(n: &Normalized) -> (Form, String) {
    if n.loose != n.strict && n.loose.len() < 5 {
        (Form::Strict, n.strict.clone())
    } else {
        (Form::Loose, n.loose.clone())
    }
}

/// What a text matched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThemeHits {
    pub themes: ThemeSet,
    /// The phrases (or weighted entries) that matched, each once, in id order.
    pub terms: Vec<PhraseId>,
}

/// The compiled matcher. Immutable; shared by every request.
#[derive(Clone, Debug, Default)]
pub struct ThemeMatcher {
    loose_ac: Option<AhoCorasick>,
    strict_ac: Option<AhoCorasick>,
    loose: Vec<Kind>,
    strict: Vec<Kind>,
    themes: Vec<String>,
    thresholds: Vec<i32>,
    phrases: Vec<Phrase>,
    groups: Vec<Group>,
}

struct FormHits {
    phrases: Vec<(PhraseId, usize, usize)>,
    exceptions: Vec<(usize, usize)>,
}

impl ThemeMatcher {
    pub fn theme_names(&self) -> &[String] {
        &self.themes
    }
    pub fn theme_id(&self, name: &str) -> Option<ThemeId> {
        self.themes
            .iter()
            .position(|t| t == name)
            .map(|i| ThemeId(i as u8))
    }
    pub fn theme_name(&self, id: ThemeId) -> &str {
        self.themes.get(id.0 as usize).map_or("?", String::as_str)
    }
    /// The phrase as written in its list.
    pub fn phrase_text(&self, id: PhraseId) -> &str {
        self.phrases
            .get(id.0 as usize)
            .map_or("?", |p| p.text.as_str())
    }
    pub fn phrase_theme(&self, id: PhraseId) -> Option<ThemeId> {
        self.phrases.get(id.0 as usize).map(|p| p.theme)
    }
    /// Number of phrases and weighted entries per theme.
    pub fn phrase_count(&self, theme: ThemeId) -> usize {
        self.phrases.iter().filter(|p| p.theme == theme).count()
    }

    /// Matches normalised text.
    pub fn find(&self, text: &Normalized) -> ThemeHits {
        let mut hits = ThemeHits::default();
        let mut parts: Vec<(u32, u8)> = Vec::new();
        for (form_text, ac, kinds) in [
            (&text.loose, &self.loose_ac, &self.loose),
            (&text.strict, &self.strict_ac, &self.strict),
        ] {
            let Some(ac) = ac else { continue };
            let found = scan(form_text.as_bytes(), ac, kinds, &mut parts);
            for (phrase, start, end) in found.phrases {
                let inside_exception = found
                    .exceptions
                    .iter()
                    .any(|&(s, e)| s <= start && end <= e);
                if !inside_exception {
                    self.add_term(&mut hits, phrase);
                }
            }
        }
        self.score_weighted(&parts, &mut hits);
        hits.terms.sort_unstable();
        hits.terms.dedup();
        hits
    }

    fn add_term(&self, hits: &mut ThemeHits, phrase: PhraseId) {
        if let Some(p) = self.phrases.get(phrase.0 as usize) {
            hits.themes.insert(p.theme);
            hits.terms.push(phrase);
        }
    }

    fn score_weighted(&self, parts: &[(u32, u8)], hits: &mut ThemeHits) {
        if parts.is_empty() {
            return;
        }
        let mut groups: Vec<(u32, u8)> = Vec::new();
        for &(group, bit) in parts {
            match groups.iter_mut().find(|(g, _)| *g == group) {
                Some((_, mask)) => *mask |= 1 << bit,
                None => groups.push((group, 1 << bit)),
            }
        }
        let mut scores = [0i32; MAX_THEMES];
        let mut complete = Vec::new();
        for (group, mask) in groups {
            let Some(g) = self.groups.get(group as usize) else {
                continue;
            };
            if mask == g.all_parts {
                scores[g.theme.0 as usize] = scores[g.theme.0 as usize].saturating_add(g.points);
                if g.points > 0 {
                    complete.push((g.theme, g.phrase));
                }
            }
        }
        for (theme, phrase) in complete {
            let threshold = self
                .thresholds
                .get(theme.0 as usize)
                .copied()
                .unwrap_or(i32::MAX);
            if scores[theme.0 as usize] >= threshold {
                hits.themes.insert(theme);
                hits.terms.push(phrase);
            }
        }
    }
}

fn scan(text: &[u8], ac: &AhoCorasick, kinds: &[Kind], parts: &mut Vec<(u32, u8)>) -> FormHits {
    let mut out = FormHits {
        phrases: Vec::new(),
        exceptions: Vec::new(),
    };
    let at_start = |s: usize| s == 0 || text[s - 1] == b' ';
    let at_end = |e: usize| e == text.len() || text[e] == b' ';
    for m in ac.find_overlapping_iter(text) {
        let (s, e) = (m.start(), m.end());
        match kinds.get(m.pattern().as_usize()) {
            Some(Kind::Phrase { phrase, prefix }) if at_start(s) && (*prefix || at_end(e)) => {
                out.phrases.push((*phrase, s, e));
            }
            Some(Kind::Exception) if at_start(s) && at_end(e) => out.exceptions.push((s, e)),
            Some(Kind::Part {
                group,
                bit,
                word_start,
                word_end,
            }) if (!word_start || at_start(s)) && (!word_end || at_end(e)) => {
                parts.push((*group, *bit));
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher() -> ThemeMatcher {
        let mut b = ThemeMatcherBuilder::default();
        let sh = b.theme("self-harm").unwrap();
        let su = b.theme("suicide").unwrap();
        let sx = b.theme("sexual-content").unwrap();
        b.phrase(sh, "self harm", false).unwrap();
        b.phrase(sh, "cut myself", false).unwrap();
        b.phrase(sh, "thinspo", true).unwrap();
        b.phrase(su, "kill myself", false).unwrap();
        b.phrase(su, "suicide", false).unwrap();
        b.phrase(sx, "ass", false).unwrap();
        b.phrase(sx, "sexual", false).unwrap();
        b.exception("suicide prevention").unwrap();
        b.exception("sexual health").unwrap();
        b.exception("self harm support").unwrap();
        let w = b.theme("weighted").unwrap();
        b.set_threshold(w, 50);
        let p = |t: &'static str, s: bool, e: bool| WeightedPart {
            text: t,
            word_start: s,
            word_end: e,
        };
        b.weighted(w, &[p("anal", true, true), p("porn", true, false)], 70)
            .unwrap();
        b.weighted(w, &[p("xxx", false, false)], 30).unwrap();
        b.weighted(w, &[p("education", false, false)], -25).unwrap();
        b.build().unwrap()
    }

    fn themes(m: &ThemeMatcher, text: &str) -> Vec<String> {
        let hits = m.find(&normalize(text));
        hits.themes
            .iter()
            .map(|t| m.theme_name(t).to_owned())
            .collect()
    }

    #[test]
    fn matches_table() {
        let m = matcher();
        let cases: &[(&str, &[&str])] = &[
            ("how to kill myself", &["suicide"]),
            ("how to k1ll mys3lf", &["suicide"]),
            ("KIIILL MYSELF", &["suicide"]),
            ("killmyself", &["suicide"]),
            ("ways to self-harm", &["self-harm"]),
            ("S3LF H4RM", &["self-harm"]),
            ("thinspoblog pics", &["self-harm"]),
            ("thinspo", &["self-harm"]),
            ("class timetable", &[]),
            ("as well as", &[]),
            ("kick his ass", &["sexual-content"]),
            ("asss", &["sexual-content"]),
            ("suicide prevention charity", &[]),
            ("suicide prevention and how to kill myself", &["suicide"]),
            ("sexual health clinic", &[]),
            ("sexual", &["sexual-content"]),
            ("self harm support groups", &[]),
            ("selfish harmony", &[]),
            ("anal porno", &["weighted"]),
            ("xxx", &[]),
            ("xxx anal pornography", &["weighted"]),
            ("anal porn education", &[]),
            ("analysis of porn", &[]),
            ("", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(themes(&m, text), *want, "{text:?}");
        }
    }

    #[test]
    fn reports_the_matched_phrase() {
        let m = matcher();
        let hits = m.find(&normalize("how to kill myself"));
        let terms: Vec<&str> = hits.terms.iter().map(|&p| m.phrase_text(p)).collect();
        assert_eq!(terms, vec!["kill myself"]);
    }

    #[test]
    fn empty_phrases_are_refused() {
        let mut b = ThemeMatcherBuilder::default();
        let t = b.theme("t").unwrap();
        assert!(b.phrase(t, "!!!", false).is_err());
        assert!(b.exception("  ").is_err());
    }
}
