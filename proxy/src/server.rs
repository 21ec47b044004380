//! `gatehouse run`: the proxy. Loads the policy, the CA (created on first start), builds the
//! upstream TLS client (Mozilla's roots plus any school CA from `[proxy] trust`), serves until
//! SIGTERM or Ctrl-C, and reloads the policy on SIGHUP or when the policy file or a list file
//! changes, without dropping a connection.

use crate::handler::Shared;
use crate::settings::ProxySettings;
use crate::upstream::Upstream;
use anyhow::Context as _;
use gatehouse_rules::config::ConfigFile;
use gatehouse_rules::control::PolicyControl;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::{pem::PemObject, CertificateDer};
use rustls::{ClientConfig, RootCertStore};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The admin page's edits to the policy, in the data folder.
pub const EDITS_FILE: &str = "policy-edits.toml";

/// `embedded`: the policy text is the one compiled into the binary.
pub async fn run(file: ConfigFile, embedded: bool) -> anyhow::Result<()> {
    let settings = ProxySettings::from_config(&file)?;
    let admin_settings = gatehouse_dashboard::settings::AdminSettings::from_table(
        file.config.admin.as_ref(),
        &file.path.display().to_string(),
    )?;
    let data = settings.data_dir(&file);
    let control = Arc::new(PolicyControl::start(
        &file,
        embedded,
        data.join(EDITS_FILE),
        Box::new(report_swap),
        chrono::Utc::now(),
    )?);
    if !crate::ca::key_path(&data).exists() {
        crate::ca::init(&data, control.live().load().school_name())?;
        tracing::info!(
            "Created the filtering CA in {} (install ca.pem on school devices).",
            data.display()
        );
    }
    let leaves = crate::certs::Leaves::new(crate::ca::load(&data)?)?;
    let upstream = Upstream::new(settings.upstream());
    let connector = https_connector(&settings, &file, upstream.clone())?;
    let live = Arc::clone(control.live());
    let sections = crate::safeguard::Sections::from_config(&file, &data)?;
    let pipeline = Arc::new(crate::safeguard::Pipeline::start(
        &sections,
        &crate::metrics::get().registry,
    )?);
    let events = crate::events::EventSink::start(
        data.join(&settings.events_dir),
        settings.events_rotate_mib << 20,
        settings.events_keep,
        EVENT_QUEUE,
        Arc::clone(&pipeline),
    )?;
    if let Some(addr) = settings.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("metrics on {addr}"))?;
        crate::cli::print(&format!(
            "Gatehouse metrics on http://{}/metrics\n",
            metrics.local_addr()?
        ));
        tokio::spawn(crate::metrics::serve(metrics));
    }
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let signal = shutdown_signal()?;
    tokio::spawn(async move {
        signal.await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let handles = crate::admin::Handles::open(&data)?;
    let sources = crate::identity::start(&file, &control.live().load()).await?;
    let people = sources.view();
    let directory = crate::identity::admin_sign_in(&admin_settings, &sources)?;
    let mut client = Client::builder(TokioExecutor::new());
    client
        .http1_title_case_headers(true)
        .pool_idle_timeout(Duration::from_secs(UPSTREAM_IDLE_SECS))
        .pool_timer(TokioTimer::new());
    let client = client.build(connector);
    let provider = crate::identity::admin_provider(&admin_settings, &sources, &client)?;
    let logins = crate::handler::Logins::load(
        data.join(&settings.users_file),
        Arc::clone(&handles.vouchers),
        sources,
    )?;
    let admin = crate::admin::start(
        crate::admin::Start {
            settings: &admin_settings,
            data: &data,
            handles: &handles,
            policy: Arc::clone(&control),
            sections: &sections,
            proxy_listen: addr,
            people,
            directory,
            provider,
        },
        until_stopped(stopped.clone()),
    )
    .await?;
    let shared = Arc::new(Shared {
        live,
        settings,
        events,
        logins,
        admin_db: Arc::clone(&handles.db),
        tokens: crate::warn::ContinueTokens::new()?,
        safeguarding: Arc::clone(&pipeline),
        upstream,
        client,
        leaves,
    });
    // The edits file is not watched: the admin page reloads after writing it, and a hand
    // edit is picked up by SIGHUP. The users and people files are read again with the
    // policy.
    let mut watched = vec![file.path.clone(), shared.logins.path().to_owned()];
    watched.extend(shared.logins.sources.people_path().map(PathBuf::from));
    spawn_reloader(
        control,
        Arc::clone(&shared),
        (!embedded)
            .then(|| ConfigFile::parse(file.path.clone(), file.text.clone()).ok())
            .flatten()
            .map(Arc::new),
        watched,
        file.lists_dir(),
    )
    .await?;
    let connections = crate::limits::Connections::new(
        shared.settings.max_connections,
        shared.settings.max_connections_per_client,
    );
    if let Some((admin_addr, tls)) = admin {
        crate::cli::print(&format!(
            "Gatehouse admin page on {}\n",
            gatehouse_dashboard::serve::describe(admin_addr, tls)
        ));
    }
    // Printed last: the line tests and supervisors wait for.
    crate::cli::print(&format!("Gatehouse proxy listening on {addr}\n"));
    let events = shared.events.clone();
    crate::intercept::serve(listener, shared, connections, stopped).await;
    // Every connection has finished: write the events still queued before exiting.
    tokio::task::spawn_blocking(move || {
        events.close();
        pipeline.close();
    })
    .await?;
    Ok(())
}
/// Events waiting for the writer thread (which drains them every 20 ms) before new ones are
/// counted as dropped: over a second of traffic at 10,000 requests/s.
const EVENT_QUEUE: usize = 16_384;

/// Idle upstream connections are kept this long for reuse.
const UPSTREAM_IDLE_SECS: u64 = 90;

/// TLS to origins (Mozilla's roots plus `[proxy] trust`) over the one upstream connector.
fn https_connector(
    settings: &ProxySettings,
    file: &ConfigFile,
    upstream: Upstream,
) -> anyhow::Result<hyper_rustls::HttpsConnector<Upstream>> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let base = file.path.parent().map(PathBuf::from).unwrap_or_default();
    for path in &settings.trust {
        let path = base.join(path);
        for cert in CertificateDer::pem_file_iter(&path)
            .with_context(|| format!("[proxy] trust: {}", path.display()))?
        {
            let cert = cert.with_context(|| {
                format!("[proxy] trust: {}: not a PEM certificate", path.display())
            })?;
            roots
                .add(cert)
                .with_context(|| format!("[proxy] trust: {}", path.display()))?;
        }
    }
    let config = ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(upstream))
}

