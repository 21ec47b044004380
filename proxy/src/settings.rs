//! The `[proxy]` section of the policy file: where the proxy listens, where its data (the
//! CA) lives, and the limits it enforces before any rule runs.

use anyhow::Context as _;
use gatehouse_rules::config::ConfigFile;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySettings {
    /// Where the proxy listens (default `127.0.0.1:3128`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The data folder (the CA lives here), relative to the policy file.
    #[serde(default = "default_data_dir")]
    pub data_dir: String,
    /// Ports CONNECT may reach (443 by default).
    #[serde(default = "default_connect_ports")]
    pub connect_ports: Vec<u16>,
    /// Let clients reach loopback origins (tests and labs only).
    #[serde(default)]
    pub allow_loopback_origins: bool,
    /// Extra CA certificates (PEM) trusted for upstream servers, e.g. the school's own CA.
    #[serde(default)]
    pub trust: Vec<String>,
    /// Hosts never decrypted (and everything below them): banking, health, pinned apps. Read
    /// here to check its type; the list in force is the policy control's, which the admin
    /// page can replace.
    #[serde(default)]
    #[expect(dead_code, reason = "in force through PolicyControl::no_decrypt")]
    pub no_decrypt: Vec<String>,
    /// Names pinned to addresses for upstream connections (like `/etc/hosts`), e.g.
    /// `"www.google.com" = "216.239.38.120"` for Google's SafeSearch address.
    #[serde(default)]
    pub hosts: std::collections::HashMap<String, std::net::IpAddr>,
    /// Where Prometheus metrics are served (`GET /metrics`); absent: not served.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// Request events (JSON lines) are written here, relative to the data folder.
    #[serde(default = "default_events_dir")]
    pub events_dir: String,
    /// The events file is rotated past this many MiB; this many old files are kept.
    #[serde(default = "default_events_rotate_mib")]
    pub events_rotate_mib: u64,
    #[serde(default = "default_events_keep")]
    pub events_keep: usize,
    /// A client must send each request head within this many seconds: this closes slow
    /// clients and keep-alive connections left idle for longer.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: u64,
    /// Open client connections in all; past it new ones get a `503`.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open client connections from one address (one device, or one NAT).
    #[serde(default = "default_max_connections_per_client")]
    pub max_connections_per_client: usize,
    /// How long connecting to an upstream server may take.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// A tunnel that is not decrypted, or a WebSocket, with no traffic for this long is closed.
    #[serde(default = "default_tunnel_idle")]
    pub tunnel_idle_secs: u64,
    /// The largest request head accepted, in bytes (at least 8192).
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Proxy logins (`gatehouse user add`), relative to the data folder.
    #[serde(default = "default_users_file")]
    pub users_file: String,
}

fn default_header_timeout() -> u64 {
    30
}
fn default_max_connections() -> usize {
    20_000
}
fn default_max_connections_per_client() -> usize {
    1_000
}
fn default_connect_timeout() -> u64 {
    10
}
fn default_tunnel_idle() -> u64 {
    600
}
fn default_max_header_bytes() -> usize {
    64 << 10
}
fn default_users_file() -> String {
    "users.txt".to_owned()
}

fn default_events_dir() -> String {
    "events".to_owned()
}
fn default_events_rotate_mib() -> u64 {
    64
}
fn default_events_keep() -> usize {
    10
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3128))
}
fn default_data_dir() -> String {
    "gatehouse-data".to_owned()
}
fn default_connect_ports() -> Vec<u16> {
    vec![443]
}

impl ProxySettings {
    /// Reads `[proxy]` from the policy file (defaults when it is absent).
    pub fn from_config(file: &ConfigFile) -> anyhow::Result<ProxySettings> {
        let table = file.config.proxy.clone().unwrap_or_default();
        let at = file.text.find("[proxy]").map_or(0, |i| file.line(i));
        let settings: ProxySettings = toml::Value::Table(table)
            .try_into()
            .with_context(|| format!("{}:{at}: [proxy]", file.path.display()))?;
        settings
            .check()
            .map_err(|e| anyhow::anyhow!("{}:{at}: [proxy] {e}", file.path.display()))?;
        Ok(settings)
    }

    /// Values that parse but cannot work.
    fn check(&self) -> Result<(), String> {
        let positive = [
            ("header_timeout_secs", self.header_timeout_secs as usize),
            ("connect_timeout_secs", self.connect_timeout_secs as usize),
            ("tunnel_idle_secs", self.tunnel_idle_secs as usize),
            ("max_connections", self.max_connections),
            (
                "max_connections_per_client",
                self.max_connections_per_client,
            ),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if self.max_connections_per_client > self.max_connections {
            return Err(format!(
                "max_connections_per_client ({}) is more than max_connections ({})",
                self.max_connections_per_client, self.max_connections
            ));
        }
        Ok(())
    }

    /// The data folder, resolved against the policy file's folder.
    pub fn data_dir(&self, file: &ConfigFile) -> PathBuf {
        let base = file.path.parent().map(PathBuf::from).unwrap_or_default();
        base.join(&self.data_dir)
    }
}
