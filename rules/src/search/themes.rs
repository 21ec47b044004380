//! The theme matcher: every theme's phrases, word classes and context words in two
//! Aho-Corasick automata (one per normalised form), each distinct text one pattern carrying
//! every meaning it was written with, with word boundaries checked on each match.
//!
//! A phrase counts only where it starts and ends at a word boundary, so `ass` is not found
//! in `class`; the automata are therefore searched only from where words start (an anchored
//! search from each word's first byte), unless e2guardian weighted parts that may start
//! inside a word are loaded. A search is read in four steps:
//!
//! 1. **slips**: a word of six letters or more that is one edit (a letter dropped, added,
//!    changed or two swapped) from a listed English word, and is neither listed itself nor a
//!    real word (`themes/_words/`), is read as that word (`suicde` is `suicide`); a listed
//!    word with `s` or `d` added is read as it (`overdoses`) (`slips.rs`);
//! 2. **phrases** fire their theme; **exceptions** (`!suicide prevention`) cancel the
//!    phrase and word-class hits that lie inside them;
//! 3. **combinations** add their points to their theme when every part (a word class or a
//!    literal) is present within their span of words, in any order; e2guardian weighted
//!    entries add theirs when all their parts are present; a theme fires at its threshold.
//!    A combination is looked at only when its rarest class is in the search and every one
//!    of its classes is (an exact bitset of the search's classes);
//! 4. **context**: a search with a `lower` word (education, news, help-seeking) and no `plan`
//!    word (first person) has its hits lowered, except for themes that are never lowered
//!    (disclosures); a `plan` word inside a `lower` phrase (`my friend`) does not count.
//!
//! A search keeps at most [`MAX_CLASS_HITS`] class hits, [`MAX_HITS_PER_CLASS`] of each
//! class once it has many, and [`MAX_EXCEPTIONS`] exceptions, so a long query of repeated
//! words costs bounded time.

use super::model::{FeatureKind, LearnedModel, LearnedModelBuilder};
use super::normalize::{normalize, Normalized};
use super::sieve::{Pattern as SievePattern, Sieve, SieveBuf, Source};
use super::slips::Slips;
use crate::lists::phrases::WeightedPart;
use aho_corasick::automaton::{Automaton, OverlappingState};
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::{Anchored, Input, MatchKind};
use serde::Serialize;
use smallvec::SmallVec;

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

/// Eight bytes: the texts live end to end in one string, the languages in a short table.
#[derive(Clone, Copy, Debug)]
struct Phrase {
    /// `None` for a word of a class or a context word (it fires nothing by itself).
    theme: Option<ThemeId>,
    /// The language of the file it came from (`en`, `pl`, ...; index into `Phrases::langs`,
    /// whose first entry is the empty "unknown").
    lang: u8,
    /// Where its text ends in `Phrases::texts` (it starts where the one before ends).
    end: u32,
}

/// Every phrase's theme, text and language, compactly (tens of thousands of them).
#[derive(Clone, Debug)]
struct Phrases {
    list: Vec<Phrase>,
    texts: String,
    langs: Vec<String>,
}

impl Default for Phrases {
    fn default() -> Phrases {
        Phrases {
            list: Vec::new(),
            texts: String::new(),
            langs: vec![String::new()],
        }
    }
}

impl Phrases {
    fn len(&self) -> usize {
        self.list.len()
    }
    fn push(&mut self, theme: Option<ThemeId>, lang: u8, text: &str) -> PhraseId {
        let id = PhraseId(self.list.len() as u32);
        self.texts.push_str(text);
        self.list.push(Phrase {
            theme,
            lang,
            end: self.texts.len() as u32,
        });
        id
    }
    /// The index of a language, added if new (at most 255 languages; more read as unknown).
    fn lang_index(&mut self, lang: &str) -> u8 {
        if let Some(i) = self.langs.iter().position(|l| l == lang) {
            return i as u8;
        }
        if self.langs.len() > usize::from(u8::MAX) {
            return 0;
        }
        self.langs.push(lang.to_owned());
        (self.langs.len() - 1) as u8
    }
    fn theme(&self, id: PhraseId) -> Option<ThemeId> {
        self.list.get(id.0 as usize).and_then(|p| p.theme)
    }
    fn text(&self, id: PhraseId) -> Option<&str> {
        let i = id.0 as usize;
        let end = self.list.get(i)?.end as usize;
        let start = match i.checked_sub(1) {
            Some(before) => self.list.get(before)?.end as usize,
            None => 0,
        };
        self.texts.get(start..end)
    }
    fn lang(&self, id: PhraseId) -> Option<&str> {
        let p = self.list.get(id.0 as usize)?;
        self.langs.get(usize::from(p.lang)).map(String::as_str)
    }
    fn heap_bytes(&self) -> usize {
        self.list.capacity() * std::mem::size_of::<Phrase>() + self.texts.capacity()
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Phrase {
        phrase: PhraseId,
        prefix: bool,
    },
    /// Cancels the hits inside it: of its theme's phrases and combinations, or of every
    /// theme for an exception with none.
    Exception(Option<ThemeId>),
    Part {
        group: u32,
        bit: u8,
        word_start: bool,
        word_end: bool,
    },
    /// A word of a class (combination parts and context words).
    Class {
        class: u16,
        word: PhraseId,
        prefix: bool,
    },
}

impl Kind {
    /// Whether a match of this kind records the same hit as one of `other` at the same
    /// place (a class word or an exception written twice; a weighted entry's parts are
    /// distinct by construction).
    fn same_hit(&self, other: &Kind) -> bool {
        match (self, other) {
            (
                Kind::Class {
                    class: a,
                    prefix: p,
                    ..
                },
                Kind::Class {
                    class: b,
                    prefix: q,
                    ..
                },
            ) => a == b && p == q,
            (Kind::Exception(a), Kind::Exception(b)) => a == b,
            _ => false,
        }
    }
}

#[derive(Clone, Debug)]
struct Group {
    theme: ThemeId,
    phrase: PhraseId,
    all_parts: u8,
    points: i32,
}

/// A combination: every class present within `near` words, in any order.
#[derive(Clone, Debug)]
struct Combination {
    theme: ThemeId,
    phrase: PhraseId,
    points: i32,
    near: u8,
    /// Context does not lower the theme when this combination fires it.
    kept: bool,
    classes: Vec<u16>,
}

/// One part of a combination as written: `{class}` or a literal word or phrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComboPart<'a> {
    Class(&'a str),
    Literal(&'a str),
}

/// At most this many class-word hits, hits of one class and exceptions are kept from one
/// search (a search is a few words; a 64 KiB query of repeated words must not cost
/// quadratic time). The cap is per class, so words repeated to fill it (`school school
/// ...`) cannot crowd out the words of another class that come after them.
const MAX_CLASS_HITS: usize = 1024;
const MAX_HITS_PER_CLASS: usize = 16;
const MAX_EXCEPTIONS: usize = 64;

/// Whether another hit of `class` is kept. An ordinary search has far fewer than 128 hits
/// and is never counted.
fn room_for(classes: &ClassHits, class: u16) -> bool {
    classes.len() < 128
        || (classes.len() < MAX_CLASS_HITS
            && classes.iter().filter(|h| h.class == class).count() < MAX_HITS_PER_CLASS)
}

/// The language recorded for a learned feature's phrase: a decision's term with it came
/// from the learned weights, not a list.
pub const LEARNED: &str = "learned";

/// The classes context is read from.
pub const LOWER: &str = "lower";
pub const PLAN: &str = "plan";

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
    never_lowered: ThemeSet,
    help: ThemeSet,
    phrases: Phrases,
    groups: Vec<Group>,
    classes: Vec<String>,
    combinations: Vec<Combination>,
    loose: Vec<(String, Kind)>,
    strict: Vec<(String, Kind)>,
    /// The language of the file being read (an index into the phrases' languages).
    lang: u8,
    /// Real words (loose form) read as themselves, not as slips.
    known: Vec<String>,
    /// Class names to their ids.
    class_index: std::collections::HashMap<String, u16, foldhash::fast::RandomState>,
    model: LearnedModelBuilder,
}

impl ThemeMatcherBuilder {
    /// Adds a theme (or finds it) by name. Its threshold for combinations is 50 until set.
    pub fn theme(&mut self, name: &str) -> Result<ThemeId, String> {
        if let Some(i) = self.themes.iter().position(|t| t == name) {
            return Ok(ThemeId(i as u8));
        }
        if self.themes.len() >= MAX_THEMES {
            return Err(format!("more than {MAX_THEMES} themes"));
        }
        self.themes.push(name.to_owned());
        self.thresholds.push(50);
        Ok(ThemeId((self.themes.len() - 1) as u8))
    }

