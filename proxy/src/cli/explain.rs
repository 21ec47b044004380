//! `gatehouse explain`: one decision, as JSON, so IT can ask "why?" without a browser.

use chrono::{DateTime, Utc};
use gatehouse_rules::{evaluate, explain, Facts, Target};
use std::path::Path;
use std::process::ExitCode;

pub struct Request<'a> {
    pub config: Option<&'a Path>,
    pub role: &'a str,
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
    let snap = match super::load_policy(req.config) {
        Ok((_, control)) => control.live().load(),
        Err(e) => {
            super::eprint(&format!("error: {e}\nThe policy was not loaded."));
            return Ok(ExitCode::FAILURE);
        }
    };
    let snap = &*snap;
    let role = match super::role_arg(snap, req.role) {
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
    super::print(&format!(
        "{}\n",
        serde_json::to_string_pretty(&explanation)?
    ));
    Ok(ExitCode::SUCCESS)
}
