//! Proxy logins checked against the school's directory (Active Directory or OpenLDAP):
//! Gatehouse searches for the person with its own service account, binds as them with the
//! password they gave, and reads their groups (through groups inside groups) for the role
//! and site, and the attributes the config names for their name, year group and form.
//!
//! * The name is escaped into the filter (RFC 4515), so `*)(uid=*` finds no one; an empty
//!   password is refused before the directory is asked (an LDAP "unauthenticated bind"
//!   with a name and no password succeeds on many servers).
//! * A verified login is cached for `cache_minutes` under a keyed hash of the name and
//!   password. When the directory cannot be reached, people already known keep their
//!   identity however old their entry (`gatehouse_directory_stale_logins_total`), and new
//!   people get a page that says the directory is down.
//! * Connections go only to the server the config names, over LDAPS or StartTLS (plain
//!   LDAP only to this machine), trusting the school's CA.

use super::settings::{self, LdapSettings};
use crate::metrics;
use anyhow::Context as _;
use dashmap::DashMap;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Who the directory says a login is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub account: String,
    pub role: String,
    pub site: Option<String>,
    pub name: Option<String>,
    pub year: Option<String>,
    pub form: Option<String>,
}

impl Found {
    /// "Amy Pupil, Year 9, 9B", from the directory's attributes.
    pub fn display(&self) -> Option<String> {
        let name = self.name.as_deref()?;
        let person = super::people::Person {
            account: &self.account,
            name,
            year: self.year.as_deref().unwrap_or_default(),
            form: self.form.as_deref().unwrap_or_default(),
            role: &self.role,
            left: false,
        };
        Some(person.display())
    }
}

/// Why a login was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// No such person, or the wrong password.
    Wrong,
    /// The person is in none of the groups that give a role, and there is no default.
    NoRole,
    /// The directory did not answer (and the login was not known before).
    Unreachable,
}

#[derive(Debug)]
struct Cached {
    found: Found,
    at: Instant,
}

/// The directory client and its cache.
pub struct Directory {
    settings: LdapSettings,
    password: String,
    tls: Arc<rustls::ClientConfig>,
    logins: DashMap<u64, Cached>,
    keys: RandomState,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the service account's password.
        f.debug_struct("Directory")
            .field("url", &self.settings.url)
            .field("bind_dn", &self.settings.bind_dn)
            .field("cached", &self.logins.len())
            .finish_non_exhaustive()
    }
}

/// Logins cached at most.
const MAX_CACHED: usize = 100_000;
/// Groups inside groups followed at most this deep.
const MAX_DEPTH: usize = 8;

