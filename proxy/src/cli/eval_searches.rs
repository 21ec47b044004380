//! `gatehouse eval-searches`: the policy's themes scored on a labelled search set, so IT and
//! the DSL can see what a change to the lists catches, misses and raises falsely before it
//! goes live.

use gatehouse_rules::labelled::{high_severity, score};
use std::path::PathBuf;
use std::process::ExitCode;

pub struct Request<'a> {
    pub config: Option<&'a std::path::Path>,
    pub role: &'a str,
    /// Print every miss and false alert after the tables.
    pub list: bool,
    pub sets: &'a [PathBuf],
}

pub fn run(req: Request<'_>) -> anyhow::Result<ExitCode> {
    let (set, snap) = match super::labelled_and_policy(req.sets, req.config) {
        Ok(read) => read,
        Err(message) => {
            super::eprint(&message);
            return Ok(ExitCode::FAILURE);
        }
    };
    let role = match super::role_arg(&snap, req.role) {
        Ok(role) => role,
        Err(message) => {
            super::eprint(&message);
            return Ok(ExitCode::FAILURE);
        }
    };
    let high = high_severity(&snap, role);
    let s = score(&snap, role, &set, &high);
    let mut out = s.table(&format!("{} searches as {}", set.len(), req.role));
    if req.list {
        for m in &s.misses {
            out.push_str(&format!("miss: {m}\n"));
        }
        for f in &s.false_alerts {
            out.push_str(&format!("false alert: {f}\n"));
        }
    }
    super::print(&out);
    Ok(ExitCode::SUCCESS)
}
