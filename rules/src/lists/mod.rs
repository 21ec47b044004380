//! List import: the formats schools already have, read line by line.
//!
//! Each parser turns one line into at most one [`Entry`], or says why it cannot. A bad line
//! never stops a load: the loader counts it, keeps the first few messages with their line
//! numbers for the report, and goes on. Lines that are valid in their format but say nothing
//! Gatehouse can use (an adblock cosmetic rule, a `localhost` line in a hosts file) are
//! counted as *ignored*, not as errors.

mod decode;
mod parse;
pub mod phrases;

pub use decode::{decode, Decoded};
pub use parse::{parse_line, valid_domain, Entry, LineOutcome};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The formats Gatehouse reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ListFormat {
    /// One name a line (UT1 `domains`, blocklistproject `*-nl.txt`); `#` starts a comment.
    Domains,
    /// A hosts file: `0.0.0.0 name [name...]`.
    Hosts,
    /// Adblock Plus syntax; only `||host^` rules that name a whole host are used.
    Adblock,
    /// dnsmasq: `server=/name/`, `address=/name/...`, `local=/name/`.
    Dnsmasq,
    /// `host/path` prefixes, one a line (UT1 `urls`).
    Urls,
    /// Regular expressions over `host/path?query`, one a line (UT1 `expressions`).
    Regex,
    /// A squidGuard category folder holding any of `domains`, `urls`, `expressions`.
    Squidguard,
    /// A folder of squidGuard category folders (the UT1 tree), mapped through a mapping table.
    SquidguardTree,
}

impl ListFormat {
    pub fn name(self) -> &'static str {
        match self {
            ListFormat::Domains => "domains",
            ListFormat::Hosts => "hosts",
            ListFormat::Adblock => "adblock",
            ListFormat::Dnsmasq => "dnsmasq",
            ListFormat::Urls => "urls",
            ListFormat::Regex => "regex",
            ListFormat::Squidguard => "squidguard",
            ListFormat::SquidguardTree => "squidguard-tree",
        }
    }
}

/// How many problems of one file are kept with their line numbers (the rest are counted).
pub const KEPT_PROBLEMS: usize = 5;

/// What loading one list file did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FileReport {
    pub path: PathBuf,
    pub format: String,
    /// The categories (or the tier) the entries went to.
    pub target: String,
    pub entries: usize,
    /// Lines that are broken: counted, the first few kept in `problems`, skipped.
    pub skipped: usize,
    /// Lines valid in their format that Gatehouse has no use for.
    pub ignored: usize,
    /// `file:line: message` for the first few skipped lines.
    pub problems: Vec<String>,
    /// Whole-file warnings: encoding, BOM.
    pub warnings: Vec<String>,
}

impl FileReport {
    pub fn new(path: PathBuf, format: ListFormat, target: String) -> Self {
        FileReport {
            path,
            format: format.name().to_owned(),
            target,
            ..FileReport::default()
        }
    }

    /// Records a skipped line, keeping the message if fewer than [`KEPT_PROBLEMS`] are kept.
    pub fn skip(&mut self, line: usize, message: impl std::fmt::Display) {
        self.skipped += 1;
        if self.problems.len() < KEPT_PROBLEMS {
            self.problems
                .push(format!("{}:{}: {}", self.path.display(), line, message));
        }
    }
}
