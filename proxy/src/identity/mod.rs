//! Who a request comes from, as the school's own systems know it: devices the Wi-Fi has
//! named (RADIUS accounting), proxy logins checked against the directory (LDAP / Active
//! Directory), and the people table from the MIS that turns an account into "Amy Pupil,
//! Year 9, 9B". The request path asks [`Sources`] through `handler::identify`.

pub mod bindings;
pub mod kerberos;
pub mod ldap;
pub mod oidc;
pub mod people;
pub mod radius;
pub mod settings;

use anyhow::{bail, Context as _};
use arc_swap::ArcSwap;
use gatehouse_rules::config::ConfigFile;
use gatehouse_rules::Snapshot;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How a request's person was found; recorded in every event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// The client network's role; no person.
    Network,
    /// A proxy login from the users file.
    Login,
    /// A guest voucher.
    Voucher,
    /// A proxy login checked with the directory.
    Ldap,
    /// The device's address, named by the Wi-Fi's RADIUS accounting.
    Radius,
    /// Kerberos single sign-on (`Proxy-Authorization: Negotiate`).
    Kerberos,
    /// The sign-in page (OpenID Connect with the school's provider).
    SignIn,
    /// A device on a sign-in network that has not signed in: it reaches only the sign-in
    /// page and the provider, with the network's role.
    NotSignedIn,
}

impl How {
    pub fn label(self) -> &'static str {
        match self {
            How::Network => "network",
            How::Login => "login",
            How::Voucher => "voucher",
            How::Ldap => "ldap",
            How::Radius => "radius",
            How::Kerberos => "kerberos",
            How::SignIn => "signin",
            How::NotSignedIn => "not-signed-in",
        }
    }
}

/// Every identity source the config turns on.
#[derive(Debug)]
pub struct Sources {
    pub bindings: Arc<bindings::Bindings>,
    pub directory: Option<Arc<ldap::Directory>>,
    /// `Negotiate` (Kerberos) logins, when `[identity.kerberos]` turns them on.
    pub kerberos: Option<settings::KerberosSettings>,
    /// The sign-in page, when `[identity.oidc]` turns it on.
    pub signin: Option<Arc<oidc::SignIn>>,
    people: Arc<ArcSwap<people::People>>,
    people_path: Option<PathBuf>,
}

/// A person as an event shows them: the display ("Amy Pupil, Year 9, 9B"), the MIS role.
#[derive(Clone, Debug, Default)]
pub struct Named {
    pub display: Option<String>,
    pub role: Option<String>,
    pub left: bool,
}

impl Sources {
    /// Opens what `[identity]` names (paths relative to `base`, the policy file's folder).
    pub fn open(settings: &settings::IdentitySettings, base: &Path) -> anyhow::Result<Sources> {
        let hours = settings.radius.as_ref().map_or(12, |r| r.session_hours);
        let directory = settings
            .ldap
            .clone()
            .map(|l| ldap::Directory::new(l, base).map(Arc::new))
            .transpose()?;
        let people_path = settings
            .people
            .as_ref()
            .map(|p| settings::resolve(base, &p.csv));
        let people = match &people_path {
            Some(path) => people::People::load(path)?,
            None => people::People::default(),
        };
        crate::metrics::get()
            .people
            .set(i64::try_from(people.len()).unwrap_or(i64::MAX));
        let signin = match &settings.oidc {
            Some(o) => {
                let secret = settings::read_secret(
                    base,
                    &o.client_secret_file,
                    "[identity.oidc] client_secret_file",
                )?;
                let tls = match (&o.portal_cert, &o.portal_key) {
                    (Some(cert), Some(key)) => Some(portal_tls(
                        &settings::resolve(base, cert),
                        &settings::resolve(base, key),
                    )?),
                    _ => None,
                };
                Some(Arc::new(oidc::SignIn::new(o.clone(), secret, tls)))
            }
            None => None,
        };
        Ok(Sources {
            signin,
            bindings: Arc::new(bindings::Bindings::new(std::time::Duration::from_secs(
                hours * 3600,
            ))),
            directory,
            kerberos: settings.kerberos.clone(),
            people: Arc::new(ArcSwap::from_pointee(people)),
            people_path,
        })
    }

    /// Reads the people file again (with the policy). A bad file keeps the table in force.
    pub fn reload_people(&self) -> anyhow::Result<()> {
        if let Some(path) = &self.people_path {
            let people = people::People::load(path)?;
            crate::metrics::get()
                .people
                .set(i64::try_from(people.len()).unwrap_or(i64::MAX));
            self.people.store(Arc::new(people));
        }
        Ok(())
    }

