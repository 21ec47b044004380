//! The admin page inside `gatehouse run`: `admin.db` in the data folder, the dashboard built
//! from what the proxy owns (the policy control, the event store's settings, the alert
//! outbox, the CA), served on `[admin] listen` with TLS from the CA, from files, or (loopback
//! only) none.

use crate::safeguard::Sections;
use anyhow::Context as _;
use gatehouse_dashboard::settings::{AdminSettings, TlsMode};
use gatehouse_dashboard::vouchers::Vouchers;
use gatehouse_dashboard::{Admin, AdminParts, Db};
use gatehouse_rules::control::PolicyControl;
use gatehouse_safeguarding::config::Backend;
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The admin page's file, beside the CA and the outbox.
pub const DB_FILE: &str = "admin.db";

/// What the proxy and the admin page share: accounts, reviews and vouchers live in `admin.db`.
#[derive(Debug, Clone)]
pub struct Handles {
    pub db: Arc<Mutex<Db>>,
    pub vouchers: Arc<Vouchers>,
}

impl Handles {
    pub fn open(data: &Path) -> anyhow::Result<Handles> {
        let db = Db::open(&data.join(DB_FILE))?;
        let vouchers = Arc::new(Vouchers::load(&db)?);
        Ok(Handles {
            db: Arc::new(Mutex::new(db)),
            vouchers,
        })
    }
}

/// Everything `start` needs from the proxy.
pub struct Start<'a> {
    pub settings: &'a AdminSettings,
    pub data: &'a Path,
    pub handles: &'a Handles,
    pub policy: Arc<PolicyControl>,
    pub sections: &'a Sections,
    pub proxy_listen: SocketAddr,
    pub people: Arc<dyn gatehouse_dashboard::app::PeopleView>,
    pub directory: Option<Arc<dyn gatehouse_dashboard::app::DirectorySignIn>>,
    pub provider: Option<Arc<dyn gatehouse_dashboard::app::ProviderSignIn>>,
}

/// Binds the admin port and serves the dashboard until `shutdown`; `None` when `[admin]
/// listen = "off"`. Returns the address it listens on and whether it is TLS.
pub async fn start(
    s: Start<'_>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Option<(SocketAddr, bool)>> {
    let Some(addr) = s.settings.listen_addr().map_err(anyhow::Error::msg)? else {
        return Ok(None);
    };
    let tls = match s.settings.tls {
        TlsMode::None => None,
        TlsMode::Ca => {
            let mut names = s.settings.hostnames.clone();
            names.push(addr.ip().to_string());
            if addr.ip().is_loopback() {
                names.push("localhost".into());
            }
            names.dedup();
            let (chain, key) = crate::ca::admin_certificate(s.data, &names)?;
            Some(server_config(chain, key)?)
        }
        TlsMode::Files => {
            let (cert, key) = (
                s.settings.cert_file.clone().unwrap_or_default(),
                s.settings.key_file.clone().unwrap_or_default(),
            );
            let chain = CertificateDer::pem_file_iter(&cert)
                .with_context(|| format!("[admin] cert_file {cert}"))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("[admin] cert_file {cert}: not PEM certificates"))?;
            let key = PrivateKeyDer::from_pem_file(&key)
                .with_context(|| format!("[admin] key_file {key}: not a PEM private key"))?;
            Some(server_config(chain, key)?)
        }
    };
    let store = (s.sections.store.backend != Backend::None)
        .then(|| (s.sections.store.clone(), s.sections.data_dir.clone()));
    let proxy_address = s
        .settings
        .proxy_address
        .clone()
        .unwrap_or_else(|| s.proxy_listen.to_string());
    let admin = Admin::new(AdminParts {
        db: Arc::clone(&s.handles.db),
        policy: s.policy,
        vouchers: Arc::clone(&s.handles.vouchers),
        store,
        outbox: s.data.join("outbox.db"),
        ca_pem: crate::ca::export(s.data)?,
        proxy_address,
        secure: tls.is_some(),
        health: Arc::new(health),
        people: s.people,
        directory: s.directory,
        require_totp: s.settings.require_totp,
        provider: s.provider,
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("[admin] listen {addr}"))?;
    let bound = listener.local_addr()?;
    let secure = tls.is_some();
    tokio::spawn(gatehouse_dashboard::serve::serve(
        listener,
        tls,
        gatehouse_dashboard::router(admin),
        shutdown,
    ));
    Ok(Some((bound, secure)))
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let config = ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("[admin] certificate and key do not match")?;
    Ok(Arc::new(config))
}

/// The overview's health card, read from the proxy's own metrics.
fn health() -> Vec<(String, String)> {
    let m = crate::metrics::get();
    use prometheus::core::Collector as _;
    let requests: f64 = m
        .requests
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .map(|metric| metric.get_counter().get_value())
        .sum();
    vec![
        (
            "Open connections".into(),
            m.open_connections.get().to_string(),
        ),
        ("Requests since start".into(), format!("{requests:.0}")),
        ("Events written".into(), m.events_written.get().to_string()),
        ("Events dropped".into(), m.events_dropped.get().to_string()),
        (
            "Policy reload failures".into(),
            m.reload_failures.get().to_string(),
        ),
        (
            "Certificates cached".into(),
            m.certificates_cached.get().to_string(),
        ),
        (
            "Hosts with failed handshakes".into(),
            m.handshake_hosts.get().to_string(),
        ),
    ]
}
