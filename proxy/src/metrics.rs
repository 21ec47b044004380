//! Prometheus metrics, and the small server that exposes them on the metrics port.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use std::sync::OnceLock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every metric Gatehouse exports.
#[derive(Debug)]
pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub blocked_categories: IntCounterVec,
    pub alerts: IntCounterVec,
    pub decision_seconds: Histogram,
    pub upstream_seconds: Histogram,
    pub upstream_errors: IntCounterVec,
    pub events_written: IntCounter,
    pub events_dropped: IntCounter,
    pub policy_generation: IntGauge,
    pub reload_failures: IntCounter,
    pub refused: IntCounterVec,
    pub handshake_failures: IntCounterVec,
    pub handshake_hosts: IntGauge,
    pub open_connections: IntGauge,
    pub certificates_minted: IntCounter,
    pub certificate_cache_hits: IntCounter,
    pub certificates_cached: IntGauge,
    pub content_bodies: IntCounterVec,
    pub content_bytes: IntCounter,
    pub content_seconds: Histogram,
    pub content_verdicts: IntCounterVec,
    pub radius_packets: IntCounterVec,
    pub devices_named: IntGauge,
    pub directory_up: IntGauge,
    pub directory_stale_logins: IntCounter,
    pub directory_syncs: IntCounterVec,
    pub people: IntGauge,
    pub signins: IntCounterVec,
}

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new_custom(Some("gatehouse".into()), None)?;
    let requests = IntCounterVec::new(
        Opts::new("requests_total", "Requests decided, by verdict and role"),
        &["verdict", "role"],
    )?;
    let blocked_categories = IntCounterVec::new(
        Opts::new(
            "blocked_categories_total",
            "Blocked requests by matched category",
        ),
        &["category"],
    )?;
    let alerts = IntCounterVec::new(
        Opts::new("alerts_total", "Decisions that alert the DSL, by severity"),
        &["severity"],
    )?;
    let decision_seconds = Histogram::with_opts(
        HistogramOpts::new("decision_seconds", "Time to decide a request")
            .buckets(vec![1e-6, 2e-6, 5e-6, 1e-5, 5e-5, 1e-4, 1e-3]),
    )?;
    let upstream_seconds = Histogram::with_opts(
        HistogramOpts::new(
            "upstream_seconds",
            "Time from forwarding a request to its response head",
        )
        .buckets(prometheus::exponential_buckets(0.001, 2.0, 14)?),
    )?;
    let upstream_errors = IntCounterVec::new(
        Opts::new(
            "upstream_errors_total",
            "Requests the upstream could not answer",
        ),
        &["kind"],
    )?;
    let events_written = IntCounter::new("events_total", "Events handed to the event writer")?;
    let events_dropped = IntCounter::new(
        "events_dropped_total",
        "Events dropped because the writer was behind",
    )?;
    let policy_generation = IntGauge::new(
        "policy_generation",
        "Generation of the policy in force (1 at start, +1 per reload)",
    )?;
    let reload_failures = IntCounter::new(
        "policy_reload_failures_total",
        "Reloads refused (the previous policy stayed)",
    )?;
    let handshake_failures = IntCounterVec::new(
        Opts::new("tls_handshake_failures_total", "Client TLS handshakes that failed after interception, by host (pinned apps, devices without the CA)"),
        &["host"],
    )?;
    let handshake_hosts = IntGauge::new(
        "tls_handshake_failure_hosts",
        "Distinct hosts counted in tls_handshake_failures_total",
    )?;
    let refused = IntCounterVec::new(
        Opts::new(
            "refused_total",
            "Requests refused before any rule, by reason",
        ),
        &["reason"],
    )?;
    let open_connections = IntGauge::new(
        "open_connections",
        "Client connections open now (plain, tunnelled and decrypted)",
    )?;
    registry.register(Box::new(open_connections.clone()))?;
    let certificates_minted = IntCounter::new(
        "certificates_minted_total",
        "Leaf certificates signed for intercepted sites",
    )?;
    let certificate_cache_hits = IntCounter::new(
        "certificate_cache_hits_total",
        "Intercepted connections served with an already minted certificate",
    )?;
    let certificates_cached =
        IntGauge::new("certificates_cached", "Leaf certificates held in memory")?;
    let content_bodies = IntCounterVec::new(
        Opts::new(
            "content_bodies_total",
            "Response bodies by what happened to their text: scanned, or why not all of it was (encoding, corrupt, limit)",
        ),
        &["outcome"],
    )?;
    let content_bytes = IntCounter::new(
        "content_text_bytes_total",
        "Bytes of decoded text read for themes",
    )?;
    let content_seconds = Histogram::with_opts(
        HistogramOpts::new(
            "content_scan_seconds",
            "Time spent reading one body's text for themes",
        )
        .buckets(prometheus::exponential_buckets(1e-5, 4.0, 10)?),
    )?;
    let content_verdicts = IntCounterVec::new(
        Opts::new(
            "content_verdicts_total",
            "Bodies whose text hit a theme, by theme and whether it fired",
        ),
        &["theme", "outcome"],
    )?;
    let radius_packets = IntCounterVec::new(
        Opts::new(
            "radius_packets_total",
            "RADIUS accounting packets, by what was done with them (bound, unbound, cleared, \
             nothing, repeated, stale, full, bad-secret, unknown-client, malformed)",
        ),
        &["outcome"],
    )?;
    let devices_named = IntGauge::new(
        "devices_named",
        "Device addresses the Wi-Fi's RADIUS accounting names now",
    )?;
    let directory_up = IntGauge::new(
        "directory_up",
        "1 when the last LDAP check reached the directory, 0 when it could not",
    )?;
    let directory_stale_logins = IntCounter::new(
        "directory_stale_logins_total",
        "Logins accepted from the cache because the directory could not be reached",
    )?;
    directory_up.set(1);
    let directory_syncs = IntCounterVec::new(
        Opts::new(
            "directory_syncs_total",
            "People tables read from the directory, by outcome (ok, failed)",
        ),
        &["outcome"],
    )?;
    let people = IntGauge::new("people", "People in the people table")?;
    let signins = IntCounterVec::new(
        Opts::new(
            "signins_total",
            "Sign-ins on the sign-in page, by outcome (signed-in, refused, provider-refused, \
             no-role, left, provider, busy)",
        ),
        &["outcome"],
    )?;
    registry.register(Box::new(signins.clone()))?;
    registry.register(Box::new(directory_syncs.clone()))?;
    registry.register(Box::new(people.clone()))?;
    registry.register(Box::new(radius_packets.clone()))?;
    registry.register(Box::new(devices_named.clone()))?;
    registry.register(Box::new(directory_up.clone()))?;
    registry.register(Box::new(directory_stale_logins.clone()))?;
    registry.register(Box::new(content_bodies.clone()))?;
    registry.register(Box::new(content_bytes.clone()))?;
    registry.register(Box::new(content_seconds.clone()))?;
    registry.register(Box::new(content_verdicts.clone()))?;
    registry.register(Box::new(certificates_minted.clone()))?;
    registry.register(Box::new(certificate_cache_hits.clone()))?;
    registry.register(Box::new(certificates_cached.clone()))?;
    registry.register(Box::new(requests.clone()))?;
    registry.register(Box::new(blocked_categories.clone()))?;
    registry.register(Box::new(alerts.clone()))?;
    registry.register(Box::new(decision_seconds.clone()))?;
    registry.register(Box::new(upstream_seconds.clone()))?;
    registry.register(Box::new(upstream_errors.clone()))?;
    registry.register(Box::new(events_written.clone()))?;
    registry.register(Box::new(events_dropped.clone()))?;
    registry.register(Box::new(policy_generation.clone()))?;
    registry.register(Box::new(reload_failures.clone()))?;
    registry.register(Box::new(refused.clone()))?;
    registry.register(Box::new(handshake_failures.clone()))?;
    registry.register(Box::new(handshake_hosts.clone()))?;
    Ok(Metrics {
        registry,
        requests,
        blocked_categories,
        alerts,
        decision_seconds,
        upstream_seconds,
        upstream_errors,
        events_written,
        events_dropped,
        policy_generation,
        reload_failures,
        refused,
        handshake_failures,
        handshake_hosts,
        open_connections,
        certificates_minted,
        certificate_cache_hits,
        certificates_cached,
        content_bodies,
        content_bytes,
        content_seconds,
        content_verdicts,
        radius_packets,
        devices_named,
        directory_up,
        directory_stale_logins,
        directory_syncs,
        people,
        signins,
    })
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The process's metrics (created on first use).
pub fn get() -> &'static Metrics {
    METRICS.get_or_init(|| match build() {
        Ok(m) => m,
        // The names and labels above are fixed and valid; an error here is a programming
        // mistake caught by the tests.
        Err(e) => unreachable_metrics(&e),
    })
}

#[expect(
    clippy::panic,
    reason = "fixed metric definitions; exercised by every test that starts the proxy"
)]
fn unreachable_metrics(e: &prometheus::Error) -> Metrics {
    panic!("metric definitions are invalid: {e}")
}

/// The text exposition of every metric.
pub fn render() -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&get().registry.gather(), &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Serves `GET /metrics` (and nothing else) on `listener`.
pub async fn serve(listener: tokio::net::TcpListener) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let mut head = [0u8; 2048];
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut head))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(0);
            let request = String::from_utf8_lossy(&head[..n]);
            let reply = if request.starts_with("GET /metrics ") {
                let body = render();
                format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned()
            };
            let _ = stream.write_all(reply.as_bytes()).await;
        });
    }
}
