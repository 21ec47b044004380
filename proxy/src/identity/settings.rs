//! The `[identity]` section of the policy file: where names come from besides the proxy's
//! own users file. Every part is optional; a school without a directory names people by
//! proxy login and network, as before.
//!
//! ```toml
//! [identity.radius]            # 802.1X Wi-Fi: the controller's accounting names devices
//! listen = "0.0.0.0:1813"
//! secret_file = "radius.secret" # owner-only; relative to this file
//! clients = ["10.0.0.2/32"]     # who may send accounting
//!
//! [identity.ldap]              # proxy logins checked against Active Directory or OpenLDAP
//! url = "ldaps://dc1.school.internal"
//! ca = "school-ca.pem"
//! bind_dn = "CN=gatehouse,OU=Service,DC=school,DC=internal"
//! bind_password_file = "ldap.secret"
//! base_dn = "DC=school,DC=internal"
//! user_filter = "(sAMAccountName={user})"
//! roles = [{ group = "CN=Staff,OU=Groups,DC=school,DC=internal", role = "staff" },
//!          { group = "CN=Pupils,OU=Groups,DC=school,DC=internal", role = "pupil" }]
//!
//! [identity.people]            # names, year groups and forms from the MIS
//! csv = "people.csv"
//! ```

use anyhow::{bail, Context as _};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySettings {
    #[serde(default)]
    pub radius: Option<RadiusSettings>,
    #[serde(default)]
    pub ldap: Option<LdapSettings>,
    #[serde(default)]
    pub people: Option<PeopleSettings>,
    #[serde(default)]
    pub kerberos: Option<KerberosSettings>,
    #[serde(default)]
    pub oidc: Option<OidcSettings>,
}