/// SIGHUP, a change to the policy file or a list file, or an approval
/// running out: compile the policy again off the request path and swap it in; on error keep
/// the old one and say why.
async fn spawn_reloader(
    control: Arc<PolicyControl>,
    shared: Arc<Shared>,
    started_with: Option<Arc<ConfigFile>>,
    files: Vec<PathBuf>,
    lists: PathBuf,
) -> anyhow::Result<()> {
    // Both are taken before the proxy says it is listening: a SIGHUP sent as soon as it
    // does must reload, not end the process (the default action of an unhandled SIGHUP),
    // and an edit made just after must be seen as a change.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("handling SIGHUP")?;
    let (f, l) = (files.clone(), lists.clone());
    let mut seen = tokio::task::spawn_blocking(move || fingerprint(&f, &l))
        .await
        .unwrap_or_default();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WATCH_EVERY);
        loop {
            tokio::select! {
                signal = hup.recv() => {
                    if signal.is_none() {
                        return;
                    }
                }
                _ = tick.tick() => {
                    let (f, l) = (files.clone(), lists.clone());
                    let now = tokio::task::spawn_blocking(move || fingerprint(&f, &l))
                        .await
                        .unwrap_or_default();
                    let expired = control
                        .next_expiry()
                        .is_some_and(|t| t <= chrono::Utc::now());
                    if now == seen && !expired {
                        continue;
                    }
                    seen = now;
                }
            }
            let c = Arc::clone(&control);
            let first = started_with.clone();
            // The policy's outcome is reported by `report_swap`; what it cannot apply, here.
            let _ = tokio::task::spawn_blocking(move || {
                let _ = c.reload(chrono::Utc::now());
                if let Some(first) = first {
                    report_restart_needed(&first);
                }
            })
            .await;
            let s = Arc::clone(&shared);
            match tokio::task::spawn_blocking(move || s.logins.reload()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(
                    "Proxy logins not reloaded, the previous ones stay in force: {e:#}"
                ),
                Err(_) => {}
            }
        }
    });
    Ok(())
}

