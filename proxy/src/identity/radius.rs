//! RADIUS accounting (RFC 2866): the Wi-Fi controller or 802.1X server reports each
//! session's Start, Interim-Update and Stop with `User-Name` and `Framed-IP-Address`, so a
//! device on 802.1X Wi-Fi is named with no sign-in at all.
//!
//! Only listed senders are read; every packet's Request Authenticator is checked with the
//! shared secret (a wrong secret is dropped unanswered and logged); a packet whose
//! `Event-Timestamp` is more than five minutes away from now is refused (a replayed Start
//! cannot name a device after the fact); a retransmission is answered again but not applied
//! twice. Machine accounts (`host/...`) name no one.

use super::bindings::Bindings;
use crate::metrics;
use md5::{Digest as _, Md5};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

const ACCOUNTING_REQUEST: u8 = 4;
const ACCOUNTING_RESPONSE: u8 = 5;

const USER_NAME: u8 = 1;
const FRAMED_IP_ADDRESS: u8 = 8;
const CALLING_STATION_ID: u8 = 31;
const ACCT_STATUS_TYPE: u8 = 40;
const EVENT_TIMESTAMP: u8 = 55;
const FRAMED_IPV6_ADDRESS: u8 = 168;

/// How far an `Event-Timestamp` may be from now.
const CLOCK_SLACK_SECS: i64 = 300;
/// Addresses one session may report (an IPv4 and a few IPv6).
const MAX_ADDRESSES: usize = 8;

/// What a session's packet says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Start,
    Stop,
    Interim,
    /// Accounting-On / Accounting-Off: the controller restarted.
    Restart,
    Other(u32),
}

/// An Accounting-Request, checked and read.
#[derive(Debug, PartialEq, Eq)]
pub struct Accounting {
    pub identifier: u8,
    pub authenticator: [u8; 16],
    pub status: Status,
    pub user: Option<String>,
    pub addresses: Vec<IpAddr>,
    pub device: Option<String>,
    pub event_time: Option<i64>,
}

/// Why a packet was dropped.
#[derive(Debug, PartialEq, Eq)]
pub enum Dropped {
    Malformed(&'static str),
    NotAccounting(u8),
    BadAuthenticator,
}

impl Dropped {
    pub fn label(&self) -> &'static str {
        match self {
            Dropped::Malformed(_) => "malformed",
            Dropped::NotAccounting(_) => "not-accounting",
            Dropped::BadAuthenticator => "bad-secret",
        }
    }
}

/// Checks `packet` with `secret` and reads it.
pub fn parse(packet: &[u8], secret: &[u8]) -> Result<Accounting, Dropped> {
    if packet.len() < 20 {
        return Err(Dropped::Malformed("shorter than a RADIUS header"));
    }
    let length = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if !(20..=4096).contains(&length) || length > packet.len() {
        return Err(Dropped::Malformed("length field out of range"));
    }
    // Octets past Length are padding (RFC 2865 §3) and are not read.
    let packet = &packet[..length];
    if packet[0] != ACCOUNTING_REQUEST {
        return Err(Dropped::NotAccounting(packet[0]));
    }
    let mut authenticator = [0u8; 16];
    authenticator.copy_from_slice(&packet[4..20]);
    let mut md5 = Md5::new();
    md5.update(&packet[..4]);
    md5.update([0u8; 16]);
    md5.update(&packet[20..]);
    md5.update(secret);
    let expected: [u8; 16] = md5.finalize().into();
    if !constant_time_eq(&expected, &authenticator) {
        return Err(Dropped::BadAuthenticator);
    }
    let mut read = Accounting {
        identifier: packet[1],
        authenticator,
        status: Status::Other(0),
        user: None,
        addresses: Vec::new(),
        device: None,
        event_time: None,
    };
    let mut status = None;
    let mut rest = &packet[20..];
    while !rest.is_empty() {
        let (&kind, after) = rest.split_first().ok_or(Dropped::Malformed("attribute"))?;
        let len = usize::from(
            *after
                .first()
                .ok_or(Dropped::Malformed("attribute length"))?,
        );
        if len < 2 || len > rest.len() {
            return Err(Dropped::Malformed("attribute length out of range"));
        }
        let value = &rest[2..len];
        rest = &rest[len..];
        match kind {
            USER_NAME => {
                let name = std::str::from_utf8(value)
                    .map_err(|_| Dropped::Malformed("User-Name is not UTF-8"))?;
                read.user = Some(name.to_owned());
            }
            FRAMED_IP_ADDRESS => {
                let octets: [u8; 4] = value
                    .try_into()
                    .map_err(|_| Dropped::Malformed("Framed-IP-Address is not 4 octets"))?;
                read.addresses.push(IpAddr::V4(Ipv4Addr::from(octets)));
            }
            FRAMED_IPV6_ADDRESS => {
                let octets: [u8; 16] = value
                    .try_into()
                    .map_err(|_| Dropped::Malformed("Framed-IPv6-Address is not 16 octets"))?;
                // `::ffff:10.1.0.5` is the client 10.1.0.5, as the listener sees it.
                read.addresses
                    .push(IpAddr::V6(Ipv6Addr::from(octets)).to_canonical());
            }
            CALLING_STATION_ID => {
                read.device = std::str::from_utf8(value).ok().map(str::to_owned);
            }
            ACCT_STATUS_TYPE | EVENT_TIMESTAMP => {
                let v: [u8; 4] = value
                    .try_into()
                    .map_err(|_| Dropped::Malformed("an integer attribute is not 4 octets"))?;
                let v = u32::from_be_bytes(v);
                if kind == ACCT_STATUS_TYPE {
                    status = Some(v);
                } else {
                    read.event_time = Some(i64::from(v));
                }
            }
            _ => {}
        }
        if read.addresses.len() > MAX_ADDRESSES {
            return Err(Dropped::Malformed("more addresses than one device has"));
        }
    }
    read.status = match status.ok_or(Dropped::Malformed("no Acct-Status-Type"))? {
        1 => Status::Start,
        2 => Status::Stop,
        3 => Status::Interim,
        7 | 8 => Status::Restart,
        other => Status::Other(other),
    };
    Ok(read)
}

