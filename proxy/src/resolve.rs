//! Name resolution for upstream connections: the system resolver, with two school-network
//! rules on top. `[proxy] hosts` pins names to addresses (as schools pin Google to its
//! SafeSearch address), and a name that resolves only to loopback (unless the lab switch
//! allows it), link-local or cloud-metadata addresses is refused, so DNS cannot be used to
//! reach what a literal address may not.

use hudsucker::hyper_util::client::legacy::connect::dns::Name;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs as _};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

#[derive(Clone, Debug)]
pub struct Resolver {
    hosts: Arc<HashMap<String, IpAddr>>,
    allow_loopback: bool,
}

/// Addresses a filter never relays to (loopback only with the lab switch).
pub fn forbidden(ip: IpAddr, allow_loopback: bool) -> bool {
    let ip = ip.to_canonical();
    let link_local = match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4.is_unspecified(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80 || v6.is_unspecified(),
    };
    link_local || (ip.is_loopback() && !allow_loopback)
}

impl Resolver {
    pub fn new(hosts: &HashMap<String, IpAddr>, allow_loopback: bool) -> Resolver {
        Resolver {
            hosts: Arc::new(
                hosts
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), *v))
                    .collect(),
            ),
            allow_loopback,
        }
    }
}

type Addrs = std::vec::IntoIter<SocketAddr>;

impl tower_service::Service<Name> for Resolver {
    type Response = Addrs;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Addrs>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let host = name.as_str().to_ascii_lowercase();
        if let Some(ip) = self.hosts.get(&host) {
            let addrs = vec![SocketAddr::new(*ip, 0)].into_iter();
            return Box::pin(std::future::ready(Ok(addrs)));
        }
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let lookup = tokio::task::spawn_blocking(move || {
                (host.as_str(), 0)
                    .to_socket_addrs()
                    .map(|a| (host.clone(), a.collect::<Vec<_>>()))
            });
            let (host, addrs) = lookup.await.map_err(io::Error::other)??;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| !forbidden(a.ip(), allow_loopback))
                .collect();
            if allowed.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("{host} resolves only to internal addresses"),
                ));
            }
            Ok(allowed.into_iter())
        })
    }
}