/// The sections a reload cannot apply (the listener, the admin page, the store and alert
/// delivery are set up once, at start): says which changed since start and need a restart,
/// and whether the next start would accept them.
fn report_restart_needed(first: &ConfigFile) {
    let Ok(now) = ConfigFile::load(&first.path) else {
        return;
    };
    let sections = [
        ("[proxy]", &first.config.proxy, &now.config.proxy),
        ("[admin]", &first.config.admin, &now.config.admin),
        ("[store]", &first.config.store, &now.config.store),
        ("[alerts]", &first.config.alerts, &now.config.alerts),
        ("[identity]", &first.config.identity, &now.config.identity),
    ];
    // `no_decrypt` is part of the policy and is applied by the reload itself.
    let without_no_decrypt = |t: &Option<toml::Table>| {
        let mut t = t.clone().unwrap_or_default();
        t.remove("no_decrypt");
        t
    };
    let changed: Vec<&str> = sections
        .iter()
        .filter(|(name, a, b)| {
            if *name == "[proxy]" {
                without_no_decrypt(a) != without_no_decrypt(b)
            } else {
                a != b
            }
        })
        .map(|(name, _, _)| *name)
        .collect();
    if changed.is_empty() {
        return;
    }
    let list = changed.join(", ");
    match crate::cli::check_sections(&now) {
        Ok(()) => tracing::warn!(
            "{list} changed: the running proxy keeps its settings until it is restarted."
        ),
        Err(e) => tracing::error!(
            "{list} changed and would not load ({e:#}): the running proxy keeps its settings, but a restart would fail until it is fixed."
        ),
    }
}

/// How often the policy file and the list folder are checked for changes.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Size and modification time of the policy file and of every file under the list folder:
/// a change to any of them reloads the policy.
fn fingerprint(files: &[PathBuf], lists: &std::path::Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut stat = |p: &std::path::Path| {
        if let Ok(m) = std::fs::metadata(p) {
            p.hash(&mut h);
            m.len().hash(&mut h);
            m.modified().ok().hash(&mut h);
        }
    };
    for file in files {
        stat(file);
    }
    let mut pending = vec![lists.to_owned()];
    let mut files = 0usize;
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for entry in entries {
            files += 1;
            if files > 100_000 {
                return h.finish();
            }
            if entry.is_dir() {
                pending.push(entry);
            } else {
                stat(&entry);
            }
        }
    }
    h.finish()
}

/// Reports every policy load: the generation metric and a line on success, the failure
/// metric and the reason (the previous policy stays in force) otherwise.
fn report_swap(result: Result<u64, &str>) {
    match result {
        Ok(generation) => {
            crate::metrics::get()
                .policy_generation
                .set(generation as i64);
            if generation > 1 {
                tracing::info!("Policy reloaded (generation {generation}).");
            }
        }
        Err(e) => {
            crate::metrics::get().reload_failures.inc();
            tracing::error!("Policy reload failed, the previous policy stays in force: {e}");
        }
    }
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed now, before the proxy says it
/// is listening, so a signal sent right after start is never missed.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
