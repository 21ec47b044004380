//! Host names as the indexes see them: normalised, and hashed suffix by suffix.
//!
//! A list entry `example.com` matches `example.com` and every name below it. Instead of a
//! trie, Gatehouse hashes every suffix that starts at a label boundary (`a.b.example.com`,
//! `b.example.com`, `example.com`, `com`) and looks each one up in a flat hash table, as
//! Brave's adblock engine does. The hash runs right to left, so one pass over the name yields
//! every suffix hash: no allocation, no second pass.
//!
//! Normalisation makes every spelling of a host meet one form: ASCII lower case, no trailing
//! dot, internationalised names in their punycode (`xn--`) form, IPv4 addresses in dotted
//! decimal (so `0x7f.1` is `127.0.0.1`), IPv6 addresses in their canonical text form.

use std::net::{Ipv4Addr, Ipv6Addr};

use std::borrow::Cow;

/// The longest host name handled (RFC 1035).
pub const MAX_HOST_LEN: usize = 253;
/// The deepest suffix considered: names with more labels match on their last 16 only (the
/// registrable part and everything near it, where list entries are).
pub const MAX_LABELS: usize = 16;

/// What a normalised host is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKind {
    Name,
    Ipv4,
    Ipv6,
}

/// A normalised host. Borrows the input when it is already normal (lower-case ASCII, the
/// common case on the request path), so parsing it allocates nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host<'a> {
    name: Cow<'a, str>,
    kind: HostKind,
}

impl<'a> Host<'a> {
    /// Normalises a host as it appears in a URL, a `Host` header, a CONNECT line or a list.
    /// Returns `None` for something that cannot be a host.
    pub fn parse(raw: &'a str) -> Option<Host<'a>> {
        let mut raw = raw;
        while let Some(r) = raw.strip_suffix('.') {
            raw = r;
        }
        if raw.is_empty() || raw.len() > MAX_HOST_LEN + 2 {
            return None;
        }
        // The common case, a plain ASCII name, in one pass; the rest falls through.
        if let Some(host) = Host::from_ascii(raw) {
            return Some(host);
        }
        if let Some(inner) = raw.strip_prefix('[') {
            let inner = inner.strip_suffix(']')?;
            let ip: Ipv6Addr = inner.parse().ok()?;
            return Some(Host::from_ip6(ip));
        }
        if raw.bytes().any(|b| b == b':') {
            let ip: Ipv6Addr = raw.parse().ok()?;
            return Some(Host::from_ip6(ip));
        }
        if raw.is_ascii() {
            return None;
        }
        let ascii = idna::domain_to_ascii(raw).ok()?;
        let host = Host::from_ascii(ascii.trim_end_matches('.'))?;
        Some(host.into_owned())
    }

    /// Checks an ASCII name in one pass: letters, digits, `-`, `_`; labels of 1 to 63 bytes.
    fn from_ascii(raw: &'a str) -> Option<Host<'a>> {
        let bytes = raw.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_HOST_LEN {
            return None;
        }
        let mut seen = 0u8;
        let mut label = 0usize;
        for &b in bytes {
            let class = BYTE_CLASS[b as usize];
            seen |= class;
            if b == b'.' {
                if label == 0 {
                    return None;
                }
                label = 0;
            } else {
                label += 1;
                if label > 63 {
                    return None;
                }
            }
        }
        if label == 0 || seen & INVALID != 0 {
            return None;
        }
        let name = if seen & UPPER != 0 {
            Cow::Owned(raw.to_ascii_lowercase())
        } else {
            Cow::Borrowed(raw)
        };
        if seen & NOT_NUMERIC == 0 && looks_numeric(name.as_bytes()) {
            if let Some(ip) = parse_ipv4_forms(&name) {
                return Some(Host::from_ip4(ip));
            }
        }
        Some(Host {
            name,
            kind: HostKind::Name,
        })
    }

    fn from_ip4(ip: Ipv4Addr) -> Host<'static> {
        Host {
            name: Cow::Owned(ip.to_string()),
            kind: HostKind::Ipv4,
        }
    }

    fn from_ip6(ip: Ipv6Addr) -> Host<'static> {
        match ip.to_ipv4_mapped() {
            Some(v4) => Host::from_ip4(v4),
            None => Host {
                name: Cow::Owned(ip.to_string()),
                kind: HostKind::Ipv6,
            },
        }
    }

