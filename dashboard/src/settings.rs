//! `[admin]`: where the admin page listens and with which certificate.
//!
//! ```toml
//! [admin]
//! listen = "10.0.0.5:8443"      # the admin network only; "off" (the default) for none
//! tls = "ca"                    # "ca": a certificate issued by the filtering CA,
//!                               # "files": cert_file + key_file, "none": loopback only
//! hostnames = ["gatehouse.school.internal"]
//! proxy_address = "gatehouse.school.internal:3128"  # for the set-up page and PAC file
//! ```

use crate::Error;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default)]
    pub tls: TlsMode,
    #[serde(default)]
    pub cert_file: Option<String>,
    #[serde(default)]
    pub key_file: Option<String>,
    /// Names (and addresses) the CA-issued certificate covers, beside the listen address.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// The proxy as devices should reach it (`host:port`); default the proxy's listen address.
    #[serde(default)]
    pub proxy_address: Option<String>,
    /// Sign-in through the school's directory (`[identity.ldap]`): the groups whose members
    /// may use the page, and as what (`it`, `dsl`, `viewer`); the first that matches wins.
    #[serde(default)]
    pub directory_roles: Vec<DirectoryRole>,
    /// Local accounts must have a second factor (`gatehouse admin totp NAME`).
    #[serde(default)]
    pub require_totp: bool,
    /// Sign-in with a school account at `[identity.oidc]`'s provider: the groups (the ID
    /// token's `groups`) whose members may use the page, and as what.
    #[serde(default)]
    pub sso_roles: Vec<DirectoryRole>,
    /// This page's callback as registered with the provider:
    /// `https://<this page's name and port>/login/sso/callback`.
    #[serde(default)]
    pub sso_redirect: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryRole {
    /// The group's distinguished name.
    pub group: String,
    pub role: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    #[default]
    Ca,
    Files,
    None,
}

/// Without an `[admin]` section there is no admin page: it listens only where configured.
fn default_listen() -> String {
    "off".to_owned()
}

impl AdminSettings {
    /// Reads `[admin]` (absent: the defaults); `line` is where the section starts, for errors.
    pub fn from_table(table: Option<&toml::Table>, place: &str) -> Result<AdminSettings, Error> {
        let table = table.cloned().unwrap_or_default();
        let s: AdminSettings =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    Error::Config(format!("{place}: [admin]: {}", e.message().trim()))
                })?;
        let addr = s
            .listen_addr()
            .map_err(|m| Error::Config(format!("{place}: [admin] {m}")))?;
        if let Some(addr) = addr {
            if s.tls == TlsMode::None && !addr.ip().is_loopback() {
                return Err(Error::Config(format!(
                    "{place}: [admin] tls = \"none\" is only allowed on a loopback address \
                     ({addr} is not): passwords and session cookies would cross the network in clear"
                )));
            }
        }
        for (list, roles) in [
            ("directory_roles", &s.directory_roles),
            ("sso_roles", &s.sso_roles),
        ] {
            for (i, d) in roles.iter().enumerate() {
                if crate::accounts::Role::parse(&d.role).is_none() {
                    return Err(Error::Config(format!(
                        "{place}: [admin] {list}[{i}].role: {:?} is not it, dsl or viewer",
                        d.role
                    )));
                }
            }
        }
        if !s.sso_roles.is_empty()
            && !s
                .sso_redirect
                .as_deref()
                .is_some_and(|r| r.starts_with("https://") && r.ends_with("/login/sso/callback"))
        {
            return Err(Error::Config(format!(
                "{place}: [admin] sso_redirect: give this page's callback as registered with the \
                 provider, https://<name:port>/login/sso/callback"
            )));
        }
        if s.tls == TlsMode::Files && (s.cert_file.is_none() || s.key_file.is_none()) {
            return Err(Error::Config(format!(
                "{place}: [admin] tls = \"files\" needs cert_file and key_file"
            )));
        }
        Ok(s)
    }

    /// `None` when the admin page is turned off.
    pub fn listen_addr(&self) -> Result<Option<SocketAddr>, String> {
        if self.listen == "off" {
            return Ok(None);
        }
        self.listen.parse().map(Some).map_err(|_| {
            format!(
                "listen = {:?} is not an address:port (or \"off\")",
                self.listen
            )
        })
    }
}
