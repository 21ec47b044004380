//! URL prefix entries (`host/path`), grouped by host so a lookup touches only the entries of
//! the hosts the request's name falls under.

use super::HashIndex;
use crate::host::{name_hash, Suffixes};

/// One prefix: a slice of the path arena and its category set id.
#[derive(Clone, Copy, Debug, Default)]
struct Prefix {
    start: u32,
    len: u32,
    catset: u16,
}

/// The compiled URL prefixes.
#[derive(Clone, Debug, Default)]
pub struct UrlIndex {
    /// Host hash -> (first prefix, count).
    hosts: HashIndex<(u32, u32)>,
    prefixes: Vec<Prefix>,
    arena: String,
}

impl UrlIndex {
    /// Calls `hit(catset id, host suffix offset, prefix)` for every prefix that matches `path`
    /// under any of the host's suffixes. A prefix matches at a path boundary: `/a/b` matches `/a/b`,
    /// `/a/b/c` and `/a/b?x`, and also `/a/bc` (squidGuard's plain prefix rule).
    #[inline]
    pub fn lookup(&self, suffixes: &Suffixes, path: &str, mut hit: impl FnMut(u16, usize, &str)) {
        if self.prefixes.is_empty() {
            return;
        }
        for (hash, at) in suffixes.iter() {
            let Some((first, count)) = self.hosts.get(hash) else {
                continue;
            };
            let group = self
                .prefixes
                .get(first as usize..(first + count) as usize)
                .unwrap_or_default();
            for p in group {
                let prefix = self
                    .arena
                    .get(p.start as usize..(p.start + p.len) as usize)
                    .unwrap_or_default();
                if path.starts_with(prefix) {
                    hit(p.catset, at, prefix);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.prefixes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }
}

/// Collects `(host, path, catset)` entries.
#[derive(Debug, Default)]
pub struct UrlIndexBuilder {
    entries: Vec<(u64, String, u16)>,
}

impl UrlIndexBuilder {
    pub fn add(&mut self, host: &str, path: &str, catset: u16) {
        self.entries
            .push((name_hash(host.as_bytes()), path.to_owned(), catset));
    }

    /// Builds the index; the same host and path in several lists merge their categories.
    pub fn build(mut self, mut union: impl FnMut(u16, u16) -> u16) -> UrlIndex {
        self.entries
            .sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        self.entries.dedup_by(|next, kept| {
            if next.0 == kept.0 && next.1 == kept.1 {
                kept.2 = union(kept.2, next.2);
                true
            } else {
                false
            }
        });
        let mut index = UrlIndex::default();
        let mut groups: Vec<(u64, (u32, u32))> = Vec::new();
        for (host, path, catset) in self.entries {
            let at = index.prefixes.len() as u32;
            match groups.last_mut() {
                Some((h, (_, count))) if *h == host => *count += 1,
                _ => groups.push((host, (at, 1))),
            }
            index.prefixes.push(Prefix {
                start: index.arena.len() as u32,
                len: path.len() as u32,
                catset,
            });
            index.arena.push_str(&path);
        }
        index.hosts = HashIndex::build(groups, |_, _| {});
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Host;

    #[test]
    fn prefixes_match_under_host_and_subdomains() {
        let mut b = UrlIndexBuilder::default();
        b.add("example.com", "/boards/1", 1);
        b.add("example.com", "", 2);
        b.add("other.org", "/x", 3);
        b.add("example.com", "/boards/1", 4);
        let idx = b.build(|a, b| a | b);
        let hits = |host: &str, path: &str| {
            let mut got = Vec::new();
            idx.lookup(&Host::parse(host).unwrap().suffixes(), path, |c, _, _| {
                got.push(c)
            });
            got.sort();
            got
        };
        assert_eq!(hits("example.com", "/boards/1/page"), vec![2, 5]);
        assert_eq!(hits("www.example.com", "/boards/1"), vec![2, 5]);
        assert_eq!(hits("example.com", "/boards/2"), vec![2]);
        assert_eq!(hits("other.org", "/y"), Vec::<u16>::new());
        assert_eq!(hits("notother.org", "/x"), Vec::<u16>::new());
    }
}
