//! Signing in limited to the school's own accounts, the way Microsoft and Google let a
//! school's filter do it: a header on every request to their sign-in hosts names the
//! accounts that may sign in.
//!
//! - **Microsoft** (Entra tenant restrictions): `Restrict-Access-To-Tenants` (the school's
//!   tenant domains) and `Restrict-Access-Context` (the school's directory id) on
//!   `login.microsoftonline.com`, `login.microsoft.com` and `login.windows.net`;
//!   `sec-Restrict-Tenant-Access-Policy: restrict-msa` on `login.live.com`, so personal
//!   Microsoft accounts cannot sign in (and with them personal Copilot).
//! - **Google** (Workspace): `X-GoogApps-Allowed-Domains` (the school's domains) on
//!   `google.com` and every name below it, so only the school's Google accounts sign in
//!   (and with them Gemini for the school's Workspace).
//!
//! The headers replace any the client sent. They can only be added to requests the filter
//! reads: a role with `school_accounts_only` must decrypt those hosts (the policy refuses
//! to load otherwise).

use crate::config::AccountsDef;
use crate::host::Host;

/// Microsoft's sign-in hosts that read the tenant restriction.
pub const MICROSOFT_SIGN_IN: &[&str] = &[
    "login.microsoftonline.com",
    "login.microsoft.com",
    "login.windows.net",
];
/// Microsoft's sign-in host for personal accounts.
pub const MICROSOFT_PERSONAL: &str = "login.live.com";
/// Google's hosts (and every name below it).
pub const GOOGLE: &str = "google.com";

/// The compiled `[accounts]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchoolAccounts {
    /// Tenant domains, comma-separated as the header wants them, and the directory id.
    microsoft: Option<(String, String)>,
    google: Option<String>,
}

impl SchoolAccounts {
    /// Checks `[accounts]`; `Err` says which field is wrong.
    pub fn new(def: &AccountsDef) -> Result<SchoolAccounts, (String, String)> {
        let domains = |field: &str, list: &[String]| -> Result<String, (String, String)> {
            let mut out = Vec::new();
            for d in list {
                let host = Host::parse(d.trim())
                    .ok_or_else(|| (field.to_owned(), format!("{d:?} is not a domain name")))?;
                out.push(host.as_str().to_owned());
            }
            Ok(out.join(","))
        };
        let microsoft = match (&def.microsoft[..], &def.microsoft_tenant_id) {
            ([], None) => None,
            ([], Some(_)) => {
                return Err((
                    "microsoft".into(),
                    "the tenant's domains are needed with its directory id".into(),
                ))
            }
            (_, None) => {
                return Err((
                    "microsoft_tenant_id".into(),
                    "Microsoft reads the restriction only with the school's directory (tenant) id, a GUID from the Entra admin centre".into(),
                ))
            }
            (list, Some(id)) => {
                if !is_guid(id) {
                    return Err((
                        "microsoft_tenant_id".into(),
                        format!("{id:?} is not a directory id (a GUID such as 8f2e4c1a-0b7d-4e55-9a3c-2d1f6b0e7a91)"),
                    ));
                }
                Some((domains("microsoft", list)?, id.to_ascii_lowercase()))
            }
        };
        let google = match &def.google[..] {
            [] => None,
            list => Some(domains("google", list)?),
        };
        Ok(SchoolAccounts { microsoft, google })
    }

    pub fn is_empty(&self) -> bool {
        self.microsoft.is_none() && self.google.is_none()
    }

    /// The sign-in hosts the headers go to (for the check that they are decrypted).
    pub fn hosts(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.microsoft.is_some() {
            out.extend_from_slice(MICROSOFT_SIGN_IN);
            out.push(MICROSOFT_PERSONAL);
        }
        if self.google.is_some() {
            out.push("accounts.google.com");
        }
        out
    }

    /// The headers to set on a request to `host` (lower case) for a role limited to the
    /// school's accounts.
    pub fn headers(&self, host: &str) -> Vec<(&'static str, &str)> {
        let host = host.trim_end_matches('.');
        let mut out = Vec::new();
        if let Some((domains, id)) = &self.microsoft {
            if MICROSOFT_SIGN_IN.contains(&host) {
                out.push(("restrict-access-to-tenants", domains.as_str()));
                out.push(("restrict-access-context", id.as_str()));
            } else if host == MICROSOFT_PERSONAL {
                out.push(("sec-restrict-tenant-access-policy", "restrict-msa"));
            }
        }
        if let Some(domains) = &self.google {
            let below = host
                .strip_suffix(GOOGLE)
                .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'));
            if below {
                out.push(("x-googapps-allowed-domains", domains.as_str()));
            }
        }
        out
    }
}

/// `8-4-4-4-12` hexadecimal digits.
fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(ms: &[&str], id: Option<&str>, google: &[&str]) -> AccountsDef {
        AccountsDef {
            microsoft: ms.iter().map(|s| (*s).to_owned()).collect(),
            microsoft_tenant_id: id.map(str::to_owned),
            google: google.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    const ID: &str = "8F2E4C1A-0B7D-4E55-9A3C-2D1F6B0E7A91";

    #[test]
    fn each_company_gets_its_header_on_its_sign_in_hosts_only() {
        let a = SchoolAccounts::new(&def(
            &["Example.sch.uk", "example.onmicrosoft.com"],
            Some(ID),
            &["example.sch.uk"],
        ))
        .unwrap();
        assert_eq!(
            a.headers("login.microsoftonline.com"),
            vec![
                (
                    "restrict-access-to-tenants",
                    "example.sch.uk,example.onmicrosoft.com"
                ),
                (
                    "restrict-access-context",
                    "8f2e4c1a-0b7d-4e55-9a3c-2d1f6b0e7a91"
                ),
            ]
        );
        assert_eq!(
            a.headers("login.live.com"),
            vec![("sec-restrict-tenant-access-policy", "restrict-msa")]
        );
        for host in ["accounts.google.com", "google.com", "mail.google.com."] {
            assert_eq!(
                a.headers(host),
                vec![("x-googapps-allowed-domains", "example.sch.uk")],
                "{host}"
            );
        }
        for host in [
            "notgoogle.com",
            "google.com.evil.example",
            "www.example.sch.uk",
        ] {
            assert!(a.headers(host).is_empty(), "{host}");
        }
    }

    #[test]
    fn a_wrong_field_is_named() {
        let err = |d: AccountsDef| SchoolAccounts::new(&d).unwrap_err().0;
        assert_eq!(err(def(&["a.example"], None, &[])), "microsoft_tenant_id");
        assert_eq!(
            err(def(&["a.example"], Some("nope"), &[])),
            "microsoft_tenant_id"
        );
        assert_eq!(err(def(&[], Some(ID), &[])), "microsoft");
        assert_eq!(err(def(&["not a domain"], Some(ID), &[])), "microsoft");
        assert_eq!(err(def(&[], None, &["bad domain"])), "google");
        assert!(SchoolAccounts::new(&def(&[], None, &[]))
            .unwrap()
            .is_empty());
    }
}
