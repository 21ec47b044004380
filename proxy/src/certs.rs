//! The leaf certificates shown to clients for intercepted sites: signed by the school's CA
//! for the name the client asked for (an IP address SAN for an address), cached per host so
//! each is signed once a week, and counted (`certificates_minted_total`,
//! `certificate_cache_hits_total`, `certificates_cached`). Every leaf carries one key pair
//! made at start, so the CA's own key only ever signs.

use dashmap::DashMap;
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose, SanType,
    PKCS_ECDSA_P256_SHA256,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// At most this many hosts keep a certificate in memory; past it the cache starts afresh.
const MAX_CACHED: usize = 10_000;
/// A cached leaf is signed again after this long (it is valid for 30 days).
const REMINT_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

pub struct Leaves {
    issuer: Issuer<'static, KeyPair>,
    leaf_key: KeyPair,
    provider: Arc<CryptoProvider>,
    cache: DashMap<String, (Instant, Arc<ServerConfig>)>,
}

impl std::fmt::Debug for Leaves {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaves")
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl Leaves {
    pub fn new(issuer: Issuer<'static, KeyPair>) -> anyhow::Result<Leaves> {
        Ok(Leaves {
            issuer,
            leaf_key: KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?,
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            cache: DashMap::new(),
        })
    }

    /// The TLS server configuration that presents a certificate for `host` (a name, or an
    /// address with or without brackets).
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, rcgen::Error> {
        let metrics = crate::metrics::get();
        if let Some(entry) = self.cache.get(host) {
            if entry.0.elapsed() < REMINT_AFTER {
                metrics.certificate_cache_hits.inc();
                return Ok(Arc::clone(&entry.1));
            }
        }
        let config = Arc::new(self.mint(host)?);
        metrics.certificates_minted.inc();
        if self.cache.len() >= MAX_CACHED {
            self.cache.clear();
        }
        self.cache
            .insert(host.to_owned(), (Instant::now(), Arc::clone(&config)));
        metrics.certificates_cached.set(self.cache.len() as i64);
        Ok(config)
    }

    fn mint(&self, host: &str) -> Result<ServerConfig, rcgen::Error> {
        let mut params = CertificateParams::default();
        let mut serial = [0u8; 16];
        // A random serial; all-zero (an RNG failure) still yields a valid certificate.
        let _ = aws_lc_rs::rand::fill(&mut serial);
        serial[0] &= 0x7f;
        params.serial_number = Some(serial.to_vec().into());
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(30);
        params.distinguished_name.push(DnType::CommonName, host);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        params.subject_alt_names.push(match bare.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(bare.try_into()?),
        });
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&self.leaf_key, &self.issuer)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .map_err(|_| rcgen::Error::RingUnspecified)?
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(cert.der().to_vec())], key)
            .map_err(|_| rcgen::Error::RingUnspecified)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}
