//! The learned part of the theme model: a weight per theme for each word, pair of
//! neighbouring words, word beginning and word class, learned from labelled searches by
//! `gatehouse train-themes` ([`crate::train`]) and loaded from `themes/_model/*.tsv`.
//!
//! A theme fires when its bias plus the weights of the search's features reaches its
//! threshold (a logistic model: a sum of zero is even odds). It adds to the lists, never
//! takes from them: a listed phrase fires whatever the weights say, and context lowers a
//! learned hit as it lowers a listed one. The features are read from the search as the
//! lists read it (normalised, slips corrected), so a word the lists know by a slip is the
//! same feature however it was typed.
//!
//! Scoring is a hash lookup per feature into an immutable table, with fixed-size state on
//! the stack; a search's first [`MAX_FEATURES`] distinct features are read.

use super::themes::{PhraseId, ThemeId, ThemeSet, MAX_THEMES};
use smallvec::SmallVec;
use std::collections::HashMap;

/// At most this many distinct features are read from one search (a search is a few words;
/// a 64 KiB query costs bounded time).
pub const MAX_FEATURES: usize = 96;

/// Weights are kept as integers: thousandths.
const SCALE: f32 = 1000.0;

/// What a feature is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeatureKind {
    /// A word as the lists read it.
    Word,
    /// Two neighbouring words (`how many`).
    Pair,
    /// The first five letters of a word of seven letters or more (the inflected forms of
    /// a long word share it).
    Start,
    /// A word class of the lists (`{medicine}`) present in the search.
    Class,
}

impl FeatureKind {
    /// The name used in the weights file.
    pub fn name(self) -> &'static str {
        match self {
            FeatureKind::Word => "word",
            FeatureKind::Pair => "pair",
            FeatureKind::Start => "start",
            FeatureKind::Class => "class",
        }
    }

    pub fn from_name(name: &str) -> Option<FeatureKind> {
        Some(match name {
            "word" => FeatureKind::Word,
            "pair" => FeatureKind::Pair,
            "start" => FeatureKind::Start,
            "class" => FeatureKind::Class,
            _ => return None,
        })
    }

    fn tag(self) -> u8 {
        match self {
            FeatureKind::Word => b'w',
            FeatureKind::Pair => b'p',
            FeatureKind::Start => b's',
            FeatureKind::Class => b'c',
        }
    }
}

/// Letters of a word beginning; words shorter than [`START_MIN`] letters have none.
const START_LETTERS: usize = 5;
const START_MIN: usize = 7;

/// Calls `each` with every word, pair and word-beginning feature of a normalised text (its
/// words separated by single spaces), in order, repeats included.
pub fn for_each_text_feature(text: &str, mut each: impl FnMut(FeatureKind, &str)) {
    let mut previous: Option<(usize, usize)> = None;
    let mut offset = 0;
    for word in text.split(' ') {
        let start = offset;
        offset += word.len() + 1;
        if word.is_empty() {
            continue;
        }
        each(FeatureKind::Word, word);
        if let Some((s, _)) = previous {
            if let Some(pair) = text.get(s..start + word.len()) {
                each(FeatureKind::Pair, pair);
            }
        }
        previous = Some((start, word.len()));
        if word.chars().count() >= START_MIN {
            if let Some((cut, _)) = word.char_indices().nth(START_LETTERS) {
                each(FeatureKind::Start, &word[..cut]);
            }
        }
    }
}

