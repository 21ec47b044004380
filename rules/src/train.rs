//! Learning the theme model's weights from labelled searches (`gatehouse train-themes`): one
//! logistic model per theme over the features the matcher reads from a search (its words,
//! neighbouring pairs, word beginnings and the lists' word classes, see
//! [`crate::search::FeatureKind`]), written as the tab-separated weights file the policy
//! loads from `themes/_model/`.
//!
//! A search labelled `alert` or `lowered` for a theme is an example of that theme (context
//! lowering is the lists' job, not the weights'); every other search is a counter-example.
//! Training is deterministic: the same lists and searches give the same file.

use crate::labelled::{Expect, LabelledSearch};
use crate::search::{normalize, FeatureKind, ThemeMatcher, LOWER};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// How the weights are learned.
#[derive(Clone, Debug)]
pub struct Options {
    /// Passes over the searches.
    pub epochs: usize,
    /// L1 penalty: features with too little evidence for a theme get no weight for it.
    pub l1: f32,
    /// L2 penalty, which keeps rare features' weights small.
    pub l2: f32,
    /// A feature is kept only if at least this many searches have it.
    pub min_count: usize,
    /// Step size (AdaGrad).
    pub rate: f32,
    /// Weights smaller than this are left out of the file.
    pub prune: f32,
    /// The score a theme needs to fire (0 is even odds).
    pub threshold: f32,
    /// Padded copies learned of each example of a theme (an everyday word added).
    pub padded: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            epochs: 20,
            l1: 8.0,
            l2: 1.0,
            min_count: 4,
            rate: 0.6,
            prune: 0.01,
            threshold: 1.5,
            padded: PADDED,
        }
    }
}

const PADDED: usize = 2;

/// What training produced.
#[derive(Clone, Debug)]
pub struct Trained {
    /// The weights file.
    pub text: String,
    pub searches: usize,
    pub features: usize,
    pub weights: usize,
    /// Searches whose theme this policy does not have (not used).
    pub unknown_theme: usize,
    /// Searches left out because an evaluation set holds the same search.
    pub held_out: usize,
}

/// A feature as it appears in the weights file: its kind and text.
type Feature = (FeatureKind, String);

/// Learns weights for every theme of `matcher` from `set`, leaving out every search that
/// `held_out` also holds (as normalised, so an evaluation set stays unseen); `about` heads
/// the file.
pub fn train(
    matcher: &ThemeMatcher,
    set: &[LabelledSearch],
    held_out: &[LabelledSearch],
    opts: &Options,
    about: &str,
) -> Trained {
    let themes = matcher.theme_names();
    // Whether a word is a context (`lower`) word of the lists, remembered per word.
    let mut context_words: std::collections::HashMap<String, bool> = Default::default();
    let mut context_word = |word: &str| -> bool {
        if let Some(&known) = context_words.get(word) {
            return known;
        }
        let known = matcher.learned_input(&normalize(word)).1.contains(&LOWER);
        context_words.insert(word.to_owned(), known);
        known
    };
    let unseen: std::collections::BTreeSet<String> =
        held_out.iter().map(|s| normalize(&s.query).loose).collect();
    let mut left_out = 0;
    // The words of the ordinary searches, for padded copies.
    let mut padding: Vec<&str> = set
        .iter()
        .filter(|s| s.expect == Expect::Quiet)
        .flat_map(|s| s.query.split_whitespace())
        .collect();
    padding.sort_unstable();
    padding.dedup();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut padded_copies = 0usize;
    // A search's distinct features (context words carry no weight: whether study or
    // help-seeking lowers a hit is the context rule's decision, which a first-person word
    // and a disclosure override; weighted, `gcse` would pull a pupil's own disclosure
    // under the threshold).
    let mut features_of = |normalized: &crate::search::Normalized| -> Vec<Feature> {
        let (text, classes) = matcher.learned_input(normalized);
        let mut features: Vec<Feature> = classes
            .iter()
            .filter(|&&c| c != LOWER)
            .map(|c| (FeatureKind::Class, (*c).to_owned()))
            .collect();
        let mut last_was_context = false;
        crate::search::for_each_distinct_feature(&text, |k, a, b, _| {
            let context = match k {
                FeatureKind::Word => {
                    last_was_context = context_word(a);
                    last_was_context
                }
                FeatureKind::Start => last_was_context,
                FeatureKind::Pair => context_word(a) || context_word(b),
                FeatureKind::Class => false,
            };
            if context {
                return;
            }
            let f = if b.is_empty() {
                a.to_owned()
            } else {
                format!("{a} {b}")
            };
            features.push((k, f));
        });
        features.sort();
        features.dedup();
        features
    };
    // Each search's distinct features, and its theme.
    let mut read: Vec<(Vec<Feature>, Option<usize>)> = Vec::with_capacity(set.len());
    let mut unknown_theme = 0;
    for s in set {
        // A lowered search is an example of its theme: whether the context lowers it is the
        // lists' rule (which a first-person word and a disclosure override), never the
        // weights'. Learned as a counter-example, a study word would pull a pupil's own
        // disclosure under the threshold.
        let label = match s.expect {
            Expect::Quiet => None,
            Expect::Alert | Expect::Lowered => match themes.iter().position(|t| *t == s.theme) {
                Some(t) => Some(t),
                None => {
                    unknown_theme += 1;
                    continue;
                }
            },
        };
        let normalized = normalize(&s.query);
        if unseen.contains(&normalized.loose) {
            left_out += 1;
            continue;
        }
        read.push((features_of(&normalized), label));
        // Padded copies of an example: the same search with everyday words added before or
        // after it, so the words of ordinary searches do not learn to cancel a theme.
        if label.is_some() && !padding.is_empty() {
            for copy in 0..opts.padded {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let word = padding[(seed % padding.len() as u64) as usize];
                let query = if copy % 2 == 0 {
                    format!("{} {word}", s.query)
                } else {
                    format!("{word} {}", s.query)
                };
                read.push((features_of(&normalize(&query)), label));
                padded_copies += 1;
            }
        }
    }
    // Features seen in enough searches, numbered in a fixed order.
    let mut counts: BTreeMap<&Feature, usize> = BTreeMap::new();
    for (features, _) in &read {
        for f in features {
            *counts.entry(f).or_default() += 1;
        }
    }
    let vocabulary: Vec<Feature> = counts
        .into_iter()
        .filter(|&(_, n)| n >= opts.min_count)
        .map(|(f, _)| f.clone())
        .collect();
    let index: BTreeMap<&Feature, u32> = vocabulary
        .iter()
        .enumerate()
        .map(|(i, f)| (f, i as u32))
        .collect();
    let examples: Vec<(Vec<u32>, Option<usize>)> = read
        .iter()
        .map(|(features, label)| {
            (
                features
                    .iter()
                    .filter_map(|f| index.get(f).copied())
                    .collect(),
                *label,
            )
        })
        .collect();
    let mut text = String::new();
    for line in about.lines() {
        let _ = writeln!(text, "# {line}");
    }
    let _ = writeln!(
        text,
        "# {} searches and {} padded copies, {} features, {} passes, L1 {}, L2 {}, features in at least {} searches.\n# Columns: bias|threshold THEME VALUE, or KIND FEATURE THEME WEIGHT (kind word, pair, start or class; features as normalised).",
        examples.len() - padded_copies,
        padded_copies,
        vocabulary.len(),
        opts.epochs,
        opts.l1,
        opts.l2,
        opts.min_count
    );
    let mut weights = 0;
    for (t, name) in themes.iter().enumerate() {
        if !examples.iter().any(|(_, l)| *l == Some(t)) {
            continue;
        }
        let (bias, w) = fit(&examples, t, vocabulary.len(), opts);
        let mut kept: Vec<(usize, f32)> = w
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, v)| v.abs() >= opts.prune)
            .collect();
        kept.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let _ = writeln!(text, "# --- {name}");
        let _ = writeln!(text, "bias\t{name}\t{bias:.3}");
        if opts.threshold != 0.0 {
            let _ = writeln!(text, "threshold\t{name}\t{:.3}", opts.threshold);
        }
        for (f, v) in kept {
            let (kind, feature) = &vocabulary[f];
            let _ = writeln!(text, "{}\t{feature}\t{name}\t{v:.3}", kind.name());
            weights += 1;
        }
    }
    Trained {
        text,
        searches: examples.len() - padded_copies,
        features: vocabulary.len(),
        weights,
        unknown_theme,
        held_out: left_out,
    }
}

