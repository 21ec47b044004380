//! The safeguarding path's Prometheus metrics, registered in the proxy's registry.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

#[derive(Debug)]
pub struct Metrics {
    pub events_stored: IntCounter,
    pub events_spilled: IntCounter,
    pub events_lost: IntCounter,
    pub store_errors: IntCounter,
    pub store_up: IntGauge,
    pub alerts_raised: IntCounterVec,
    pub alerts_repeated: IntCounter,
    pub alerts_escalated: IntCounter,
    pub deliveries: IntGaugeVec,
    pub delivery_attempts: IntCounterVec,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry` (when given).
    pub fn new(registry: Option<&Registry>) -> Result<Metrics, prometheus::Error> {
        let m = Metrics {
            events_stored: IntCounter::new(
                "store_events_total",
                "Events written to the event store",
            )?,
            events_spilled: IntCounter::new(
                "store_spilled_events_total",
                "Events written to the spill file because the store was slow or away",
            )?,
            events_lost: IntCounter::new(
                "store_lost_events_total",
                "Events neither stored nor spilled (the spill file could not be written)",
            )?,
            store_errors: IntCounter::new("store_errors_total", "Failed store writes")?,
            store_up: IntGauge::new("store_up", "1 when the last store write succeeded")?,
            alerts_raised: IntCounterVec::new(
                Opts::new(
                    "alerts_raised_total",
                    "Alerts raised for the DSL, by severity",
                ),
                &["severity"],
            )?,
            alerts_repeated: IntCounter::new(
                "alerts_repeated_total",
                "Hits added to an open alert instead of raising a new one",
            )?,
            alerts_escalated: IntCounter::new(
                "alerts_escalated_total",
                "Alerts whose severity rose because of repeated hits",
            )?,
            deliveries: IntGaugeVec::new(
                Opts::new("alert_deliveries", "Alert and digest deliveries by state"),
                &["state"],
            )?,
            delivery_attempts: IntCounterVec::new(
                Opts::new(
                    "alert_delivery_attempts_total",
                    "Delivery attempts by channel and outcome",
                ),
                &["channel", "outcome"],
            )?,
        };
        m.store_up.set(1);
        if let Some(r) = registry {
            r.register(Box::new(m.events_stored.clone()))?;
            r.register(Box::new(m.events_spilled.clone()))?;
            r.register(Box::new(m.events_lost.clone()))?;
            r.register(Box::new(m.store_errors.clone()))?;
            r.register(Box::new(m.store_up.clone()))?;
            r.register(Box::new(m.alerts_raised.clone()))?;
            r.register(Box::new(m.alerts_repeated.clone()))?;
            r.register(Box::new(m.alerts_escalated.clone()))?;
            r.register(Box::new(m.deliveries.clone()))?;
            r.register(Box::new(m.delivery_attempts.clone()))?;
        }
        Ok(m)
    }
}