/// The key of a feature in the table (FNV-1a over its kind and text).
pub fn feature_key(kind: FeatureKind, text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in std::iter::once(&kind.tag()).chain(text.as_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// One theme's weight for a feature, and the phrase that names it in a decision.
#[derive(Clone, Copy, Debug)]
struct Weight {
    theme: ThemeId,
    points: i32,
    phrase: PhraseId,
}

/// The compiled weights. Immutable; shared by every request.
#[derive(Clone, Debug, Default)]
pub struct LearnedModel {
    /// Feature key to its range of `weights`.
    table: HashMap<u64, (u32, u32), foldhash::fast::RandomState>,
    weights: Vec<Weight>,
    /// Per theme: bias and threshold (thousandths); themes without weights are not scored.
    bias: Vec<i32>,
    threshold: Vec<i32>,
    modelled: ThemeSet,
    /// Per word class id: its feature key.
    class_keys: Vec<u64>,
}

/// Collects weights while a policy is read.
#[derive(Debug, Default)]
pub struct LearnedModelBuilder {
    entries: Vec<(u64, Weight)>,
    bias: Vec<(ThemeId, f32)>,
    threshold: Vec<(ThemeId, f32)>,
}

impl LearnedModelBuilder {
    pub fn weight(&mut self, key: u64, theme: ThemeId, weight: f32, phrase: PhraseId) {
        self.entries.push((
            key,
            Weight {
                theme,
                points: scaled(weight),
                phrase,
            },
        ));
    }
    pub fn bias(&mut self, theme: ThemeId, value: f32) {
        self.bias.push((theme, value));
    }
    pub fn threshold(&mut self, theme: ThemeId, value: f32) {
        self.threshold.push((theme, value));
    }

    /// `classes` are the word classes' names by id.
    pub fn build(mut self, themes: usize, classes: &[String]) -> LearnedModel {
        let mut model = LearnedModel {
            bias: vec![0; themes],
            threshold: vec![0; themes],
            class_keys: classes
                .iter()
                .map(|c| feature_key(FeatureKind::Class, c))
                .collect(),
            ..LearnedModel::default()
        };
        if self.entries.is_empty() {
            return model;
        }
        // Later lines replace earlier ones for the same theme.
        for (theme, v) in self.bias {
            if let Some(b) = model.bias.get_mut(theme.0 as usize) {
                *b = scaled(v);
            }
        }
        for (theme, v) in self.threshold {
            if let Some(t) = model.threshold.get_mut(theme.0 as usize) {
                *t = scaled(v);
            }
        }
        self.entries.sort_by_key(|(key, w)| (*key, w.theme));
        self.entries
            .dedup_by(|later, earlier| later.0 == earlier.0 && later.1.theme == earlier.1.theme);
        for (key, w) in self.entries {
            model.modelled.insert(w.theme);
            let at = model.weights.len() as u32;
            model.weights.push(w);
            model
                .table
                .entry(key)
                .and_modify(|r| r.1 = at + 1)
                .or_insert((at, at + 1));
        }
        model
    }
}

fn scaled(v: f32) -> i32 {
    let v = (v * SCALE).round();
    if v.is_finite() {
        v.clamp(-1.0e9, 1.0e9) as i32
    } else {
        0
    }
}

/// The distinct feature keys of one search, in the order first seen.
type Keys = SmallVec<[u64; MAX_FEATURES]>;

impl LearnedModel {
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// Number of (feature, theme) weights.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    pub fn heap_bytes(&self) -> usize {
        self.table.capacity() * (8 + 8 + 1)
            + self.weights.capacity() * std::mem::size_of::<Weight>()
            + (self.bias.capacity() + self.threshold.capacity()) * 4
            + self.class_keys.capacity() * 8
    }

    fn keys(&self, text: &str, classes: impl Iterator<Item = u16>) -> Keys {
        let mut keys = Keys::new();
        let mut add = |key: u64| {
            if keys.len() < MAX_FEATURES && !keys.contains(&key) {
                keys.push(key);
            }
        };
        for class in classes {
            if let Some(&k) = self.class_keys.get(usize::from(class)) {
                add(k);
            }
        }
        for_each_text_feature(text, |kind, f| add(feature_key(kind, f)));
        keys
    }

    fn weights_of(&self, key: u64) -> &[Weight] {
        self.table
            .get(&key)
            .and_then(|&(a, b)| self.weights.get(a as usize..b as usize))
            .unwrap_or_default()
    }

    /// The themes the weights fire for a search (its normalised, slip-corrected text and
    /// the classes of its words), with, per theme fired, its strongest features' phrases
    /// (at most three each) pushed to `terms`.
    pub fn fire(
        &self,
        text: &str,
        classes: impl Iterator<Item = u16>,
        terms: &mut Vec<PhraseId>,
    ) -> ThemeSet {
        if self.is_empty() {
            return ThemeSet::default();
        }
        let keys = self.keys(text, classes);
        let mut scores = [0i32; MAX_THEMES];
        for (s, &b) in scores.iter_mut().zip(&self.bias) {
            *s = b;
        }
        for &key in &keys {
            for w in self.weights_of(key) {
                let s = &mut scores[usize::from(w.theme.0) % MAX_THEMES];
                *s = s.saturating_add(w.points);
            }
        }
        let mut fired = ThemeSet::default();
        for theme in self.modelled.iter() {
            let t = usize::from(theme.0);
            let threshold = self.threshold.get(t).copied().unwrap_or(i32::MAX);
            if scores[t] >= threshold {
                fired.insert(theme);
            }
        }
        // A hit is rare: its reasons are found by a second look at its features.
        for theme in fired.iter() {
            let mut top: [(i32, Option<PhraseId>); 3] = [(0, None); 3];
            for &key in &keys {
                for w in self.weights_of(key).iter().filter(|w| w.theme == theme) {
                    if let Some(slot) = top.iter().position(|&(p, _)| w.points > p) {
                        top[slot..].rotate_right(1);
                        top[slot] = (w.points, Some(w.phrase));
                    }
                }
            }
            terms.extend(top.iter().filter_map(|&(_, p)| p));
        }
        fired
    }

    /// Every feature of a search with a weight for `theme`, strongest first: (phrase,
    /// weight), and the theme's total and threshold (for `explain`).
    pub fn reasons(
        &self,
        text: &str,
        classes: impl Iterator<Item = u16>,
        theme: ThemeId,
    ) -> (Vec<(PhraseId, f32)>, f32, f32) {
        let keys = self.keys(text, classes);
        let t = usize::from(theme.0);
        let mut total = self.bias.get(t).copied().unwrap_or(0);
        let mut out = Vec::new();
        for &key in &keys {
            for w in self.weights_of(key).iter().filter(|w| w.theme == theme) {
                total = total.saturating_add(w.points);
                out.push((w.phrase, w.points as f32 / SCALE));
            }
        }
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        let threshold = self.threshold.get(t).copied().unwrap_or(0);
        (out, total as f32 / SCALE, threshold as f32 / SCALE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(text: &str) -> Vec<(FeatureKind, String)> {
        let mut out = Vec::new();
        for_each_text_feature(text, |k, f| out.push((k, f.to_owned())));
        out
    }

    #[test]
    fn words_pairs_and_beginnings_are_read_in_order() {
        use FeatureKind::*;
        assert_eq!(
            features("how many sleping"),
            vec![
                (Word, "how".into()),
                (Word, "many".into()),
                (Pair, "how many".into()),
                (Word, "sleping".into()),
                (Pair, "many sleping".into()),
                (Start, "slepi".into()),
            ]
        );
        // Beginnings are cut on characters, not bytes.
        assert_eq!(features("zabójstwo")[1], (Start, "zabój".into()));
        assert!(features("").is_empty());
        assert_eq!(features("  a ").len(), 1);
    }

    #[test]
    fn a_theme_fires_at_its_threshold_and_names_its_strongest_features() {
        let mut b = LearnedModelBuilder::default();
        let t = ThemeId(1);
        b.bias(t, -2.0);
        b.weight(feature_key(FeatureKind::Word, "pils"), t, 1.5, PhraseId(7));
        b.weight(
            feature_key(FeatureKind::Pair, "how many"),
            t,
            1.0,
            PhraseId(8),
        );
        b.weight(
            feature_key(FeatureKind::Class, "medicine"),
            t,
            0.2,
            PhraseId(9),
        );
        b.weight(
            feature_key(FeatureKind::Word, "vitamin"),
            t,
            -3.0,
            PhraseId(10),
        );
        let m = b.build(2, &["lower".into(), "medicine".into()]);
        let mut terms = Vec::new();
        assert!(m
            .fire("how many pils", [1u16].into_iter(), &mut terms)
            .contains(t));
        assert_eq!(terms, vec![PhraseId(7), PhraseId(8), PhraseId(9)]);
        terms.clear();
        // A repeated word counts once.
        assert!(m
            .fire("pils pils pils", std::iter::empty(), &mut terms)
            .is_empty());
        assert!(m
            .fire("how many vitamin pils", std::iter::empty(), &mut terms)
            .is_empty());
        let (reasons, total, threshold) = m.reasons("how many pils", [1u16].into_iter(), t);
        assert_eq!(reasons.len(), 3);
        assert!((total - 0.7).abs() < 1e-6 && threshold == 0.0);
    }
}
