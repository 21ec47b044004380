//! The compiled policy: everything `evaluate` reads, immutable once built.
//!
//! A reload builds a new `Snapshot` off the hot path and swaps it in whole (see
//! [`crate::Live`]); requests in flight keep the one they started with.

use crate::category::{CategoryId, CategorySet};
use crate::index::{ListIndex, LocalIndex};
use crate::policy::{RoleId, RolePolicy};
use crate::psl::PublicSuffixList;
use crate::search::ThemeMatcher;
use ipnet::IpNet;
use std::net::IpAddr;

/// A client network and who is on it.
#[derive(Clone, Debug)]
pub struct NetworkRule {
    pub net: IpNet,
    pub role: RoleId,
    pub site: Option<String>,
    pub login: bool,
    pub signin: bool,
}

/// The compiled policy.
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) school_name: String,
    pub(crate) block_page: Option<String>,
    pub(crate) tz: chrono_tz::Tz,
    pub(crate) categories: Vec<(String, String)>,
    pub(crate) lists: ListIndex,
    pub(crate) illegal: ListIndex,
    pub(crate) local: LocalIndex,
    pub(crate) themes: ThemeMatcher,
    pub(crate) roles: Vec<RolePolicy>,
    pub(crate) networks: Vec<NetworkRule>,
    pub(crate) psl: Option<PublicSuffixList>,
    pub(crate) no_decrypt: NoDecrypt,
    pub(crate) ai: crate::ai::AiServices,
    pub(crate) accounts: crate::accounts::SchoolAccounts,
}

/// Hosts never decrypted, and every name below them (`[proxy] no_decrypt`, or the admin
/// page's list): one hash per entry, looked up suffix by suffix like the lists, and every
/// hash hit confirmed on the name itself (a name crafted to collide with `nhs.uk` must not
/// win an undecrypted tunnel).
#[derive(Clone, Debug, Default)]
pub struct NoDecrypt {
    hashes: std::collections::HashMap<u64, Vec<String>>,
    entries: Vec<String>,
}

impl NoDecrypt {
    /// Builds the set; `Err` names the first entry that is not a host.
    pub fn new(entries: &[String]) -> Result<NoDecrypt, String> {
        let mut set = NoDecrypt::default();
        for entry in entries {
            let bare = entry
                .trim()
                .trim_start_matches("*.")
                .trim_start_matches('.');
            let host = crate::host::Host::parse(bare)
                .ok_or_else(|| format!("{entry:?} is not a host name"))?;
            set.hashes
                .entry(crate::host::name_hash(host.as_bytes()))
                .or_default()
                .push(host.as_str().to_owned());
            set.entries.push(host.as_str().to_owned());
        }
        Ok(set)
    }

    /// True when `host` (normalised, with its `suffixes`) is an entry or below one.
    pub fn matches(&self, host: &str, suffixes: &crate::host::Suffixes) -> bool {
        !self.hashes.is_empty()
            && suffixes.iter().any(|(hash, start)| {
                self.hashes.get(&hash).is_some_and(|names| {
                    host.get(start..)
                        .is_some_and(|s| names.iter().any(|n| n == s))
                })
            })
    }

    pub fn entries(&self) -> &[String] {
        &self.entries
    }
}

impl Snapshot {
    /// The hosts never decrypted, as the policy in force lists them.
    /// The AI chat services recognised.
    pub fn ai_services(&self) -> &crate::ai::AiServices {
        &self.ai
    }

    /// The school's own accounts (`[accounts]`).
    pub fn school_accounts(&self) -> &crate::accounts::SchoolAccounts {
        &self.accounts
    }

    pub fn no_decrypt(&self) -> &NoDecrypt {
        &self.no_decrypt
    }

    pub fn school_name(&self) -> &str {
        &self.school_name
    }
    /// Where `gatehouse squid-helper` sends blocked requests.
    pub fn block_page(&self) -> Option<&str> {
        self.block_page.as_deref()
    }
    pub fn timezone(&self) -> chrono_tz::Tz {
        self.tz
    }

    pub fn role_id(&self, name: &str) -> Option<RoleId> {
        self.roles
            .iter()
            .position(|r| r.name == name)
            .map(|i| RoleId(i as u8))
    }
    pub fn role(&self, id: RoleId) -> Option<&RolePolicy> {
        self.roles.get(id.0 as usize)
    }
    pub fn roles(&self) -> &[RolePolicy] {
        &self.roles
    }

    pub fn category_id(&self, name: &str) -> Option<CategoryId> {
        self.categories
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| CategoryId(i as u8))
    }
    pub fn category_name(&self, id: CategoryId) -> &str {
        self.categories
            .get(id.0 as usize)
            .map_or("?", |(n, _)| n.as_str())
    }
    pub fn category_description(&self, id: CategoryId) -> &str {
        self.categories
            .get(id.0 as usize)
            .map_or("", |(_, d)| d.as_str())
    }
    pub fn category_names(&self, set: CategorySet) -> Vec<&str> {
        set.iter().map(|c| self.category_name(c)).collect()
    }
    pub fn category_count(&self) -> usize {
        self.categories.len()
    }

    pub fn themes(&self) -> &ThemeMatcher {
        &self.themes
    }
    pub fn lists(&self) -> &ListIndex {
        &self.lists
    }
    pub fn illegal(&self) -> &ListIndex {
        &self.illegal
    }
    pub fn local(&self) -> &LocalIndex {
        &self.local
    }
    pub fn public_suffixes(&self) -> Option<&PublicSuffixList> {
        self.psl.as_ref()
    }

    /// The network rule for a client address: the most specific network that holds it.
    pub fn network_of(&self, ip: IpAddr) -> Option<&NetworkRule> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.networks
            .iter()
            .filter(|n| n.net.contains(&ip))
            .max_by_key(|n| n.net.prefix_len())
    }
    pub fn networks(&self) -> &[NetworkRule] {
        &self.networks
    }
}

#[cfg(test)]
mod tests {
    use super::NoDecrypt;
    use crate::host::Host;

    #[test]
    fn no_decrypt_covers_a_name_and_everything_below_it_only() {
        let set =
            NoDecrypt::new(&["nhs.uk".into(), "*.Apple.com".into(), ".hsbc.co.uk".into()]).unwrap();
        let hit = |h: &str| {
            let host = Host::parse(h).unwrap();
            set.matches(host.as_str(), &host.suffixes())
        };
        for yes in [
            "nhs.uk",
            "www.nhs.uk",
            "a.b.nhs.uk",
            "apple.com",
            "ICLOUD.apple.com.",
            "hsbc.co.uk",
        ] {
            assert!(hit(yes), "{yes}");
        }
        for no in [
            "notnhs.uk",
            "nhs.uk.evil.example",
            "uk",
            "apple.com.au",
            "co.uk",
        ] {
            assert!(!hit(no), "{no}");
        }
        assert!(NoDecrypt::new(&["not a host".into()]).is_err());
    }
}
