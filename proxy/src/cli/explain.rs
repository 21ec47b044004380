//! `gatehouse explain`: one decision, as JSON, so IT can ask "why?" without a browser; and
//! who the request would be, and how the proxy would know: the network the address is in
//! (and whether it asks for a login or the sign-in page), and the people table's entry for
//! the account. What only the running proxy knows (the Wi-Fi's bindings, sign-ins, the
//! directory's answers) is named, not guessed.

use chrono::{DateTime, Utc};
use gatehouse_rules::{evaluate, explain, Facts, Target};
use std::path::Path;
use std::process::ExitCode;

pub struct Request<'a> {
    pub config: Option<&'a Path>,
    pub role: Option<&'a str>,
    pub at: Option<&'a str>,
    pub user: Option<&'a str>,
    pub client: Option<std::net::IpAddr>,
    pub method: &'a str,
    pub url: &'a str,
}

pub fn run(req: Request<'_>) -> anyhow::Result<ExitCode> {
    let at: DateTime<Utc> = match req.at {
        Some(t) => match DateTime::parse_from_rfc3339(t) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => {
                super::eprint(&format!(
                    "error: --at {t:?}: {e} (expected RFC 3339, e.g. 2026-11-23T12:30:00Z)"
                ));
                return Ok(ExitCode::FAILURE);
            }
        },
        None => Utc::now(),
    };
    let (file, snap) = match super::load_policy(req.config) {
        Ok((file, control)) => (file, control.live().load()),
        Err(e) => {
            super::eprint(&format!("error: {e}\nThe policy was not loaded."));
            return Ok(ExitCode::FAILURE);
        }
    };
    let snap = &*snap;
    let identity = match identity(&file, snap, req.user, req.client) {
        Ok(identity) => identity,
        Err(e) => {
            super::eprint(&format!("error: {e:#}"));
            return Ok(ExitCode::FAILURE);
        }
    };
    let Some(role_name) = req.role.or(identity.role.as_deref()) else {
        super::eprint(
            "error: give --role, or a --client in one of the policy's networks (or a --user \
             the people table gives a role)",
        );
        return Ok(ExitCode::FAILURE);
    };
    let role = match super::role_arg(snap, role_name) {
        Ok(role) => role,
        Err(message) => {
            super::eprint(&message);
            return Ok(ExitCode::FAILURE);
        }
    };
    let target = if req.url.contains("://") {
        Target::Url(req.url)
    } else {
        Target::Authority(req.url)
    };
    let facts = Facts {
        role,
        user: req.user,
        client: req.client,
        at,
        method: req.method,
        target,
    };
    let decision = evaluate(snap, &facts);
    let explanation = explain(snap, &facts, &decision);
    let mut json = serde_json::to_value(&explanation)?;
    if let Some(object) = json.as_object_mut() {
        object.insert("identity".to_owned(), serde_json::to_value(&identity)?);
    }
    super::print(&format!("{}\n", serde_json::to_string_pretty(&json)?));
    Ok(ExitCode::SUCCESS)
}

/// Who a request from `client` by `user` would be, as far as the policy and the people
/// table say.
#[derive(Debug, serde::Serialize)]
struct Identity {
    /// The role the proxy would decide for (absent when nothing gives one).
    role: Option<String>,
    /// How: `people-table` (the MIS's role for the account) or `network`.
    identified_by: Option<&'static str>,
    person: Option<String>,
    left: bool,
    network: Option<String>,
    site: Option<String>,
    /// What the network asks of a device before the role applies (`login`, `signin`).
    network_asks: Vec<&'static str>,
    /// What the running proxy would look at first, which this command cannot see.
    at_run_time: Vec<&'static str>,
}

fn identity(
    file: &gatehouse_rules::config::ConfigFile,
    snap: &gatehouse_rules::Snapshot,
    user: Option<&str>,
    client: Option<std::net::IpAddr>,
) -> anyhow::Result<Identity> {
    let settings =
        crate::identity::settings::IdentitySettings::from_table(file.config.identity.as_ref())?;
    let base = file
        .path
        .parent()
        .map(std::path::PathBuf::from)
        .unwrap_or_default();
    let people = match &settings.people {
        Some(p) => crate::identity::people::People::load(&crate::identity::settings::resolve(
            &base, &p.csv,
        ))?,
        None => crate::identity::people::People::default(),
    };
    let network = client.and_then(|ip| snap.network_of(ip));
    let person = user.and_then(|u| people.get(u));
    let mut asks = Vec::new();
    if network.is_some_and(|n| n.login) {
        asks.push("login");
    }
    if network.is_some_and(|n| n.signin) {
        asks.push("signin");
    }
    let mut at_run_time = Vec::new();
    if settings.radius.is_some() {
        at_run_time.push("radius: the Wi-Fi's accounting may name the device");
    }
    if settings.oidc.is_some() && network.is_some_and(|n| n.signin) {
        at_run_time.push("signin: a device signed in on the sign-in page is its person's");
    }
    if settings.ldap.is_some() && network.is_some_and(|n| n.login) {
        at_run_time.push("ldap: the directory's groups give a login's role");
    }
    if settings.kerberos.is_some() && network.is_some_and(|n| n.login) {
        at_run_time.push("kerberos: a Negotiate login names the person");
    }
    let mis_role = person.as_ref().filter(|p| !p.role.is_empty() && !p.left);
    let network_role = network
        .and_then(|n| snap.role(n.role))
        .map(|r| r.name.clone());
    let (role, how) = match (mis_role, &network_role) {
        (Some(p), _) => (Some(p.role.to_owned()), Some("people-table")),
        (None, Some(r)) => (Some(r.clone()), Some("network")),
        (None, None) => (None, None),
    };
    Ok(Identity {
        role,
        identified_by: how,
        person: person.as_ref().map(|p| p.display()),
        left: person.as_ref().is_some_and(|p| p.left),
        network: network.map(|n| n.net.to_string()),
        site: network.and_then(|n| n.site.clone()),
        network_asks: asks,
        at_run_time,
    })
}
