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
//! the stack; a search's first [`MAX_FEATURES`] distinct features are read (repeats do not
//! count, so padding with one word hides nothing), among its first [`MAX_LOOKED`].

use super::themes::{PhraseId, ThemeId, ThemeSet, MAX_THEMES};
use smallvec::SmallVec;
use std::collections::HashMap;

/// At most this many distinct word, pair and beginning features are read from one search
/// (about 80 distinct words: a search engine reads far fewer).
pub const MAX_FEATURES: usize = 256;

/// At most this many features, repeats included, are looked at (so a 64 KiB query of
/// repeated words costs bounded time; about 1,000 words).
pub const MAX_LOOKED: usize = 4096;

/// At most this many features are scored for one search, classes included (held inline).
const MAX_FOUND: usize = 320;

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
/// words separated by single spaces), in order, repeats included: a feature is one or two
/// texts (`how` + `many`).
pub fn for_each_text_feature(text: &str, mut each: impl FnMut(FeatureKind, &str, &str)) {
    let mut before = "";
    for word in text.split(' ') {
        if word.is_empty() {
            continue;
        }
        each(FeatureKind::Word, word, "");
        if !before.is_empty() {
            each(FeatureKind::Pair, before, word);
        }
        before = word;
        if word.chars().count() >= START_MIN {
            if let Some((cut, _)) = word.char_indices().nth(START_LETTERS) {
                each(FeatureKind::Start, &word[..cut], "");
            }
        }
    }
}

/// Calls `each` with every distinct feature of a normalised text (and its key), in the
/// order first seen, within the limits the model reads ([`MAX_FEATURES`] distinct among the
/// first [`MAX_LOOKED`]): what training and scoring both read.
pub fn for_each_distinct_feature(text: &str, mut each: impl FnMut(FeatureKind, &str, &str, u64)) {
    let mut seen: SmallVec<[u64; MAX_FEATURES]> = SmallVec::new();
    let mut looked = 0usize;
    for_each_text_feature(text, |kind, a, b| {
        if looked >= MAX_LOOKED || seen.len() >= MAX_FEATURES {
            return;
        }
        looked += 1;
        let key = feature_key(kind, a, b);
        if !seen.contains(&key) {
            seen.push(key);
            each(kind, a, b, key);
        }
    });
}

/// The key of a feature in the table (FNV-1a over its kind and text, two texts joined by
/// a space).
pub fn feature_key(kind: FeatureKind, first: &str, second: &str) -> u64 {
    let mut h = fnv(0xcbf2_9ce4_8422_2325, &[kind.tag()]);
    h = fnv(h, first.as_bytes());
    if !second.is_empty() {
        h = fnv(fnv(h, b" "), second.as_bytes());
    }
    h
}

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The compiled weights. Immutable; shared by every request. Laid out flat: a feature is
/// a row of one byte per modelled theme (a weight in steps of [`STEP`]), so scoring a
/// feature is one vector add.
#[derive(Clone, Debug, Default)]
pub struct LearnedModel {
    /// A bit per [`PRESENT_BITS`] slot, set for the slot of every weighted feature's key: most
    /// of a search's features (pairs above all) have no weight and are turned away here,
    /// in 32 KiB that stay in cache, before the table is looked at.
    present: Vec<u64>,
    /// Feature key to the feature's number.
    table: HashMap<u64, u32, foldhash::fast::RandomState>,
    /// The themes with weights, one column each.
    columns: Vec<ThemeId>,
    /// Per feature number, a row of `columns.len()` weights in steps.
    rows: Vec<i8>,
    /// Per feature number: where its display text ends in `texts`.
    text_ends: Vec<u32>,
    texts: String,
    /// A feature's phrase id in a decision is this plus its number.
    phrase_base: u32,
    /// Per column: bias and threshold, in steps.
    bias: Vec<i32>,
    threshold: Vec<i32>,
    /// Per word class id: its feature number, or [`NO_FEATURE`].
    class_features: Vec<u32>,
}

/// The unit of a stored weight: a feature's weight is a whole number of steps between
/// -127 and 127 (-6.35 to 6.35); the rounding moves a search's score by far less than
/// the model's own uncertainty.
pub const STEP: f32 = 0.05;