    pub fn people_path(&self) -> Option<&Path> {
        self.people_path.as_deref()
    }

    pub fn people(&self) -> arc_swap::Guard<Arc<people::People>> {
        self.people.load()
    }

    /// What the people table says of `account`.
    pub fn named(&self, account: &str) -> Named {
        let people = self.people.load();
        match people.get(account) {
            Some(p) => Named {
                display: Some(p.display()),
                role: (!p.role.is_empty()).then(|| p.role.to_owned()),
                left: p.left,
            },
            None => Named::default(),
        }
    }
}

/// Reads `[identity]`, opens its sources, checks every role they name against the policy,
/// and starts the RADIUS listener.
pub async fn start(file: &ConfigFile, snap: &Snapshot) -> anyhow::Result<Sources> {
    let settings = settings::IdentitySettings::from_table(file.config.identity.as_ref())?;
    let base = file.path.parent().map(PathBuf::from).unwrap_or_default();
    let sources = Sources::open(&settings, &base)?;
    check_roles(&settings, &sources, snap)?;
    if settings.kerberos.is_some() {
        kerberos::check_keytab()?;
    }
    if let (Some(d), Some(l)) = (&sources.directory, &settings.ldap) {
        if l.people_filter.is_some() {
            tokio::spawn(sync_people(
                Arc::clone(d),
                Arc::clone(&sources.people),
                std::time::Duration::from_secs(l.sync_minutes * 60),
            ));
        }
    }
    if let Some(r) = &settings.radius {
        let secret = settings::read_secret(&base, &r.secret_file, "[identity.radius] secret_file")?;
        let socket = tokio::net::UdpSocket::bind(r.listen)
            .await
            .with_context(|| format!("[identity.radius] listen: {}", r.listen))?;
        crate::cli::print(&format!(
            "Gatehouse RADIUS accounting on {}\n",
            socket.local_addr()?
        ));
        tokio::spawn(radius::serve(
            socket,
            Arc::from(secret.into_bytes()),
            radius::Rules {
                clients: r.clients.clone(),
                realms: r.realms.clone(),
                require_timestamp: r.require_event_timestamp,
            },
            Arc::clone(&sources.bindings),
        ));
    }
    Ok(sources)
}

/// Every role `[identity]` and the people table name must be one of the policy's.
fn check_roles(
    settings: &settings::IdentitySettings,
    sources: &Sources,
    snap: &Snapshot,
) -> anyhow::Result<()> {
    for (place, role) in settings.roles() {
        if snap.role_id(role).is_none() {
            bail!("{place}: {role:?} is not a role of the policy");
        }
    }
    if settings.oidc.is_none() {
        if let Some(n) = snap.networks().iter().find(|n| n.signin) {
            bail!(
                "[[network]] {}: signin = true needs the sign-in page, [identity.oidc]",
                n.net
            );
        }
    }
    let people = sources.people();
    for (role, account) in people.roles() {
        if snap.role_id(role).is_none() {
            bail!(
                "[identity.people] csv: {account:?} has the role {role:?}, which is not a role \
                 of the policy"
            );
        }
    }
    Ok(())
}

/// Reads the people table from the directory now and every `every`; a failed sync keeps
/// the table in force and says why.
async fn sync_people(
    directory: Arc<ldap::Directory>,
    table: Arc<ArcSwap<people::People>>,
    every: std::time::Duration,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let started = std::time::Instant::now();
        let m = crate::metrics::get();
        match directory.people().await {
            Ok(people) => {
                tracing::info!(
                    "LDAP sync: {} people in {:.1} s",
                    people.len(),
                    started.elapsed().as_secs_f64()
                );
                m.people
                    .set(i64::try_from(people.len()).unwrap_or(i64::MAX));
                m.directory_syncs.with_label_values(&["ok"]).inc();
                table.store(Arc::new(people));
            }
            Err(e) => {
                m.directory_syncs.with_label_values(&["failed"]).inc();
                tracing::error!("LDAP sync failed, the people table stays as it was: {e:#}");
            }
        }
    }
}

/// The admin page's view of people: the people table and the devices the Wi-Fi names.
#[derive(Debug)]
struct View {
    bindings: Arc<bindings::Bindings>,
    signin: Option<Arc<oidc::SignIn>>,
    people: Arc<ArcSwap<people::People>>,
}