    /// A theme already added, by name.
    pub fn theme_id(&self, name: &str) -> Option<ThemeId> {
        self.themes
            .iter()
            .position(|t| t == name)
            .map(|i| ThemeId(i as u8))
    }

    /// Whether a word class has been named (by a class line or a combination).
    pub fn has_class(&self, name: &str) -> bool {
        self.class_index.contains_key(name)
    }

    /// Sets the score at which a theme's combinations and weighted entries fire (e2guardian's
    /// `naughtynesslimit`, 50 by default).
    pub fn set_threshold(&mut self, theme: ThemeId, threshold: i32) {
        if let Some(t) = self.thresholds.get_mut(theme.0 as usize) {
            *t = threshold;
        }
    }

    /// Context never lowers this theme's hits (a disclosure is a disclosure in an essay too).
    pub fn never_lower(&mut self, theme: ThemeId) {
        self.never_lowered.insert(theme);
    }

    /// A block page for this theme shows where to get help.
    pub fn offer_help(&mut self, theme: ThemeId) {
        self.help.insert(theme);
    }

    /// The language of the lines that follow (the file's name: `en`, `pl`, ...).
    pub fn set_language(&mut self, lang: &str) {
        self.lang = self.phrases.lang_index(lang);
    }

    fn add_phrase(&mut self, theme: Option<ThemeId>, text: &str) -> PhraseId {
        self.phrases.push(theme, self.lang, text.trim())
    }

    /// A real word of some language: never read as a slip of a listed word (unless it is
    /// that word with an ending added, as a plural is).
    pub fn known_word(&mut self, word: &str) {
        let n = normalize(word);
        if !n.loose.is_empty() && !n.loose.contains(' ') {
            self.known.push(n.loose);
        }
    }

    /// Adds a whole-word phrase; `prefix` lets its last word run on.
    pub fn phrase(&mut self, theme: ThemeId, text: &str, prefix: bool) -> Result<PhraseId, String> {
        let n = normalized(text)?;
        let phrase = self.add_phrase(Some(theme), text);
        self.push_with_joined(&n, Kind::Phrase { phrase, prefix });
        Ok(phrase)
    }

    /// Adds a pattern, and for a phrase of several words its hashtag spelling
    /// (`killmyself`).
    fn push_with_joined(&mut self, n: &Normalized, kind: Kind) {
        let (form, pattern) = pick_form(n);
        if pattern.contains(' ') {
            let joined: String = pattern.split(' ').collect();
            if joined.chars().count() >= 6 {
                self.push(form, joined, kind);
            }
        }
        self.push(form, pattern, kind);
    }

    /// Adds an exception: phrase and class-word hits inside it do not count.
    /// Adds an exception: hits of `theme` (of every theme if `None`) inside it do not
    /// count, whether phrases or the words of a combination.
    pub fn exception(&mut self, theme: Option<ThemeId>, text: &str) -> Result<(), String> {
        let n = normalized(text)?;
        self.loose.push((n.loose, Kind::Exception(theme)));
        self.strict.push((n.strict, Kind::Exception(theme)));
        Ok(())
    }

    fn class_id(&mut self, name: &str) -> Result<u16, String> {
        if let Some(&i) = self.class_index.get(name) {
            return Ok(i);
        }
        if self.classes.len() >= usize::from(u16::MAX) {
            return Err("too many word classes".to_owned());
        }
        let id = self.classes.len() as u16;
        self.classes.push(name.to_owned());
        self.class_index.insert(name.to_owned(), id);
        Ok(id)
    }

    /// Adds a word or phrase to the class `name` (`prefix`: its last word may run on).
    pub fn class_word(&mut self, name: &str, text: &str, prefix: bool) -> Result<(), String> {
        if !crate::category::valid_name(name) {
            return Err(format!(
                "{name:?}: class names use lower-case letters, digits and '-'"
            ));
        }
        let n = normalized(text)?;
        let class = self.class_id(name)?;
        let word = self.add_phrase(None, text);
        self.push_with_joined(
            &n,
            Kind::Class {
                class,
                word,
                prefix,
            },
        );
        Ok(())
    }

