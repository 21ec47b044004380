//! Counting failed client TLS handshakes per host, so IT can see which apps pin their
//! certificates (or which devices lack the CA) and exempt them with `no_decrypt`.

use dashmap::DashSet;
use std::sync::OnceLock;

/// At most this many distinct hosts get their own label; the rest count as `other`.
const MAX_HOSTS: usize = 1000;

/// The hosts that have a series of their own. Looked up here, not in the counter: asking
/// the counter for a host's value would create that host's series.
fn labelled() -> &'static DashSet<String> {
    static HOSTS: OnceLock<DashSet<String>> = OnceLock::new();
    HOSTS.get_or_init(DashSet::new)
}

/// Counts one failed handshake for a CONNECT to `host`.
pub fn count_failure(host: &str) {
    let metrics = crate::metrics::get();
    let hosts = labelled();
    let label = if hosts.contains(host) {
        host
    } else if hosts.len() < MAX_HOSTS && hosts.insert(host.to_owned()) {
        metrics.handshake_hosts.inc();
        host
    } else {
        "other"
    };
    metrics.handshake_failures.with_label_values(&[label]).inc();
}

#[cfg(test)]
mod tests {
    /// Past the cap every new host counts as `other` and no new series appears.
    #[test]
    fn hosts_past_the_cap_share_one_series() {
        for i in 0..(super::MAX_HOSTS + 500) {
            super::count_failure(&format!("h{i}.example"));
        }
        let metrics = crate::metrics::get();
        let families = metrics.registry.gather();
        let series = families
            .iter()
            .find(|f| f.name().ends_with("handshake_failures_total"))
            .map(|f| f.get_metric().len())
            .unwrap_or_default();
        assert_eq!(series, super::MAX_HOSTS + 1);
        assert_eq!(
            metrics
                .handshake_failures
                .with_label_values(&["other"])
                .get(),
            500
        );
    }
}