/// The Accounting-Response to `request` (no attributes).
pub fn response(request: &Accounting, secret: &[u8]) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[0] = ACCOUNTING_RESPONSE;
    out[1] = request.identifier;
    out[2..4].copy_from_slice(&20u16.to_be_bytes());
    let mut md5 = Md5::new();
    md5.update(&out[..4]);
    md5.update(request.authenticator);
    md5.update(secret);
    let auth: [u8; 16] = md5.finalize().into();
    out[4..20].copy_from_slice(&auth);
    out
}

fn constant_time_eq(a: &[u8; 16], b: &[u8; 16]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The account a RADIUS `User-Name` names: `SCHOOL\amy` and `amy@school.org` are `amy`,
/// in lower case; machine accounts (`host/PC01...`) and empty names are no one.
pub fn account_of(user: &str, realms: &[String]) -> Option<String> {
    let (domain, user) = match (user.split_once('\\'), user.split_once('@')) {
        (Some(_), Some(_)) => return None,
        (Some((domain, user)), None) | (None, Some((user, domain))) => (Some(domain), user),
        (None, None) => (None, user),
    };
    // One realm at most (`a@b@c`, `A\B\amy` name no one), and only the school's own: a
    // visitor's eduroam realm or a guest realm is not a school account.
    if user.contains(['\\', '@']) {
        return None;
    }
    if let Some(domain) = domain {
        if !realms.iter().any(|r| r.eq_ignore_ascii_case(domain)) {
            return None;
        }
    }
    let lower = user.to_lowercase();
    let machine = lower.starts_with("host/") || lower.ends_with('$');
    (!machine
        && !lower.is_empty()
        && lower.len() <= 256
        && !lower.chars().any(|c| c.is_control() || c.is_whitespace()))
    .then_some(lower)
}

/// What was done with a packet that passed its checks.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    Bound,
    Unbound,
    Cleared,
    /// Answered, nothing to change (an unknown status, a machine account, no address).
    Nothing,
    /// Its Event-Timestamp is too far from now.
    Stale,
    /// It has no Event-Timestamp and the config requires one.
    Untimed,
    /// The same packet again (a retransmission).
    Repeated,
    /// The binding table is full.
    Full,
}

impl Applied {
    pub fn label(&self) -> &'static str {
        match self {
            Applied::Bound => "bound",
            Applied::Unbound => "unbound",
            Applied::Cleared => "cleared",
            Applied::Nothing => "nothing",
            Applied::Stale => "stale",
            Applied::Untimed => "untimed",
            Applied::Repeated => "repeated",
            Applied::Full => "full",
        }
    }
}

/// Recent packets seen (sender, identifier, authenticator): retransmissions are answered
/// but not applied again.
#[derive(Debug, Default)]
pub struct Recent {
    seen: VecDeque<(IpAddr, u8, [u8; 16])>,
}

const RECENT: usize = 1024;

impl Recent {
    fn seen_before(&mut self, key: (IpAddr, u8, [u8; 16])) -> bool {
        if self.seen.contains(&key) {
            return true;
        }
        if self.seen.len() >= RECENT {
            self.seen.pop_front();
        }
        self.seen.push_back(key);
        false
    }
}

