//! The proxy crate's errors. Upstream failures are typed so the request path can answer
//! each one with the right page and metric without reading error text.

use std::fmt;

/// Why an address may not be reached from the filter (decided before any socket exists).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `127.0.0.0/8`, `::1`, and names that resolve there (the filter itself).
    Loopback,
    /// `0.0.0.0/8` and `::`, which Linux connects to the local machine.
    Unspecified,
    /// `169.254.0.0/16` and `fe80::/10`.
    LinkLocal,
    /// Cloud metadata services (`169.254.169.254`, `168.63.129.16`, `fd00:ec2::254`...).
    Metadata,
    /// RFC 1918, shared address space (CGNAT, `100.64.0.0/10`), unique local IPv6
    /// (`fc00::/7`) and site-local IPv6: the school's own network, unless allowed by
    /// `[proxy] internal_allow`.
    Internal,
    /// Multicast, broadcast, reserved and documentation ranges, and IPv6 forms that carry
    /// another address inside them (NAT64, 6to4, Teredo) when that address is refused.
    Reserved,
    /// A port the policy does not let this kind of connection reach.
    Port(u16),
}

impl Refusal {
    /// A short label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Loopback => "loopback",
            Refusal::Unspecified => "unspecified",
            Refusal::LinkLocal => "link-local",
            Refusal::Metadata => "metadata",
            Refusal::Internal => "internal",
            Refusal::Reserved => "reserved",
            Refusal::Port(_) => "port",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Port(p) => write!(f, "connections to port {p} are not allowed"),
            other => write!(
                f,
                "{} addresses are not reachable through the filter",
                other.label()
            ),
        }
    }
}

/// What went wrong opening or using an upstream connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{host}: {refusal}")]
    Refused { host: String, refusal: Refusal },
    #[error("{0:?} is not a host name or address")]
    BadHost(String),
    #[error("{host}: the name could not be resolved: {source}")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{host}: connecting did not finish in time")]
    Timeout { host: String },
    #[error("{host}: {source}")]
    Connect {
        host: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The first [`Error`] in a chain of sources (the HTTP client wraps the connector's).
    pub fn find<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Error> {
        let mut source = Some(err);
        while let Some(e) = source {
            if let Some(found) = e.downcast_ref::<Error>() {
                return Some(found);
            }
            source = e.source();
        }
        None
    }
}
