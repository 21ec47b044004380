//! URL prefix entries (`host/path`), grouped by host.
//!
//! The rules follow squidGuard's, which UT1's `urls` files are written for: an entry names
//! one host exactly (a leading `www`, `www2`, `web1`, `ftp`... label on the request is
//! ignored, and so is the port), and matches every path and query that starts with the
//! entry's, compared without case, with percent escapes decoded and runs of `/` read as one
//! (so `//casino/` and `/c%61sino/` cannot slip past `/casino/`). The prefix is plain text:
//! `/casino/` does not match `/casino`, and `/privacy` matches `/privacyX`.

use super::HashIndex;
use crate::host::name_hash;

/// The longest URL-list path kept (normalised bytes); longer entries are refused at load.
pub const MAX_PREFIX_LEN: usize = 1024;

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
    arena: Vec<u8>,
}

impl UrlIndex {
    /// Calls `hit(catset id, prefix)` for every entry of `host` (a normalised name) whose
    /// prefix starts `path_and_query`.
    ///
    /// A host's prefixes are sorted, so the ones that start the path are found by a short
    /// chain of binary searches rather than a scan: hosts with thousands of listed URLs
    /// (shared hosting, cloud storage) cost the same as hosts with one.
    #[inline]
    pub fn lookup(&self, host: &str, path_and_query: &str, mut hit: impl FnMut(u16, &[u8])) {
        if self.prefixes.is_empty() {
            return;
        }
        let mut normalized = [0u8; MAX_PREFIX_LEN];
        let mut len = None;
        let stripped = strip_www_label(host);
        for candidate in [Some(host), stripped].into_iter().flatten() {
            let Some((first, count)) = self.hosts.get(name_hash(candidate.as_bytes())) else {
                continue;
            };
            let group = self
                .prefixes
                .get(first as usize..(first + count) as usize)
                .unwrap_or_default();
            let n = *len.get_or_insert_with(|| {
                let mut n = 0;
                for (slot, b) in normalized
                    .iter_mut()
                    .zip(NormalizedPath::new(path_and_query.as_bytes()))
                {
                    *slot = b;
                    n += 1;
                }
                n
            });
            self.prefixes_of(group, &normalized[..n], &mut hit);
        }
    }

    fn prefix_text(&self, p: &Prefix) -> &[u8] {
        self.arena
            .get(p.start as usize..(p.start + p.len) as usize)
            .unwrap_or_default()
    }

    /// Every prefix in `group` (sorted) that starts `path` (normalised).
    fn prefixes_of(&self, group: &[Prefix], path: &[u8], hit: &mut impl FnMut(u16, &[u8])) {
        let mut end = group.len();
        let mut target = path;
        loop {
            end = group[..end].partition_point(|p| self.prefix_text(p) <= target);
            let Some(last) = end.checked_sub(1).and_then(|i| group.get(i)) else {
                return;
            };
            let text = self.prefix_text(last);
            // Any other prefix of the path sorts before `last` and is a prefix of what the
            // path and `last` have in common (or of `last` itself, without its final byte).
            let common = if path.starts_with(text) {
                hit(last.catset, text);
                text.len().saturating_sub(1)
            } else {
                text.iter().zip(path).take_while(|(a, b)| a == b).count()
            };
            target = &path[..common.min(path.len())];
            end -= 1;
            if text.is_empty() {
                return;
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
    entries: Vec<(u64, Vec<u8>, u16)>,
}

impl UrlIndexBuilder {
    /// Adds an entry; `false` (and nothing added) when its path is longer than
    /// [`MAX_PREFIX_LEN`] once normalised.
    pub fn add(&mut self, host: &str, path: &str, catset: u16) -> bool {
        let host = strip_www_label(host).unwrap_or(host);
        let path: Vec<u8> = NormalizedPath::new(path.as_bytes()).collect();
        if path.len() > MAX_PREFIX_LEN {
            return false;
        }
        self.entries
            .push((name_hash(host.as_bytes()), path, catset));
        true
    }

    /// The hash of every host that has entries.
    pub fn host_hashes(&self) -> impl Iterator<Item = u64> + '_ {
        self.entries.iter().map(|e| e.0)
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
            index.arena.extend_from_slice(&path);
        }
        index.hosts = HashIndex::build(groups, |_, _| {});
        index
    }
}

/// The name without its first label when that label is `www`, `web` or `ftp` with optional
/// digits (`www2.example.com` -> `example.com`), as squidGuard reads URLs.
pub fn strip_www_label(host: &str) -> Option<&str> {
    let (first, rest) = host.split_once('.')?;
    let letters = first.trim_end_matches(|c: char| c.is_ascii_digit());
    (matches!(letters, "www" | "web" | "ftp") && rest.contains('.')).then_some(rest)
}

/// The bytes of a path as they are compared: percent escapes decoded, ASCII lower case,
/// runs of `/` read as one.
struct NormalizedPath<'a> {
    bytes: &'a [u8],
    at: usize,
    last_was_slash: bool,
}

