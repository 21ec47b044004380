//! `gatehouse eval-searches`: the policy's themes scored on a labelled search set, so IT and
//! the DSL can see what a change to the lists catches, misses and raises falsely before it
//! goes live.

use gatehouse_rules::labelled::{high_severity, read_set, score};
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
    let set = match read_set(req.sets) {
        Ok(set) if set.is_empty() => {
            super::eprint("error: the labelled set has no searches");
            return Ok(ExitCode::FAILURE);
        }
        Ok(set) => set,
        Err(e) => {
            super::eprint(&format!("error: {e}"));
            return Ok(ExitCode::FAILURE);
        }
    };
    let snap = match super::load_policy(req.config) {
        Ok((_, control)) => control.live().load(),
        Err(e) => {
            super::eprint(&format!("error: {e}\nThe policy was not loaded."));
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
