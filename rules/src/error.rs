//! The one error type of the rules crate.
//!
//! Errors are for configurations and lists that cannot be used at all. A request is never an
//! error: `evaluate` always returns a [`Decision`](crate::Decision). A bad line inside a list is
//! not an error either: it is counted and reported in the [`LoadReport`](crate::LoadReport).

use std::path::PathBuf;

/// Why a policy could not be loaded or compiled. Every variant names the place it comes from.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// A file could not be read at all.
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML or has a field of the wrong type.
    #[error("{path}:{line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// The configuration is well-formed but says something Gatehouse will not do.
    #[error("{path}:{line}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        field: String,
        message: String,
    },
    /// A list source named by the configuration is unusable as a whole (missing, wrong kind).
    #[error("{path}: {message}")]
    Source { path: PathBuf, message: String },
    /// The policy (with its edits) did not load; the policy in force stays.
    #[error("policy: {0}")]
    Policy(String),
    /// An edit asked for something the policy cannot hold (said to the person who asked).
    #[error("{0}")]
    Rejected(String),
    /// An edit made on the admin page no longer fits the policy (a role was removed).
    #[error("admin edits: {field}: {message}")]
    Edit { field: String, message: String },
    /// A compiled structure would exceed a fixed bound (categories, regular expressions...).
    #[error("{what}: {message}")]
    Limit { what: String, message: String },
}

/// Shorthand used throughout the crate.
pub type Result<T, E = RulesError> = std::result::Result<T, E>;