    /// The same host, owning its text.
    pub fn into_owned(self) -> Host<'static> {
        Host {
            name: Cow::Owned(self.name.into_owned()),
            kind: self.kind,
        }
    }

    /// The normalised text, borrowed from the input where possible.
    pub fn into_cow(self) -> Cow<'a, str> {
        self.name
    }
    /// The normalised text, borrowed from the input where possible.
    pub fn as_cow(&self) -> &Cow<'a, str> {
        &self.name
    }
    pub fn as_str(&self) -> &str {
        &self.name
    }
    pub fn as_bytes(&self) -> &[u8] {
        self.name.as_bytes()
    }
    pub fn kind(&self) -> HostKind {
        self.kind
    }
    pub fn is_ip(&self) -> bool {
        self.kind != HostKind::Name
    }

    /// The hashes of every suffix of this host that starts at a label boundary, shortest
    /// first. An IP address has one: itself.
    pub fn suffixes(&self) -> Suffixes {
        if self.is_ip() {
            let mut s = Suffixes::default();
            s.push(name_hash(self.as_bytes()), 0);
            return s;
        }
        suffix_hashes(self.as_bytes())
    }
}

const INVALID: u8 = 1;
const UPPER: u8 = 2;
const NOT_NUMERIC: u8 = 4;

/// What each byte means in a host name: invalid, upper case, or impossible in the numeric
/// forms of an IPv4 address (which use digits, `.`, `x` and hex letters).
static BYTE_CLASS: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = match c {
            b'0'..=b'9' | b'.' | b'a'..=b'f' | b'x' => 0,
            b'A'..=b'F' | b'X' => UPPER,
            b'g'..=b'w' | b'y' | b'z' | b'-' | b'_' => NOT_NUMERIC,
            b'G'..=b'W' | b'Y' | b'Z' => UPPER | NOT_NUMERIC,
            _ => INVALID,
        };
        b += 1;
    }
    table
};

/// True when every label is made of digits, or is a `0x` hex number: a host the URL standard
/// reads as an IPv4 address.
fn looks_numeric(bytes: &[u8]) -> bool {
    bytes.split(|&b| b == b'.').all(|label| {
        !label.is_empty()
            && (label.iter().all(u8::is_ascii_digit)
                || (label.len() > 2
                    && label[0] == b'0'
                    && label[1] == b'x'
                    && label[2..].iter().all(u8::is_ascii_hexdigit)))
    })
}

/// Parses the IPv4 forms browsers accept: `1.2.3.4`, `0x7f.1`, `2130706433`, `0177.0.0.1`.
fn parse_ipv4_forms(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut nums = [0u64; 4];
    for (n, part) in nums.iter_mut().zip(&parts) {
        *n = if let Some(hex) = part.strip_prefix("0x") {
            u64::from_str_radix(hex, 16).ok()?
        } else if part.len() > 1 && part.starts_with('0') {
            u64::from_str_radix(&part[1..], 8).ok()?
        } else {
            part.parse().ok()?
        };
    }
    let count = parts.len();
    let (head, last) = (&nums[..count - 1], nums[count - 1]);
    if head.iter().any(|&n| n > 255) || last >= 1u64 << (8 * (5 - count)) {
        return None;
    }
    let mut value = last;
    for (i, &n) in head.iter().enumerate() {
        value |= n << (8 * (3 - i));
    }
    Some(Ipv4Addr::from(u32::try_from(value).ok()?))
}

/// Suffix hashes of one host, shortest suffix first, with the byte offset where each starts.
#[derive(Clone, Debug, Default)]
pub struct Suffixes {
    hashes: [u64; MAX_LABELS],
    starts: [u8; MAX_LABELS],
    len: usize,
}

