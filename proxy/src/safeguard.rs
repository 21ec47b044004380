//! Wiring the safeguarding path into the proxy: from the `[store]` and `[alerts]` sections
//! to the threads that store events, raise alerts and deliver them. The proxy's event
//! writer hands every batch to [`Pipeline::take`]; nothing here runs on the request path.

use anyhow::Context as _;
use gatehouse_rules::config::ConfigFile;
use gatehouse_safeguarding::alerts::AlertEngine;
use gatehouse_safeguarding::config::{AlertSettings, Backend, StoreSettings};
use gatehouse_safeguarding::deliver::Deliverer;
use gatehouse_safeguarding::metrics::Metrics;
use gatehouse_safeguarding::outbox::Outbox;
use gatehouse_safeguarding::pseudonym::Pseudonyms;
use gatehouse_safeguarding::recorder::{Recorder, StoreThread};
use gatehouse_safeguarding::store::Store;
use gatehouse_safeguarding::Event;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The parsed `[store]` and `[alerts]` sections.
#[derive(Clone, Debug)]
pub struct Sections {
    pub store: StoreSettings,
    pub alerts: AlertSettings,
    pub data_dir: PathBuf,
    pub timezone: chrono_tz::Tz,
    pub school: String,
}

impl Sections {
    pub fn from_config(file: &ConfigFile, data_dir: &Path) -> anyhow::Result<Sections> {
        let section = |name: &str, table: &Option<toml::Table>| {
            let at = file
                .text
                .find(&format!("[{name}"))
                .map_or(0, |i| file.line(i));
            (table.clone().unwrap_or_default(), at)
        };
        let (store, at) = section("store", &file.config.store);
        let store: StoreSettings = toml::Value::Table(store)
            .try_into()
            .with_context(|| format!("{}:{at}: [store]", file.path.display()))?;
        let (alerts, at) = section("alerts", &file.config.alerts);
        let alerts: AlertSettings = toml::Value::Table(alerts)
            .try_into()
            .with_context(|| format!("{}:{at}: [alerts]", file.path.display()))?;
        alerts
            .digest_at()
            .map_err(|e| anyhow::anyhow!("{}:{at}: [alerts] {e}", file.path.display()))?;
        let timezone = file
            .config
            .school
            .timezone
            .get_ref()
            .parse()
            .unwrap_or(chrono_tz::Europe::London);
        Ok(Sections {
            store,
            alerts,
            data_dir: data_dir.to_owned(),
            timezone,
            school: file.config.school.name.clone(),
        })
    }

    /// A fresh connection to the event store (for the CLI and the digest).
    pub fn open_store(&self) -> anyhow::Result<Store> {
        Ok(Store::open(&self.store, &self.data_dir)?)
    }

    fn opener(&self) -> Box<dyn FnMut() -> Result<Store, gatehouse_safeguarding::Error> + Send> {
        let (settings, dir) = (self.store.clone(), self.data_dir.clone());
        Box::new(move || Store::open(&settings, &dir))
    }

    pub fn pseudonyms(&self) -> anyhow::Result<Pseudonyms> {
        Ok(Pseudonyms::load_or_create(
            &self.data_dir.join("pseudonym.key"),
        )?)
    }
}

/// The running safeguarding path.
#[derive(Debug)]
pub struct Pipeline {
    /// None when `[store] backend = "none"`.
    recorder: Option<Recorder>,
    alerts: Mutex<AlertEngine>,
    pseudonyms: Option<Pseudonyms>,
    stop: Arc<AtomicBool>,
    deliverer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Pipeline {
    pub fn start(sections: &Sections, registry: &prometheus::Registry) -> anyhow::Result<Pipeline> {
        let metrics = Arc::new(Metrics::new(Some(registry))?);
        let retention = sections.store.retention_days;
        let recorder = if sections.store.backend == Backend::None {
            None
        } else {
            Some(Recorder::start(
                &sections.data_dir.join(&sections.store.spill),
                StoreThread {
                    open: sections.opener(),
                    housekeeping: Box::new(move |store: &mut Store| {
                        let _ = store.enforce_retention(&retention, chrono::Utc::now());
                    }),
                    catch_up_bytes: gatehouse_safeguarding::recorder::CATCH_UP_BYTES,
                },
                Arc::clone(&metrics),
            )?)
        };
        let outbox_path = sections.data_dir.join("outbox.db");
        let now_ms = chrono::Utc::now().timestamp_millis();
        let engine = AlertEngine::new(
            sections.alerts.clone(),
            Outbox::open(&outbox_path)?,
            Arc::clone(&metrics),
            now_ms,
        )?;
        let stop = Arc::new(AtomicBool::new(false));
        let deliverer = Deliverer {
            outbox: Outbox::open(&outbox_path)?,
            settings: sections.alerts.clone(),
            tz: sections.timezone,
            data_dir: sections.data_dir.clone(),
            metrics,
            store: sections.opener(),
            school: sections.school.clone(),
            alert_retention_days: sections.store.retention_days.alerts,
        }
        .spawn(Arc::clone(&stop))?;
        let pseudonyms = if sections.store.pseudonymise_traffic {
            Some(sections.pseudonyms()?)
        } else {
            None
        };
        Ok(Pipeline {
            recorder,
            alerts: Mutex::new(engine),
            pseudonyms,
            stop,
            deliverer: Mutex::new(Some(deliverer)),
        })
    }

    /// Before anything is written: all-traffic records lose the user's name when the policy
    /// says so (flagged ones keep it).
    pub fn prepare(&self, batch: &mut [Event]) {
        if let Some(p) = &self.pseudonyms {
            for e in batch.iter_mut().filter(|e| !e.flagged()) {
                if let Some(user) = e.user.take() {
                    e.user = Some(p.of(&user));
                }
            }
        }
    }

    /// Raises one event's alert now, durably (the outbox is synced before this returns):
    /// called off the async workers before the response goes back, so an alert the person
    /// saw a block page for survives even a crash right after.
    pub fn raise(&self, event: &Event) {
        if let Ok(mut engine) = self.alerts.lock() {
            let now = chrono::Utc::now().timestamp_millis();
            if let Err(e) = engine.observe(std::slice::from_ref(event), now) {
                tracing::error!("alerts: {e}");
            }
        }
    }

    /// Hands a batch to the store, with the JSON lines it was written to the events log as
    /// (appended to the spill file as they are if the store is behind). Its alerts were
    /// raised on the request path, by `raise`, before each response left.
    pub fn take(&self, batch: Vec<Event>, lines: &[u8]) {
        if let Some(r) = &self.recorder {
            r.record_rendered(batch, lines);
        }
    }

    /// Stores what is queued and stops the threads (at shutdown).
    pub fn close(&self) {
        if let Some(r) = &self.recorder {
            r.close();
        }
        self.stop.store(true, Ordering::Release);
        let handle = self.deliverer.lock().ok().and_then(|mut d| d.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}