const NO_FEATURE: u32 = u32::MAX;

/// Slots of the presence bitmap (a power of two).
const PRESENT_BITS: usize = 1 << 18;

/// A key's slot in the presence bitmap (its high bits, mixed).
fn present_slot(key: u64) -> usize {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - 18)) as usize
}

/// Collects weights while a policy is read.
#[derive(Debug, Default)]
pub struct LearnedModelBuilder {
    /// (key, theme, weight, display text)
    entries: Vec<(u64, ThemeId, f32, String)>,
    bias: Vec<(ThemeId, f32)>,
    threshold: Vec<(ThemeId, f32)>,
}

impl LearnedModelBuilder {
    pub fn weight(&mut self, key: u64, theme: ThemeId, weight: f32, shown: String) {
        self.entries.push((key, theme, weight, shown));
    }
    pub fn bias(&mut self, theme: ThemeId, value: f32) {
        self.bias.push((theme, value));
    }
    pub fn threshold(&mut self, theme: ThemeId, value: f32) {
        self.threshold.push((theme, value));
    }

    /// `classes` are the word classes' names by id; `phrase_base` the first phrase id
    /// after the lists' own.
    pub fn build(self, classes: &[String], phrase_base: u32) -> LearnedModel {
        let mut model = LearnedModel {
            phrase_base,
            ..LearnedModel::default()
        };
        if self.entries.is_empty() {
            return model;
        }
        let mut columns: Vec<ThemeId> = self.entries.iter().map(|e| e.1).collect();
        columns.sort_unstable();
        columns.dedup();
        let column = |t: ThemeId| columns.iter().position(|&c| c == t);
        let width = columns.len();
        model.bias = vec![0; width];
        model.threshold = vec![0; width];
        // Later lines replace earlier ones.
        for (theme, v) in self.bias {
            if let Some(c) = column(theme) {
                model.bias[c] = steps(v);
            }
        }
        for (theme, v) in self.threshold {
            if let Some(c) = column(theme) {
                model.threshold[c] = steps(v);
            }
        }
        model.present = vec![0; PRESENT_BITS / 64];
        for (key, theme, weight, shown) in self.entries {
            let n = match model.table.get(&key) {
                Some(&n) => n as usize,
                None => {
                    let n = model.text_ends.len();
                    model.table.insert(key, n as u32);
                    let slot = present_slot(key);
                    if let Some(word) = model.present.get_mut(slot / 64) {
                        *word |= 1 << (slot % 64);
                    }
                    model.rows.extend(std::iter::repeat_n(0, width));
                    model.texts.push_str(&shown);
                    model.text_ends.push(model.texts.len() as u32);
                    n
                }
            };
            if let Some(c) = column(theme) {
                model.rows[n * width + c] = steps(weight).clamp(-127, 127) as i8;
            }
        }
        model.table.shrink_to_fit();
        model.class_features = classes
            .iter()
            .map(|c| {
                let key = feature_key(FeatureKind::Class, c, "");
                model.table.get(&key).copied().unwrap_or(NO_FEATURE)
            })
            .collect();
        model.columns = columns;
        model
    }
}

/// A weight in whole steps.
fn steps(v: f32) -> i32 {
    let v = (v / STEP).round();
    if v.is_finite() {
        v.clamp(-1.0e6, 1.0e6) as i32
    } else {
        0
    }
}

/// The distinct feature numbers of one search, in the order first seen (held inline: the
/// text's features and a few dozen classes).
type Found = SmallVec<[u32; MAX_FOUND]>;

