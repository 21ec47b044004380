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
    /// Ports plain HTTP, decrypted HTTPS and WebSockets may reach: numbers and
    /// `"low-high"` ranges (default 80, 443 and 1025-65535, as Squid's `Safe_ports`).
    #[serde(default = "default_http_ports")]
    pub http_ports: Vec<PortSpec>,
    /// Let clients reach loopback origins (tests and labs only).
    #[serde(default)]
    pub allow_loopback_origins: bool,
    /// The school's own services clients may reach through the filter (CIDRs in private,
    /// shared or unique-local ranges; everything else internal is refused). Loopback,
    /// link-local and cloud metadata addresses can never be allowed here.
    #[serde(default)]
    pub internal_allow: Vec<ipnet::IpNet>,
    /// Extra CA certificates (PEM) trusted for upstream servers, e.g. the school's own CA.
    #[serde(default)]
    pub trust: Vec<String>,
    /// Hosts never decrypted (and everything below them): banking, health, pinned apps. Read
    /// here to check its type; the list in force is the policy control's, which the admin
    /// page can replace.
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "compiled into the snapshot by rules::compile (with the admin edits)"
    )]
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
    /// An origin must start its response within this many seconds of the request.
    #[serde(default = "default_response_timeout")]
    pub response_timeout_secs: u64,
    /// A tunnel that is not decrypted, or a WebSocket, with no traffic for this long is closed.
    #[serde(default = "default_tunnel_idle")]
    pub tunnel_idle_secs: u64,
    /// The largest request head accepted, in bytes (at least 8192).
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Response text (HTML, plain text, JSON, event streams) read for themes, in KiB of
    /// decoded body per response at most; 0 turns reading page text off.
    #[serde(default = "default_scan_content_kib")]
    pub scan_content_kib: usize,
    /// For roles whose `page_text` is `hold`: the first KiB of a text response held and read
    /// before any of it is delivered (a longer page is delivered from there and read as it
    /// streams, alert only).
    #[serde(default = "default_hold_kib")]
    pub hold_kib: usize,
    /// What a person sends (form fields, posts, prompts to AI chats) read for themes before
    /// it goes on, in KiB of request body at most; 0 turns it off.
    #[serde(default = "default_scan_request_kib")]
    pub scan_request_kib: usize,
    /// The same for a prompt posted to a recognised AI chat (its path is one of the
    /// service's chat paths): a chat's history comes before the new prompt, so more is read.
    #[serde(default = "default_scan_ai_request_kib")]
    pub scan_ai_request_kib: usize,
    /// Proxy logins (`gatehouse user add`), relative to the data folder.
    #[serde(default = "default_users_file")]
    pub users_file: String,
}

/// A port, or a range of ports as `"low-high"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum PortSpec {
    One(u16),
    Range(String),
}

impl PortSpec {
    fn range(&self) -> Result<(u16, u16), String> {
        match self {
            PortSpec::One(p) => Ok((*p, *p)),
            PortSpec::Range(text) => {
                let parsed = text.split_once('-').and_then(|(lo, hi)| {
                    Some((
                        lo.trim().parse::<u16>().ok()?,
                        hi.trim().parse::<u16>().ok()?,
                    ))
                });
                match parsed {
                    Some((lo, hi)) if lo <= hi => Ok((lo, hi)),
                    _ => Err(format!(
                        "http_ports: {text:?} is not a port or a range like \"1025-65535\""
                    )),
                }
            }
        }
    }
}

fn default_hold_kib() -> usize {
    256
}

fn default_scan_request_kib() -> usize {
    64
}

fn default_scan_ai_request_kib() -> usize {
    1024
}

fn default_scan_content_kib() -> usize {
    2048
}

fn default_http_ports() -> Vec<PortSpec> {
    vec![
        PortSpec::One(80),
        PortSpec::One(443),
        PortSpec::Range("1025-65535".to_owned()),
    ]
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
fn default_response_timeout() -> u64 {
    60
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
            ("response_timeout_secs", self.response_timeout_secs as usize),
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
        for spec in &self.http_ports {
            spec.range()?;
        }
        for net in &self.internal_allow {
            use crate::{error::Refusal, upstream::address::classify};
            let internal = |ip| classify(ip) == Some(Refusal::Internal);
            if !internal(net.network()) || !internal(net.broadcast()) {
                return Err(format!(
                    "internal_allow: {net} is not inside a private, shared or unique-local range (loopback, link-local and metadata addresses can never be allowed)"
                ));
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

    /// The upstream connector's set-up: pins, address rules, ports, the connect limit.
    pub fn upstream(&self) -> crate::upstream::Setup {
        use crate::upstream::{AddressRules, Ports, Setup};
        Setup {
            pins: self.hosts.clone(),
            rules: AddressRules {
                allow_loopback: self.allow_loopback_origins,
                internal_allow: self.internal_allow.clone(),
            },
            http_ports: Ports(
                self.http_ports
                    .iter()
                    .filter_map(|p| p.range().ok())
                    .collect(),
            ),
            tunnel_ports: Ports(self.connect_ports.iter().map(|&p| (p, p)).collect()),
            connect_timeout: std::time::Duration::from_secs(self.connect_timeout_secs),
        }
    }

    /// The data folder, resolved against the policy file's folder.
    pub fn data_dir(&self, file: &ConfigFile) -> PathBuf {
        let base = file.path.parent().map(PathBuf::from).unwrap_or_default();
        base.join(&self.data_dir)
    }
}
