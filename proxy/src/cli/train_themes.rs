//! `gatehouse train-themes`: learns the theme model's weights from labelled searches, so a
//! trust can retrain them on its own labelled searches after changing the lists (the
//! features include the lists' word classes).

use gatehouse_rules::labelled::read_set;
use gatehouse_rules::train::{train, Options};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub struct Request<'a> {
    pub config: Option<&'a Path>,
    pub out: &'a Path,
    pub options: Options,
    pub sets: &'a [PathBuf],
    /// Evaluation sets whose searches are not learned from.
    pub exclude: &'a [PathBuf],
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
    let held_out = match read_set(req.exclude) {
        Ok(set) => set,
        Err(e) => {
            super::eprint(&format!("error: --exclude: {e}"));
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
    let names = |paths: &[PathBuf]| -> String {
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut about = format!(
        "Gatehouse theme model: weights learned by `gatehouse train-themes` from {}.",
        names(req.sets)
    );
    if !req.exclude.is_empty() {
        about.push_str(&format!(
            "\nSearches also in {} were left out (they stay unseen).",
            names(req.exclude)
        ));
    }
    about.push_str("\nRetrain after changing the lists' word classes; the policy reads every .tsv file of themes/_model/.");
    let trained = train(snap.themes(), &set, &held_out, &req.options, &about);
    if trained.weights == 0 {
        super::eprint(
            "error: no weights were learned (no search is labelled with a theme of this policy)",
        );
        return Ok(ExitCode::FAILURE);
    }
    if let Some(dir) = req.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // Written beside and renamed, so a proxy watching the lists never reads half a file.
    let partial = req.out.with_extension("tsv.partial");
    std::fs::write(&partial, &trained.text)?;
    std::fs::rename(&partial, req.out)?;
    super::print(&format!(
        "{} searches, {} features, {} weights written to {}{}\n",
        trained.searches,
        trained.features,
        trained.weights,
        req.out.display(),
        match (trained.unknown_theme, trained.held_out) {
            (0, 0) => String::new(),
            (u, h) => format!(
                " ({u} searches of themes this policy does not have and {h} also in --exclude sets were not used)"
            ),
        }
    ));
    Ok(ExitCode::SUCCESS)
}