impl Directory {
    /// Reads the service account's password and the school's CA (paths relative to `base`,
    /// the policy file's folder).
    pub fn new(settings: LdapSettings, base: &Path) -> anyhow::Result<Directory> {
        let password = settings::read_secret(
            base,
            &settings.bind_password_file,
            "[identity.ldap] bind_password_file",
        )?;
        let mut roots = rustls::RootCertStore::empty();
        match &settings.ca {
            Some(ca) => {
                use rustls::pki_types::{pem::PemObject, CertificateDer};
                let path = settings::resolve(base, ca);
                for cert in CertificateDer::pem_file_iter(&path)
                    .with_context(|| format!("[identity.ldap] ca: {}", path.display()))?
                {
                    let cert = cert.with_context(|| {
                        format!(
                            "[identity.ldap] ca: {}: not a PEM certificate",
                            path.display()
                        )
                    })?;
                    roots
                        .add(cert)
                        .with_context(|| format!("[identity.ldap] ca: {}", path.display()))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Directory {
            settings,
            password,
            tls: Arc::new(tls),
            logins: DashMap::new(),
            keys: RandomState::new(),
        })
    }

    fn key(&self, name: &str, password: &str) -> u64 {
        self.keys.hash_one((canonical_name(name), password))
    }

    /// A login verified within `cache_minutes`: no directory round trip.
    pub fn cached(&self, name: &str, password: &str) -> Option<Found> {
        let hit = self.logins.get(&self.key(name, password))?;
        let fresh = hit.at.elapsed() < Duration::from_secs(self.settings.cache_minutes * 60);
        fresh.then(|| hit.found.clone())
    }

    /// Checks a login with the directory.
    pub async fn login(&self, name: &str, password: &str) -> Result<Found, Refused> {
        if name.is_empty() || password.is_empty() || name.chars().any(char::is_control) {
            return Err(Refused::Wrong);
        }
        let timeout = Duration::from_secs(self.settings.timeout_secs);
        let asked = tokio::time::timeout(timeout, self.ask(name, password)).await;
        self.settle(self.key(name, password), "checking a login", asked, timeout)
    }

    /// An admin page sign-in: the password proved by the person's own bind, and the index
    /// of the first of `groups` they are in (through groups inside groups). Never cached:
    /// an admin removed from a group cannot sign in again; with the directory down, no
    /// one signs in through it.
    pub async fn admin_login(
        &self,
        name: &str,
        password: &str,
        groups: &[&str],
    ) -> Result<(String, usize), Refused> {
        if name.is_empty() || password.is_empty() || name.chars().any(char::is_control) {
            return Err(Refused::Wrong);
        }
        let timeout = Duration::from_secs(self.settings.timeout_secs);
        let asked = tokio::time::timeout(timeout, async {
            let mut ldap = self.connect().await?;
            let (dn, found) = self.find(&mut ldap, name).await?;
            let bound = ldap.simple_bind(&dn, password).await.map_err(down)?;
            if bound.rc != 0 {
                let _ = ldap.unbind().await;
                return Err(Asked::Refused(Refused::Wrong));
            }
            self.service_bind(&mut ldap).await?;
            let member_of = self.groups_of(&mut ldap, &dn).await;
            let _ = ldap.unbind().await;
            let member_of = member_of?;
            groups
                .iter()
                .position(|g| member_of.contains(&normal_dn(g)))
                .map(|i| (found.account.clone(), i))
                .ok_or(Asked::Refused(Refused::NoRole))
        })
        .await;
        match asked {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(Asked::Refused(why))) => Err(why),
            Ok(Err(Asked::Down(why))) => {
                tracing::warn!("LDAP: an admin sign-in: the directory could not be reached: {why}");
                Err(Refused::Unreachable)
            }
            Err(_) => {
                tracing::warn!(
                    "LDAP: an admin sign-in: the directory did not answer in {timeout:?}"
                );
                Err(Refused::Unreachable)
            }
        }
    }

    /// Who the directory says `account` is (no password: the person was proved by Kerberos
    /// or the Wi-Fi), cached like a login; while the directory is down, the last answer.
    pub async fn lookup(&self, account: &str) -> Result<Found, Refused> {
        let key = self.keys.hash_one(("lookup", canonical_name(account)));
        let fresh = Duration::from_secs(self.settings.cache_minutes * 60);
        if let Some(hit) = self.logins.get(&key).filter(|h| h.at.elapsed() < fresh) {
            return Ok(hit.found.clone());
        }
        let timeout = Duration::from_secs(self.settings.timeout_secs);
        let asked = tokio::time::timeout(timeout, async {
            let mut ldap = self.connect().await?;
            let (dn, found) = self.find(&mut ldap, account).await?;
            let found = self.with_role(&mut ldap, &dn, found).await;
            let _ = ldap.unbind().await;
            found
        })
        .await;
        self.settle(key, &format!("looking up {account}"), asked, timeout)
    }

    /// What the directory answered, cached under `key`: a person found is remembered; a
    /// refusal (a password changed, a person gone from every group) forgets the entry, so
    /// no stale role comes back later; when the directory could not be asked, the entry
    /// known before carries on (`gatehouse_directory_stale_logins_total`).
    fn settle(
        &self,
        key: u64,
        doing: &str,
        asked: Result<Result<Found, Asked>, tokio::time::error::Elapsed>,
        timeout: Duration,
    ) -> Result<Found, Refused> {
        let outcome = match asked {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(Asked::Refused(why))) => Err(why),
            Ok(Err(Asked::Down(why))) => {
                tracing::warn!("LDAP: {doing}: the directory could not be reached: {why}");
                Err(Refused::Unreachable)
            }
            Err(_) => {
                tracing::warn!("LDAP: {doing}: the directory did not answer in {timeout:?}");
                Err(Refused::Unreachable)
            }
        };
        self.set_up(outcome != Err(Refused::Unreachable));
        match outcome {
            Ok(found) => {
                if self.logins.len() >= MAX_CACHED {
                    self.logins.clear();
                }
                self.logins.insert(
                    key,
                    Cached {
                        found: found.clone(),
                        at: Instant::now(),
                    },
                );
                Ok(found)
            }
            Err(Refused::Unreachable) => match self.logins.get(&key) {
                Some(hit) => {
                    metrics::get().directory_stale_logins.inc();
                    Ok(hit.found.clone())
                }
                None => Err(Refused::Unreachable),
            },
            Err(other) => {
                self.logins.remove(&key);
                Err(other)
            }
        }
    }

