//! Single sign-on for domain-joined computers: `Proxy-Authenticate: Negotiate` (Kerberos,
//! RFC 4559), so a Windows or macOS machine signed in to the domain is identified with no
//! prompt. The ticket is checked by the system's GSSAPI (MIT Kerberos) with the proxy's
//! keytab, named by `KRB5_KTNAME` in the service's environment (as for any Kerberos
//! service); its replay cache refuses a token seen before. Only one round is accepted (a
//! Kerberos ticket); SPNEGO's NTLM fallback is refused.
//!
//! Built with the `kerberos` feature (it links libgssapi_krb5; building needs Debian's
//! `libkrb5-dev` and `libclang-dev`); without it, `[identity.kerberos]` is refused at start.

use anyhow::{bail, Context as _};

/// Checks that the keytab the service will use is set and owner-only.
pub fn check_keytab() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if !cfg!(feature = "kerberos") {
        bail!(
            "[identity.kerberos]: this Gatehouse was built without Kerberos (build it with \
             `--features kerberos`, which needs Debian's libkrb5-dev and libclang-dev)"
        );
    }
    let name = std::env::var("KRB5_KTNAME").context(
        "[identity.kerberos]: set KRB5_KTNAME to the proxy's keytab in the service's \
         environment (e.g. Environment=KRB5_KTNAME=/etc/gatehouse/proxy.keytab)",
    )?;
    let path = name.strip_prefix("FILE:").unwrap_or(&name);
    let meta = std::fs::metadata(path)
        .with_context(|| format!("[identity.kerberos]: the keytab KRB5_KTNAME names, {path}"))?;
    if meta.permissions().mode() & 0o077 != 0 {
        bail!("[identity.kerberos]: the keytab {path} can be read by others; chmod 600 it");
    }
    Ok(())
}

/// Why a Negotiate token proved no one.
#[derive(Debug)]
pub enum Failed {
    /// The client wants more rounds (NTLM inside SPNEGO: a machine that could not get a
    /// ticket); not a wrong guess.
    #[cfg_attr(
        not(feature = "kerberos"),
        expect(dead_code, reason = "only the GSSAPI acceptor tells it apart")
    )]
    MoreRounds,
    /// A bad, expired or replayed ticket.
    Refused(String),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::MoreRounds => f.write_str(
                "the client offered more than one round (NTLM: it could not get a Kerberos \
                 ticket for the proxy's name)",
            ),
            Failed::Refused(why) => f.write_str(why),
        }
    }
}

/// The principal (`amy@SCHOOL.INTERNAL`) a Negotiate token proves, or why not.
/// Slow (it decrypts a ticket and writes the replay cache): run it off the async workers.
#[cfg(feature = "kerberos")]
pub fn accept(token: &[u8]) -> Result<String, Failed> {
    use libgssapi::context::{SecurityContext as _, ServerCtx};
    let mut ctx = ServerCtx::new(None);
    match ctx.step(token, None) {
        Ok(_) if ctx.is_complete() => {}
        Ok(_) => return Err(Failed::MoreRounds),
        Err(e) => return Err(Failed::Refused(e.to_string())),
    }
    let name = ctx
        .source_name()
        .map_err(|e| Failed::Refused(e.to_string()))?;
    Ok(name.to_string())
}

#[cfg(not(feature = "kerberos"))]
pub fn accept(_token: &[u8]) -> Result<String, Failed> {
    Err(Failed::Refused(
        "this Gatehouse was built without Kerberos".to_owned(),
    ))
}

/// The account a principal names: `amy@SCHOOL.INTERNAL` is `amy` when the realm is the
/// school's; machine and service principals (`PC01$`, `host/...`) name no one.
pub fn account_of(principal: &str, realms: &[String]) -> Option<String> {
    let (user, realm) = principal.rsplit_once('@')?;
    if !realms.iter().any(|r| r.eq_ignore_ascii_case(realm)) {
        return None;
    }
    let user = user.to_lowercase();
    let ok = !user.is_empty()
        && user.len() <= 256
        && !user.contains(['/', '@', '\\'])
        && !user.ends_with('$')
        && !user.chars().any(|c| c.is_control() || c.is_whitespace());
    ok.then_some(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_of_other_realms_machines_and_services_name_no_one() {
        let realms = ["SCHOOL.TEST".to_owned()];
        assert_eq!(
            account_of("Amy@school.test", &realms).as_deref(),
            Some("amy")
        );
        assert_eq!(account_of("amy@EVIL.TEST", &realms), None);
        assert_eq!(account_of("PC01$@SCHOOL.TEST", &realms), None);
        assert_eq!(account_of("HTTP/proxy@SCHOOL.TEST", &realms), None);
        assert_eq!(account_of("amy", &realms), None);
    }
}
