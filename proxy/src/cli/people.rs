//! `gatehouse people`: reads the people table the policy names (`[identity.people] csv`,
//! the MIS export, or the directory with `[identity.ldap] people_filter`) as the proxy would, says how many people, leavers and bytes it holds and
//! how long it took, and finds people by name. IT runs it on a new export before the proxy
//! picks it up.

use crate::identity::{people::People, settings};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

pub fn run(config: Option<&Path>, find: Option<&str>) -> anyhow::Result<ExitCode> {
    let file = crate::embedded::config_file(config)?;
    let identity = settings::IdentitySettings::from_table(file.config.identity.as_ref())?;
    let base = file.path.parent().map(PathBuf::from).unwrap_or_default();
    let started = Instant::now();
    let people = match (&identity.people, &identity.ldap) {
        (Some(p), _) => People::load(&settings::resolve(&base, &p.csv))?,
        (None, Some(l)) if l.people_filter.is_some() => {
            let directory = crate::identity::ldap::Directory::new(l.clone(), &base)?;
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(directory.people())?
        }
        _ => anyhow::bail!(
            "the policy has no people table: [identity.people] csv or [identity.ldap] people_filter"
        ),
    };
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