/// One theme's logistic model, learned by FTRL-Proximal (per-feature adaptive steps with
/// L1 and L2 penalties: most features get no weight for a theme at all), the searches
/// visited in a fixed pseudo-random order each pass.
fn fit(
    examples: &[(Vec<u32>, Option<usize>)],
    theme: usize,
    features: usize,
    opts: &Options,
) -> (f32, Vec<f32>) {
    const BETA: f64 = 1.0;
    // Per feature (the last slot is the bias, which has no penalty).
    let mut z = vec![0f64; features + 1];
    let mut n = vec![0f64; features + 1];
    let weight = |z: f64, n: f64, l1: f64, l2: f64| -> f64 {
        if z.abs() <= l1 {
            0.0
        } else {
            -(z - l1 * z.signum()) / ((BETA + n.sqrt()) / f64::from(opts.rate) + l2)
        }
    };
    let (l1, l2) = (f64::from(opts.l1), f64::from(opts.l2));
    let bias = features;
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ theme as u64;
    let mut w: Vec<f64> = Vec::new();
    for _ in 0..opts.epochs {
        // Fisher-Yates with xorshift: the same order on every machine.
        for i in (1..order.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        for &e in &order {
            let (fs, label) = &examples[e];
            let y = if *label == Some(theme) { 1.0 } else { 0.0 };
            w.clear();
            w.push(weight(z[bias], n[bias], 0.0, 0.0));
            w.extend(
                fs.iter()
                    .map(|&f| weight(z[f as usize], n[f as usize], l1, l2)),
            );
            let score: f64 = w.iter().sum();
            let g = 1.0 / (1.0 + (-score).exp()) - y;
            for (i, &wi) in std::iter::once(bias)
                .chain(fs.iter().map(|&f| f as usize))
                .zip(&w)
            {
                let sigma = ((n[i] + g * g).sqrt() - n[i].sqrt()) / f64::from(opts.rate);
                z[i] += g - sigma * wi;
                n[i] += g * g;
            }
        }
    }
    let out = (0..features)
        .map(|f| weight(z[f], n[f], l1, l2) as f32)
        .collect();
    (weight(z[bias], n[bias], 0.0, 0.0) as f32, out)
}