impl gatehouse_dashboard::app::PeopleView for View {
    fn find(&self, query: &str, limit: usize) -> Vec<gatehouse_dashboard::app::PersonRow> {
        self.people
            .load()
            .find(query, limit)
            .into_iter()
            .map(|p| gatehouse_dashboard::app::PersonRow {
                account: p.account.to_owned(),
                display: p.display(),
                role: p.role.to_owned(),
                left: p.left,
            })
            .collect()
    }

    fn devices(&self) -> Vec<gatehouse_dashboard::app::DeviceRow> {
        let people = self.people.load();
        let mut rows: Vec<gatehouse_dashboard::app::DeviceRow> = self
            .bindings
            .list()
            .into_iter()
            .map(|(ip, b)| gatehouse_dashboard::app::DeviceRow {
                address: ip.to_string(),
                person: people.get(&b.account).map(|p| p.display()),
                account: b.account.to_string(),
                device: b.device.as_deref().map(str::to_owned),
                how: How::Radius.label(),
                since: b.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            })
            .collect();
        let signed_in = self
            .signin
            .as_ref()
            .map(|s| s.devices())
            .unwrap_or_default();
        rows.extend(signed_in.into_iter().map(|(ip, account, since)| {
            gatehouse_dashboard::app::DeviceRow {
                address: ip.to_string(),
                person: people.get(&account).map(|p| p.display()),
                account,
                device: None,
                how: How::SignIn.label(),
                since: since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            }
        }));
        rows
    }
}

impl Sources {
    /// What the admin page's People page reads.
    pub fn view(&self) -> Arc<dyn gatehouse_dashboard::app::PeopleView> {
        Arc::new(View {
            bindings: Arc::clone(&self.bindings),
            signin: self.signin.clone(),
            people: Arc::clone(&self.people),
        })
    }
}

/// Admin page sign-in through the directory, when `[admin] directory_roles` names groups.
pub fn admin_sign_in(
    admin: &gatehouse_dashboard::settings::AdminSettings,
    sources: &Sources,
) -> anyhow::Result<Option<Arc<dyn gatehouse_dashboard::app::DirectorySignIn>>> {
    if admin.directory_roles.is_empty() {
        return Ok(None);
    }
    let Some(directory) = &sources.directory else {
        bail!("[admin] directory_roles: needs the directory, [identity.ldap]");
    };
    let groups = admin
        .directory_roles
        .iter()
        .filter_map(|d| {
            gatehouse_dashboard::accounts::Role::parse(&d.role).map(|r| (d.group.clone(), r))
        })
        .collect();
    Ok(Some(Arc::new(AdminDirectory {
        directory: Arc::clone(directory),
        groups: Arc::new(groups),
    })))
}

/// The directory as the admin page's sign-in sees it.
struct AdminDirectory {
    directory: Arc<ldap::Directory>,
    groups: Arc<Vec<(String, gatehouse_dashboard::accounts::Role)>>,
}

impl gatehouse_dashboard::app::DirectorySignIn for AdminDirectory {
    fn sign_in(&self, name: String, password: String) -> gatehouse_dashboard::app::DirectoryAnswer {
        use gatehouse_dashboard::app::DirectoryRefusal;
        let directory = Arc::clone(&self.directory);
        let groups = Arc::clone(&self.groups);
        Box::pin(async move {
            let names: Vec<&str> = groups.iter().map(|(g, _)| g.as_str()).collect();
            match directory.admin_login(&name, &password, &names).await {
                Ok((account, i)) => groups
                    .get(i)
                    .map(|(_, role)| (account, *role))
                    .ok_or(DirectoryRefusal::NoRole),
                Err(ldap::Refused::Wrong) => Err(DirectoryRefusal::Wrong),
                Err(ldap::Refused::NoRole) => Err(DirectoryRefusal::NoRole),
                Err(ldap::Refused::Unreachable) => Err(DirectoryRefusal::Unreachable),
            }
        })
    }
}

/// Warnings at most `burst` every ten seconds, with a count of those left out: anyone who
/// can reach a listener or a page could otherwise fill the log.
#[derive(Debug)]
pub struct Throttle {
    what: &'static str,
    burst: u32,
    window: Option<std::time::Instant>,
    said: u32,
    quiet: u64,
}