    /// Adds a combination: `points` to `theme` when every part is present within `near`
    /// words. Literal parts become classes of their own.
    pub fn combination(
        &mut self,
        theme: ThemeId,
        parts: &[ComboPart<'_>],
        points: i32,
        near: u8,
        kept: bool,
    ) -> Result<(), String> {
        if parts.is_empty() || parts.len() > 6 {
            return Err("a combination needs 1 to 6 parts".to_owned());
        }
        let mut classes = Vec::with_capacity(parts.len());
        let mut text = Vec::with_capacity(parts.len());
        for part in parts {
            match *part {
                ComboPart::Class(name) => {
                    classes.push(self.class_id(name)?);
                    text.push(format!("{{{name}}}"));
                }
                ComboPart::Literal(word) => {
                    let name = format!("'{}'", normalized(word)?.loose);
                    let fresh = !self.class_index.contains_key(&name);
                    let class = self.class_id(&name)?;
                    if fresh {
                        let n = normalized(word)?;
                        let id = self.add_phrase(None, word);
                        self.push_with_joined(
                            &n,
                            Kind::Class {
                                class,
                                word: id,
                                prefix: false,
                            },
                        );
                    }
                    classes.push(class);
                    text.push(word.to_owned());
                }
            }
        }
        let phrase = self.add_phrase(Some(theme), &text.join(" + "));
        self.combinations.push(Combination {
            theme,
            phrase,
            points,
            near,
            kept,
            classes,
        });
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
        let mut normalized_parts = Vec::with_capacity(parts.len());
        for part in parts {
            normalized_parts.push(normalized(part.text)?);
        }
        let group = self.groups.len() as u32;
        let text = parts.iter().map(|p| p.text).collect::<Vec<_>>().join(" + ");
        let phrase = self.add_phrase(Some(theme), &text);
        self.groups.push(Group {
            theme,
            phrase,
            all_parts: ((1u16 << parts.len()) - 1) as u8,
            points,
        });
        for (bit, (part, n)) in parts.iter().zip(normalized_parts).enumerate() {
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

    /// Names of classes used by a combination but given no words.
    pub fn empty_classes(&self) -> Vec<String> {
        let words = self.words_per_class();
        let mut used: Vec<u16> = self
            .combinations
            .iter()
            .flat_map(|c| c.classes.iter().copied())
            .collect();
        used.sort_unstable();
        used.dedup();
        used.into_iter()
            .filter(|&c| words.get(usize::from(c)).is_none_or(|&n| n == 0))
            .filter_map(|c| self.classes.get(usize::from(c)).cloned())
            .collect()
    }

    /// How many words (patterns) each class has.
    fn words_per_class(&self) -> Vec<u32> {
        let mut words = vec![0u32; self.classes.len()];
        for (_, k) in self.loose.iter().chain(&self.strict) {
            if let Kind::Class { class, .. } = k {
                if let Some(n) = words.get_mut(usize::from(*class)) {
                    *n += 1;
                }
            }
        }
        words
    }

    /// A learned weight: `theme`'s weight for a feature (its text as written in the
    /// weights file, normalised here as a search is).
    pub fn learned(
        &mut self,
        kind: FeatureKind,
        text: &str,
        theme: ThemeId,
        weight: f32,
    ) -> Result<(), String> {
        if !weight.is_finite() {
            return Err(format!("{weight}: not a number"));
        }
        let (key_text, shown) = match kind {
            FeatureKind::Class => {
                // A class may be a literal of a combination (`'way out'`): spaces are kept.
                if text.trim().is_empty() || text.contains(['\t', '\n', '\r']) {
                    return Err(format!("{text:?}: not a class name"));
                }
                (text.to_owned(), format!("{{{text}}}"))
            }
            _ => {
                let n = normalize(text).loose;
                let two = kind == FeatureKind::Pair;
                let words = n.split(' ').count();
                if n.is_empty() || words != if two { 2 } else { 1 } {
                    return Err(format!(
                        "{text:?}: a {} feature is {} after normalisation",
                        kind.name(),
                        if two { "two words" } else { "one word" }
                    ));
                }
                let shown = if kind == FeatureKind::Start {
                    format!("{n}…")
                } else {
                    n.clone()
                };
                (n, shown)
            }
        };
        let (first, second) = key_text.split_once(' ').unwrap_or((&key_text, ""));
        let key = super::model::feature_key(kind, first, second);
        self.model.weight(key, theme, weight, shown);
        Ok(())
    }

    /// A learned theme's bias (its score before any feature).
    pub fn learned_bias(&mut self, theme: ThemeId, value: f32) {
        self.model.bias(theme, value);
    }

    /// The learned score at which a theme fires (0, even odds, unless set).
    pub fn learned_threshold(&mut self, theme: ThemeId, value: f32) {
        self.model.threshold(theme, value);
    }

    pub fn build(mut self) -> Result<ThemeMatcher, String> {
        // An exception matters in the strict pass only where a strict pattern could lie
        // inside it; the rest would only slow that pass down.
        let strict_patterns: Vec<String> = self
            .strict
            .iter()
            .filter(|(_, k)| !matches!(k, Kind::Exception(_)))
            .map(|(p, _)| p.clone())
            .collect();
        self.strict.retain(|(p, k)| {
            !matches!(k, Kind::Exception(_))
                || strict_patterns.iter().any(|s| p.contains(s.as_str()))
        });
        // Every pattern starts at a word, except e2guardian weighted parts that may start
        // inside one: then the automata are searched from word starts only.
        let at_word_starts = !self.loose.iter().chain(&self.strict).any(|(_, k)| {
            matches!(
                k,
                Kind::Part {
                    word_start: false,
                    ..
                }
            )
        });
        // The automata are walked directly (a contiguous NFA: compact, and no search
        // set-up per word start).
        let automaton = |patterns: &[String]| -> Result<Option<NFA>, String> {
            if patterns.is_empty() {
                return Ok(None);
            }
            NFA::builder()
                .match_kind(MatchKind::Standard)
                .build(patterns)
                .map(Some)
                .map_err(|e| e.to_string())
        };
        let lower = self.class_id(LOWER)?;
        let plan = self.class_id(PLAN)?;
        // Slips are read towards English words only: a word of another language one edit
        // from an everyday English word (`werther`, `weather`) must not capture it.
        let english = |id: &PhraseId| {
            self.phrases
                .lang(*id)
                .is_some_and(|l| l.is_empty() || l == "en")
        };
        let mut slips = Slips::build(
            self.loose
                .iter()
                .filter(|(_, k)| match k {
                    Kind::Phrase { phrase, .. } => english(phrase),
                    Kind::Class { word, .. } => english(word),
                    _ => false,
                })
                .flat_map(|(p, _)| p.split(' ')),
        );
        // A word listed in any language is read as itself, never as a slip of an English
        // word (`bandooq` stays `bandooq`).
        slips.protect(
            self.loose
                .iter()
                .filter(|(_, k)| !matches!(k, Kind::Exception(_)))
                .flat_map(|(p, _)| p.split(' ')),
        );
        slips.know(self.known.iter().map(String::as_str));
        self.known = Vec::new();
        // The same combination written in several files (a class set in every language)
        // counts once, at its highest points.
        let mut kept: Vec<Combination> = Vec::with_capacity(self.combinations.len());
        for c in std::mem::take(&mut self.combinations) {
            let mut key = c.classes.clone();
            key.sort_unstable();
            let same = kept.iter_mut().find(|k| {
                let mut other = k.classes.clone();
                other.sort_unstable();
                k.theme == c.theme && k.near == c.near && k.kept == c.kept && other == key
            });
            // On a tie the English file's copy is kept, so `explain` names English.
            let english = |c: &Combination| self.phrases.lang(c.phrase) == Some("en");
            match same {
                Some(k) if k.points > c.points || (k.points == c.points && !english(&c)) => {}
                Some(k) => *k = c,
                None => kept.push(c),
            }
        }
        self.combinations = kept;
        // Each combination is looked at only when its rarest class (the one with fewest
        // words) is in the search: common classes such as {how} start few look-ups.
        let words = self.words_per_class();
        let mut by_rarest: Vec<Vec<u32>> = vec![Vec::new(); self.classes.len()];
        for (i, c) in self.combinations.iter().enumerate() {
            let rarest = c
                .classes
                .iter()
                .copied()
                .min_by_key(|&k| words.get(usize::from(k)).copied().unwrap_or(0));
            if let Some(k) = rarest {
                by_rarest[usize::from(k)].push(i as u32);
            }
        }
        // The sieve looks for a word of every phrase, of one part of each weighted entry,
        // and of one class of each combination that can fire.
        let patterns: Vec<SievePattern<'_>> = sieve_patterns(&self.loose, false, &self.groups)
            .chain(sieve_patterns(&self.strict, true, &self.groups))
            .collect();
        let firing: Vec<&[u16]> = self
            .combinations
            .iter()
            .filter(|c| c.points > 0)
            .map(|c| c.classes.as_slice())
            .collect();
        let sieve = Sieve::build(&patterns, &firing)?;
        drop(patterns);
        let (loose_texts, loose_kinds) = FormKinds::group(std::mem::take(&mut self.loose));
        let (strict_texts, strict_kinds) = FormKinds::group(std::mem::take(&mut self.strict));
        let model = std::mem::take(&mut self.model).build(&self.classes, self.phrases.len() as u32);
        Ok(ThemeMatcher {
            loose_ac: automaton(&loose_texts)?,
            strict_ac: automaton(&strict_texts)?,
            at_word_starts,
            loose: loose_kinds,
            strict: strict_kinds,
            themes: self.themes,
            thresholds: self.thresholds,
            never_lowered: self.never_lowered,
            help: self.help,
            phrases: self.phrases,
            groups: self.groups,
            combinations: self.combinations,
            by_rarest,
            lower,
            plan,
            slips,
            sieve,
            model,
            class_names: self.classes,
        })
    }
}

/// The matcher's patterns as the sieve reads them (exceptions only cancel: not looked for).
fn sieve_patterns<'a>(
    patterns: &'a [(String, Kind)],
    strict: bool,
    groups: &[Group],
) -> impl Iterator<Item = SievePattern<'a>> + 'a {
    let positive: Vec<bool> = groups.iter().map(|g| g.points > 0).collect();
    patterns.iter().filter_map(move |(text, kind)| {
        let (start, end, source) = match *kind {
            Kind::Phrase { prefix, .. } => (true, !prefix, Source::Phrase),
            Kind::Class { class, prefix, .. } => (true, !prefix, Source::Class(class)),
            Kind::Part {
                group,
                word_start,
                word_end,
                ..
            } if positive.get(group as usize).copied().unwrap_or(true) => {
                (word_start, word_end, Source::Part(group))
            }
            Kind::Part { .. } | Kind::Exception(_) => return None,
        };
        Some(SievePattern {
            strict,
            text,
            start,
            end,
            source,
        })
    })
}

fn normalized(text: &str) -> Result<Normalized, String> {
    let n = normalize(text);
    if n.loose.is_empty() {
        return Err(format!("{text:?} has nothing left after normalisation"));
    }
    Ok(n)
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
    /// Themes whose hits the context lowered (a subset of `themes`).
    pub lowered: ThemeSet,
    /// Themes a `kept` combination fired: context does not lower them.
    pub kept: ThemeSet,
    /// Themes the learned weights fired (with or without a listed phrase).
    pub learned: ThemeSet,
    /// The phrases, combinations or weighted entries that matched, each once, in id order.
    pub terms: Vec<PhraseId>,
    /// The context words that lowered the hits, or the first-person words that kept them.
    pub context: Vec<PhraseId>,
    /// Words read as slips of listed words: (as typed, as read).
    pub slips: Vec<(String, String)>,
}

/// The compiled matcher. Immutable; shared by every request.
#[derive(Clone, Debug, Default)]
pub struct ThemeMatcher {
    loose_ac: Option<NFA>,
    strict_ac: Option<NFA>,
    /// Matches need only be looked for where words start (an anchored search from each).
    at_word_starts: bool,
    loose: FormKinds,
    strict: FormKinds,
    themes: Vec<String>,
    thresholds: Vec<i32>,
    never_lowered: ThemeSet,
    help: ThemeSet,
    phrases: Phrases,
    groups: Vec<Group>,
    combinations: Vec<Combination>,
    /// Combinations by their rarest class.
    by_rarest: Vec<Vec<u32>>,
    lower: u16,
    plan: u16,
    slips: Slips,
    /// The first pass over page text.
    sieve: Sieve,
    model: LearnedModel,
    /// Word class names by id.
    class_names: Vec<String>,
}

/// A class word found: its class, its word (for the explanation) and the words it spans.
#[derive(Clone, Copy, Debug)]
struct ClassHit {
    /// Themes whose exceptions cover this word (all bits: an exception of every theme).
    cancelled: ThemeSet,
    class: u16,
    word: PhraseId,
    first: u16,
    last: u16,
    start: usize,
    end: usize,
}

/// The patterns of one normalised form: each text once (one automaton pattern), with
/// every kind written with it (a word in many classes is matched once).
#[derive(Clone, Debug, Default)]
struct FormKinds {
    /// Per automaton pattern: its range of `kinds`.
    ranges: Vec<(u32, u32)>,
    kinds: Vec<Kind>,
}

impl FormKinds {
    /// The distinct texts, and their kinds (in the order they were added).
    fn group(mut patterns: Vec<(String, Kind)>) -> (Vec<String>, FormKinds) {
        // A stable sort: each text's kinds keep the order of the lists.
        patterns.sort_by(|a, b| a.0.cmp(&b.0));
        let mut texts: Vec<String> = Vec::new();
        let mut form = FormKinds::default();
        for (text, kind) in patterns {
            if texts.last() != Some(&text) {
                texts.push(text);
                let at = form.kinds.len() as u32;
                form.ranges.push((at, at));
            }
            // A word listed in one class by several files (every language's copy of a
            // class) is one hit of that class: the first file's word is the one named.
            let from = form.ranges.last().map_or(0, |r| r.0 as usize);
            let kinds_of_text = form.kinds.get(from..).unwrap_or_default();
            if kinds_of_text.iter().any(|k| k.same_hit(&kind)) {
                continue;
            }
            form.kinds.push(kind);
            if let Some(r) = form.ranges.last_mut() {
                r.1 += 1;
            }
        }
        (texts, form)
    }

    fn of(&self, pattern: usize) -> &[Kind] {
        self.ranges
            .get(pattern)
            .and_then(|&(a, b)| self.kinds.get(a as usize..b as usize))
            .unwrap_or_default()
    }

    fn heap_bytes(&self) -> usize {
        self.ranges.len() * 8 + self.kinds.len() * std::mem::size_of::<Kind>()
    }
}

/// The phrases and exceptions one pass over one normalised form found. Held inline: a
/// search is short.
#[derive(Default)]
struct FormHits {
    phrases: SmallVec<[(PhraseId, usize, usize); 8]>,
    exceptions: SmallVec<[(usize, usize, Option<ThemeId>); 4]>,
}

/// Weighted-entry parts found: (group, part bit).
type Parts = SmallVec<[(u32, u8); 8]>;
type ClassHits = SmallVec<[ClassHit; 48]>;

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
    /// The phrase as written in its list (a combination as its parts joined by `+`).
    pub fn phrase_text(&self, id: PhraseId) -> &str {
        self.phrases
            .text(id)
            .or_else(|| self.model.phrase_text(id))
            .unwrap_or("?")
    }
    /// The language of the file the phrase came from ([`LEARNED`] for a learned feature).
    pub fn phrase_language(&self, id: PhraseId) -> &str {
        match self.phrases.lang(id) {
            Some(l) => l,
            None if self.model.phrase_text(id).is_some() => LEARNED,
            None => "",
        }
    }
    pub fn phrase_theme(&self, id: PhraseId) -> Option<ThemeId> {
        self.phrases.theme(id)
    }
    /// Number of phrases, combinations and weighted entries per theme.
    pub fn phrase_count(&self, theme: ThemeId) -> usize {
        self.phrases
            .list
            .iter()
            .filter(|p| p.theme == Some(theme))
            .count()
    }
    /// Whether a block page for this theme shows where to get help.
    pub fn offers_help(&self, theme: ThemeId) -> bool {
        self.help.contains(theme)
    }
    /// Whether context can lower this theme's hits.
    pub fn can_lower(&self, theme: ThemeId) -> bool {
        !self.never_lowered.contains(theme)
    }
    /// Heap bytes of the compiled matcher (automata, slip index, tables), approximate.
    pub fn heap_bytes(&self) -> usize {
        let ac = |a: &Option<NFA>| a.as_ref().map_or(0, NFA::memory_usage);
        let kinds = self.loose.heap_bytes() + self.strict.heap_bytes();
        let phrases = self.phrases.heap_bytes();
        let combinations: usize = self
            .combinations
            .iter()
            .map(|c| std::mem::size_of::<Combination>() + c.classes.len() * 2)
            .sum();
        ac(&self.loose_ac)
            + ac(&self.strict_ac)
            + kinds
            + phrases
            + combinations
            + self
                .by_rarest
                .iter()
                .map(|v| 24 + v.len() * 4)
                .sum::<usize>()
            + self.slips.heap_bytes()
            + self.sieve.heap_bytes()
            + self.model.heap_bytes()
    }

    /// Matches normalised text: lists, combinations and the learned weights (a search).
    pub fn find(&self, text: &Normalized) -> ThemeHits {
        self.find_with(text, true)
    }

    /// Matches normalised text with the lists and combinations only: the learned weights
    /// were trained on searches, not on the sentences of a page.
    /// Whether [`find_listed`](Self::find_listed) could find a theme in `text` (not yet
    /// normalised): `false` only when it certainly would not. The first pass over a page's
    /// text; `buf` is reused from passage to passage.
    pub fn may_hit(&self, text: &str, buf: &mut SieveBuf) -> bool {
        self.sieve.may_hit(text, &self.slips, buf)
    }

    /// The sieve's size: anchors, and bytes of its automata.
    pub fn sieve_size(&self) -> (usize, usize) {
        (self.sieve.anchors(), self.sieve.heap_bytes())
    }

    pub fn find_listed(&self, text: &Normalized) -> ThemeHits {
        self.find_with(text, false)
    }

    fn find_with(&self, text: &Normalized, learned: bool) -> ThemeHits {
        let mut hits = ThemeHits::default();
        let corrected = self.correct_slips(&text.loose, &mut hits);
        let loose = corrected.as_deref().unwrap_or(&text.loose);
        let mut parts = Parts::new();
        let mut classes = ClassHits::new();
        self.read_lists(text, loose, &mut hits, &mut parts, &mut classes);
        let present = Present::of(&classes);
        self.score(&parts, &classes, &present, &mut hits);
        if learned {
            hits.learned = self.model.fire(loose, present.iter(), &mut hits.terms);
        }
        hits.themes.0 |= hits.learned.0;
        hits.terms.sort_unstable();
        hits.terms.dedup();
        if !hits.themes.is_empty() {
            self.read_context(&classes, &mut hits);
        }
        hits
    }

    /// A search as the learned weights read it: its words as the lists read them (slips
    /// corrected) and its words' classes.
    fn learned_read(&self, text: &Normalized) -> (String, Present) {
        let mut hits = ThemeHits::default();
        let corrected = self.correct_slips(&text.loose, &mut hits);
        let loose = corrected.as_deref().unwrap_or(&text.loose);
        let mut classes = ClassHits::new();
        self.read_lists(text, loose, &mut hits, &mut Parts::new(), &mut classes);
        (loose.to_owned(), Present::of(&classes))
    }

    /// What the learned weights read from a search: its words and the names of its words'
    /// classes (for training).
    pub fn learned_input(&self, text: &Normalized) -> (String, Vec<&str>) {
        let (loose, present) = self.learned_read(text);
        let names = present
            .iter()
            .filter_map(|c| self.class_names.get(usize::from(c)).map(String::as_str))
            .collect();
        (loose, names)
    }

    /// Why the learned weights scored `theme` as they did for a search: each feature's
    /// phrase and weight, strongest first, the total and the threshold (for `explain`).
    pub fn learned_reasons(
        &self,
        text: &Normalized,
        theme: ThemeId,
    ) -> (Vec<(String, f32)>, f32, f32) {
        let (loose, present) = self.learned_read(text);
        self.model.reasons(&loose, present.iter(), theme)
    }

    /// Both automata over the search: phrases fire into `hits`; weighted parts and class
    /// words are added to `parts` and `classes`.
    fn read_lists(
        &self,
        text: &Normalized,
        loose: &str,
        hits: &mut ThemeHits,
        parts: &mut Parts,
        classes: &mut ClassHits,
    ) {
        let mut found = FormHits::default();
        // Every strict pattern has a doubled letter: a search without one skips that pass.
        let strict = (text.strict != text.loose).then_some(text.strict.as_str());
        for (form_text, ac, kinds) in [
            (Some(loose), &self.loose_ac, &self.loose),
            (strict, &self.strict_ac, &self.strict),
        ] {
            let (Some(form_text), Some(ac)) = (form_text, ac) else {
                continue;
            };
            found.phrases.clear();
            found.exceptions.clear();
            let from = classes.len();
            let text = form_text.as_bytes();
            // The number of the word each byte is in.
            let mut words_before: SmallVec<[u16; 256]> = SmallVec::new();
            let mut spaces = 0u16;
            // Per byte (and one past the end), the spaces before it: written in one pass.
            words_before.extend(std::iter::once(b' ').chain(text.iter().copied()).map(|b| {
                spaces = spaces.saturating_add(u16::from(b == b' '));
                spaces - 1
            }));
            let mut each = |pattern: usize, start: usize, end: usize| {
                scan(
                    text,
                    &words_before,
                    (pattern, start, end),
                    kinds,
                    &mut found,
                    parts,
                    classes,
                )
            };
            if self.at_word_starts {
                for_each_at_word_starts(ac, text, &mut each);
            } else {
                for_each_anywhere(ac, text, &mut each);
            }
            // The themes whose exceptions cover a span (all bits for a shared exception).
            let covering = |start: usize, end: usize| {
                let mut set = ThemeSet::default();
                for &(s, e, theme) in &found.exceptions {
                    if s <= start && end <= e {
                        match theme {
                            Some(t) => set.insert(t),
                            None => set = ThemeSet(u64::MAX),
                        }
                    }
                }
                set
            };
            for &(phrase, start, end) in &found.phrases {
                let theme = self.phrases.theme(phrase);
                if !theme.is_some_and(|t| covering(start, end).contains(t)) {
                    self.add_term(hits, phrase);
                }
            }
            // Both forms have the same words, so class hits from either share positions.
            if !found.exceptions.is_empty() {
                for h in classes.iter_mut().skip(from) {
                    h.cancelled = covering(h.start, h.end);
                }
            }
        }
    }

    /// The loose text with slips read as the listed word, if any word was one.
    fn correct_slips(&self, loose: &str, hits: &mut ThemeHits) -> Option<String> {
        if self.slips.is_empty() {
            return None;
        }
        let mut out: Option<String> = None;
        let bytes = loose.as_bytes();
        let mut offset = 0;
        while offset <= bytes.len() {
            let end = bytes[offset..]
                .iter()
                .position(|&b| b == b' ')
                .map_or(bytes.len(), |p| offset + p);
            let word = loose.get(offset..end).unwrap_or_default();
            let read = self.slips.correct(word);
            if let Some(listed) = read {
                hits.slips.push((word.to_owned(), listed.to_owned()));
            }
            match (&mut out, read) {
                (Some(o), _) => {
                    o.push(' ');
                    o.push_str(read.unwrap_or(word));
                }
                // The first slip: the words before it as they are, then the listed word.
                (None, Some(listed)) => {
                    let mut o = loose[..offset].to_owned();
                    o.push_str(listed);
                    out = Some(o);
                }
                (None, None) => {}
            }
            offset = end + 1;
        }
        out
    }

    fn add_term(&self, hits: &mut ThemeHits, phrase: PhraseId) {
        if let Some(theme) = self.phrases.theme(phrase) {
            hits.themes.insert(theme);
            hits.terms.push(phrase);
        }
    }

    /// Combinations and weighted entries: points per theme, fired at the threshold.
    fn score(
        &self,
        parts: &[(u32, u8)],
        classes: &[ClassHit],
        present: &Present,
        hits: &mut ThemeHits,
    ) {
        let mut scores = [0i32; MAX_THEMES];
        // Points taken away per theme (a kept combination stays kept only if it alone
        // outweighs them).
        let mut taken = [0i32; MAX_THEMES];
        // (theme, phrase, points, kept)
        let mut complete: SmallVec<[(ThemeId, PhraseId, i32, bool); 8]> = SmallVec::new();
        if !parts.is_empty() {
            let mut groups: Parts = SmallVec::new();
            for &(group, bit) in parts {
                match groups.iter_mut().find(|(g, _)| *g == group) {
                    Some((_, mask)) => *mask |= 1 << bit,
                    None => groups.push((group, 1 << bit)),
                }
            }
            for (group, mask) in groups {
                let Some(g) = self.groups.get(group as usize) else {
                    continue;
                };
                if mask == g.all_parts {
                    let t = g.theme.0 as usize;
                    scores[t] = scores[t].saturating_add(g.points);
                    complete.push((g.theme, g.phrase, g.points, false));
                }
            }
        }
        // The combinations indexed under a class the search has.
        let mut read_class = |class: u16| {
            let Some(combos) = self.by_rarest.get(usize::from(class)) else {
                return;
            };
            for &c in combos {
                let Some(combo) = self.combinations.get(c as usize) else {
                    continue;
                };
                if combo.classes.iter().all(|&c| present.contains(c))
                    && combination_present(combo, classes)
                {
                    let t = combo.theme.0 as usize;
                    scores[t] = scores[t].saturating_add(combo.points);
                    if combo.points < 0 {
                        taken[t] = taken[t].saturating_add(combo.points);
                    }
                    complete.push((combo.theme, combo.phrase, combo.points, combo.kept));
                }
            }
        };
        for class in present.iter() {
            read_class(class);
        }
        for (theme, phrase, points, kept) in complete {
            let threshold = self
                .thresholds
                .get(theme.0 as usize)
                .copied()
                .unwrap_or(i32::MAX);
            if points > 0 && scores[theme.0 as usize] >= threshold {
                hits.themes.insert(theme);
                hits.terms.push(phrase);
                if kept && points.saturating_add(taken[theme.0 as usize]) >= threshold {
                    hits.kept.insert(theme);
                }
            }
        }
    }

    /// Lowers the hits of a search that reads as study, news or help-seeking, unless it
    /// also reads as the person's own plan.
    fn read_context(&self, classes: &[ClassHit], hits: &mut ThemeHits) {
        let shared = |h: &&ClassHit| h.cancelled.0 != u64::MAX;
        let lower: SmallVec<[&ClassHit; 4]> = classes
            .iter()
            .filter(shared)
            .filter(|h| h.class == self.lower)
            .collect();
        let plan = classes.iter().filter(shared).find(|h| {
            h.class == self.plan && !lower.iter().any(|l| l.first <= h.first && h.last <= l.last)
        });
        if let Some(p) = plan {
            hits.context.push(p.word);
            return;
        }
        if let Some(l) = lower.first() {
            hits.context.push(l.word);
            hits.lowered = ThemeSet(hits.themes.0 & !self.never_lowered.0 & !hits.kept.0);
        }
    }
}

/// The classes a search's words belong to: a bit each, for the first [`Present::EXACT`]
/// classes (a class beyond them may be present), and each class once in the order first
/// found (a search has a few dozen: they are read from the list, not from the bits).
struct Present {
    bits: [u64; Present::EXACT / 64],
    distinct: SmallVec<[u16; 64]>,
}

impl Present {
    const EXACT: usize = 8192;

