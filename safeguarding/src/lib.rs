//! The safeguarding path of Gatehouse: every request event reaches the store, every
//! decision the policy marks as alerting reaches the school's Designated Safeguarding Lead,
//! and each site's DSLs get a daily digest, with nothing lost on the way.
//!
//! * [`store`]: the event store, SQLite or PostgreSQL behind one interface;
//! * [`recorder`]: the hand-off from the proxy, spilling to disk when the store lags;
//! * [`alerts`]: which events alert, de-duplication and escalation;
//! * [`outbox`]: the durable queue of messages (a local SQLite file);
//! * [`deliver`]: email over SMTP and webhooks (JSON, Teams, Slack), with retries;
//! * [`digest`]: the daily report, as text, HTML and CSV;
//! * [`pseudonym`]: keyed pseudonyms for all-traffic records.

pub mod alerts;
pub mod config;
pub mod deliver;
pub mod digest;
pub mod event;
pub mod metrics;
pub mod outbox;
pub mod pseudonym;
pub mod recorder;
pub mod store;

pub use event::Event;

/// What can go wrong on the safeguarding path. Each names the place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("event store ({place}): {message}")]
    Store { place: String, message: String },
    #[error("outbox: {0}")]
    Outbox(#[from] rusqlite::Error),
    #[error("delivery to {target}: {message}")]
    Delivery { target: String, message: String },
}

impl Error {
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
    pub fn store(place: impl std::fmt::Display, e: impl std::fmt::Display) -> Error {
        Error::Store {
            place: place.to_string(),
            message: e.to_string(),
        }
    }
}

/// Tells the operator about a problem on the safeguarding path (stderr, which the service
/// manager keeps); these threads have no caller to return an error to.
pub(crate) fn report(message: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "Gatehouse: {message}");
}

/// Lowers the calling thread's scheduling priority (nice 10), for the threads that write
/// events, store them and deliver alerts: on a busy filter they yield the CPU to the
/// threads answering requests, and catch up (or spill to disk) when the rush passes.
#[cfg(target_os = "linux")]
#[expect(
    unsafe_code,
    reason = "setpriority on the calling thread (tid from gettid); no memory is touched"
)]
pub fn background_priority() {
    // SAFETY: both calls take plain integers and affect only this thread's nice value.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

#[cfg(not(target_os = "linux"))]
pub fn background_priority() {}