/// The sign-in page: OpenID Connect with the school's Microsoft Entra ID or Google
/// Workspace, for devices on networks marked `signin = true`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The provider's issuer, exactly as its discovery document gives it:
    /// `https://login.microsoftonline.com/<tenant id>/v2.0` (Entra ID, one tenant) or
    /// `https://accounts.google.com`.
    pub issuer: String,
    pub client_id: String,
    /// A file holding the client secret, readable by its owner only.
    pub client_secret_file: String,
    /// The name devices reach the sign-in page at, through the filter. Register
    /// `https://<portal_host>/signin/callback` with the provider as the redirect URI.
    pub portal_host: String,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The ID token's claim that is the account: `preferred_username` (Entra ID), `email`
    /// (Google).
    #[serde(default = "default_account_claim")]
    pub account_claim: String,
    /// The school's domains: `amy.pupil@school.org` is the account `amy.pupil` (as the
    /// people table and the directory name it). Accounts of other domains keep theirs.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Roles from the token: a group (`groups` claim, Entra's group object IDs) or a
    /// domain (Google's `hd` claim, else the account's domain); the first that matches
    /// wins. The people table's role, where it gives one, comes first.
    #[serde(default)]
    pub roles: Vec<ClaimRole>,
    /// The role of a person none of those give one; absent: such a sign-in is refused.
    #[serde(default)]
    pub default_role: Option<String>,
    /// A device stays signed in this long at most...
    #[serde(default = "default_signin_hours")]
    pub hours: u64,
    /// ...and this long with no request.
    #[serde(default = "default_idle_minutes")]
    pub idle_minutes: u64,
    /// Hosts a device may reach before it signs in, besides the provider's own (the
    /// sign-in pages' assets: `aadcdn.msauth.net`, `ssl.gstatic.com`, ...). A name here
    /// covers its subdomains.
    #[serde(default)]
    pub allow_before_signin: Vec<String>,
    /// A certificate (PEM chain) and key for `portal_host` from a public CA, so devices
    /// without the filtering CA (BYOD, guests) can open the page; absent: the filtering
    /// CA's certificate, as for any intercepted site.
    #[serde(default)]
    pub portal_cert: Option<String>,
    #[serde(default)]
    pub portal_key: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRole {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    pub role: String,
    #[serde(default)]
    pub site: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KerberosSettings {
    /// The school's realms (`SCHOOL.INTERNAL`); a principal of any other names no one.
    pub realms: Vec<String>,
    /// Offer `Basic` beside `Negotiate` (machines not in the domain, guests).
    #[serde(default = "default_true")]
    pub basic_fallback: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusSettings {
    /// UDP address the accounting listener binds (1813 is accounting's port).
    pub listen: SocketAddr,
    /// A file holding the shared secret, readable by its owner only.
    pub secret_file: String,
    /// Networks whose packets are read (the Wi-Fi controllers, the 802.1X server); every
    /// other sender is dropped unanswered.
    pub clients: Vec<ipnet::IpNet>,
    /// A device with no accounting for this long is no longer named (a lost Stop).
    #[serde(default = "default_session_hours")]
    pub session_hours: u64,
    /// The school's realms and domains (`SCHOOL` for `SCHOOL\\amy`, `school.org` for
    /// `amy@school.org`); a User-Name in any other realm names no one. Names without a
    /// realm are always read.
    #[serde(default)]
    pub realms: Vec<String>,
    /// Refuse packets without `Event-Timestamp` (a replay of any age could not be told
    /// apart). Turn off only for a controller that never sends it.
    #[serde(default = "default_true")]
    pub require_event_timestamp: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapSettings {
    /// `ldaps://host[:port]`, or `ldap://host[:port]` with `starttls = true`. Plain
    /// `ldap://` without StartTLS is refused (passwords would cross the network in clear)
    /// unless the server is this machine.
    pub url: String,
    #[serde(default)]
    pub starttls: bool,
    /// The school's CA (PEM) that signed the directory's certificate; absent: the public
    /// roots.
    #[serde(default)]
    pub ca: Option<String>,
    /// The account Gatehouse searches with, and a file holding its password (owner-only).
    pub bind_dn: String,
    pub bind_password_file: String,
    /// Where people and groups are searched.
    pub base_dn: String,
    /// `{user}` is replaced by the login name, escaped (RFC 4515).
    #[serde(default = "default_user_filter")]
    pub user_filter: String,
    /// Group memberships are followed through groups inside groups (AD's nested groups).
    #[serde(default = "default_true")]
    pub nested_groups: bool,
    /// Attributes read for the person's name, year group and form.
    #[serde(default = "default_name_attribute")]
    pub name_attribute: String,
    #[serde(default)]
    pub year_attribute: Option<String>,
    #[serde(default)]
    pub form_attribute: Option<String>,
    /// Groups and the role (and site) their members get; the first that matches wins.
    #[serde(default)]
    pub roles: Vec<GroupRole>,
    /// The role of a person in none of those groups; absent: such a login is refused.
    #[serde(default)]
    pub default_role: Option<String>,
    /// A verified login is trusted this long before the directory is asked again (when
    /// the directory cannot be reached, people already known keep their identity).
    #[serde(default = "default_cache_minutes")]
    pub cache_minutes: u64,
    /// Seconds to wait for the directory.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The people table from the directory itself: every entry this filter finds under
    /// `base_dn` (e.g. `(&(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))`
    /// for AD's enabled users) is read, with its role from the groups above, every
    /// `sync_minutes`. Absent: no sync (use `[identity.people] csv`).
    #[serde(default)]
    pub people_filter: Option<String>,
    /// The attribute that holds the login name (`sAMAccountName` in AD).
    #[serde(default = "default_account_attribute")]
    pub account_attribute: String,
    #[serde(default = "default_sync_minutes")]
    pub sync_minutes: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRole {
    /// The group's distinguished name.
    pub group: String,
    pub role: String,
    #[serde(default)]
    pub site: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeopleSettings {
    /// A CSV export from the MIS: `account,name,year,form,role,left` with that header
    /// (columns in any order; `year`, `form`, `role` and `left` may be empty or absent).
    pub csv: String,
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email"].map(str::to_owned).to_vec()
}
fn default_account_claim() -> String {
    "preferred_username".to_owned()
}
fn default_signin_hours() -> u64 {
    8
}
fn default_idle_minutes() -> u64 {
    60
}
fn default_session_hours() -> u64 {
    12
}
fn default_user_filter() -> String {
    "(uid={user})".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_name_attribute() -> String {
    "displayName".to_owned()
}
fn default_cache_minutes() -> u64 {
    10
}
fn default_timeout_secs() -> u64 {
    5
}
fn default_account_attribute() -> String {
    "uid".to_owned()
}
fn default_sync_minutes() -> u64 {
    60
}

impl IdentitySettings {
    /// Reads `[identity]`; each wrong value is an error that names its place.
    pub fn from_table(table: Option<&toml::Table>) -> anyhow::Result<IdentitySettings> {
        let Some(table) = table else {
            return Ok(IdentitySettings::default());
        };
        let settings: IdentitySettings = toml::Value::Table(table.clone())
            .try_into()
            .context("[identity]")?;
        if let Some(r) = &settings.radius {
            if r.clients.is_empty() {
                bail!("[identity.radius] clients: name the controllers that send accounting");
            }
            if r.session_hours == 0 {
                bail!("[identity.radius] session_hours: must be at least 1");
            }
        }
        if let Some(k) = &settings.kerberos {
            if k.realms.is_empty() {
                bail!("[identity.kerberos] realms: name the school's realm, e.g. SCHOOL.INTERNAL");
            }
        }
        if let Some(o) = &settings.oidc {
            o.check()?;
        }
        if let Some(l) = &settings.ldap {
            l.check()?;
            if l.people_filter.is_some() && settings.people.is_some() {
                bail!(
                    "[identity.ldap] people_filter and [identity.people] csv both give the \
                     people table: keep one"
                );
            }
        }
        Ok(settings)
    }

    /// Every role the section names, with where it is named, to check against the policy.
    pub fn roles(&self) -> Vec<(String, &str)> {
        let mut named: Vec<(String, &str)> = Vec::new();
        if let Some(l) = &self.ldap {
            named.extend(
                l.roles
                    .iter()
                    .enumerate()
                    .map(|(i, g)| (format!("[identity.ldap] roles[{i}].role"), g.role.as_str())),
            );
            if let Some(d) = &l.default_role {
                named.push(("[identity.ldap] default_role".to_owned(), d.as_str()));
            }
        }
        if let Some(o) = &self.oidc {
            named.extend(
                o.roles
                    .iter()
                    .enumerate()
                    .map(|(i, g)| (format!("[identity.oidc] roles[{i}].role"), g.role.as_str())),
            );
            if let Some(d) = &o.default_role {
                named.push(("[identity.oidc] default_role".to_owned(), d.as_str()));
            }
        }
        named
    }
}

impl LdapSettings {
    fn check(&self) -> anyhow::Result<()> {
        let (scheme, rest) = self
            .url
            .split_once("://")
            .with_context(|| format!("[identity.ldap] url: {:?} is not an LDAP URL", self.url))?;
        let host = rest.split(['/', ':']).next().unwrap_or_default();
        let local = matches!(host, "localhost" | "127.0.0.1" | "[::1]") || host.starts_with("127.");
        match scheme {
            "ldaps" if self.starttls => {
                bail!("[identity.ldap] starttls: ldaps:// is TLS already; use one or the other")
            }
            "ldaps" => {}
            "ldap" if self.starttls || local => {}
            "ldap" => bail!(
                "[identity.ldap] url: ldap:// without starttls = true would send passwords in \
                 clear; use ldaps:// or starttls"
            ),
            _ => bail!(
                "[identity.ldap] url: {:?} is not ldap:// or ldaps://",
                self.url
            ),
        }
        if !self.user_filter.contains("{user}") {
            bail!("[identity.ldap] user_filter: must contain {{user}}, e.g. (uid={{user}})");
        }
        if !(self.user_filter.starts_with('(') && self.user_filter.ends_with(')')) {
            bail!("[identity.ldap] user_filter: an LDAP filter is in parentheses");
        }
        if self.timeout_secs == 0 || self.timeout_secs > 60 {
            bail!("[identity.ldap] timeout_secs: between 1 and 60");
        }
        if let Some(f) = &self.people_filter {
            if !(f.starts_with('(') && f.ends_with(')')) {
                bail!("[identity.ldap] people_filter: an LDAP filter is in parentheses");
            }
            if self.sync_minutes == 0 {
                bail!("[identity.ldap] sync_minutes: at least 1");
            }
        }
        Ok(())
    }
}

impl OidcSettings {
    fn check(&self) -> anyhow::Result<()> {
        let host = self
            .issuer
            .strip_prefix("https://")
            .or_else(|| {
                // A provider on this machine may be plain HTTP (a test, a local relay).
                self.issuer.strip_prefix("http://").filter(|rest| {
                    let authority = rest.split('/').next().unwrap_or_default();
                    let host = authority
                        .rsplit_once(':')
                        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
                        .map_or(authority, |(h, _)| h);
                    host == "[::1]"
                        || host
                            .parse::<std::net::Ipv4Addr>()
                            .is_ok_and(|ip| ip.is_loopback())
                })
            })
            .with_context(|| {
                format!(
                    "[identity.oidc] issuer: {:?} is not an https:// URL",
                    self.issuer
                )
            })?;
        if host.is_empty() || host.starts_with('/') {
            bail!("[identity.oidc] issuer: {:?} has no host", self.issuer);
        }
        if self.client_id.is_empty() {
            bail!("[identity.oidc] client_id: the application (client) ID the provider gave");
        }
        let portal = gatehouse_rules::host::Host::parse(&self.portal_host);
        if !portal.is_some_and(|h| {
            h.kind() == gatehouse_rules::host::HostKind::Name && h.as_str() == self.portal_host
        }) {
            bail!(
                "[identity.oidc] portal_host: {:?} is not a host name in lower case (e.g. \
                 signin.school.org)",
                self.portal_host
            );
        }
        for (i, host) in self.allow_before_signin.iter().enumerate() {
            let named = gatehouse_rules::host::Host::parse(host).is_some_and(|h| {
                h.kind() == gatehouse_rules::host::HostKind::Name
                    && h.as_str() == host
                    && h.as_str().contains('.')
            });
            if !named {
                bail!(
                    "[identity.oidc] allow_before_signin[{i}]: {host:?} is not a host name in \
                     lower case with a dot (e.g. aadcdn.msauth.net)"
                );
            }
        }
        if self.portal_cert.is_some() != self.portal_key.is_some() {
            bail!("[identity.oidc] portal_cert and portal_key: give both, or neither");
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            bail!("[identity.oidc] scopes: must include \"openid\"");
        }
        for (i, r) in self.roles.iter().enumerate() {
            if r.group.is_some() == r.domain.is_some() {
                bail!("[identity.oidc] roles[{i}]: give a group or a domain (one of them)");
            }
        }
        if !(1..=720).contains(&self.hours) || !(1..=1440).contains(&self.idle_minutes) {
            bail!(
                "[identity.oidc] hours (1 to 720) and idle_minutes (1 to 1440): {} and {}",
                self.hours,
                self.idle_minutes
            );
        }
        Ok(())
    }
}

/// Reads a secret from a file that only its owner may read; an empty file, or one others
/// can read, is an error that says what to do.
pub fn read_secret(base: &Path, name: &str, place: &str) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = resolve(base, name);
    let meta = std::fs::metadata(&path).with_context(|| format!("{place}: {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "{place}: {} can be read by others; chmod 600 it",
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("{place}: {}", path.display()))?;
    let secret = text.trim_end_matches(['\r', '\n']).to_owned();
    if secret.is_empty() {
        bail!("{place}: {} is empty", path.display());
    }
    Ok(secret)
}

/// A path from the policy file, relative to its folder.
pub fn resolve(base: &Path, name: &str) -> PathBuf {
    base.join(name)
}