/// How the listener reads packets (from `[identity.radius]`).
#[derive(Clone, Debug)]
pub struct Rules {
    pub clients: Vec<ipnet::IpNet>,
    /// Realms and domains whose accounts are the school's (`SCHOOL`, `school.org`).
    pub realms: Vec<String>,
    /// A packet without `Event-Timestamp` is refused (it could be a replay of any age).
    pub require_timestamp: bool,
}

/// Applies a checked packet from `from` to the bindings.
pub fn apply(
    bindings: &Bindings,
    recent: &mut Recent,
    rules: &Rules,
    from: IpAddr,
    packet: &Accounting,
    now: chrono::DateTime<chrono::Utc>,
) -> Applied {
    match packet.event_time {
        Some(t) if (now.timestamp() - t).abs() > CLOCK_SLACK_SECS => return Applied::Stale,
        None if rules.require_timestamp => return Applied::Untimed,
        _ => {}
    }
    if recent.seen_before((from, packet.identifier, packet.authenticator)) {
        return Applied::Repeated;
    }
    if packet.status == Status::Restart {
        bindings.forget_reporter(from);
        return Applied::Cleared;
    }
    let Some(account) = packet
        .user
        .as_deref()
        .and_then(|u| account_of(u, &rules.realms))
    else {
        return Applied::Nothing;
    };
    if packet.addresses.is_empty() {
        return Applied::Nothing;
    }
    match packet.status {
        Status::Start | Status::Interim => {
            for ip in &packet.addresses {
                if !bindings.bind(*ip, &account, from, packet.device.as_deref(), now) {
                    return Applied::Full;
                }
            }
            Applied::Bound
        }
        Status::Stop => {
            for ip in &packet.addresses {
                bindings.unbind(*ip, &account);
            }
            Applied::Unbound
        }
        Status::Restart | Status::Other(_) => Applied::Nothing,
    }
}

/// Serves accounting on `socket` until the process ends.
pub async fn serve(
    socket: tokio::net::UdpSocket,
    secret: Arc<[u8]>,
    rules: Rules,
    bindings: Arc<Bindings>,
) {
    let mut buf = vec![0u8; 4096];
    let mut recent = Recent::default();
    let mut log = super::Throttle::new("RADIUS", 1);
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let outcome = handle(
            &buf[..n],
            from,
            &secret,
            &rules,
            &bindings,
            &mut recent,
            &mut log,
        );
        let m = metrics::get();
        m.radius_packets.with_label_values(&[outcome.0]).inc();
        m.devices_named
            .set(i64::try_from(bindings.len()).unwrap_or(i64::MAX));
        if let Some(reply) = outcome.1 {
            let _ = socket.send_to(&reply, from).await;
        }
    }
}

