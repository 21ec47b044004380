//! Connection admission: at most `max_connections` open client connections in all and
//! `max_connections_per_client` from one address, so one runaway device (or a slow-loris
//! script) cannot starve the rest of the school. Decided when a connection is accepted,
//! before a byte is read; a refused client gets a `503` that says why.

use dashmap::DashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Open connections, in all and per client address.
#[derive(Debug)]
pub struct Connections {
    max_total: usize,
    max_per_client: usize,
    total: AtomicUsize,
    per_client: DashMap<IpAddr, usize>,
}

/// Held while a connection is open.
#[derive(Debug)]
pub struct Open {
    counts: Arc<Connections>,
    client: IpAddr,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.counts.total.fetch_sub(1, Ordering::Relaxed);
        self.counts.per_client.remove_if_mut(&self.client, |_, n| {
            *n -= 1;
            *n == 0
        });
        crate::metrics::get().open_connections.dec();
    }
}

const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Retry-After: 10\r\n\
Connection: close\r\n\
Content-Length: 79\r\n\r\n\
The web filter is at its connection limit. Please try again in a few seconds.\r\n";

const TOO_MANY_FROM_YOU: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Retry-After: 10\r\n\
Connection: close\r\n\
Content-Length: 92\r\n\r\n\
Your device has too many connections open through the web filter. Close some tabs or apps.\r\n";

impl Connections {
    pub fn new(max_total: usize, max_per_client: usize) -> Arc<Connections> {
        Arc::new(Connections {
            max_total,
            max_per_client,
            total: AtomicUsize::new(0),
            per_client: DashMap::new(),
        })
    }

    /// Counts a new connection from `client`, or says why it is refused.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Open, &'static [u8]> {
        let metrics = crate::metrics::get();
        if self.total.fetch_add(1, Ordering::Relaxed) >= self.max_total {
            self.total.fetch_sub(1, Ordering::Relaxed);
            metrics
                .refused
                .with_label_values(&["connection_limit"])
                .inc();
            return Err(TOO_MANY);
        }
        {
            let mut mine = self.per_client.entry(client).or_insert(0);
            if *mine >= self.max_per_client {
                drop(mine);
                self.total.fetch_sub(1, Ordering::Relaxed);
                metrics
                    .refused
                    .with_label_values(&["client_connection_limit"])
                    .inc();
                return Err(TOO_MANY_FROM_YOU);
            }
            *mine += 1;
        }
        metrics.open_connections.inc();
        Ok(Open {
            counts: Arc::clone(self),
            client,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_carry_their_exact_length() {
        for reply in [TOO_MANY, TOO_MANY_FROM_YOU] {
            let text = std::str::from_utf8(reply).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let declared: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(declared, body.len(), "{head}");
        }
    }

    #[test]
    fn counts_per_client_and_in_all_and_forgets_closed_connections() {
        let limits = Connections::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = limits.admit(a).unwrap();
        let a2 = limits.admit(a).unwrap();
        assert_eq!(limits.admit(a).unwrap_err(), TOO_MANY_FROM_YOU);
        let b1 = limits.admit(b).unwrap();
        assert_eq!(limits.admit(b).unwrap_err(), TOO_MANY);
        drop(a1);
        let a3 = limits.admit(a).unwrap();
        drop((a2, a3, b1));
        assert_eq!(limits.total.load(Ordering::Relaxed), 0);
        assert!(limits.per_client.is_empty());
    }
}
