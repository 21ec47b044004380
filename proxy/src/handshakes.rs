//! Counting failed client TLS handshakes per host, so IT can see which apps pin their
//! certificates (or which devices lack the CA) and exempt them with `no_decrypt`.

/// At most this many distinct hosts get their own label; the rest count as `other`.
const MAX_HOSTS: usize = 1000;

/// Counts one failed handshake for a CONNECT to `host`.
pub fn count_failure(host: &str) {
    let metrics = crate::metrics::get();
    let counter = &metrics.handshake_failures;
    let known = counter.with_label_values(&[host]).get() > 0;
    let label = if known || metrics.handshake_hosts.get() < MAX_HOSTS as i64 {
        if !known {
            metrics.handshake_hosts.inc();
        }
        host
    } else {
        "other"
    };
    counter.with_label_values(&[label]).inc();
}
