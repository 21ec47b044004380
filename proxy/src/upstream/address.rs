//! Which addresses the filter may connect to. Decided on the address itself, after every
//! name has been resolved and every pin applied, so no spelling of a host (`2130706433`,
//! `0x7f.1`, `[::ffff:127.0.0.1]`, a name the school's DNS points inward) can reach what a
//! plain `127.0.0.1` may not.

use crate::error::Refusal;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address rules in force: loopback only with the lab switch; the school's internal
/// ranges only where `[proxy] internal_allow` names them.
#[derive(Clone, Debug, Default)]
pub struct AddressRules {
    pub allow_loopback: bool,
    pub internal_allow: Vec<IpNet>,
}

impl AddressRules {
    /// `Ok` when `ip` may be reached.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        let ip = ip.to_canonical();
        match classify(ip) {
            None => Ok(()),
            Some(Refusal::Loopback) if self.allow_loopback => Ok(()),
            Some(Refusal::Internal) if self.internal_allow.iter().any(|n| n.contains(&ip)) => {
                Ok(())
            }
            Some(refusal) => Err(refusal),
        }
    }
}

/// Why `ip` is not an ordinary public address, or `None` when it is.
pub fn classify(ip: IpAddr) -> Option<Refusal> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Public addresses that answer as cloud metadata or platform services.
const METADATA_V4: [Ipv4Addr; 2] = [
    Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure, OpenStack, ...
    Ipv4Addr::new(168, 63, 129, 16),   // Azure's platform endpoint
];

