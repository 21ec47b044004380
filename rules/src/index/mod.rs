//! Compiled, immutable indexes over list entries.
//!
//! A [`ListIndex`] holds one purpose's entries (the category lists, or the illegal tier):
//! host names in a [`HashIndex`], URL prefixes grouped by host, and a bounded set of regular
//! expressions. Values are ids into a table of distinct category sets, so a name that sits in
//! three lists costs one entry.

mod hash;
mod local;
pub mod url;

pub use hash::HashIndex;
pub use local::{LocalEntry, LocalIndex, LocalKind};
pub use url::{strip_www_label, UrlIndex, UrlIndexBuilder};

use crate::category::CategorySet;
use crate::host::Suffixes;
use aho_corasick::automaton::Automaton;
use aho_corasick::Anchored;
use std::collections::HashMap;

/// Set in a name's value when URL-list entries exist for exactly that host: only then is
/// the URL index consulted, which spares most requests a cache miss.
pub const HAS_URLS: u16 = 0x8000;

/// Interns category sets so entries can refer to them with a `u16` (below [`HAS_URLS`]).
#[derive(Debug, Default)]
pub struct CatsetInterner {
    sets: Vec<CategorySet>,
    ids: HashMap<CategorySet, u16>,
}

impl CatsetInterner {
    /// The id of `set`, adding it if new. `None` past 65,536 distinct sets.
    pub fn intern(&mut self, set: CategorySet) -> Option<u16> {
        if let Some(&id) = self.ids.get(&set) {
            return Some(id);
        }
        let id = u16::try_from(self.sets.len())
            .ok()
            .filter(|&id| id & HAS_URLS == 0)?;
        self.sets.push(set);
        self.ids.insert(set, id);
        Some(id)
    }

    /// The id of the union of two interned sets; the [`HAS_URLS`] flag of either is kept.
    pub fn union(&mut self, a: u16, b: u16) -> u16 {
        let flag = (a | b) & HAS_URLS;
        let (a, b) = (a & !HAS_URLS, b & !HAS_URLS);
        if a == b {
            return a | flag;
        }
        let set = self.get(a).union(self.get(b));
        // When the table is full, keep the first set: losing a category beats failing a load.
        self.intern(set).unwrap_or(a) | flag
    }

    pub fn get(&self, id: u16) -> CategorySet {
        self.sets
            .get((id & !HAS_URLS) as usize)
            .copied()
            .unwrap_or_default()
    }

    pub fn into_sets(self) -> Vec<CategorySet> {
        self.sets
    }
}

/// A compiled regular expression list, the category set of each pattern and where it came
/// from. Matching is case-insensitive, over the URL without scheme and port.
///
/// Running every pattern over every URL is the costliest thing `evaluate` could do, so each
/// pattern's possible prefixes are read from its syntax (`/ymsgr*\.exe` must contain `/ymsg`)
/// and all of them go into one Aho-Corasick automaton: a URL that contains none of them runs
/// no pattern at all. Patterns with no usable prefix (`^[0-9]+...`) are always run.
#[derive(Clone, Debug)]
pub struct RegexIndex {
    each: Vec<regex::Regex>,
    /// Literals of the prefiltered patterns, and which pattern each belongs to.
    prefilter: Option<aho_corasick::dfa::DFA>,
    literal_owner: Vec<usize>,
    /// Patterns without a usable prefix.
    always: Vec<usize>,
    patterns: Vec<String>,
    catsets: Vec<u16>,
    /// `file:line` of each pattern, for explanations.
    origins: Vec<String>,
}

/// The literals one of which must occur wherever `pattern` matches, if they can be found
/// and are long enough to be worth looking for.
fn required_prefixes(pattern: &str) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let mut extractor = Extractor::new();
    extractor.kind(ExtractKind::Prefix).limit_total(64);
    let seq = extractor.extract(&hir);
    let literals = seq.literals()?;
    let useful = !literals.is_empty() && literals.iter().all(|l| l.as_bytes().len() >= 3);
    useful.then(|| {
        literals
            .iter()
            .map(|l| l.as_bytes().to_ascii_lowercase())
            .collect()
    })
}

