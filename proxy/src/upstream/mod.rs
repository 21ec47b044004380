//! The one road out. Every connection Gatehouse opens to another server on a client's
//! behalf (the HTTP client for plain and decrypted requests, WebSockets, tunnels that are not
//! decrypted) is opened here, and nowhere else in the workspace opens a TCP connection
//! (`clippy.toml` disallows the socket constructors everywhere but this module):
//!
//! 1. the host is normalised as the rules engine sees it (`0x7f.1` is `127.0.0.1`);
//! 2. a name is looked up in `[proxy] hosts` (pins such as Google's SafeSearch address),
//!    else in the system resolver;
//! 3. every address is checked against [`AddressRules`] and the port against the ports this
//!    kind of connection may reach; refused addresses are dropped, and a host with none left
//!    is refused with the reason;
//! 4. the connection goes to exactly one of the checked addresses, within the connect limit.

pub mod address;

use crate::error::{Error, Refusal};
pub use address::AddressRules;
use gatehouse_rules::host::{Host, HostKind};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;

/// A set of ports, as inclusive ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ports(pub Vec<(u16, u16)>);

impl Ports {
    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&port))
    }
}

/// What a connection is for: each kind reaches its own ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Road {
    /// Requests the filter makes itself (plain HTTP, decrypted HTTPS, WebSockets).
    Http,
    /// A CONNECT tunnel relayed without decryption.
    Tunnel,
}

/// The connector. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Upstream {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pins: HashMap<String, IpAddr>,
    rules: AddressRules,
    http_ports: Ports,
    tunnel_ports: Ports,
    connect_timeout: Duration,
}

/// How the connector is set up (from `[proxy]`).
#[derive(Clone, Debug)]
pub struct Setup {
    pub pins: HashMap<String, IpAddr>,
    pub rules: AddressRules,
    pub http_ports: Ports,
    pub tunnel_ports: Ports,
    pub connect_timeout: Duration,
}

impl Upstream {
    pub fn new(setup: Setup) -> Upstream {
        let pins = setup
            .pins
            .into_iter()
            .filter_map(|(name, ip)| Some((Host::parse(&name)?.as_str().to_owned(), ip)))
            .collect();
        Upstream {
            inner: Arc::new(Inner {
                pins,
                rules: setup.rules,
                http_ports: setup.http_ports,
                tunnel_ports: setup.tunnel_ports,
                connect_timeout: setup.connect_timeout,
            }),
        }
    }

    /// The ports `road` may reach.
    pub fn ports(&self, road: Road) -> &Ports {
        match road {
            Road::Http => &self.inner.http_ports,
            Road::Tunnel => &self.inner.tunnel_ports,
        }
    }

    /// Checks what can be checked without resolving: the port, and a host that is an
    /// address literal in any spelling. Used to refuse a CONNECT or a WebSocket before the
    /// client is told anything.
    pub fn precheck(&self, host: &str, port: u16, road: Road) -> Result<(), Error> {
        let refused = |refusal| Error::Refused {
            host: host.to_owned(),
            refusal,
        };
        if !self.ports(road).contains(port) {
            return Err(refused(Refusal::Port(port)));
        }
        let parsed = Host::parse(host).ok_or_else(|| Error::BadHost(host.to_owned()))?;
        if let Some(ip) = literal(&parsed) {
            self.inner.rules.check(ip).map_err(refused)?;
        } else if let Some(ip) = self.inner.pins.get(parsed.as_str()) {
            self.inner.rules.check(*ip).map_err(refused)?;
        } else if is_localhost(parsed.as_str()) {
            // RFC 6761: `localhost` and every name under it are loopback, whatever DNS says.
            self.inner
                .rules
                .check(IpAddr::from([127, 0, 0, 1]))
                .map_err(refused)?;
        }
        Ok(())
    }

    /// The addresses `host` may be reached at, in the resolver's order, or why none.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
        let parsed = Host::parse(host).ok_or_else(|| Error::BadHost(host.to_owned()))?;
        let candidates: Vec<IpAddr> = if let Some(ip) = literal(&parsed) {
            vec![ip]
        } else if let Some(ip) = self.inner.pins.get(parsed.as_str()) {
            vec![*ip]
        } else {
            let found = tokio::net::lookup_host((parsed.as_str(), port)).await;
            let found = found.map_err(|source| Error::Resolve {
                host: host.to_owned(),
                source,
            })?;
            found.map(|a| a.ip()).collect()
        };
        let mut refusal = None;
        let allowed: Vec<SocketAddr> = candidates
            .into_iter()
            .filter(|ip| match self.inner.rules.check(*ip) {
                Ok(()) => true,
                Err(r) => {
                    refusal.get_or_insert(r);
                    false
                }
            })
            .map(|ip| SocketAddr::new(ip.to_canonical(), port))
            .collect();
        match (allowed.is_empty(), refusal) {
            (false, _) => Ok(allowed),
            (true, Some(refusal)) => Err(Error::Refused {
                host: host.to_owned(),
                refusal,
            }),
            (true, None) => Err(Error::Resolve {
                host: host.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
            }),
        }
    }

    /// Opens a connection to `host:port` for `road`, after every check above.
    pub async fn connect(&self, host: &str, port: u16, road: Road) -> Result<TcpStream, Error> {
        self.precheck(host, port, road)?;
        let timeout = self.inner.connect_timeout;
        let attempt = async {
            let addrs = self.resolve(host, port).await?;
            let mut last = None;
            for addr in addrs {
                match open(addr).await {
                    Ok(tcp) => return Ok(tcp),
                    Err(e) => last = Some(e),
                }
            }
            Err(Error::Connect {
                host: host.to_owned(),
                source: last.unwrap_or_else(|| std::io::Error::other("no address")),
            })
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| Error::Timeout {
                host: host.to_owned(),
            })?
    }
}