impl Suffixes {
    #[inline]
    fn push(&mut self, hash: u64, start: usize) {
        if self.len < MAX_LABELS {
            self.hashes[self.len] = hash;
            self.starts[self.len] = start as u8;
            self.len += 1;
        }
    }
    /// `(hash, start offset)`, shortest suffix first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (u64, usize)> + '_ {
        self.hashes[..self.len]
            .iter()
            .zip(&self.starts[..self.len])
            .map(|(&h, &s)| (h, s as usize))
    }
    /// The hashes alone, shortest suffix first.
    pub fn hashes(&self) -> &[u64] {
        &self.hashes[..self.len]
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[inline]
fn finish(h: u64, len: usize) -> u64 {
    // murmur3's fmix64: spreads the FNV state over all 64 bits.
    let mut h = h ^ (len as u64);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    // 0 marks an empty slot in the indexes.
    h.max(1)
}

/// Hashes a whole name (already normalised) the same way [`suffix_hashes`] hashes a suffix.
#[inline]
pub fn name_hash(name: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in name.iter().rev() {
        h = (h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }
    finish(h, name.len())
}

/// Every label-boundary suffix of a normalised name, hashed in one right-to-left pass.
#[inline]
pub fn suffix_hashes(name: &[u8]) -> Suffixes {
    let mut out = Suffixes::default();
    let mut h = FNV_OFFSET;
    for i in (0..name.len()).rev() {
        h = (h ^ u64::from(name[i])).wrapping_mul(FNV_PRIME);
        if i == 0 || name[i - 1] == b'.' {
            out.push(finish(h, name.len() - i), i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_hosts() {
        let cases: &[(&str, Option<&str>, HostKind)] = &[
            ("Example.COM", Some("example.com"), HostKind::Name),
            ("example.com.", Some("example.com"), HostKind::Name),
            ("münchen.de", Some("xn--mnchen-3ya.de"), HostKind::Name),
            (
                "xn--mnchen-3ya.de",
                Some("xn--mnchen-3ya.de"),
                HostKind::Name,
            ),
            (
                "BÜCHER.example",
                Some("xn--bcher-kva.example"),
                HostKind::Name,
            ),
            ("127.0.0.1", Some("127.0.0.1"), HostKind::Ipv4),
            ("0x7f.1", Some("127.0.0.1"), HostKind::Ipv4),
            ("2130706433", Some("127.0.0.1"), HostKind::Ipv4),
            ("0177.0.0.01", Some("127.0.0.1"), HostKind::Ipv4),
            ("[::1]", Some("::1"), HostKind::Ipv6),
            ("[2001:DB8::0:1]", Some("2001:db8::1"), HostKind::Ipv6),
            ("[::ffff:10.0.0.1]", Some("10.0.0.1"), HostKind::Ipv4),
            ("999.1.1.1", Some("999.1.1.1"), HostKind::Name),
            (
                "under_score.example",
                Some("under_score.example"),
                HostKind::Name,
            ),
            ("", None, HostKind::Name),
            ("a..b", None, HostKind::Name),
            (".a.b", None, HostKind::Name),
            ("a b.com", None, HostKind::Name),
            ("evil.com/path", None, HostKind::Name),
            ("trailing.", Some("trailing"), HostKind::Name),
            ("a.-b.c", Some("a.-b.c"), HostKind::Name),
            ("DEADBEEF", Some("deadbeef"), HostKind::Name),
            ("0xdeadbeef", Some("222.173.190.239"), HostKind::Ipv4),
            ("[not-ip]", None, HostKind::Name),
        ];
        for (raw, want, kind) in cases {
            let got = Host::parse(raw);
            assert_eq!(got.as_ref().map(Host::as_str), *want, "{raw}");
            if let Some(h) = got {
                assert_eq!(h.kind(), *kind, "{raw}");
            }
        }
    }

    #[test]
    fn too_long_labels_and_names_are_refused() {
        let label = "a".repeat(64);
        assert!(Host::parse(&format!("{label}.com")).is_none());
        let long = vec!["abcdefghi"; 30].join(".");
        assert!(Host::parse(&long).is_none());
        let upper = Host::parse("UPPER.example").unwrap();
        assert_eq!(upper.as_str(), "upper.example");
        assert!(matches!(
            Host::parse("lower.example").unwrap().as_cow(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn suffix_hashes_equal_name_hashes() {
        let name = b"a.bb.example.co.uk";
        let s = suffix_hashes(name);
        let want: Vec<u64> = [
            "uk",
            "co.uk",
            "example.co.uk",
            "bb.example.co.uk",
            "a.bb.example.co.uk",
        ]
        .iter()
        .map(|n| name_hash(n.as_bytes()))
        .collect();
        assert_eq!(s.iter().map(|(h, _)| h).collect::<Vec<_>>(), want);
        assert_eq!(
            s.iter().map(|(_, at)| at).collect::<Vec<_>>(),
            vec![16, 13, 5, 2, 0]
        );
    }

    #[test]
    fn ip_hosts_have_one_suffix() {
        let h = Host::parse("10.1.2.3").unwrap();
        assert_eq!(h.suffixes().len(), 1);
    }
}
