//! The `[store]` and `[alerts]` sections of the policy file.

use serde::Deserialize;
use std::collections::BTreeMap;

/// `[store]`: where events are kept, and for how long.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `sqlite` (the default, a file in the data folder), `postgres`, or `none` (events go
    /// to the JSON-lines log only, e.g. for a school that ships them to its own SIEM).
    #[serde(default)]
    pub backend: Backend,
    /// SQLite: the database file, relative to the data folder.
    #[serde(default = "default_sqlite_path")]
    pub path: String,
    /// PostgreSQL: a libpq-style connection string without the password, for example
    /// `host=10.0.0.5 user=gatehouse dbname=gatehouse`.
    #[serde(default)]
    pub url: Option<String>,
    /// PostgreSQL: a file holding the password (kept out of the policy file).
    #[serde(default)]
    pub password_file: Option<String>,
    /// Days kept, per kind of record.
    #[serde(default)]
    pub retention_days: Retention,
    /// Replace the user name in all-traffic records with a keyed pseudonym; flagged
    /// records keep it (GDPR data minimisation).
    #[serde(default)]
    pub pseudonymise_traffic: bool,
    /// Events that could not be stored yet, replayed in order; relative to the data folder.
    #[serde(default = "default_spill")]
    pub spill: String,
    /// SQLite: the page cache in MiB (1 to 4096). 16 stores well over 50,000 events a
    /// second for 2,000 users; a trust logging many more people on one SQLite file can
    /// give it more at the cost of that much memory.
    #[serde(default)]
    pub sqlite_cache_mib: CacheMib,
}

/// The SQLite page cache size in MiB, checked when the file is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u32")]
pub struct CacheMib(pub u32);

impl Default for CacheMib {
    fn default() -> Self {
        CacheMib(16)
    }
}

impl TryFrom<u32> for CacheMib {
    type Error = String;
    fn try_from(mib: u32) -> Result<Self, Self::Error> {
        if (1..=4096).contains(&mib) {
            Ok(CacheMib(mib))
        } else {
            Err(format!("sqlite_cache_mib = {mib}: give 1 to 4096 (MiB)"))
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Sqlite,
    Postgres,
    None,
}

/// Days kept per kind of record.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Every request.
    #[serde(default = "default_traffic_days")]
    pub traffic: u32,
    /// Requests a safeguarding rule touched.
    #[serde(default = "default_flagged_days")]
    pub flagged: u32,
    /// Alerts and their delivery records.
    #[serde(default = "default_alert_days")]
    pub alerts: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            traffic: default_traffic_days(),
            flagged: default_flagged_days(),
            alerts: default_alert_days(),
        }
    }
}

fn default_sqlite_path() -> String {
    "events.db".to_owned()
}
fn default_spill() -> String {
    "events-spill.jsonl".to_owned()
}
fn default_traffic_days() -> u32 {
    90
}
fn default_flagged_days() -> u32 {
    730
}
fn default_alert_days() -> u32 {
    2190
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            backend: Backend::Sqlite,
            path: default_sqlite_path(),
            url: None,
            password_file: None,
            retention_days: Retention::default(),
            pseudonymise_traffic: false,
            spill: default_spill(),
            sqlite_cache_mib: CacheMib::default(),
        }
    }
}

/// `[alerts]`: who hears about what, and how.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    /// The admin page's address, linked from every alert.
    #[serde(default)]
    pub admin_url: Option<String>,
    /// An alert waits this long before it is sent, so a burst of the same search arrives
    /// as one message with its count.
    #[serde(default = "default_hold")]
    pub hold_secs: u64,
    /// The same person, theme and term again within this many minutes adds to the open
    /// alert instead of raising a new one.
    #[serde(default = "default_dedup")]
    pub dedup_minutes: u64,
    /// This many hits of one alert within `escalate_minutes` raise its severity one step.
    #[serde(default = "default_escalate_hits")]
    pub escalate_hits: u64,
    #[serde(default = "default_escalate_minutes")]
    pub escalate_minutes: u64,
    /// Local time (`HH:MM`, the school's time zone) the daily digest is sent.
    #[serde(default = "default_digest_time")]
    pub digest_time: String,
    /// Roles whose entries the digest marks as staff.
    #[serde(default = "default_staff_roles")]
    pub staff_roles: Vec<String>,
    /// The mail server alerts and digests go through.
    #[serde(default)]
    pub smtp: Option<SmtpSettings>,
    /// Per site (from `[[network]] site`): its DSLs and webhooks. `default` catches events
    /// from sites without an entry.
    #[serde(default)]
    pub sites: BTreeMap<String, SiteRoute>,
}

fn default_hold() -> u64 {
    3
}
fn default_dedup() -> u64 {
    30
}
fn default_escalate_hits() -> u64 {
    10
}
fn default_escalate_minutes() -> u64 {
    10
}
fn default_digest_time() -> String {
    "16:00".to_owned()
}
fn default_staff_roles() -> Vec<String> {
    vec!["staff".to_owned()]
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            admin_url: None,
            hold_secs: default_hold(),
            dedup_minutes: default_dedup(),
            escalate_hits: default_escalate_hits(),
            escalate_minutes: default_escalate_minutes(),
            digest_time: default_digest_time(),
            staff_roles: default_staff_roles(),
            smtp: None,
            sites: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// `starttls` (the default), `tls` (implicit, port 465) or `none` (a relay on the
    /// school network that does not offer TLS).
    #[serde(default)]
    pub security: SmtpSecurity,
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the SMTP password.
    #[serde(default)]
    pub password_file: Option<String>,
    /// A CA certificate (PEM) trusted for the mail server besides Mozilla's roots, e.g. the
    /// school's own CA.
    #[serde(default)]
    pub ca_file: Option<String>,
    pub from: String,
}

fn default_smtp_port() -> u16 {
    587
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    #[default]
    Starttls,
    Tls,
    None,
}

/// Where one site's alerts and digest go.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteRoute {
    /// The site's Designated Safeguarding Leads (email addresses).
    #[serde(default)]
    pub dsl: Vec<String>,
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    /// `json` (Gatehouse's own, signed when `secret_file` is set), `teams` or `slack`.
    #[serde(default)]
    pub format: WebhookFormat,
    /// A file holding the HMAC-SHA256 key for the `X-Gatehouse-Signature` header.
    #[serde(default)]
    pub secret_file: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    #[default]
    Json,
    Teams,
    Slack,
}

impl AlertSettings {
    /// The route for `site`: its own entry, else `default`.
    pub fn route(&self, site: Option<&str>) -> Option<&SiteRoute> {
        site.and_then(|s| self.sites.get(s))
            .or_else(|| self.sites.get("default"))
    }

    /// `digest_time` as (hour, minute).
    pub fn digest_at(&self) -> Result<(u32, u32), String> {
        let (h, m) = self
            .digest_time
            .split_once(':')
            .ok_or_else(|| format!("digest_time {:?}: expected HH:MM", self.digest_time))?;
        match (h.parse::<u32>(), m.parse::<u32>()) {
            (Ok(h), Ok(m)) if h < 24 && m < 60 => Ok((h, m)),
            _ => Err(format!(
                "digest_time {:?}: expected HH:MM",
                self.digest_time
            )),
        }
    }
}