fn classify_v4(ip: Ipv4Addr) -> Option<Refusal> {
    let [a, b, c, _] = ip.octets();
    if METADATA_V4.contains(&ip) || (a == 100 && b == 100 && c == 100) {
        // 100.100.100.200 is Alibaba Cloud's metadata service.
        return Some(Refusal::Metadata);
    }
    Some(match (a, b) {
        (0, _) => Refusal::Unspecified,
        (127, _) => Refusal::Loopback,
        (169, 254) => Refusal::LinkLocal,
        (10, _) | (192, 168) => Refusal::Internal,
        (172, 16..=31) => Refusal::Internal,
        (100, 64..=127) => Refusal::Internal,
        (192, 0) if c == 0 || c == 2 => Refusal::Reserved,
        (198, 18..=19) => Refusal::Reserved,
        (198, 51) if c == 100 => Refusal::Reserved,
        (203, 0) if c == 113 => Refusal::Reserved,
        (224..=255, _) => Refusal::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<Refusal> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some(Refusal::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Refusal::Loopback);
    }
    // fd00:ec2::254 is AWS's metadata service over IPv6.
    if s == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] {
        return Some(Refusal::Metadata);
    }
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    Some(match s[0] {
        0xfe80..=0xfebf => Refusal::LinkLocal,
        0xfec0..=0xfeff => Refusal::Internal,
        0xfc00..=0xfdff => Refusal::Internal,
        0xff00..=0xffff => Refusal::Reserved,
        // NAT64's well-known prefix (64:ff9b::/96): the IPv4 address it reaches decides.
        0x0064 if s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] => {
            return classify_v4(embedded(s[6], s[7]))
        }
        // 6to4 carries an IPv4 address in its second and third groups.
        0x2002 => return classify_v4(embedded(s[1], s[2])),
        // Teredo and the documentation prefix.
        0x2001 if s[1] == 0 || s[1] == 0x0db8 => Refusal::Reserved,
        // The rest of ::/8 (IPv4-compatible ::a.b.c.d, SIIT ::ffff:0:a.b.c.d, the local-use
        // NAT64 prefix 64:ff9b:1::/48 whose embedding varies) and the discard prefix 100::/64.
        0x0000..=0x00ff => Refusal::Reserved,
        0x0100 if s[1..4] == [0, 0, 0] => Refusal::Reserved,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every address form a pupil might try, with the answer under the default rules.
    #[test]
    fn internal_and_special_addresses_are_refused_by_default() {
        let cases: &[(&str, Option<Refusal>)] = &[
            ("127.0.0.1", Some(Refusal::Loopback)),
            ("127.255.255.254", Some(Refusal::Loopback)),
            ("::1", Some(Refusal::Loopback)),
            ("::ffff:127.0.0.1", Some(Refusal::Loopback)),
            ("0.0.0.0", Some(Refusal::Unspecified)),
            ("0.1.2.3", Some(Refusal::Unspecified)),
            ("::", Some(Refusal::Unspecified)),
            ("169.254.169.254", Some(Refusal::Metadata)),
            ("168.63.129.16", Some(Refusal::Metadata)),
            ("100.100.100.200", Some(Refusal::Metadata)),
            ("fd00:ec2::254", Some(Refusal::Metadata)),
            ("::ffff:169.254.169.254", Some(Refusal::Metadata)),
            ("169.254.1.1", Some(Refusal::LinkLocal)),
            ("fe80::1", Some(Refusal::LinkLocal)),
            ("10.0.0.1", Some(Refusal::Internal)),
            ("172.16.0.1", Some(Refusal::Internal)),
            ("172.31.255.255", Some(Refusal::Internal)),
            ("192.168.1.1", Some(Refusal::Internal)),
            ("100.64.0.1", Some(Refusal::Internal)),
            ("fd12:3456::1", Some(Refusal::Internal)),
            ("fec0::1", Some(Refusal::Internal)),
            ("::ffff:10.1.2.3", Some(Refusal::Internal)),
            ("64:ff9b::7f00:1", Some(Refusal::Loopback)),
            ("64:ff9b::a00:1", Some(Refusal::Internal)),
            ("2002:7f00:1::", Some(Refusal::Loopback)),
            ("2002:c0a8:101::1", Some(Refusal::Internal)),
            ("2001:0:4136:e378::1", Some(Refusal::Reserved)),
            ("::127.0.0.1", Some(Refusal::Reserved)),
            ("::ffff:0:7f00:1", Some(Refusal::Reserved)),
            ("::ffff:0:808:808", Some(Refusal::Reserved)),
            ("64:ff9b:1::7f00:1", Some(Refusal::Reserved)),
            ("64:ff9b:1:7f00:1::", Some(Refusal::Reserved)),
            ("224.0.0.1", Some(Refusal::Reserved)),
            ("255.255.255.255", Some(Refusal::Reserved)),
            ("ff02::1", Some(Refusal::Reserved)),
            ("198.18.0.1", Some(Refusal::Reserved)),
            // Public addresses pass.
            ("172.32.0.1", None),
            ("100.128.0.1", None),
            ("8.8.8.8", None),
            ("2a00:1450:4009::1", None),
            ("64:ff9b::808:808", None),
            ("2002:808:808::1", None),
        ];
        let rules = AddressRules::default();
        for (text, expected) in cases {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(rules.check(ip).err(), *expected, "{text}");
        }
    }

    #[test]
    fn the_lab_switch_opens_loopback_only_and_the_allow_list_opens_internal_ranges_only() {
        let rules = AddressRules {
            allow_loopback: true,
            internal_allow: vec![
                "10.20.0.0/16".parse().unwrap(),
                "169.254.0.0/16".parse().unwrap(),
            ],
        };
        assert_eq!(rules.check("127.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(rules.check("10.20.3.4".parse().unwrap()), Ok(()));
        assert_eq!(rules.check("::ffff:10.20.3.4".parse().unwrap()), Ok(()));
        assert_eq!(
            rules.check("10.21.3.4".parse().unwrap()),
            Err(Refusal::Internal)
        );
        // The allow-list cannot open link-local or metadata addresses.
        assert_eq!(
            rules.check("169.254.169.254".parse().unwrap()),
            Err(Refusal::Metadata)
        );
        assert_eq!(
            rules.check("169.254.1.1".parse().unwrap()),
            Err(Refusal::LinkLocal)
        );
        assert_eq!(
            rules.check("0.0.0.0".parse().unwrap()),
            Err(Refusal::Unspecified)
        );
    }
}
