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

/// What is wrong with the options, if anything.
fn check_options(o: &Options) -> Result<(), String> {
    let finite = |name: &str, v: f32| {
        if v.is_finite() {
            Ok(())
        } else {
            Err(format!("--{name} {v}: not a number"))
        }
    };
    finite("l1", o.l1)?;
    finite("l2", o.l2)?;
    finite("rate", o.rate)?;
    finite("threshold", o.threshold)?;
    if o.l1 < 0.0 || o.l2 < 0.0 {
        return Err("--l1 and --l2 are 0 or more".into());
    }
    if o.rate <= 0.0 {
        return Err(format!("--rate {}: the step size is more than 0", o.rate));
    }
    if o.epochs == 0 {
        return Err("--epochs 0: at least one pass".into());
    }
    Ok(())
}

pub fn run(req: Request<'_>) -> anyhow::Result<ExitCode> {
    if let Err(e) = check_options(&req.options) {
        super::eprint(&format!("error: {e}"));
        return Ok(ExitCode::FAILURE);
    }
    if req.out.is_dir() {
        super::eprint(&format!(
            "error: --out {}: a folder; name the weights file (themes/_model/weights.tsv)",
            req.out.display()
        ));
        return Ok(ExitCode::FAILURE);
    }
    let held_out = match read_set(req.exclude) {
        Ok(set) => set,
        Err(e) => {
            super::eprint(&format!("error: --exclude: {e}"));
            return Ok(ExitCode::FAILURE);
        }
    };
    let (set, snap) = match super::labelled_and_policy(req.sets, req.config) {
        Ok(read) => read,
        Err(message) => {
            super::eprint(&message);
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
    if let Err(e) = write(req.out, &trained.text) {
        super::eprint(&format!("error: --out {}: {e}", req.out.display()));
        return Ok(ExitCode::FAILURE);
    }
    let in_model_folder = req
        .out
        .parent()
        .and_then(|d| d.file_name())
        .is_some_and(|n| n == "_model");
    if !in_model_folder {
        super::eprint(&format!(
            "note: a policy reads weights only from themes/_model/*.tsv beside its theme folders; {} is not there",
            req.out.display()
        ));
    }
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

/// Writes beside and renames, so a proxy watching the lists never reads half a file;
/// readable by everyone (the weights are not secret, and the proxy may run as another
/// user than whoever trained them).
fn write(out: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let partial = out.with_extension("tsv.partial");
    let written = std::fs::write(&partial, text)
        .and_then(|()| std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o644)))
        .and_then(|()| std::fs::rename(&partial, out));
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}
