//! `gatehouse report daily` and `gatehouse export-user`: what the DSL and the data
//! protection officer ask for, read from the event store.

use crate::safeguard::Sections;
use gatehouse_safeguarding::digest::Digest;
use gatehouse_safeguarding::store::Query;
use std::path::Path;
use std::process::ExitCode;

fn sections(config: Option<&Path>) -> anyhow::Result<Sections> {
    let file = crate::embedded::config_file(config)?;
    let settings = crate::settings::ProxySettings::from_config(&file)?;
    Sections::from_config(&file, &settings.data_dir(&file))
}

/// Prints one site's digest for one day (text, HTML or CSV).
pub fn daily(
    config: Option<&Path>,
    date: &str,
    site: Option<&str>,
    format: &str,
) -> anyhow::Result<ExitCode> {
    let sections = sections(config)?;
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|e| anyhow::anyhow!("--date {date:?}: {e} (expected YYYY-MM-DD)"))?;
    let mut store = sections.open_store()?;
    let events = store.query(&gatehouse_safeguarding::digest::query(
        site,
        day,
        sections.timezone,
    ))?;
    let digest = Digest::build(
        site.unwrap_or("all sites"),
        day,
        sections.timezone,
        &events,
        &sections.alerts.staff_roles,
    );
    let out = match format {
        "text" => digest.text(),
        "html" => digest.html(),
        "csv" => digest.csv(),
        other => anyhow::bail!("--format {other:?}: expected text, html or csv"),
    };
    crate::cli::print(&out);
    Ok(ExitCode::SUCCESS)
}

/// Prints every stored record of one user as JSON lines, oldest first: those stored under
/// the name and, when pseudonymisation is on, those stored under the pseudonym.
pub fn export_user(config: Option<&Path>, user: &str) -> anyhow::Result<ExitCode> {
    let sections = sections(config)?;
    let mut store = sections.open_store()?;
    let mut names = vec![user.to_owned()];
    if sections.store.pseudonymise_traffic {
        names.push(sections.pseudonyms()?.of(user));
    }
    let mut events = Vec::new();
    for name in names {
        events.extend(store.query(&Query {
            user: Some(name),
            limit: 100_000,
            ..Query::default()
        })?);
    }
    events.sort_by(|a, b| a.time.cmp(&b.time));
    let mut out = String::new();
    for e in &events {
        out.push_str(&serde_json::to_string(e)?);
        out.push('\n');
    }
    crate::cli::print(&out);
    crate::cli::eprint(&format!("{} records for {user}.", events.len()));
    Ok(ExitCode::SUCCESS)
}