    fn set_up(&self, up: bool) {
        metrics::get().directory_up.set(i64::from(up));
    }

    async fn connect(&self) -> Result<Ldap, Asked> {
        let conn_settings = LdapConnSettings::new()
            .set_conn_timeout(Duration::from_secs(self.settings.timeout_secs))
            .set_starttls(self.settings.starttls)
            .set_config(Arc::clone(&self.tls));
        let (conn, mut ldap) = LdapConnAsync::with_settings(conn_settings, &self.settings.url)
            .await
            .map_err(|e| Asked::Down(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.drive().await;
        });
        self.service_bind(&mut ldap).await?;
        Ok(ldap)
    }

    async fn service_bind(&self, ldap: &mut Ldap) -> Result<(), Asked> {
        ldap.simple_bind(&self.settings.bind_dn, &self.password)
            .await
            .map_err(down)?
            .success()
            .map_err(|e| Asked::Down(format!("the service account's bind failed: {e}")))?;
        Ok(())
    }

    async fn ask(&self, name: &str, password: &str) -> Result<Found, Asked> {
        let mut ldap = self.connect().await?;
        let (dn, found) = self.find(&mut ldap, name).await?;
        // The person's own bind proves the password.
        let bound = ldap.simple_bind(&dn, password).await.map_err(down)?;
        if bound.rc != 0 {
            let _ = ldap.unbind().await;
            return Err(Asked::Refused(Refused::Wrong));
        }
        self.service_bind(&mut ldap).await?;
        let found = self.with_role(&mut ldap, &dn, found).await;
        let _ = ldap.unbind().await;
        found
    }

    /// The person a name finds (exactly one), with their attributes.
    async fn find(&self, ldap: &mut Ldap, name: &str) -> Result<(String, Found), Asked> {
        let s = &self.settings;
        let filter = s.user_filter.replace("{user}", &ldap_escape(name));
        let mut attrs = vec![s.name_attribute.as_str(), s.account_attribute.as_str()];
        attrs.extend(s.year_attribute.as_deref());
        attrs.extend(s.form_attribute.as_deref());
        let (entries, _) = ldap
            .search(&s.base_dn, Scope::Subtree, &filter, attrs)
            .await
            .map_err(down)?
            .success()
            .map_err(down)?;
        let mut entries = entries.into_iter().map(SearchEntry::construct);
        let (Some(entry), None) = (entries.next(), entries.next()) else {
            return Err(Asked::Refused(Refused::Wrong));
        };
        let first = |attr: Option<&String>| {
            attr.and_then(|a| entry.attrs.get(a))
                .and_then(|v| v.first())
                .cloned()
        };
        // The account as the directory spells it: ` amy`, `AMY` and a full-width `ａｍｙ`
        // all find amy (the directory ignores case, spaces and width) and are all `amy`.
        let account = first(Some(&s.account_attribute))
            .unwrap_or_else(|| name.to_owned())
            .to_lowercase();
        let found = Found {
            account,
            role: String::new(),
            site: None,
            name: first(Some(&s.name_attribute)),
            year: first(s.year_attribute.as_ref()),
            form: first(s.form_attribute.as_ref()),
        };
        Ok((entry.dn, found))
    }