impl Throttle {
    pub fn new(what: &'static str, burst: u32) -> Throttle {
        Throttle {
            what,
            burst,
            window: None,
            said: 0,
            quiet: 0,
        }
    }

    pub fn warn(&mut self, line: impl FnOnce() -> String) {
        let now = std::time::Instant::now();
        let open = self
            .window
            .is_some_and(|t| now.duration_since(t) < std::time::Duration::from_secs(10));
        if !open {
            self.window = Some(now);
            self.said = 0;
        }
        if self.said >= self.burst {
            self.quiet += 1;
            return;
        }
        self.said += 1;
        let left_out = std::mem::take(&mut self.quiet);
        if left_out > 0 {
            tracing::warn!(
                "{}: {} ({left_out} more warnings left out)",
                self.what,
                line()
            );
        } else {
            tracing::warn!("{}: {}", self.what, line());
        }
    }
}

/// Admin page sign-in with a school account, when `[admin] sso_roles` names groups.
pub fn admin_provider(
    admin: &gatehouse_dashboard::settings::AdminSettings,
    sources: &Sources,
    client: &crate::handler::Client,
) -> anyhow::Result<Option<Arc<dyn gatehouse_dashboard::app::ProviderSignIn>>> {
    if admin.sso_roles.is_empty() {
        return Ok(None);
    }
    let Some(signin) = &sources.signin else {
        bail!("[admin] sso_roles: needs the school's provider, [identity.oidc]");
    };
    let groups = admin
        .sso_roles
        .iter()
        .filter_map(|d| {
            gatehouse_dashboard::accounts::Role::parse(&d.role).map(|r| (d.group.clone(), r))
        })
        .collect();
    Ok(Some(Arc::new(AdminProvider {
        signin: Arc::clone(signin),
        redirect: admin.sso_redirect.clone().unwrap_or_default(),
        groups: Arc::new(groups),
        client: client.clone(),
    })))
}

/// The sign-in page's provider as the admin page's sign-in sees it.
struct AdminProvider {
    signin: Arc<oidc::SignIn>,
    redirect: String,
    groups: Arc<Vec<(String, gatehouse_dashboard::accounts::Role)>>,
    client: crate::handler::Client,
}

impl gatehouse_dashboard::app::ProviderSignIn for AdminProvider {
    fn start(&self, cookie: String) -> gatehouse_dashboard::app::ProviderAnswer<String> {
        let signin = Arc::clone(&self.signin);
        let redirect = self.redirect.clone();
        let client = self.client.clone();
        Box::pin(async move {
            signin
                .start_admin(cookie, redirect, &client)
                .await
                .map_err(|why| {
                    if let Ok(mut log) = signin.log.lock() {
                        log.warn(|| format!("an admin sign-in with a school account: {why}"));
                    }
                    "The school's sign-in service could not be reached. Try again, or use a \
                     local account."
                        .to_owned()
                })
        })
    }

    fn finish(
        &self,
        cookie: String,
        query: Vec<(String, String)>,
    ) -> gatehouse_dashboard::app::ProviderAnswer<(String, gatehouse_dashboard::accounts::Role)>
    {
        let signin = Arc::clone(&self.signin);
        let groups = Arc::clone(&self.groups);
        let client = self.client.clone();
        Box::pin(async move {
            let (account, member_of) =
                signin
                    .finish_admin(cookie, &query, &client)
                    .await
                    .map_err(|why| {
                        tracing::warn!("Admin sign-in with a school account refused: {why}");
                        "This sign-in could not be checked, so it was not accepted. Start again."
                            .to_owned()
                    })?;
            match groups.iter().find(|(g, _)| member_of.contains(g)) {
                Some((_, role)) => Ok((account, *role)),
                None => {
                    if let Ok(mut log) = signin.log.lock() {
                        log.warn(|| {
                            format!(
                                "an admin sign-in with a school account: {account} is in none \
                                 of [admin] sso_roles"
                            )
                        });
                    }
                    Err(
                        "Your school account is in none of the groups that may use this page."
                            .to_owned(),
                    )
                }
            }
        })
    }
}

/// The sign-in page's own certificate and key (PEM), as the page serves them.
fn portal_tls(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("[identity.oidc] portal_cert: {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| {
            format!(
                "[identity.oidc] portal_cert: {}: not PEM certificates",
                cert.display()
            )
        })?;
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!(
            "[identity.oidc] portal_key: {}: not a PEM private key",
            key.display()
        )
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("[identity.oidc] portal_cert and portal_key do not match")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
