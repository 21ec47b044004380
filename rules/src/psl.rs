//! The Public Suffix List: which names are suffixes under which anyone can register
//! (`com`, `co.uk`, `github.io`), and so the registrable domain of a host.
//!
//! Gatehouse uses it at load time to refuse list entries that are ICANN public suffixes
//! (a line `co.uk` in a blocklist would block every British site), and to name the
//! registrable domain of a host in reports.

use std::collections::HashMap;

/// The rules that exist for one name (a name can have a normal and a wildcard rule).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Rules {
    normal: bool,
    wildcard: bool,
    exception: bool,
    icann: bool,
}

/// A parsed list.
#[derive(Clone, Debug, Default)]
pub struct PublicSuffixList {
    /// Keyed by the rule's name in ASCII (`*.` and `!` removed).
    rules: HashMap<String, Rules, foldhash::fast::RandomState>,
}

impl PublicSuffixList {
    /// Parses the list's text (`public_suffix_list.dat`).
    pub fn parse(text: &str) -> PublicSuffixList {
        let mut rules = HashMap::default();
        let mut icann = true;
        for line in text.lines() {
            let line = line.trim();
            if line.contains("===BEGIN PRIVATE DOMAINS===") {
                icann = false;
            }
            let Some(rule) = line.split_whitespace().next() else {
                continue;
            };
            if rule.starts_with("//") {
                continue;
            }
            let (name, exception, wildcard) = if let Some(n) = rule.strip_prefix('!') {
                (n, true, false)
            } else if let Some(n) = rule.strip_prefix("*.") {
                (n, false, true)
            } else {
                (rule, false, false)
            };
            let Ok(ascii) = idna::domain_to_ascii(name) else {
                continue;
            };
            let entry: &mut Rules = rules.entry(ascii).or_default();
            entry.exception |= exception;
            entry.wildcard |= wildcard;
            entry.normal |= !exception && !wildcard;
            entry.icann = icann;
        }
        PublicSuffixList { rules }
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The number of labels of the public suffix of `ascii` (a normalised ASCII name), and
    /// whether the deciding rule is in the ICANN section.
    fn suffix_labels(&self, ascii: &str) -> (usize, bool) {
        let labels: Vec<&str> = ascii.split('.').collect();
        let mut best = (1, true);
        for k in 1..=labels.len() {
            let candidate = labels[labels.len() - k..].join(".");
            let Some(r) = self.rules.get(&candidate) else {
                continue;
            };
            if r.exception {
                return (k - 1, r.icann);
            }
            if r.normal {
                best = best.max((k, r.icann));
            }
            if r.wildcard && k < labels.len() {
                best = best.max((k + 1, r.icann));
            }
        }
        best
    }

    /// The registrable domain (public suffix plus one label) of a host, in the form the host
    /// was given (Unicode in, Unicode out). `None` when the host is itself a suffix.
    pub fn registrable_domain(&self, host: &str) -> Option<String> {
        if host.starts_with('.') || host.is_empty() {
            return None;
        }
        let lower = host.to_lowercase();
        let ascii = idna::domain_to_ascii(&lower).ok()?;
        let (suffix, _) = self.suffix_labels(&ascii);
        let labels: Vec<&str> = lower.split('.').collect();
        if labels.len() <= suffix {
            return None;
        }
        Some(labels[labels.len() - suffix - 1..].join("."))
    }

    /// True when `ascii` is exactly an ICANN public suffix with an explicit rule (`co.uk`,
    /// `com`), the entries a blocklist must not hold.
    pub fn is_icann_suffix(&self, ascii: &str) -> bool {
        match self.rules.get(ascii) {
            Some(r) if r.normal && r.icann => {}
            _ => return false,
        }
        let (labels, icann) = self.suffix_labels(ascii);
        icann && labels == ascii.split('.').count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> PublicSuffixList {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../lists/psl/public_suffix_list.dat"
        ))
        .unwrap();
        PublicSuffixList::parse(&text)
    }

    /// The official `checkPublicSuffix(input, expected)` vectors.
    #[test]
    fn official_test_vectors() {
        let psl = list();
        let vectors = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/psl/test_psl.txt"
        ))
        .unwrap();
        let arg = |s: &str| -> Option<String> {
            let s = s.trim();
            (s != "null").then(|| s.trim_matches('\'').to_owned())
        };
        let mut checked = 0;
        for line in vectors.lines() {
            let Some(inner) = line.trim().strip_prefix("checkPublicSuffix(") else {
                continue;
            };
            let inner = inner.trim_end_matches(");");
            let (input, expected) = inner.split_once(',').unwrap();
            let got = arg(input).and_then(|i| psl.registrable_domain(&i));
            assert_eq!(got, arg(expected), "{line}");
            checked += 1;
        }
        assert!(checked >= 70, "only {checked} vectors read");
    }

    #[test]
    fn icann_suffixes() {
        let psl = list();
        assert!(psl.is_icann_suffix("co.uk"));
        assert!(psl.is_icann_suffix("com"));
        assert!(!psl.is_icann_suffix("example.co.uk"));
        assert!(!psl.is_icann_suffix("github.io"), "private section");
        assert!(!psl.is_icann_suffix("unknowntld"));
    }
}
