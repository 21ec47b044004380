//! # Gatehouse rules engine
//!
//! Decides what happens to a web request, for a role, at line rate. Pure and synchronous: no
//! sockets, no async runtime, no clock reads (the time is one of the facts).
//!
//! The pieces, in the order a policy is built and used:
//!
//! - [`config`]: the TOML policy as written (roles, categories, list sources, themes, local
//!   entries, the illegal tier), parsed with line numbers for every error;
//! - [`lists`]: list parsers for squidGuard/UT1 folders, hosts files, plain lists, adblock
//!   `||host^`, dnsmasq, URL prefixes, regexes, theme files and e2guardian weighted lists;
//! - [`compile()`]: config and lists into an immutable [`Snapshot`], with a [`LoadReport`];
//! - [`index`] and [`host`]: host suffixes hashed in one pass and looked up in flat tables;
//! - [`search`]: queries pulled out of search-engine URLs, normalised, matched to themes;
//! - [`evaluate()`]: facts in, [`Decision`] out;
//! - [`explain()`](explain::explain): the decision in words and JSON;
//! - [`labelled`]: the themes scored on searches a DSL has labelled;
//! - [`overrides`]: the admin page's edits, laid over the policy file on every load;
//! - [`Live`]: the snapshot in force, swapped atomically on reload;
//! - [`squid`]: Squid's `url_rewrite_program` helper protocol.
//!
//! ```
//! use gatehouse_rules::{compile, config::ConfigFile, evaluate, Facts, Target, Verdict};
//!
//! let toml = r#"
//!     [school]
//!     name = "Example Academy"
//!     timezone = "Europe/London"
//!     [local]
//!     deny = ["games.example"]
//!     [roles.pupil]
//!     default = "allow"
//! "#;
//! let file = ConfigFile::parse("inline.toml".into(), toml.into()).unwrap();
//! let policy = compile(&file).unwrap().snapshot;
//! let facts = Facts {
//!     role: policy.role_id("pupil").unwrap(),
//!     user: None,
//!     client: None,
//!     at: "2026-11-23T10:00:00Z".parse().unwrap(),
//!     method: "GET",
//!     target: Target::Url("https://www.games.example/play"),
//! };
//! assert_eq!(evaluate(&policy, &facts).verdict, Verdict::Block);
//! ```

pub mod accounts;
pub mod ai;
pub mod category;
pub mod compile;
pub mod config;
pub mod content;
pub mod control;
mod error;
pub mod evaluate;
pub mod explain;
pub mod files;
pub mod host;
pub mod index;
pub mod labelled;
pub mod lists;
mod live;
pub mod overrides;
pub mod policy;
pub mod psl;
pub mod search;
mod snapshot;
pub mod squid;
pub mod train;
pub mod url;

pub use category::{CategoryId, CategorySet};
pub use compile::{compile, load, Compiled, LoadReport};
pub use config::{Action, ActionSpec, Severity};
pub use error::{Result, RulesError};
pub use evaluate::{evaluate, Decision, Facts, Rule, SearchQuery, Target, Verdict};
pub use explain::{explain, summarise, Explanation};
pub use live::Live;
pub use policy::RoleId;
pub use snapshot::{NetworkRule, Snapshot};