    /// The role (and site) of the first configured group the person is in, directly or
    /// through groups inside groups.
    async fn with_role(&self, ldap: &mut Ldap, dn: &str, mut found: Found) -> Result<Found, Asked> {
        let groups = self.groups_of(ldap, dn).await?;
        let role = self
            .settings
            .roles
            .iter()
            .find(|g| groups.contains(&normal_dn(&g.group)));
        match (role, &self.settings.default_role) {
            (Some(g), _) => {
                found.role = g.role.clone();
                found.site = g.site.clone();
            }
            (None, Some(default)) => found.role = default.clone(),
            (None, None) => return Err(Asked::Refused(Refused::NoRole)),
        }
        Ok(found)
    }

    async fn groups_of(&self, ldap: &mut Ldap, dn: &str) -> Result<HashSet<String>, Asked> {
        let mut all = HashSet::new();
        let mut frontier = vec![dn.to_owned()];
        for _ in 0..MAX_DEPTH {
            if frontier.is_empty() {
                break;
            }
            let filter = format!(
                "(|{})",
                frontier
                    .iter()
                    .map(|m| {
                        let m = ldap_escape(m.as_str());
                        format!("(member={m})(uniqueMember={m})")
                    })
                    .collect::<String>()
            );
            let (entries, _) = ldap
                .search(&self.settings.base_dn, Scope::Subtree, &filter, vec!["1.1"])
                .await
                .map_err(down)?
                .success()
                .map_err(down)?;
            frontier = entries
                .into_iter()
                .map(|e| SearchEntry::construct(e).dn)
                .filter(|g| all.insert(normal_dn(g)))
                .collect();
            if !self.settings.nested_groups {
                break;
            }
        }
        Ok(all)
    }
}

impl Directory {
    /// The people table read from the directory: every entry `people_filter` finds, with
    /// its name, year and form, and the role of the first configured group it is in
    /// (through groups inside groups). Paged, so a directory's size limit does not cut it.
    pub async fn people(&self) -> anyhow::Result<super::people::People> {
        let s = &self.settings;
        let filter = s
            .people_filter
            .as_deref()
            .context("[identity.ldap] people_filter is not set")?;
        let timeout = Duration::from_secs(s.timeout_secs.max(1) * 60);
        let read = tokio::time::timeout(timeout, async {
            let mut ldap = self.connect().await.map_err(Asked::message)?;
            let members = self.role_members(&mut ldap).await?;
            let mut attrs = vec![s.account_attribute.clone(), s.name_attribute.clone()];
            attrs.extend(s.year_attribute.clone());
            attrs.extend(s.form_attribute.clone());
            let entries = paged(&mut ldap, &s.base_dn, filter, attrs).await?;
            let _ = ldap.unbind().await;
            let mut people = super::people::People::default();
            let mut skipped = 0usize;
            for entry in entries {
                let first = |a: Option<&String>| {
                    a.and_then(|a| entry.attrs.get(a))
                        .and_then(|v| v.first())
                        .map(String::as_str)
                        .unwrap_or_default()
                };
                let account = first(Some(&s.account_attribute)).to_lowercase();
                if account.is_empty() || account.chars().any(char::is_control) {
                    skipped += 1;
                    continue;
                }
                let dn = normal_dn(&entry.dn);
                let role = members
                    .iter()
                    .find(|(_, set)| set.contains(&dn))
                    .map(|(role, _)| role.as_str())
                    .or(s.default_role.as_deref())
                    .unwrap_or_default();
                people.add(super::people::Row {
                    account: &account,
                    name: first(Some(&s.name_attribute)),
                    year: first(s.year_attribute.as_ref()),
                    form: first(s.form_attribute.as_ref()),
                    role,
                    left: "",
                })?;
            }
            if skipped > 0 {
                tracing::warn!(
                    "LDAP sync: {skipped} entries have no {} and were left out",
                    s.account_attribute
                );
            }
            people.finish()
        })
        .await;
        let people = read.with_context(|| format!("the sync took over {timeout:?}"))??;
        Ok(people)
    }