/// One datagram: the metric label, and the reply to send if any.
fn handle(
    datagram: &[u8],
    from: SocketAddr,
    secret: &[u8],
    rules: &Rules,
    bindings: &Bindings,
    recent: &mut Recent,
    log: &mut super::Throttle,
) -> (&'static str, Option<[u8; 20]>) {
    let sender = from.ip().to_canonical();
    if !rules.clients.iter().any(|c| c.contains(&sender)) {
        log.warn(|| format!("dropped a packet from {from}: not in [identity.radius] clients"));
        return ("unknown-client", None);
    }
    let packet = match parse(datagram, secret) {
        Ok(p) => p,
        Err(why) => {
            log.warn(|| {
                format!(
                    "dropped a packet from {from}: {}",
                    match &why {
                        Dropped::Malformed(what) => format!("malformed ({what})"),
                        Dropped::NotAccounting(code) =>
                            format!("code {code} is not an Accounting-Request"),
                        Dropped::BadAuthenticator =>
                            "its authenticator does not match the shared secret".to_owned(),
                    }
                )
            });
            return (why.label(), None);
        }
    };
    let applied = apply(bindings, recent, rules, sender, &packet, chrono::Utc::now());
    match applied {
        Applied::Stale => {
            log.warn(|| {
                format!(
                    "refused a packet from {from}: its Event-Timestamp is more than \
                     {CLOCK_SLACK_SECS} s from now (a replay, or the controller's clock is wrong)"
                )
            });
            (applied.label(), None)
        }
        Applied::Untimed => {
            log.warn(|| {
                format!(
                    "refused a packet from {from}: it has no Event-Timestamp, so a replay \
                     could not be told apart (require_event_timestamp = false accepts such \
                     controllers)"
                )
            });
            (applied.label(), None)
        }
        Applied::Full => {
            log.warn(|| format!("the table of named devices is full; {from}'s Start not applied"));
            (applied.label(), Some(response(&packet, secret)))
        }
        _ => (applied.label(), Some(response(&packet, secret))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(secret: &[u8], attrs: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (k, v) in attrs {
            body.push(*k);
            body.push(u8::try_from(v.len() + 2).unwrap());
            body.extend_from_slice(v);
        }
        let len = u16::try_from(20 + body.len()).unwrap();
        let mut p = vec![ACCOUNTING_REQUEST, 7];
        p.extend_from_slice(&len.to_be_bytes());
        let mut md5 = Md5::new();
        md5.update(&p);
        md5.update([0u8; 16]);
        md5.update(&body);
        md5.update(secret);
        let auth: [u8; 16] = md5.finalize().into();
        p.extend_from_slice(&auth);
        p.extend_from_slice(&body);
        p
    }

    #[test]
    fn a_start_is_read_and_a_wrong_secret_or_a_cut_attribute_is_not() {
        let p = packet(
            b"s3cret",
            &[
                (ACCT_STATUS_TYPE, 1u32.to_be_bytes().to_vec()),
                (USER_NAME, b"SCHOOL\\Amy.Pupil".to_vec()),
                (FRAMED_IP_ADDRESS, vec![10, 1, 0, 5]),
            ],
        );
        let read = parse(&p, b"s3cret").unwrap();
        assert_eq!(read.status, Status::Start);
        let realms = ["SCHOOL".to_owned()];
        assert_eq!(
            account_of(read.user.as_deref().unwrap(), &realms).unwrap(),
            "amy.pupil"
        );
        assert_eq!(read.addresses, vec![IpAddr::from([10, 1, 0, 5])]);
        assert_eq!(parse(&p, b"guess"), Err(Dropped::BadAuthenticator));
        let mut cut = p.clone();
        cut.truncate(p.len() - 2);
        assert!(parse(&cut, b"s3cret").is_err());
        // The reply's authenticator follows RFC 2866.
        let r = response(&read, b"s3cret");
        assert_eq!(r[0], ACCOUNTING_RESPONSE);
        assert_eq!(r[1], 7);
    }

    #[test]
    fn machine_accounts_and_realms() {
        let realms = ["SCHOOL".to_owned(), "school.org".to_owned()];
        let of = |u: &str| account_of(u, &realms);
        assert_eq!(of("host/PC01.school.internal"), None);
        assert_eq!(of("SCHOOL\\host/pc01"), None);
        assert_eq!(of("SCHOOL\\PC01$"), None);
        assert_eq!(of("amy@School.Org").as_deref(), Some("amy"));
        assert_eq!(of("school\\Amy").as_deref(), Some("amy"));
        assert_eq!(of("amy").as_deref(), Some("amy"));
        // Found by attack: another realm, two realms, and padding named the local account.
        assert_eq!(of("tess@evil.example"), None);
        assert_eq!(of("tess@a@b"), None);
        assert_eq!(of("A\\B\\tess"), None);
        assert_eq!(of("SCHOOL\\tess@school.org"), None);
        assert_eq!(of(" tess"), None);
        assert_eq!(of(""), None);
    }

    #[test]
    fn a_packet_with_no_timestamp_is_refused_unless_the_config_allows_it() {
        let p = parse(
            &packet(
                b"k",
                &[
                    (ACCT_STATUS_TYPE, 1u32.to_be_bytes().to_vec()),
                    (USER_NAME, b"amy".to_vec()),
                    (FRAMED_IPV6_ADDRESS, {
                        let mut v = vec![0u8; 10];
                        v.extend_from_slice(&[0xff, 0xff, 10, 1, 0, 9]);
                        v
                    }),
                ],
            ),
            b"k",
        )
        .unwrap();
        // `::ffff:10.1.0.9` is read as 10.1.0.9, the address the client connects from.
        assert_eq!(p.addresses, vec![IpAddr::from([10, 1, 0, 9])]);
        let b = Bindings::new(std::time::Duration::from_secs(60));
        let nas = IpAddr::from([10, 0, 0, 2]);
        let mut rules = Rules {
            clients: Vec::new(),
            realms: Vec::new(),
            require_timestamp: true,
        };
        let now = chrono::Utc::now();
        let mut recent = Recent::default();
        assert_eq!(
            apply(&b, &mut recent, &rules, nas, &p, now),
            Applied::Untimed
        );
        rules.require_timestamp = false;
        assert_eq!(apply(&b, &mut recent, &rules, nas, &p, now), Applied::Bound);
    }
}
