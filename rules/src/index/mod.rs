//! Compiled, immutable indexes over list entries.
//!
//! A [`ListIndex`] holds one purpose's entries (the category lists, or the illegal tier):
//! host names in a [`HashIndex`], URL prefixes grouped by host, and a bounded set of regular
//! expressions. Values are ids into a table of distinct category sets, so a name that sits in
//! three lists costs one entry.

mod hash;
mod local;
mod url;

pub use hash::HashIndex;
pub use local::{LocalEntry, LocalIndex, LocalKind};
pub use url::{strip_www_label, UrlIndex, UrlIndexBuilder};

use crate::category::CategorySet;
use crate::host::Suffixes;
use std::collections::HashMap;

/// Interns category sets so entries can refer to them with a `u16`.
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
        let id = u16::try_from(self.sets.len()).ok()?;
        self.sets.push(set);
        self.ids.insert(set, id);
        Some(id)
    }

    /// The id of the union of two interned sets.
    pub fn union(&mut self, a: u16, b: u16) -> u16 {
        if a == b {
            return a;
        }
        let set = self.get(a).union(self.get(b));
        // When the table is full, keep the first set: losing a category beats failing a load.
        self.intern(set).unwrap_or(a)
    }

    pub fn get(&self, id: u16) -> CategorySet {
        self.sets.get(id as usize).copied().unwrap_or_default()
    }

    pub fn into_sets(self) -> Vec<CategorySet> {
        self.sets
    }
}

/// A compiled regular expression list: one `RegexSet`, the category set of each pattern.
#[derive(Clone, Debug)]
pub struct RegexIndex {
    pub set: regex::RegexSet,
    pub catsets: Vec<u16>,
    /// `file:line` of each pattern, for explanations.
    pub origins: Vec<String>,
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
        for (hash, _) in suffixes.iter() {
            if let Some(id) = self.domains.get(hash) {
                found = found.union(self.catset(id));
            }
        }
        if let Some(path) = path {
            self.urls
                .lookup(host, path, |id, _| found = found.union(self.catset(id)));
        }
        if let (Some(rx), Some(text)) = (&self.regexes, regex_text) {
            for i in rx.set.matches(text).iter() {
                if let Some(&id) = rx.catsets.get(i) {
                    found = found.union(self.catset(id));
                }
            }
        }
        found
    }

    #[inline]
    fn catset(&self, id: u16) -> CategorySet {
        self.catsets.get(id as usize).copied().unwrap_or_default()
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
                out.push((format!("{name}{prefix}"), "url", self.catset(id)));
            });
        }
        if let (Some(rx), Some(text)) = (&self.regexes, regex_text) {
            for i in rx.set.matches(text).iter() {
                let origin = rx.origins.get(i).cloned().unwrap_or_default();
                let set = rx
                    .catsets
                    .get(i)
                    .map_or(CategorySet::EMPTY, |&c| self.catset(c));
                out.push((
                    format!(
                        "{} ({origin})",
                        rx.set.patterns().get(i).map_or("", String::as_str)
                    ),
                    "regex",
                    set,
                ));
            }
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