impl LearnedModel {
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Number of non-zero (feature, theme) weights.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.rows.iter().filter(|&&w| w != 0).count()
    }

    pub fn heap_bytes(&self) -> usize {
        self.present.capacity() * 8
            + self.table.capacity() * (8 + 4 + 1)
            + self.rows.capacity()
            + self.text_ends.capacity() * 4
            + self.texts.capacity()
            + (self.bias.capacity() + self.threshold.capacity()) * 4
            + self.class_features.capacity() * 4
    }

    /// The display text of a learned feature's phrase id, if it is one.
    pub fn phrase_text(&self, phrase: PhraseId) -> Option<&str> {
        let n = phrase.0.checked_sub(self.phrase_base)? as usize;
        let end = *self.text_ends.get(n)? as usize;
        let start = if n == 0 {
            0
        } else {
            *self.text_ends.get(n - 1)? as usize
        };
        self.texts.get(start..end)
    }

    /// The weighted features a search has (numbers, each once): its words, pairs and
    /// beginnings (see [`for_each_distinct_feature`]), then its word classes (`classes`
    /// yields each class once), at most [`MAX_FOUND`] in all.
    fn found(&self, text: &str, classes: impl Iterator<Item = u16>, found: &mut Found) {
        for_each_distinct_feature(text, |_, _, _, key| {
            let slot = present_slot(key);
            let maybe = self
                .present
                .get(slot / 64)
                .is_some_and(|w| w & (1 << (slot % 64)) != 0);
            if let Some(&n) = maybe.then(|| self.table.get(&key)).flatten() {
                found.push(n);
            }
        });
        // Distinct classes are distinct features (their keys differ from every word's), so
        // they need no check against what was found: a search can have dozens of classes.
        for class in classes {
            if found.len() >= MAX_FOUND {
                break;
            }
            match self.class_features.get(usize::from(class)) {
                Some(&n) if n != NO_FEATURE => found.push(n),
                _ => {}
            }
        }
    }

    /// A feature's row: its weight for each column.
    fn row(&self, n: u32) -> &[i8] {
        let width = self.columns.len();
        let at = n as usize * width;
        self.rows.get(at..at + width).unwrap_or_default()
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
        let mut found = Found::new();
        self.found(text, classes, &mut found);
        let mut scores = [0i32; MAX_THEMES];
        let scores = &mut scores[..self.columns.len().min(MAX_THEMES)];
        for (s, &b) in scores.iter_mut().zip(&self.bias) {
            *s = b;
        }
        for &n in &found {
            for (s, &w) in scores.iter_mut().zip(self.row(n)) {
                *s += i32::from(w);
            }
        }
        let mut fired = ThemeSet::default();
        for (c, (&score, &threshold)) in scores.iter().zip(&self.threshold).enumerate() {
            if score < threshold {
                continue;
            }
            let Some(&theme) = self.columns.get(c) else {
                continue;
            };
            fired.insert(theme);
            // A hit is rare: its reasons are found by a second look at its features.
            let mut top: [(i8, Option<u32>); 3] = [(0, None); 3];
            for &n in &found {
                let w = self.row(n).get(c).copied().unwrap_or(0);
                if let Some(slot) = top.iter().position(|&(p, _)| w > p) {
                    top[slot..].rotate_right(1);
                    top[slot] = (w, Some(n));
                }
            }
            terms.extend(
                top.iter()
                    .filter_map(|&(_, n)| n)
                    .map(|n| PhraseId(self.phrase_base.saturating_add(n))),
            );
        }
        fired
    }

    /// Every feature of a search with a weight for `theme`, strongest first: (display
    /// text, weight), and the theme's total and threshold (for `explain`).
    pub fn reasons(
        &self,
        text: &str,
        classes: impl Iterator<Item = u16>,
        theme: ThemeId,
    ) -> (Vec<(String, f32)>, f32, f32) {
        let Some(c) = self.columns.iter().position(|&t| t == theme) else {
            return (Vec::new(), 0.0, 0.0);
        };
        let mut found = Found::new();
        self.found(text, classes, &mut found);
        let mut total = self.bias.get(c).copied().unwrap_or(0);
        let mut out = Vec::new();
        for &n in &found {
            let w = self.row(n).get(c).copied().unwrap_or(0);
            if w == 0 {
                continue;
            }
            total += i32::from(w);
            let shown = self
                .phrase_text(PhraseId(self.phrase_base.saturating_add(n)))
                .unwrap_or("?");
            out.push((shown.to_owned(), f32::from(w) * STEP));
        }
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        let threshold = self.threshold.get(c).copied().unwrap_or(0);
        (out, total as f32 * STEP, threshold as f32 * STEP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(text: &str) -> Vec<(FeatureKind, String)> {
        let mut out = Vec::new();
        for_each_text_feature(text, |k, a, b| {
            out.push((
                k,
                if b.is_empty() {
                    a.to_owned()
                } else {
                    format!("{a} {b}")
                },
            ))
        });
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
        // A pair's key is the key of its text.
        assert_eq!(
            feature_key(Pair, "how", "many"),
            feature_key(Pair, "how many", "")
        );
    }

    #[test]
    fn a_theme_fires_at_its_threshold_and_names_its_strongest_features() {
        let mut b = LearnedModelBuilder::default();
        let t = ThemeId(1);
        b.bias(t, -2.0);
        let mut add = |kind, text: &str, w| {
            let (first, second) = text.split_once(' ').unwrap_or((text, ""));
            b.weight(feature_key(kind, first, second), t, w, text.to_owned());
        };
        add(FeatureKind::Word, "pils", 1.5);
        add(FeatureKind::Pair, "how many", 1.0);
        add(FeatureKind::Class, "medicine", 0.2);
        add(FeatureKind::Word, "vitamin", -3.0);
        // A later line for the same feature and theme replaces the earlier one; a weight
        // is kept to within a step, at most 127 steps.
        add(FeatureKind::Word, "vitamin", -4.01);
        let m = b.build(&["lower".into(), "medicine".into()], 100);
        assert_eq!(m.len(), 4);
        let mut terms = Vec::new();
        assert!(m
            .fire("how many pils", [1u16].into_iter(), &mut terms)
            .contains(t));
        let shown: Vec<&str> = terms.iter().filter_map(|&p| m.phrase_text(p)).collect();
        assert_eq!(shown, vec!["pils", "how many", "medicine"]);
        assert!(terms.iter().all(|p| p.0 >= 100));
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
        assert!((total - 0.7).abs() < 1e-4 && threshold == 0.0);
        let (reasons, ..) = m.reasons("vitamin", std::iter::empty(), t);
        assert_eq!(reasons.len(), 1);
        assert!((reasons[0].1 + 4.0).abs() < 1e-4, "{reasons:?}");
        b_clamp();
        assert_eq!(m.phrase_text(PhraseId(99)), None);
    }

    fn b_clamp() {
        let mut b = LearnedModelBuilder::default();
        b.weight(
            feature_key(FeatureKind::Word, "x", ""),
            ThemeId(0),
            99.0,
            "x".into(),
        );
        let m = b.build(&[], 0);
        let (reasons, ..) = m.reasons("x", std::iter::empty(), ThemeId(0));
        assert!((reasons[0].1 - 127.0 * STEP).abs() < 1e-4, "{reasons:?}");
    }

    #[test]
    fn a_long_search_is_read_up_to_the_feature_limit_and_repeats_do_not_count() {
        let mut b = LearnedModelBuilder::default();
        let t = ThemeId(0);
        b.bias(t, -1.0);
        b.weight(
            feature_key(FeatureKind::Word, "last", ""),
            t,
            5.0,
            "last".into(),
        );
        let m = b.build(&[], 0);
        let mut terms = Vec::new();
        assert!(m.fire("last", std::iter::empty(), &mut terms).contains(t));
        // One word repeated is one feature (and one pair): it hides nothing after it.
        let repeated = format!("{} last", vec!["the"; 1000].join(" "));
        assert!(m
            .fire(&repeated, std::iter::empty(), &mut terms)
            .contains(t));
        // Past the limit of distinct features nothing more is read.
        let words: Vec<String> = (0..MAX_FEATURES).map(|i| format!("w{i}")).collect();
        let long = format!("{} last", words.join(" "));
        assert!(m.fire(&long, std::iter::empty(), &mut terms).is_empty());
        // Nor past the limit of features looked at, repeats included.
        let looked = format!("{} last", vec!["a b"; MAX_LOOKED].join(" "));
        assert!(m.fire(&looked, std::iter::empty(), &mut terms).is_empty());
    }
}
