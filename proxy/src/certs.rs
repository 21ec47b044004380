//! The leaf certificates shown to clients for intercepted sites: minted by hudsucker's rcgen
//! authority with the school's CA, cached here per host so each is signed once, and counted
//! (`certificates_minted_total`, `certificate_cache_hits_total`, `certificates_cached`).

use dashmap::DashMap;
use hudsucker::certificate_authority::{CertificateAuthority, RcgenAuthority};
use hudsucker::hyper::http::uri::Authority;
use hudsucker::rustls::ServerConfig;
use std::sync::Arc;

/// At most this many hosts keep a certificate in memory; past it the cache starts afresh.
const MAX_CACHED: usize = 10_000;

pub struct Leaves {
    minter: RcgenAuthority,
    cache: DashMap<Authority, Arc<ServerConfig>>,
}

impl std::fmt::Debug for Leaves {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaves")
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl Leaves {
    pub fn new(minter: RcgenAuthority) -> Leaves {
        Leaves {
            minter,
            cache: DashMap::new(),
        }
    }
}

impl CertificateAuthority for Leaves {
    async fn gen_server_config(&self, authority: &Authority) -> Arc<ServerConfig> {
        let metrics = crate::metrics::get();
        if let Some(config) = self.cache.get(authority).map(|c| Arc::clone(&c)) {
            metrics.certificate_cache_hits.inc();
            return config;
        }
        let config = self.minter.gen_server_config(authority).await;
        metrics.certificates_minted.inc();
        if self.cache.len() >= MAX_CACHED {
            self.cache.clear();
        }
        self.cache.insert(authority.clone(), Arc::clone(&config));
        metrics.certificates_cached.set(self.cache.len() as i64);
        config
    }
}