impl<'a> NormalizedPath<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        NormalizedPath {
            bytes,
            at: 0,
            last_was_slash: false,
        }
    }
}

impl Iterator for NormalizedPath<'_> {
    type Item = u8;
    #[inline]
    fn next(&mut self) -> Option<u8> {
        loop {
            let mut b = *self.bytes.get(self.at)?;
            self.at += 1;
            if b == b'%' {
                let hex = |i: usize| self.bytes.get(i).and_then(|&c| (c as char).to_digit(16));
                if let (Some(h), Some(l)) = (hex(self.at), hex(self.at + 1)) {
                    b = (h * 16 + l) as u8;
                    self.at += 2;
                }
            }
            let b = b.to_ascii_lowercase();
            if b == b'/' && self.last_was_slash {
                continue;
            }
            self.last_was_slash = b == b'/';
            return Some(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_like_squidguard() {
        let mut b = UrlIndexBuilder::default();
        b.add("example.com", "/casino/", 1);
        b.add("example.com", "/privacy", 2);
        b.add("other.org", "/x", 4);
        b.add("other.org", "/x", 8);
        b.add("www.listed.example", "/p", 16);
        for i in 0..500 {
            b.add("crowded.example", &format!("/page{i}/"), 32);
        }
        b.add("crowded.example", "/page1", 64);
        b.add("crowded.example", "", 128);
        assert!(!b.add("long.example", &"/x".repeat(600), 1));
        let idx = b.build(|a, b| a | b);
        let hits = |host: &str, path: &str| {
            let mut got = 0;
            idx.lookup(host, path, |c, _| got |= c);
            got
        };
        let cases: &[(&str, &str, u16)] = &[
            ("example.com", "/casino/", 1),
            ("example.com", "/casino/page?q=1", 1),
            ("example.com", "/casino", 0),
            ("example.com", "/CASINO/", 1),
            ("example.com", "//casino/", 1),
            ("example.com", "/c%61sino/", 1),
            ("www.example.com", "/casino/", 1),
            ("www2.example.com", "/casino/", 1),
            ("ftp.example.com", "/casino/", 1),
            ("sub.example.com", "/casino/", 0),
            ("www.www.example.com", "/casino/", 0),
            ("example.com", "/privacyX", 2),
            ("other.org", "/x/y", 12),
            ("notother.org", "/x", 0),
            ("listed.example", "/p", 16),
            ("www.listed.example", "/p", 16),
            ("crowded.example", "/page1/", 32 | 64 | 128),
            ("crowded.example", "/page10/x", 32 | 64 | 128),
            ("crowded.example", "/page1x", 64 | 128),
            ("crowded.example", "/page499/", 32 | 128),
            ("crowded.example", "/other", 128),
        ];
        for (host, path, want) in cases {
            assert_eq!(hits(host, path), *want, "{host}{path}");
        }
    }

    #[test]
    fn www_labels() {
        assert_eq!(strip_www_label("www.example.com"), Some("example.com"));
        assert_eq!(strip_www_label("www12.example.com"), Some("example.com"));
        assert_eq!(strip_www_label("web.example.com"), Some("example.com"));
        assert_eq!(strip_www_label("www.com"), None);
        assert_eq!(strip_www_label("wwwx.example.com"), None);
        assert_eq!(strip_www_label("example.com"), None);
    }
}