fn is_localhost(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

/// The address a host literal stands for.
fn literal(host: &Host<'_>) -> Option<IpAddr> {
    match host.kind() {
        HostKind::Name => None,
        HostKind::Ipv4 | HostKind::Ipv6 => host
            .as_str()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok(),
    }
}

/// The one socket constructor in the workspace.
#[expect(
    clippy::disallowed_methods,
    reason = "the one place Gatehouse connects to another server, after the checks above"
)]
async fn open(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// The HTTP client's connector: plain `http://` and the TCP under `https://`.
impl tower_service::Service<hyper::Uri> for Upstream {
    type Response = TokioIo<TcpStream>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: hyper::Uri) -> Self::Future {
        let upstream = self.clone();
        Box::pin(async move {
            let host = uri.host().ok_or_else(|| Error::BadHost(uri.to_string()))?;
            let default_port = if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            };
            let port = uri.port_u16().unwrap_or(default_port);
            let tcp = upstream.connect(host, port, Road::Http).await?;
            Ok(TokioIo::new(tcp))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(allow_loopback: bool) -> Upstream {
        Upstream::new(Setup {
            pins: [("intranet.test".to_owned(), "127.0.0.1".parse().unwrap())]
                .into_iter()
                .collect(),
            rules: AddressRules {
                allow_loopback,
                internal_allow: Vec::new(),
            },
            http_ports: Ports(vec![(80, 80), (1025, 65535)]),
            tunnel_ports: Ports(vec![(443, 443)]),
            connect_timeout: Duration::from_secs(1),
        })
    }

    /// Every spelling of an internal address is refused before a socket exists (the
    /// connector never reaches `open` for these: `resolve` fails first).
    #[tokio::test]
    async fn every_spelling_of_loopback_and_internal_hosts_is_refused_without_a_socket() {
        let up = upstream(false);
        for host in [
            "127.0.0.1",
            "2130706433",
            "0x7f000001",
            "0x7f.1",
            "127.1",
            "0177.0.0.1",
            "0",
            "0.0.0.0",
            "[::1]",
            "[::ffff:127.0.0.1]",
            "[::ffff:7f00:1]",
            "localhost",
            "LOCALHOST.",
            "intranet.test",
            "10.0.0.1",
            "012.0.0.1",
            "167772161",
            "192.168.0.1",
            "[fd00::1]",
            "169.254.169.254",
            "[fe80::1]",
        ] {
            let err = up.resolve(host, 8080).await.unwrap_err();
            assert!(matches!(err, Error::Refused { .. }), "{host}: {err}");
            let err = up.connect(host, 8080, Road::Http).await.unwrap_err();
            assert!(matches!(err, Error::Refused { .. }), "{host}: {err}");
        }
    }

    #[tokio::test]
    async fn ports_are_checked_per_road_before_anything_else() {
        let up = upstream(true);
        let err = up.connect("127.0.0.1", 22, Road::Http).await.unwrap_err();
        assert!(matches!(
            err,
            Error::Refused {
                refusal: Refusal::Port(22),
                ..
            }
        ));
        let err = up.precheck("127.0.0.1", 8443, Road::Tunnel).unwrap_err();
        assert!(matches!(
            err,
            Error::Refused {
                refusal: Refusal::Port(8443),
                ..
            }
        ));
        assert!(up.precheck("127.0.0.1", 443, Road::Tunnel).is_ok());
    }

    #[tokio::test]
    async fn pins_apply_before_the_resolver_and_are_checked_like_any_address() {
        let up = upstream(true);
        let addrs = up.resolve("Intranet.Test.", 80).await.unwrap();
        assert_eq!(addrs, vec!["127.0.0.1:80".parse().unwrap()]);
        assert!(upstream(false)
            .precheck("intranet.test", 80, Road::Http)
            .is_err());
    }
}
