//! The policy configuration as written in TOML (`deploy/gatehouse.toml` is the commented
//! example). These types only describe the file; [`crate::compile`] checks what they say
//! and turns it into a [`crate::Snapshot`].

use crate::error::{Result, RulesError};
use crate::lists::ListFormat;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// What to do with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Let it through.
    Allow,
    /// Let it through and mark the log entry as sensitive.
    Log,
    /// Show a warning page with a "continue" link.
    Warn,
    /// Show the block page.
    Block,
}

/// How urgently the DSL hears about a hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// An action, optionally with an alert: `"block"` or `{ action = "block", alert = "high" }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "an action (\"allow\", \"log\", \"warn\" or \"block\") or a table { action = \"...\", alert = \"low|medium|high|critical\" }"
)]
pub enum ActionSpec {
    Plain(Action),
    Full {
        action: Action,
        #[serde(default)]
        alert: Option<Severity>,
    },
}

impl ActionSpec {
    pub fn action(self) -> Action {
        match self {
            ActionSpec::Plain(a) | ActionSpec::Full { action: a, .. } => a,
        }
    }
    pub fn alert(self) -> Option<Severity> {
        match self {
            ActionSpec::Plain(_) => None,
            ActionSpec::Full { alert, .. } => alert,
        }
    }
}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub school: School,
    /// Folder that list and theme paths are relative to (itself relative to this file).
    #[serde(default)]
    pub lists_dir: Option<String>,
    /// The Public Suffix List, used to refuse list entries that would block a whole suffix.
    #[serde(default)]
    pub public_suffix_list: Option<String>,
    #[serde(default, rename = "network")]
    pub networks: Vec<Spanned<Network>>,
    /// Categories a school adds to the built-in taxonomy.
    #[serde(default)]
    pub categories: BTreeMap<String, Spanned<CategoryDef>>,
    /// Tables from imported list names onto Gatehouse categories (`ignore` skips a list).
    #[serde(default)]
    pub mapping: BTreeMap<String, BTreeMap<String, Spanned<String>>>,
    #[serde(default, rename = "source")]
    pub sources: Vec<Spanned<Source>>,
    #[serde(default)]
    pub illegal: Option<Spanned<toml::Table>>,
    #[serde(default)]
    pub local: Local,
    #[serde(default)]
    pub themes: BTreeMap<String, Spanned<ThemeDef>>,
    pub roles: BTreeMap<String, Spanned<RoleDef>>,
    /// AI chat services added to the built-in table, or replacing one of the same name.
    #[serde(default, rename = "ai_service")]
    pub ai_services: Vec<Spanned<AiServiceDef>>,
    /// The school's own Microsoft and Google accounts, for roles limited to them.
    #[serde(default)]
    pub accounts: Option<Spanned<AccountsDef>>,
    /// Sections read by other parts of Gatehouse (the proxy, the store, alerts, the admin page).
    #[serde(default)]
    pub proxy: Option<toml::Table>,
    #[serde(default)]
    pub store: Option<toml::Table>,
    #[serde(default)]
    pub alerts: Option<toml::Table>,
    #[serde(default)]
    pub admin: Option<toml::Table>,
    #[serde(default)]
    pub identity: Option<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct School {
    pub name: String,
    /// IANA time zone that time bands are read in, e.g. `Europe/London`.
    pub timezone: Spanned<String>,
    /// Where blocked requests are sent by `gatehouse squid-helper`.
    #[serde(default)]
    pub block_page: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub cidr: String,
    pub role: String,
    #[serde(default)]
    pub site: Option<String>,
    /// Clients here must log in to the proxy; their login decides the role.
    #[serde(default)]
    pub login: bool,
    /// Devices here sign in on the sign-in page (`[identity.oidc]`) before anything else
    /// than the page and the school's identity provider is reached.
    #[serde(default)]
    pub signin: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryDef {
    pub description: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub format: ListFormat,
    pub path: String,
    /// The category of every entry (all formats but `squidguard-tree`).
    #[serde(default)]
    pub category: Option<String>,
    /// The mapping table for a `squidguard-tree`.
    #[serde(default)]
    pub mapping: Option<String>,
}

/// The illegal tier: only `sources`. Anything else in `[illegal]` is refused.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Illegal {
    #[serde(default)]
    pub sources: Vec<Source>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Local {
    /// Hosts (`example.org`) or URL prefixes (`example.org/path`) allowed for every role.
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    /// Hosts or URL prefixes blocked for every role.
    #[serde(default)]
    pub deny: Vec<Spanned<String>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThemeDef {
    #[serde(default)]
    pub description: Option<String>,
    /// A Gatehouse theme file (one phrase a line), or a folder of them, one per language
    /// (`themes/suicide`, holding `en.txt`, `pl.txt`, `en-slang.txt` ...). Without it and
    /// without `weighted`, the folder `themes/<name>` is read.
    #[serde(default)]
    pub file: Option<String>,
    /// Score at which the theme's combinations fire (50 unless set).
    #[serde(default)]
    pub threshold: Option<i32>,
    /// A theme of disclosures (a child saying harm is happening to them): context never
    /// lowers it, and no role may block or warn on it, so a pupil asking for help is never
    /// turned away.
    #[serde(default)]
    pub disclosure: bool,
    /// A block page for this theme shows where a child can get help now (Childline,
    /// Samaritans, Shout, CEOP).
    #[serde(default)]
    pub help: bool,
    /// e2guardian weighted phrase lists scored into this theme.
    #[serde(default)]
    pub weighted: Vec<WeightedSource>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedSource {
    pub path: String,
    /// Score at which the theme fires (e2guardian's `naughtynesslimit`).
    #[serde(default = "default_threshold")]
    pub threshold: i32,
}

fn default_threshold() -> i32 {
    50
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDef {
    #[serde(default)]
    pub description: Option<String>,
    /// For anything this role does not name.
    pub default: ActionSpec,
    #[serde(default = "yes")]
    pub safesearch: bool,
    #[serde(default = "yes")]
    pub decrypt_https: bool,
    #[serde(default)]
    pub categories: BTreeMap<String, Spanned<ActionSpec>>,
    #[serde(default)]
    pub themes: BTreeMap<String, Spanned<ActionSpec>>,
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    #[serde(default)]
    pub deny: Vec<Spanned<String>>,
    #[serde(default, rename = "time_band")]
    pub time_bands: Vec<Spanned<TimeBandDef>>,
    /// What a download of each kind (`executable`, `installer`, `torrent`, `archive`,
    /// `disk-image`, `video`, `audio`, `streaming`), read from its first bytes, does:
    /// kinds not named are allowed.
    #[serde(default)]
    pub files: BTreeMap<String, Spanned<ActionSpec>>,
    /// The largest download, in MiB; a larger one is refused before it starts (when its
    /// length is known) or cut where it passes the limit.
    #[serde(default)]
    pub max_download_mib: Option<Spanned<u64>>,
    /// What reading a page's text may do: `alert` (the page streams, never delayed; a hit
    /// is reported), `hold` (the first part of the page is held and read first: a theme
    /// the role blocks replaces it with the block page) or `off`.
    #[serde(default)]
    pub page_text: PageText,
    /// The AI chat services this role may use (names from the built-in table or
    /// `[[ai_service]]`): allowed and read; every other AI service is blocked. Left out,
    /// the categories decide.
    #[serde(default)]
    pub ai_services: Option<Spanned<Vec<String>>>,
    /// Signing in to Microsoft and Google is limited to the school's own accounts
    /// (`[accounts]`), by the headers both companies read from a school's filter.
    #[serde(default)]
    pub school_accounts_only: Option<Spanned<bool>>,
}

/// An AI chat service as a policy writes it (see `gatehouse_rules::ai`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiServiceDef {
    pub name: String,
    #[serde(default)]
    pub label: Option<String>,
    pub hosts: Vec<String>,
    #[serde(default)]
    pub chat_paths: Vec<String>,
    #[serde(default)]
    pub answer_keys: Vec<String>,
    #[serde(default)]
    pub websocket: bool,
}

/// The school's own accounts: Microsoft Entra tenants (their domains, and the tenant's
/// directory id) and Google Workspace domains.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsDef {
    #[serde(default)]
    pub microsoft: Vec<String>,
    #[serde(default)]
    pub microsoft_tenant_id: Option<String>,
    #[serde(default)]
    pub google: Vec<String>,
}

/// How a role's pages are read for themes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PageText {
    #[default]
    Alert,
    Hold,
    Off,
}

fn yes() -> bool {
    true
}

/// A time of the week when some categories get another action (`social-media` allowed for
/// staff 12:00-13:30 on weekdays).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeBandDef {
    #[serde(default)]
    pub name: Option<String>,
    pub categories: Vec<String>,
    pub action: ActionSpec,
    /// `mon-fri`, `sat,sun`, `weekdays`, `weekends` or `all`.
    #[serde(default = "all_days")]
    pub days: String,
    /// `HH:MM`, local time.
    pub from: String,
    /// `HH:MM`, local time; `24:00` is the end of the day.
    pub to: String,
}