impl RegexIndex {
    /// Compiles `(pattern, catset id, origin)` triples.
    pub fn build(entries: Vec<(String, u16, String)>) -> Result<RegexIndex, regex::Error> {
        // A leading `.*` changes nothing for an unanchored match on one line, and would hide
        // the pattern's literals.
        let patterns: Vec<String> = entries
            .iter()
            .map(|(p, _, _)| p.trim_start_matches(".*").to_owned())
            .collect();
        let each = patterns
            .iter()
            .map(|p| {
                regex::RegexBuilder::new(p)
                    .case_insensitive(true)
                    .size_limit(16 << 20)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut literals = Vec::new();
        let mut literal_owner = Vec::new();
        let mut always = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            match required_prefixes(p) {
                Some(lits) => {
                    literal_owner.extend(std::iter::repeat_n(i, lits.len()));
                    literals.extend(lits);
                }
                None => always.push(i),
            }
        }
        let prefilter = if literals.is_empty() {
            None
        } else {
            // A few dozen literals: a full DFA is small, and walking it is one table read
            // per byte of every URL.
            aho_corasick::dfa::DFA::builder()
                .ascii_case_insensitive(true)
                .match_kind(aho_corasick::MatchKind::Standard)
                .start_kind(aho_corasick::StartKind::Unanchored)
                .build(&literals)
                .ok()
        };
        if prefilter.is_none() {
            always = (0..patterns.len()).collect();
        }
        Ok(RegexIndex {
            each,
            prefilter,
            literal_owner,
            always,
            patterns: entries.iter().map(|(p, _, _)| p.clone()).collect(),
            catsets: entries.iter().map(|(_, c, _)| *c).collect(),
            origins: entries.into_iter().map(|(_, _, o)| o).collect(),
        })
    }

    /// Calls `hit(pattern index)` for every pattern that matches `text` (each once).
    #[inline]
    pub fn matches(&self, text: &str, mut hit: impl FnMut(usize)) {
        for &i in &self.always {
            if self.each.get(i).is_some_and(|rx| rx.is_match(text)) {
                hit(i);
            }
        }
        let Some(prefilter) = &self.prefilter else {
            return;
        };
        let mut tried = 0u64;
        let mut candidate = |literal: usize| {
            let Some(&i) = self.literal_owner.get(literal) else {
                return;
            };
            // Each candidate pattern runs once (patterns past 64 may run again: harmless).
            if i < 64 && tried & (1 << i) != 0 {
                return;
            }
            if i < 64 {
                tried |= 1 << i;
            }
            if self.each.get(i).is_some_and(|rx| rx.is_match(text)) {
                hit(i);
            }
        };
        // Every literal ending at each byte (overlapping matches: a state's matches are all
        // the literals that end there).
        let Ok(mut state) = prefilter.start_state(Anchored::No) else {
            return;
        };
        for &byte in text.as_bytes() {
            state = prefilter.next_state(Anchored::No, state, byte);
            if prefilter.is_match(state) {
                for k in 0..prefilter.match_len(state) {
                    candidate(prefilter.match_pattern(state, k).as_usize());
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.patterns.len()
    }
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

#[cfg(test)]
mod regex_tests {
    use super::*;

    /// The prefilter never changes the answer: every pattern is checked against the plain
    /// regex on a table of URLs.
    #[test]
    fn prefiltered_matches_equal_plain_matches() {
        let patterns = [
            r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/search\?q=[0-9]+$",
            r"(/banner/|/sponsor/|/event.ng/|/Advertisement/|adverts/)",
            r".*/ymsgr*\.exe",
            r"((google\..*/search.q=cache)|(images.google.[a-z]+/images.q=tbn)|(alltheweb.com/search.*cat=img)|(re2.mm-.yimg.com/image))",
            r"[a-z]+",
            r"casino\d",
        ];
        let texts = [
            "1.2.3.4/search?q=12",
            "example.com/BANNER/x.gif",
            "x.com/a/ymsgr.exe",
            "x.com/a/YMSG.EXE",
            "www.google.co.uk/search?q=cache:abc",
            "images.google.fr/images?q=tbn:1",
            "plain.example/",
            "alltheweb.com/search?x=1&cat=img",
            "casino7.example/",
            "CASINO7.example/",
            "12345",
            "",
        ];
        let entries: Vec<(String, u16, String)> = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| (p.to_string(), i as u16, String::new()))
            .collect();
        let index = RegexIndex::build(entries).unwrap();
        assert!(index.prefilter.is_some());
        for text in texts {
            let mut got = Vec::new();
            index.matches(text, |i| got.push(i));
            got.sort();
            let want: Vec<usize> = patterns
                .iter()
                .enumerate()
                .filter(|(_, p)| {
                    regex::RegexBuilder::new(p)
                        .case_insensitive(true)
                        .build()
                        .unwrap()
                        .is_match(text)
                })
                .map(|(i, _)| i)
                .collect();
            assert_eq!(got, want, "{text}");
        }
    }
}

/// The compiled entries of one purpose.
#[derive(Clone, Debug, Default)]
pub struct ListIndex {
    pub domains: HashIndex<u16>,
    pub urls: UrlIndex,
    pub regexes: Option<RegexIndex>,
    pub catsets: Vec<CategorySet>,
}

impl ListIndex {
    /// Every category the request is listed under: `host` and its `suffixes` from
    /// [`crate::host::Host`], `path` the part of the URL after the host (`/a/b?c`, none for a
    /// tunnel), `regex_text` the URL without scheme and port (`host/a/b?c`).
    #[inline]
    pub fn lookup(
        &self,
        host: &str,
        suffixes: &Suffixes,
        path: Option<&str>,
        regex_text: Option<&str>,
    ) -> CategorySet {
        let mut found = CategorySet::EMPTY;
        let mut has_urls = false;
        // The host itself is the last suffix, and without a leading `www.` the one before.
        let hosts_from = suffixes.len().saturating_sub(2);
        self.domains.get_each(suffixes.hashes(), |i, id| {
            found = found.union(self.catset(id));
            has_urls |= id & HAS_URLS != 0 && i >= hosts_from;
        });
        if let (Some(path), true) = (path, has_urls) {
            self.urls
                .lookup(host, path, |id, _| found = found.union(self.catset(id)));
        }
        if let (Some(rx), Some(text)) = (&self.regexes, regex_text) {
            rx.matches(text, |i| {
                if let Some(&id) = rx.catsets.get(i) {
                    found = found.union(self.catset(id));
                }
            });
        }
        found
    }

    #[inline]
    fn catset(&self, id: u16) -> CategorySet {
        self.catsets
            .get((id & !HAS_URLS) as usize)
            .copied()
            .unwrap_or_default()
    }

    /// Every entry that matches, as `(entry text, kind, categories)`, for explanations.
    pub fn matches(
        &self,
        host: &crate::host::Host,
        path: Option<&str>,
        regex_text: Option<&str>,
    ) -> Vec<(String, &'static str, CategorySet)> {
        let mut out = Vec::new();
        let suffixes = host.suffixes();
        let name = host.as_str();
        for (hash, at) in suffixes.iter().rev() {
            if let Some(id) = self.domains.get(hash) {
                out.push((
                    name.get(at..).unwrap_or("").to_owned(),
                    "domain",
                    self.catset(id),
                ));
            }
        }
        if let Some(path) = path {
            self.urls.lookup(name, path, |id, prefix| {
                out.push((
                    format!("{name}{}", String::from_utf8_lossy(prefix)),
                    "url",
                    self.catset(id),
                ));
            });
        }
        if let (Some(rx), Some(text)) = (&self.regexes, regex_text) {
            rx.matches(text, |i| {
                let origin = rx.origins.get(i).cloned().unwrap_or_default();
                let set = rx
                    .catsets
                    .get(i)
                    .map_or(CategorySet::EMPTY, |&c| self.catset(c));
                let pattern = rx.patterns.get(i).map_or("", String::as_str);
                out.push((format!("{pattern} ({origin})"), "regex", set));
            });
        }
        out
    }

    /// Number of host-name entries (distinct names).
    pub fn domain_count(&self) -> usize {
        self.domains.len()
    }

    /// True when nothing at all is listed.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty() && self.urls.is_empty() && self.regexes.is_none()
    }
}
