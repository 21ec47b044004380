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

/// Tells the operator about a problem on the safeguarding path (the proxy's log, which the
/// service manager keeps); these threads have no caller to return an error to.
pub(crate) fn report(message: &str) {
    tracing::warn!("{message}");
}

/// Lowers the calling thread's scheduling priority (nice 10), for the threads that write
/// events and deliver alerts: on a busy filter they yield the CPU to the threads answering
/// requests, and catch up when the rush passes.
#[cfg(target_os = "linux")]
#[expect(
    unsafe_code,
    reason = "setpriority on the calling thread (tid from gettid); no memory is touched"
)]
pub fn background_priority() -> bool {
    // SAFETY: both calls take plain integers and affect only this thread's nice value.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10) == 0
    }
}

#[cfg(not(target_os = "linux"))]
pub fn background_priority() -> bool {
    true
}

/// Schedules the calling thread `SCHED_IDLE`: it runs only when the CPU has nothing else to
/// do, and a request that arrives takes the CPU from it at once. For the store thread, so
/// that writing events never adds latency to a request; what it cannot write meanwhile
/// waits in the spill file. Leaving it again needs `RLIMIT_NICE` to allow nice 10
/// (`LimitNICE=+10` in the systemd unit), see [`background_priority_from_idle`].
#[cfg(target_os = "linux")]
pub fn idle_priority() -> bool {
    set_scheduler(libc::SCHED_IDLE)
}

#[cfg(not(target_os = "linux"))]
pub fn idle_priority() -> bool {
    false
}

/// Moves the calling thread from `SCHED_IDLE` back to normal scheduling at nice 10 (a
/// backlog the idle CPU could not clear gets a fair share). False if the kernel refuses.
#[cfg(target_os = "linux")]
pub fn background_priority_from_idle() -> bool {
    // The nice value first: leaving SCHED_IDLE is checked against it.
    background_priority() && set_scheduler(libc::SCHED_OTHER)
}

#[cfg(not(target_os = "linux"))]
pub fn background_priority_from_idle() -> bool {
    true
}

/// Sets the calling thread's scheduling policy (static priority 0). False if refused.
#[cfg(target_os = "linux")]
#[expect(
    unsafe_code,
    reason = "sched_setscheduler on the calling thread with a parameter that lives on the stack"
)]
fn set_scheduler(policy: libc::c_int) -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param for the duration of the call; the call
    // affects only this thread's scheduling policy.
    unsafe { libc::sched_setscheduler(libc::gettid(), policy, &param) == 0 }
}
