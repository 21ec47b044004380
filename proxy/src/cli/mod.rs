//! One module per subcommand. They print to stdout/stderr and return an exit code; errors
//! that stop a command come back as `anyhow` errors and are printed by `main`.

pub mod check;
pub mod eval_searches;
pub mod explain;
pub mod people;
pub mod report;
pub mod squid_helper;
pub mod train_themes;

use std::io::Write;

/// Writes a line to stderr, ignoring a closed stream.
pub fn eprint(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Writes text to stdout, ignoring a closed stream.
pub fn print(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}

/// The policy as `gatehouse run` would have it in force: the policy file (or the embedded
/// one) with the admin page's edits from the data folder laid over it, loaded through the
/// same [`PolicyControl`] the proxy uses, so `check`, `explain` and `squid-helper` can never
/// disagree with it. `Err` is the message to print.
pub fn load_policy(
    config: Option<&std::path::Path>,
) -> Result<(gatehouse_rules::config::ConfigFile, PolicyControl), String> {
    let file = crate::embedded::config_file(config).map_err(|e| e.to_string())?;
    let settings =
        crate::settings::ProxySettings::from_config(&file).map_err(|e| format!("{e:#}"))?;
    let edits = settings.data_dir(&file).join(crate::server::EDITS_FILE);
    let control = PolicyControl::start(
        &file,
        config.is_none(),
        edits,
        Box::new(|_| {}),
        chrono::Utc::now(),
    )
    .map_err(|e| e.to_string())?;
    Ok((file, control))
}

/// The role `--role` names, or the message that says it is not one (naming the roles).
/// A labelled search set (files or folders) and the policy to score or train on, or the
/// message that says which could not be read.
pub fn labelled_and_policy(
    sets: &[std::path::PathBuf],
    config: Option<&std::path::Path>,
) -> Result<
    (
        Vec<gatehouse_rules::labelled::LabelledSearch>,
        std::sync::Arc<gatehouse_rules::Snapshot>,
    ),
    String,
> {
    let set = match gatehouse_rules::labelled::read_set(sets) {
        Ok(set) if set.is_empty() => return Err("error: the labelled set has no searches".into()),
        Ok(set) => set,
        Err(e) => return Err(format!("error: {e}")),
    };
    let snap = match load_policy(config) {
        Ok((_, control)) => control.live().load(),
        Err(e) => return Err(format!("error: {e}\nThe policy was not loaded.")),
    };
    Ok((set, snap))
}

pub fn role_arg(
    snap: &gatehouse_rules::Snapshot,
    name: &str,
) -> Result<gatehouse_rules::RoleId, String> {
    snap.role_id(name).ok_or_else(|| {
        let names: Vec<&str> = snap.roles().iter().map(|r| r.name.as_str()).collect();
        format!(
            "error: --role {name:?} is not a role of this policy ({})",
            names.join(", ")
        )
    })
}

/// Every section `gatehouse run` reads besides the policy itself (`[proxy]`, `[admin]`,
/// `[store]`, `[alerts]`), checked the way `run` checks them. `Err` names the section.
pub fn check_sections(file: &gatehouse_rules::config::ConfigFile) -> anyhow::Result<()> {
    let settings = crate::settings::ProxySettings::from_config(file)?;
    gatehouse_dashboard::settings::AdminSettings::from_table(
        file.config.admin.as_ref(),
        &file.path.display().to_string(),
    )?;
    crate::safeguard::Sections::from_config(file, &settings.data_dir(file))?;
    crate::identity::settings::IdentitySettings::from_table(file.config.identity.as_ref())?;
    Ok(())
}

use gatehouse_rules::control::PolicyControl;
