//! The school's interception CA: created once (ECDSA P-256), its key readable by the owner
//! only, never overwritten; its certificate exported for rolling out to devices.

use anyhow::{bail, Context as _};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub const CERT_FILE: &str = "ca.pem";
pub const KEY_FILE: &str = "ca.key";

pub fn cert_path(dir: &Path) -> PathBuf {
    dir.join(CERT_FILE)
}
pub fn key_path(dir: &Path) -> PathBuf {
    dir.join(KEY_FILE)
}

/// Creates the CA in `dir`. Refuses if either file exists: a new CA would break every
/// device that trusts the old one.
pub fn init(dir: &Path, school: &str) -> anyhow::Result<()> {
    let (cert, key) = (cert_path(dir), key_path(dir));
    for p in [&cert, &key] {
        if p.exists() {
            bail!("{} exists: refusing to overwrite the CA that devices trust (move it away first to start again)", p.display());
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key_pair = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.distinguished_name.push(
        DnType::CommonName,
        format!("{school} Gatehouse filtering CA"),
    );
    params
        .distinguished_name
        .push(DnType::OrganizationName, school);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let year = chrono::Datelike::year(&chrono::Utc::now());
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
    let certificate = params.self_signed(&key_pair)?;
    write_new(&key, key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_new(&cert, certificate.pem().as_bytes(), 0o644)?;
    // The creation mode is cut by the umask (0077 when run by Gatehouse): devices and the
    // set-up page need the certificate, so it is opened up explicitly.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("chmod {}", cert.display()))?;
    Ok(())
}

/// Writes a file that must not exist yet, with `mode` from its creation.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Loads the CA for signing leaf certificates. Refuses a key others can read.
pub fn load(dir: &Path) -> anyhow::Result<Issuer<'static, KeyPair>> {
    use std::os::unix::fs::PermissionsExt as _;
    let (cert, key) = (cert_path(dir), key_path(dir));
    let mode = std::fs::metadata(&key)
        .with_context(|| format!("{}: the CA key (run `gatehouse ca init`)", key.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "{}: the CA key is readable by others (mode {:o}); run `chmod 600` on it",
            key.display(),
            mode & 0o777
        );
    }
    let key_pem =
        std::fs::read_to_string(&key).with_context(|| format!("reading {}", key.display()))?;
    let cert_pem =
        std::fs::read_to_string(&cert).with_context(|| format!("reading {}", cert.display()))?;
    let key_pair = KeyPair::from_pem(&key_pem)
        .with_context(|| format!("{}: not a PEM private key", key.display()))?;
    Issuer::from_ca_cert_pem(&cert_pem, key_pair)
        .with_context(|| format!("{}: not a CA certificate", cert.display()))
}

/// The CA certificate, PEM, for device roll-out.
pub fn export(dir: &Path) -> anyhow::Result<String> {
    let cert = cert_path(dir);
    std::fs::read_to_string(&cert)
        .with_context(|| format!("{}: no CA yet (run `gatehouse ca init`)", cert.display()))
}

/// A certificate for the admin page issued by the CA (devices that trust the CA trust the
/// page): `names` as DNS or IP SANs, valid for a year, minted at every start (never stored).
pub fn admin_certificate(
    dir: &Path,
    names: &[String],
) -> anyhow::Result<(
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
)> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let issuer = load(dir)?;
    let key_pair = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(names.to_vec())
        .context("[admin] hostnames: a name is not a valid DNS name or address")?;
    params
        .distinguished_name
        .push(DnType::CommonName, "Gatehouse admin");
    let now = chrono::Utc::now();
    let (y, m, d) = (
        chrono::Datelike::year(&now),
        chrono::Datelike::month(&now) as u8,
        chrono::Datelike::day(&now).min(28) as u8,
    );
    params.not_before = rcgen::date_time_ymd(y - 1, m, d);
    params.not_after = rcgen::date_time_ymd(y + 1, m, d);
    let cert = params.signed_by(&key_pair, &issuer)?;
    Ok((
        vec![CertificateDer::from(cert.der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der())),
    ))
}
