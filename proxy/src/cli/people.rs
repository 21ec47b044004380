//! `gatehouse people`: reads the people table the policy names (`[identity.people] csv`,
//! the MIS export) as the proxy would, says how many people, leavers and bytes it holds and
//! how long it took, and finds people by name. IT runs it on a new export before the proxy
//! picks it up.

use crate::identity::{people::People, settings};
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

pub fn run(config: Option<&Path>, find: Option<&str>) -> anyhow::Result<ExitCode> {
    let file = crate::embedded::config_file(config)?;
    let identity = settings::IdentitySettings::from_table(file.config.identity.as_ref())?;
    let csv = identity
        .people
        .context("the policy has no [identity.people] csv")?
        .csv;
    let base = file.path.parent().map(PathBuf::from).unwrap_or_default();
    let started = Instant::now();
    let people = People::load(&settings::resolve(&base, &csv))?;
    let took = started.elapsed();
    let per = people.heap_bytes().checked_div(people.len()).unwrap_or(0);
    let mut out = format!(
        "{} people ({} leavers): {} bytes, {per} a person; read in {:.1} ms\n",
        people.len(),
        people.leavers(),
        people.heap_bytes(),
        took.as_secs_f64() * 1000.0
    );
    if let Some(name) = find {
        for p in people.find(name, 50) {
            out.push_str(&format!(
                "{}\t{}\t{}{}\n",
                p.account,
                p.display(),
                if p.role.is_empty() { "-" } else { p.role },
                if p.left { "\tleft" } else { "" }
            ));
        }
    }
    super::print(&out);
    Ok(ExitCode::SUCCESS)
}