    /// For each configured group, in order, its role and every entry inside it (through
    /// groups inside groups, when `nested_groups`).
    async fn role_members(
        &self,
        ldap: &mut Ldap,
    ) -> anyhow::Result<Vec<(String, HashSet<String>)>> {
        let groups = paged(
            ldap,
            &self.settings.base_dn,
            "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=group))",
            vec!["member".to_owned(), "uniqueMember".to_owned()],
        )
        .await?;
        let mut members: HashMap<String, Vec<String>> = HashMap::new();
        for g in groups {
            let list = members.entry(normal_dn(&g.dn)).or_default();
            for attr in ["member", "uniqueMember"] {
                if let Some(values) = g.attrs.get(attr) {
                    list.extend(values.iter().map(|m| normal_dn(m)));
                }
            }
        }
        let mut out = Vec::new();
        for g in &self.settings.roles {
            let mut inside = HashSet::new();
            let mut frontier = vec![normal_dn(&g.group)];
            for _ in 0..MAX_DEPTH {
                let mut next = Vec::new();
                for group in frontier.drain(..) {
                    for m in members.get(&group).into_iter().flatten() {
                        if inside.insert(m.clone())
                            && self.settings.nested_groups
                            && members.contains_key(m)
                        {
                            next.push(m.clone());
                        }
                    }
                }
                if next.is_empty() {
                    break;
                }
                frontier = next;
            }
            out.push((g.role.clone(), inside));
        }
        Ok(out)
    }
}

/// Every entry a filter finds, in pages of 500.
async fn paged(
    ldap: &mut Ldap,
    base: &str,
    filter: &str,
    attrs: Vec<String>,
) -> anyhow::Result<Vec<SearchEntry>> {
    let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(500)),
    ];
    let mut stream = ldap
        .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs)
        .await
        .with_context(|| format!("searching {base} for {filter}"))?;
    let mut out = Vec::new();
    while let Some(entry) = stream
        .next()
        .await
        .with_context(|| format!("searching {base} for {filter}"))?
    {
        out.push(SearchEntry::construct(entry));
    }
    stream
        .finish()
        .await
        .success()
        .with_context(|| format!("searching {base} for {filter}"))?;
    Ok(out)
}

enum Asked {
    Refused(Refused),
    Down(String),
}

impl Asked {
    fn message(self) -> anyhow::Error {
        match self {
            Asked::Refused(why) => anyhow::anyhow!("refused: {why:?}"),
            Asked::Down(why) => anyhow::anyhow!("{why}"),
        }
    }
}

fn down(e: ldap3::LdapError) -> Asked {
    Asked::Down(e.to_string())
}

/// A login name as a directory compares it: compatibility forms (full-width letters) folded,
/// case folded, spaces dropped. The key of the cache and of the failed-login limits, so
/// `tess `, ` TESS` and `ｔｅｓｓ` count against one account.
pub fn canonical_name(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    name.nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// A DN compared as directories do: case and the spaces after commas do not matter.
fn normal_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.trim().to_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}
