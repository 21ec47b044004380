//! Edits made on the admin page, kept in their own file beside the policy and laid over it on
//! every load. The policy file stays the school's own (comments and all); the edits file says
//! only what changed, so an edit survives a restart and a reload, and IT can read or delete it.
//!
//! ```
//! use gatehouse_rules::{compile, config::ConfigFile, overrides::{Overrides, Setting}, Action};
//!
//! let toml = "[school]\nname = \"A\"\ntimezone = \"Europe/London\"\n[roles.pupil]\ndefault = \"allow\"\n";
//! let mut file = ConfigFile::parse("inline.toml".into(), toml.into()).unwrap();
//! let mut edits = Overrides::default();
//! edits.role("pupil").categories.insert("games".into(), Setting::new(Action::Block));
//! edits.apply(&mut file.config, "2026-11-23T10:00:00Z".parse().unwrap()).unwrap();
//! assert!(compile(&file).is_ok());
//! ```

use crate::config::{Action, ActionSpec, Config, Severity, TimeBandDef};
use crate::error::{Result, RulesError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toml::Spanned;

/// Everything the admin page has changed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, RoleEdits>,
    #[serde(default)]
    pub local: LocalEdits,
    /// Replaces `[proxy] no_decrypt` when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_decrypt: Option<Vec<String>>,
    /// Entries allowed for one role until a time (approved review requests).
    #[serde(default, rename = "approval", skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
}

/// What changed for one role.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleEdits {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub categories: BTreeMap<String, Setting>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub themes: BTreeMap<String, Setting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safesearch: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decrypt_https: Option<bool>,
    /// Replaces the role's time bands when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_bands: Option<Vec<TimeBandDef>>,
    /// How the role's pages are read (`alert`, `hold`, `off`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_text: Option<crate::config::PageText>,
    /// What a download of each kind does (kinds by name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, Setting>,
    /// The largest download in MiB; 0 removes the role's limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_download_mib: Option<u64>,
    /// Whether the role may use only the AI services of `ai_services` (every other one
    /// blocked); `false`: the categories decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ai_services: Vec<String>,
}

/// An action and an optional alert severity, as one cell of the roles-by-categories grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<Severity>,
}

impl Setting {
    pub fn new(action: Action) -> Setting {
        Setting {
            action,
            alert: None,
        }
    }
    fn spec(self) -> ActionSpec {
        ActionSpec::Full {
            action: self.action,
            alert: self.alert,
        }
    }
}

/// Local entries added to or removed from `[local]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalEdits {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    /// Entries of the policy file's `[local]` that no longer apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
}

/// A review request approved for one role until a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub role: String,
    /// A host or URL prefix, as in `[local] allow`.
    pub entry: String,
    pub until: DateTime<Utc>,
    #[serde(default)]
    pub review: Option<i64>,
}

impl Overrides {
    /// Reads an edits file; a missing file is no edits.
    pub fn load(path: &std::path::Path) -> Result<Overrides> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Overrides::default()),
            Err(source) => {
                return Err(RulesError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        toml::from_str(&text).map_err(|e| RulesError::Syntax {
            line: e
                .span()
                .map_or(0, |s| crate::config::line_of(&text, s.start)),
            message: e.message().trim().to_owned(),
            path: path.to_owned(),
        })
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        *self == Overrides::default()
    }

    /// The edits of one role, created empty when there are none yet.
    pub fn role(&mut self, name: &str) -> &mut RoleEdits {
        self.roles.entry(name.to_owned()).or_default()
    }

    /// Approvals still in force at `now`.
    pub fn approvals_at(&self, now: DateTime<Utc>) -> impl Iterator<Item = &Approval> {
        self.approvals.iter().filter(move |a| a.until > now)
    }

    /// The earliest time an approval in force runs out: the policy must be compiled again then.
    pub fn next_expiry(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.approvals_at(now).map(|a| a.until).min()
    }

    /// Lays the edits over a parsed policy. A role the policy no longer has is an error that
    /// names it; categories, themes and entries are checked by [`crate::compile()`] as usual.
    pub fn apply(&self, config: &mut Config, now: DateTime<Utc>) -> Result<()> {
        let unknown_role = |name: &str, field: String| RulesError::Edit {
            field,
            message: format!("{name:?} is not a role of the policy"),
        };
        for (name, edits) in &self.roles {
            let role = config
                .roles
                .get_mut(name)
                .ok_or_else(|| unknown_role(name, format!("roles.{name}")))?;
            let role = role.get_mut();
            for (category, setting) in &edits.categories {
                role.categories
                    .insert(category.clone(), Spanned::new(0..0, setting.spec()));
            }
            for (theme, setting) in &edits.themes {
                role.themes
                    .insert(theme.clone(), Spanned::new(0..0, setting.spec()));
            }
            if let Some(on) = edits.safesearch {
                role.safesearch = on;
            }
            if let Some(on) = edits.decrypt_https {
                role.decrypt_https = on;
            }
            if let Some(mode) = edits.page_text {
                role.page_text = mode;
            }
            for (kind, setting) in &edits.files {
                role.files
                    .insert(kind.clone(), Spanned::new(0..0, setting.spec()));
            }
            match edits.max_download_mib {
                Some(0) => role.max_download_mib = None,
                Some(mib) => role.max_download_mib = Some(Spanned::new(0..0, mib)),
                None => {}
            }
            match edits.ai_only {
                Some(false) => role.ai_services = None,
                Some(true) => {
                    role.ai_services = Some(Spanned::new(0..0, edits.ai_services.clone()));
                }
                None => {}
            }
            if let Some(bands) = &edits.time_bands {
                role.time_bands = bands
                    .iter()
                    .map(|b| Spanned::new(0..0, b.clone()))
                    .collect();
            }
        }
        let local = &mut config.local;
        local
            .allow
            .retain(|e| !self.local.removed.contains(e.get_ref()));
        local
            .deny
            .retain(|e| !self.local.removed.contains(e.get_ref()));
        local.allow.extend(
            self.local
                .allow
                .iter()
                .map(|e| Spanned::new(0..0, e.clone())),
        );
        local.deny.extend(
            self.local
                .deny
                .iter()
                .map(|e| Spanned::new(0..0, e.clone())),
        );
        for approval in self.approvals_at(now) {
            let role = config.roles.get_mut(&approval.role).ok_or_else(|| {
                unknown_role(&approval.role, format!("approval {}", approval.entry))
            })?;
            role.get_mut()
                .allow
                .push(Spanned::new(0..0, approval.entry.clone()));
        }
        Ok(())
    }
}
