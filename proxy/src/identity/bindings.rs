//! Devices the network has already named: an address bound to an account by RADIUS
//! accounting (802.1X Wi-Fi), until the session stops, the controller restarts, or no
//! accounting has been heard for the session limit.

use dashmap::DashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Addresses bound at most (a trust's whole estate of devices, with room to spare).
const MAX_BOUND: usize = 250_000;

/// One device's binding.
#[derive(Clone, Debug)]
pub struct Binding {
    pub account: Arc<str>,
    /// The controller that reported it (its Accounting-On/Off clears its devices).
    pub reporter: IpAddr,
    /// The device's MAC address as the controller gave it (`Calling-Station-Id`).
    pub device: Option<Arc<str>>,
    pub since: chrono::DateTime<chrono::Utc>,
    expires: Instant,
}

/// Address -> the account on it now.
#[derive(Debug)]
pub struct Bindings {
    by_address: DashMap<IpAddr, Binding>,
    lasts: Duration,
}

impl Bindings {
    pub fn new(lasts: Duration) -> Bindings {
        Bindings {
            by_address: DashMap::new(),
            lasts,
        }
    }

    /// The account on `ip`, if its binding is still in force.
    pub fn get(&self, ip: IpAddr) -> Option<Binding> {
        let hit = self.by_address.get(&ip)?;
        (hit.expires > Instant::now()).then(|| hit.clone())
    }

    /// A session started or is still going: `ip` is `account`'s from now. False when the
    /// table is full of live bindings (the oldest are not pushed out by a flood).
    pub fn bind(
        &self,
        ip: IpAddr,
        account: &str,
        reporter: IpAddr,
        device: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        if self.by_address.len() >= MAX_BOUND && !self.by_address.contains_key(&ip) {
            let at = Instant::now();
            self.by_address.retain(|_, b| b.expires > at);
            if self.by_address.len() >= MAX_BOUND {
                return false;
            }
        }
        let expires = Instant::now() + self.lasts;
        let mut entry = self.by_address.entry(ip).or_insert_with(|| Binding {
            account: Arc::from(account),
            reporter,
            device: device.map(Arc::from),
            since: now,
            expires,
        });
        if &*entry.account != account {
            entry.account = Arc::from(account);
            entry.since = now;
        }
        entry.reporter = reporter;
        entry.device = device.map(Arc::from);
        entry.expires = expires;
        true
    }

    /// A session stopped: `ip` is no longer `account`'s (a Stop for someone else's
    /// earlier session on a reused address leaves the new one alone).
    pub fn unbind(&self, ip: IpAddr, account: &str) {
        self.by_address
            .remove_if(&ip, |_, b| &*b.account == account);
    }

    /// A controller restarted (Accounting-On/Off): none of its devices is named now.
    pub fn forget_reporter(&self, reporter: IpAddr) {
        self.by_address.retain(|_, b| b.reporter != reporter);
    }

    /// Every binding in force, by address.
    pub fn list(&self) -> Vec<(IpAddr, Binding)> {
        let at = Instant::now();
        let mut all: Vec<_> = self
            .by_address
            .iter()
            .filter(|b| b.expires > at)
            .map(|b| (*b.key(), b.value().clone()))
            .collect();
        all.sort_by_key(|(ip, _)| *ip);
        all
    }

    pub fn len(&self) -> usize {
        self.by_address.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_for_an_earlier_session_leaves_the_new_one_bound() {
        let b = Bindings::new(Duration::from_secs(60));
        let ip: IpAddr = "10.1.0.5".parse().unwrap();
        let nas: IpAddr = "10.0.0.2".parse().unwrap();
        let now = chrono::Utc::now();
        assert!(b.bind(ip, "amy", nas, None, now));
        assert!(b.bind(ip, "ben", nas, Some("aa-bb"), now));
        b.unbind(ip, "amy");
        assert_eq!(&*b.get(ip).unwrap().account, "ben");
        b.forget_reporter(nas);
        assert!(b.get(ip).is_none());
    }
}
