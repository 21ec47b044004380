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
