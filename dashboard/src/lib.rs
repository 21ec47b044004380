//! # Gatehouse admin page
//!
//! The small web app Gatehouse serves on its admin port: IT tunes the filter live, the
//! Designated Safeguarding Lead triages alerts, and anyone with an account sees it working.
//! Every page is rendered on the server as plain HTML with inline SVG charts; the one
//! stylesheet ships inside the binary, so nothing is fetched from elsewhere.
//!
//! The pieces:
//!
//! - [`accounts`]: admin accounts (argon2) and their roles, IT, DSL and viewer;
//! - [`session`]: sessions in `HttpOnly`, `SameSite=Strict` cookies, CSRF tokens on every form,
//!   login rate limiting;
//! - [`audit`]: the append-only trail of every change (who, when, what, before and after);
//! - [`policy`]: the admin page's edits laid over the policy file, validated, compiled and
//!   swapped in like a reload, and kept across restarts;
//! - [`reviews`]: review requests sent from block pages, approved for a role and a time;
//! - [`vouchers`]: printable guest logins for the guest network;
//! - [`app`]: the routes and the state they share; [`serve`]: the listener (TLS or loopback).

#![expect(
    clippy::result_large_err,
    reason = "handlers return the page to send instead as their error, the axum idiom; one per request"
)]

pub mod accounts;
pub mod app;
pub mod audit;
mod charts;
mod db;
mod html;
pub mod reviews;
pub mod serve;
pub mod session;
pub mod settings;
pub mod totp;
mod views;
pub mod vouchers;

pub use app::{router, Admin, AdminParts, Health};
pub use db::Db;

/// What can go wrong in the admin page's set-up and storage. Each names the place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("admin database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("{0}")]
    Config(String),
    #[error("policy: {0}")]
    Policy(String),
    #[error("{0}")]
    Safeguarding(#[from] gatehouse_safeguarding::Error),
    #[error("admin TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Invalid(String),
}

impl From<gatehouse_rules::RulesError> for Error {
    fn from(e: gatehouse_rules::RulesError) -> Error {
        match e {
            gatehouse_rules::RulesError::Rejected(m) => Error::Invalid(m),
            gatehouse_rules::RulesError::Policy(m) => Error::Policy(m),
            other => Error::Policy(other.to_string()),
        }
    }
}

impl Error {
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

/// The time now as stored: RFC 3339 UTC with milliseconds.
pub fn now_text() -> String {
    gatehouse_safeguarding::store::timestamp(chrono::Utc::now())
}
