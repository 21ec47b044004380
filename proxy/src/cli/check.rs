//! `gatehouse check`: load everything, report what was read, fail with the first real error.

use gatehouse_rules::LoadReport;
use std::fmt::Write;
use std::path::Path;
use std::process::ExitCode;

pub fn run(config: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let (file, control) = match super::load_policy(config) {
        Ok(loaded) => loaded,
        Err(e) => return Ok(fail(&e)),
    };
    // Everything else `run` reads: a typo there must fail here, not at the next start.
    if let Err(e) = super::check_sections(&file) {
        return Ok(fail(&format!("{e:#}")));
    }
    let report = control.report();
    if json {
        super::print(&format!("{}\n", serde_json::to_string_pretty(&*report)?));
    } else {
        super::print(&render(&report, &control.live().load()));
    }
    Ok(ExitCode::SUCCESS)
}

fn fail(e: &str) -> ExitCode {
    super::eprint(&format!("error: {e}\nThe policy was not loaded."));
    ExitCode::FAILURE
}

fn render(r: &LoadReport, snap: &gatehouse_rules::Snapshot) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Policy OK: {}", r.config.display());
    let _ = writeln!(s, "  school: {} ({})", snap.school_name(), snap.timezone());
    let _ = writeln!(s, "  roles: {}", r.roles.join(", "));
    let _ = writeln!(
        s,
        "  categories with entries (domains / URL prefixes / regexes):"
    );
    for c in r
        .categories
        .iter()
        .filter(|c| c.domains + c.urls + c.regexes > 0)
    {
        let _ = writeln!(
            s,
            "    {:<22} {:>9} / {:>6} / {:>3}",
            c.name, c.domains, c.urls, c.regexes
        );
    }
    let _ = writeln!(
        s,
        "  distinct names: {}, URL prefixes: {}, regexes: {}, illegal-tier entries: {}",
        r.distinct_domains, r.url_prefixes, r.regexes, r.illegal_entries
    );
    let themes: Vec<String> = r
        .themes
        .iter()
        .map(|t| format!("{} ({})", t.name, t.phrases))
        .collect();
    let _ = writeln!(s, "  themes (phrases): {}", themes.join(", "));
    let _ = writeln!(
        s,
        "  files read: {}, lines skipped: {}",
        r.files.len(),
        r.skipped_lines()
    );
    for f in r
        .files
        .iter()
        .filter(|f| f.skipped > 0 || !f.warnings.is_empty())
    {
        let _ = writeln!(
            s,
            "    {}: {} entries, {} skipped, {} ignored",
            f.path.display(),
            f.entries,
            f.skipped,
            f.ignored
        );
        for w in &f.warnings {
            let _ = writeln!(s, "      warning: {w}");
        }
        for p in &f.problems {
            let _ = writeln!(s, "      skipped {p}");
        }
    }
    for w in &r.warnings {
        let _ = writeln!(s, "  warning: {w}");
    }
    s
}
