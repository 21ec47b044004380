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

/// The longest host name handled (RFC 1035).
pub const MAX_HOST_LEN: usize = 253;
/// The deepest suffix considered: names with more labels match on their last 32 only.
pub const MAX_LABELS: usize = 32;

/// What a normalised host is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKind {
    Name,
    Ipv4,
    Ipv6,
}

/// A normalised host held on the stack.
#[derive(Clone)]
pub struct Host {
    buf: [u8; MAX_HOST_LEN + 1],
    len: usize,
    kind: HostKind,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Host")
            .field(&self.as_str())
            .field(&self.kind)
            .finish()
    }
}

impl Host {
    /// Normalises a host as it appears in a URL, a `Host` header, a CONNECT line or a list.
    /// Returns `None` for something that cannot be a host.
    pub fn parse(raw: &str) -> Option<Host> {
        let raw = raw.trim_end_matches('.');
        if raw.is_empty() || raw.len() > MAX_HOST_LEN + 2 {
            return None;
        }
        if let Some(inner) = raw.strip_prefix('[') {
            let inner = inner.strip_suffix(']')?;
            let ip: Ipv6Addr = inner.parse().ok()?;
            return Some(Host::from_ip6(ip));
        }
        if raw.contains(':') {
            let ip: Ipv6Addr = raw.parse().ok()?;
            return Some(Host::from_ip6(ip));
        }
        if !raw.is_ascii() {
            let ascii = idna::domain_to_ascii(raw).ok()?;
            return Host::from_ascii(ascii.trim_end_matches('.'));
        }
        Host::from_ascii(raw)
    }

    fn from_ascii(raw: &str) -> Option<Host> {
        if raw.is_empty() || raw.len() > MAX_HOST_LEN {
            return None;
        }
        let mut host = Host {
            buf: [0; MAX_HOST_LEN + 1],
            len: raw.len(),
            kind: HostKind::Name,
        };
        for (slot, b) in host.buf.iter_mut().zip(raw.bytes()) {
            let b = b.to_ascii_lowercase();
            if !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') {
                return None;
            }
            *slot = b;
        }
        let bytes = &host.buf[..host.len];
        if bytes.starts_with(b".") || bytes.windows(2).any(|w| w == b"..") {
            return None;
        }
        if bytes.split(|&b| b == b'.').any(|label| label.len() > 63) {
            return None;
        }
        if looks_numeric(bytes) {
            if let Some(ip) = parse_ipv4_forms(host.as_str()) {
                return Some(Host::from_ip4(ip));
            }
        }
        Some(host)
    }

    fn from_ip4(ip: Ipv4Addr) -> Host {
        Host::from_formatted(format_args!("{ip}"), HostKind::Ipv4)
    }

    fn from_ip6(ip: Ipv6Addr) -> Host {
        match ip.to_ipv4_mapped() {
            Some(v4) => Host::from_ip4(v4),
            None => Host::from_formatted(format_args!("{ip}"), HostKind::Ipv6),
        }
    }

    fn from_formatted(args: std::fmt::Arguments<'_>, kind: HostKind) -> Host {
        use std::io::Write;
        let mut host = Host {
            buf: [0; MAX_HOST_LEN + 1],
            len: 0,
            kind,
        };
        let mut cursor = std::io::Cursor::new(&mut host.buf[..]);
        // An IP address always fits in 254 bytes, so the write cannot fail.
        let _ = cursor.write_fmt(args);
        host.len = cursor.position() as usize;
        host
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever written into `buf`.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
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
#[derive(Clone, Debug)]
pub struct Suffixes {
    items: [(u64, u8); MAX_LABELS],
    len: usize,
}

impl Default for Suffixes {
    fn default() -> Self {
        Suffixes {
            items: [(0, 0); MAX_LABELS],
            len: 0,
        }
    }
}

impl Suffixes {
    fn push(&mut self, hash: u64, start: usize) {
        if self.len < MAX_LABELS {
            self.items[self.len] = (hash, start as u8);
            self.len += 1;
        }
    }
    /// `(hash, start offset)`, shortest suffix first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (u64, usize)> + '_ {
        self.items[..self.len].iter().map(|&(h, s)| (h, s as usize))
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