    fn of(classes: &[ClassHit]) -> Present {
        let mut present = Present {
            bits: [0; Present::EXACT / 64],
            distinct: SmallVec::new(),
        };
        for h in classes {
            present.insert(h.class);
        }
        present
    }

    /// Every class present, once each, in the order first found.
    fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.distinct.iter().copied()
    }

    fn insert(&mut self, class: u16) {
        let new = match self.bits.get_mut(usize::from(class) / 64) {
            Some(w) => {
                let bit = 1 << (class % 64);
                let new = *w & bit == 0;
                *w |= bit;
                new
            }
            None => !self.distinct.contains(&class),
        };
        if new {
            self.distinct.push(class);
        }
    }

    /// Whether a hit of `class` is present (a class beyond the exact range may be).
    fn contains(&self, class: u16) -> bool {
        self.bits
            .get(usize::from(class) / 64)
            .is_none_or(|w| w & (1 << (class % 64)) != 0)
    }
}

/// Whether every class of `combo` has a hit, all within `combo.near` words of the first
/// part's hit.
fn combination_present(combo: &Combination, hits: &[ClassHit]) -> bool {
    let Some((&first, rest)) = combo.classes.split_first() else {
        return false;
    };
    let of_class = |class: u16| hits.iter().filter(move |h| h.class == class);
    let near = u16::from(combo.near);
    let live = |h: &&ClassHit| !h.cancelled.contains(combo.theme);
    of_class(first).filter(live).any(|anchor| {
        let (mut lo, mut hi) = (anchor.first, anchor.last);
        rest.iter().all(|&class| {
            // The hit of this class closest to the anchor, not overlapping it.
            let best = of_class(class)
                .filter(live)
                .filter(|h| h.last < anchor.first || h.first > anchor.last)
                .min_by_key(|h| h.first.abs_diff(anchor.first));
            match best {
                Some(h) => {
                    lo = lo.min(h.first);
                    hi = hi.max(h.last);
                    hi - lo <= near
                }
                None => false,
            }
        })
    })
}

/// Every match found walking from where a word starts, as (pattern, start, end) in the
/// order they end: the automaton walked from each word's first byte, following only the
/// transitions of patterns that start there (no failure transitions), until no pattern can
/// go on (what an anchored overlapping search reports, without its set-up per word).
fn for_each_at_word_starts(ac: &NFA, text: &[u8], each: &mut impl FnMut(usize, usize, usize)) {
    let Ok(start_state) = ac.start_state(Anchored::Yes) else {
        return;
    };
    let mut start = 0;
    while start < text.len() {
        let mut state = start_state;
        for (at, &byte) in text.iter().enumerate().skip(start) {
            state = ac.next_state(Anchored::Yes, state, byte);
            if ac.is_dead(state) {
                break;
            }
            if ac.is_match(state) {
                // A state's matches include patterns that are suffixes of the path (they
                // start later than `start`): each match starts its own length back.
                for i in 0..ac.match_len(state) {
                    let pattern = ac.match_pattern(state, i);
                    let end = at + 1;
                    each(pattern.as_usize(), end - ac.pattern_len(pattern), end);
                }
            }
        }
        match text[start..].iter().position(|&b| b == b' ') {
            Some(p) => start += p + 1,
            None => break,
        }
    }
}

/// Every match anywhere in the text (e2guardian's weighted parts may start inside a word).
fn for_each_anywhere(ac: &NFA, text: &[u8], each: &mut impl FnMut(usize, usize, usize)) {
    let input = Input::new(text);
    let mut state = OverlappingState::start();
    while let Ok(()) = ac.try_find_overlapping(&input, &mut state) {
        match state.get_match() {
            Some(m) => each(m.pattern().as_usize(), m.start(), m.end()),
            None => break,
        }
    }
}

/// Records one match of a pattern, if it lies on word boundaries as its kind needs.
fn scan(
    text: &[u8],
    words_before: &[u16],
    (pattern, s, e): (usize, usize, usize),
    kinds: &FormKinds,
    out: &mut FormHits,
    parts: &mut Parts,
    classes: &mut ClassHits,
) {
    let at_start = |s: usize| s == 0 || text[s - 1] == b' ';
    let at_end = |e: usize| e == text.len() || text[e] == b' ';
    let word_at = |offset: usize| -> u16 { words_before.get(offset).copied().unwrap_or(u16::MAX) };
    for kind in kinds.of(pattern) {
        match Some(kind) {
            Some(Kind::Phrase { phrase, prefix }) if at_start(s) && (*prefix || at_end(e)) => {
                out.phrases.push((*phrase, s, e));
            }
            Some(Kind::Exception(theme))
                if at_start(s) && at_end(e) && out.exceptions.len() < MAX_EXCEPTIONS =>
            {
                out.exceptions.push((s, e, *theme));
            }
            Some(Kind::Part {
                group,
                bit,
                word_start,
                word_end,
            }) if (!word_start || at_start(s)) && (!word_end || at_end(e)) => {
                parts.push((*group, *bit));
            }
            Some(Kind::Class {
                class,
                word,
                prefix,
            }) if at_start(s) && (*prefix || at_end(e)) && room_for(classes, *class) => {
                let end = if *prefix {
                    text[e..]
                        .iter()
                        .position(|&b| b == b' ')
                        .map_or(text.len(), |p| e + p)
                } else {
                    e
                };
                classes.push(ClassHit {
                    cancelled: ThemeSet::default(),
                    class: *class,
                    word: *word,
                    first: word_at(s),
                    last: word_at(end.saturating_sub(1).max(s)),
                    start: s,
                    end,
                });
            }
            _ => {}
        }
    }
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
        b.exception(None, "suicide prevention").unwrap();
        b.exception(None, "sexual health").unwrap();
        b.exception(None, "self harm support").unwrap();
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

    #[test]
    fn a_class_word_written_by_several_files_is_one_hit() {
        let mut b = ThemeMatcherBuilder::default();
        let t = b.theme("filter-bypass").unwrap();
        b.set_language("en");
        b.class_word("tool", "vpn", false).unwrap();
        b.class_word("tool", "vpn", true).unwrap();
        b.set_language("pl");
        b.class_word("tool", "vpn", false).unwrap();
        b.class_word("other", "vpn", false).unwrap();
        b.combination(
            t,
            &[ComboPart::Class("tool"), ComboPart::Literal("get")],
            10,
            3,
            false,
        )
        .unwrap();
        b.set_threshold(t, 10);
        let m = b.build().unwrap();
        // The automaton's patterns are `get` and `vpn`, in that order.
        let kinds = m.loose.of(1);
        // Whole word and running-on, once each, and the other class.
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        let hits = m.find(&normalize("get vpn"));
        assert!(hits.themes.contains(t));
    }

    /// A `kept` combination's hit stays as it is in a search with a context word; the same
    /// combination without `kept` is lowered, and a kept combination cancelled by a negative
    /// one keeps nothing.
    #[test]
    fn a_kept_combination_is_not_lowered_by_context() {
        let build = |kept: bool| {
            let mut b = ThemeMatcherBuilder::default();
            let t = b.theme("abuse").unwrap();
            b.set_language("en");
            b.class_word("child", "my friend", false).unwrap();
            b.class_word("adult", "stepdad", false).unwrap();
            b.class_word("harm", "hit her", false).unwrap();
            b.class_word("play", "by accident", false).unwrap();
            b.class_word("nomarks", "no marks", false).unwrap();
            b.class_word(LOWER, "my friend", false).unwrap();
            b.class_word(PLAN, "i", false).unwrap();
            let parts = [
                ComboPart::Class("child"),
                ComboPart::Class("adult"),
                ComboPart::Class("harm"),
            ];
            b.combination(t, &parts, 60, 10, kept).unwrap();
            let play = [ComboPart::Class("harm"), ComboPart::Class("play")];
            b.combination(t, &play, -100, 8, false).unwrap();
            let nomarks = [ComboPart::Class("harm"), ComboPart::Class("nomarks")];
            b.combination(t, &nomarks, 100, 8, false).unwrap();
            b.set_threshold(t, 50);
            (b.build().unwrap(), t)
        };
        let (kept, t) = build(true);
        let hits = kept.find(&normalize("my friend says her stepdad hit her"));
        assert!(hits.themes.contains(t) && hits.kept.contains(t));
        assert!(hits.lowered.is_empty(), "{hits:?}");
        let hits = kept.find(&normalize("my friend says her stepdad hit her by accident"));
        assert!(hits.themes.is_empty() && hits.kept.is_empty(), "{hits:?}");
        // Another combination fires the theme, but the kept one was cancelled: not kept.
        let hits = kept.find(&normalize(
            "my friend says her stepdad hit her by accident no marks",
        ));
        assert!(hits.themes.contains(t) && hits.kept.is_empty(), "{hits:?}");
        let (plain, t) = build(false);
        let hits = plain.find(&normalize("my friend says her stepdad hit her"));
        assert!(hits.lowered.contains(t) && hits.kept.is_empty(), "{hits:?}");
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
        assert!(b.exception(None, "  ").is_err());
    }

    fn model() -> ThemeMatcher {
        let mut b = ThemeMatcherBuilder::default();
        let su = b.theme("suicide").unwrap();
        let di = b.theme("disclosure").unwrap();
        b.never_lower(di);
        b.set_language("en");
        b.phrase(su, "suicide", false).unwrap();
        b.exception(None, "dying of laughter").unwrap();
        for w in ["paracetamol", "sleeping pills", "pills"] {
            b.class_word("medicine", w, false).unwrap();
        }
        for w in ["how many", "how much"] {
            b.class_word("amount", w, false).unwrap();
        }
        for w in ["die", "dying", "kill you", "kill me"] {
            b.class_word("die", w, false).unwrap();
        }
        for w in ["dad", "step dad", "uncle"] {
            b.class_word("adult", w, false).unwrap();
        }
        for w in ["hits me", "hurts me", "touched me"] {
            b.class_word("hurts-me", w, false).unwrap();
        }
        for w in ["essay", "analysis", "how to help", "my friend"] {
            b.class_word(LOWER, w, false).unwrap();
        }
        for w in ["i", "me", "my", "i want to"] {
            b.class_word(PLAN, w, false).unwrap();
        }
        let c = ComboPart::Class;
        b.combination(su, &[c("amount"), c("medicine"), c("die")], 60, 6, false)
            .unwrap();
        b.combination(
            su,
            &[ComboPart::Literal("quickest way"), c("die")],
            60,
            3,
            false,
        )
        .unwrap();
        b.combination(su, &[c("medicine"), c("die")], 30, 6, false)
            .unwrap();
        b.combination(di, &[c("adult"), c("hurts-me")], 60, 4, false)
            .unwrap();
        b.build().unwrap()
    }

    fn read(m: &ThemeMatcher, text: &str) -> (Vec<String>, Vec<String>) {
        let hits = m.find(&normalize(text));
        let names = |set: ThemeSet| set.iter().map(|t| m.theme_name(t).to_owned()).collect();
        (names(hits.themes), names(hits.lowered))
    }

    #[test]
    fn combinations_context_and_slips() {
        let m = model();
        let none: &[&str] = &[];
        let cases: &[(&str, &[&str], &[&str])] = &[
            // Parts in any order, within their span.
            ("how many sleeping pills would kill you", &["suicide"], none),
            ("would paracetamol kill you how many", &["suicide"], none),
            ("quickest way to die", &["suicide"], none),
            // Too far apart, or a part missing: no hit (30 points is under the threshold).
            (
                "quickest way to get to the station so i do not die of boredom",
                none,
                none,
            ),
            ("how many pills in a pack", none, none),
            ("pills that make you die", none, none),
            // An exception cancels the class word inside it.
            ("how many pills dying of laughter", none, none),
            // Slips of listed words of six letters or more.
            ("suicde", &["suicide"], none),
            ("how many paracetmol kill you", &["suicide"], none),
            // Context lowers, a first-person plan keeps it.
            (
                "hamlet suicide soliloquy analysis",
                &["suicide"],
                &["suicide"],
            ),
            ("suicide essay i want to die", &["suicide"], none),
            (
                "how to help my friend who talks about suicide",
                &["suicide"],
                &["suicide"],
            ),
            // A disclosure is never lowered.
            ("my dad hits me essay", &["disclosure"], none),
            ("step dad hurts me", &["disclosure"], none),
        ];
        for (text, fired, lowered) in cases {
            let (f, l) = read(&m, text);
            let f: Vec<&str> = f.iter().map(String::as_str).collect();
            let l: Vec<&str> = l.iter().map(String::as_str).collect();
            assert_eq!((f.as_slice(), l.as_slice()), (*fired, *lowered), "{text:?}");
        }
    }

    #[test]
    fn words_repeated_to_fill_the_caps_do_not_hide_what_follows() {
        let m = model();
        // Hundreds of hits of one class (each `dad` is a word of {adult}) leave room for
        // the classes of the combination after them.
        let padded = format!(
            "{}how many sleeping pills would kill you",
            "dad ".repeat(2000)
        );
        assert_eq!(read(&m, &padded).0, vec!["suicide".to_owned()]);
    }

    #[test]
    fn slips_are_only_read_for_long_unlisted_words() {
        let m = model();
        let hits = m.find(&normalize("suicde"));
        assert_eq!(
            hits.slips,
            vec![("suicde".to_owned(), "suicide".to_owned())]
        );
        // Short words are never read as another word.
        assert!(m.find(&normalize("dye")).themes.is_empty());
    }

    #[test]
    fn a_class_used_but_never_filled_is_named() {
        let mut b = ThemeMatcherBuilder::default();
        let t = b.theme("t").unwrap();
        b.combination(t, &[ComboPart::Class("nowhere")], 60, 6, false)
            .unwrap();
        assert_eq!(b.empty_classes(), vec!["nowhere".to_owned()]);
    }
}