fn all_days() -> String {
    "all".to_owned()
}

/// A configuration file read from disk, with what is needed to report errors by line.
#[derive(Debug)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub text: String,
    pub config: Config,
}

impl ConfigFile {
    /// Reads and parses a configuration file (syntax and types only).
    pub fn load(path: &Path) -> Result<ConfigFile> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Io {
            path: path.to_owned(),
            source,
        })?;
        ConfigFile::parse(path.to_owned(), text)
    }

    /// Parses configuration text; `path` names it in errors and anchors relative paths.
    pub fn parse(path: PathBuf, text: String) -> Result<ConfigFile> {
        let config: Config = toml::from_str(&text).map_err(|e| RulesError::Syntax {
            line: e.span().map_or(0, |s| line_of(&text, s.start)),
            message: e.message().trim().to_owned(),
            path: path.clone(),
        })?;
        Ok(ConfigFile { path, text, config })
    }

    /// The 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        line_of(&self.text, offset)
    }

    /// An [`RulesError::Invalid`] at `offset`.
    pub fn invalid(
        &self,
        offset: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> RulesError {
        RulesError::Invalid {
            path: self.path.clone(),
            line: self.line(offset),
            field: field.into(),
            message: message.into(),
        }
    }

    /// The folder list paths are relative to.
    pub fn lists_dir(&self) -> PathBuf {
        let base = self.path.parent().unwrap_or(Path::new("."));
        match &self.config.lists_dir {
            Some(dir) => base.join(dir),
            None => base.to_owned(),
        }
    }
}

/// The 1-based line of a byte offset in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
