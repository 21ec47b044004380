//! The school's own allow and deny entries, global and per role.
//!
//! The most specific entry wins: the longest matching host, then the longest path, then a
//! role's own entry over a global one, then deny over allow. So `allow = ["docs.google.com"]`
//! opens one service under a `deny = ["google.com"]`, and a role can reopen what the school
//! closes for everyone.

use super::HashIndex;
use crate::host::{name_hash, Suffixes};
use crate::RoleId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalKind {
    Allow,
    Deny,
}

/// One entry as IT wrote it.
#[derive(Clone, Debug)]
pub struct LocalEntry {
    pub kind: LocalKind,
    /// `None` for every role.
    pub role: Option<RoleId>,
    /// Normalised host.
    pub host: String,
    /// Path prefix, `""` for the whole host.
    pub path: String,
}

impl LocalEntry {
    /// `host/path` as the entry reads.
    pub fn text(&self) -> String {
        format!("{}{}", self.host, self.path)
    }
}

/// The compiled entries.
#[derive(Clone, Debug, Default)]
pub struct LocalIndex {
    hosts: HashIndex<(u32, u32)>,
    entries: Vec<LocalEntry>,
}

impl LocalIndex {
    pub fn build(mut entries: Vec<LocalEntry>) -> LocalIndex {
        entries.sort_by_key(|e| name_hash(e.host.as_bytes()));
        let mut groups: Vec<(u64, (u32, u32))> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let h = name_hash(e.host.as_bytes());
            match groups.last_mut() {
                Some((g, (_, n))) if *g == h => *n += 1,
                _ => groups.push((h, (i as u32, 1))),
            }
        }
        LocalIndex {
            hosts: HashIndex::build(groups, |_, _| {}),
            entries,
        }
    }

    /// The entry that decides for `role`, if any; its index for [`LocalIndex::entry`].
    #[inline]
    pub fn find(&self, suffixes: &Suffixes, path: &str, role: RoleId) -> Option<u32> {
        if self.entries.is_empty() {
            return None;
        }
        for (hash, _) in suffixes.iter().rev() {
            let Some((first, count)) = self.hosts.get(hash) else {
                continue;
            };
            let mut best: Option<(u32, (usize, bool, bool))> = None;
            for i in first..first + count {
                let Some(e) = self.entries.get(i as usize) else {
                    continue;
                };
                if e.role.is_some_and(|r| r != role) || !path.starts_with(e.path.as_str()) {
                    continue;
                }
                let rank = (e.path.len(), e.role.is_some(), e.kind == LocalKind::Deny);
                if best.is_none_or(|(_, r)| rank > r) {
                    best = Some((i, rank));
                }
            }
            if let Some((i, _)) = best {
                return Some(i);
            }
        }
        None
    }

    pub fn entry(&self, id: u32) -> Option<&LocalEntry> {
        self.entries.get(id as usize)
    }

    pub fn entries(&self) -> &[LocalEntry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Host;

    fn entry(kind: LocalKind, role: Option<u8>, host: &str, path: &str) -> LocalEntry {
        LocalEntry {
            kind,
            role: role.map(RoleId),
            host: host.into(),
            path: path.into(),
        }
    }

    #[test]
    fn most_specific_wins() {
        use LocalKind::*;
        let idx = LocalIndex::build(vec![
            entry(Deny, None, "google.com", ""),
            entry(Allow, None, "docs.google.com", ""),
            entry(Allow, Some(1), "google.com", ""),
            entry(Deny, None, "example.org", ""),
            entry(Allow, None, "example.org", "/ok"),
            entry(Allow, None, "both.example", ""),
            entry(Deny, None, "both.example", ""),
        ]);
        let decide = |host: &str, path: &str, role: u8| {
            idx.find(&Host::parse(host).unwrap().suffixes(), path, RoleId(role))
                .and_then(|i| idx.entry(i))
                .map(|e| (e.kind, e.text()))
        };
        assert_eq!(
            decide("mail.google.com", "/", 0),
            Some((Deny, "google.com".into()))
        );
        assert_eq!(
            decide("docs.google.com", "/d", 0),
            Some((Allow, "docs.google.com".into()))
        );
        assert_eq!(
            decide("mail.google.com", "/", 1),
            Some((Allow, "google.com".into()))
        );
        assert_eq!(
            decide("example.org", "/ok/page", 0),
            Some((Allow, "example.org/ok".into()))
        );
        assert_eq!(
            decide("example.org", "/other", 0),
            Some((Deny, "example.org".into()))
        );
        assert_eq!(
            decide("both.example", "/", 0),
            Some((Deny, "both.example".into()))
        );
        assert_eq!(decide("unrelated.net", "/", 0), None);
    }
}
