//! The policy Gatehouse runs with when no `--config` is given: `deploy/gatehouse.toml`,
//! compiled into the binary, reading the starter lists shipped in the repository's `lists/`.

use gatehouse_rules::config::ConfigFile;
use std::path::{Path, PathBuf};

/// The example policy, as shipped.
pub const DEFAULT_POLICY: &str = include_str!("../../deploy/gatehouse.toml");

/// Where the embedded policy pretends to live, so that its `lists_dir = "../lists"` finds the
/// starter lists: `$GATEHOUSE_HOME/deploy`, else the source tree this binary was built from,
/// else the current folder's `deploy/`.
fn home() -> PathBuf {
    if let Some(h) = std::env::var_os("GATEHOUSE_HOME") {
        return PathBuf::from(h);
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if built.join("lists").is_dir() {
        return built.canonicalize().unwrap_or(built);
    }
    PathBuf::from(".")
}

/// The configuration named by `--config`, or the embedded one.
pub fn config_file(path: Option<&Path>) -> gatehouse_rules::Result<ConfigFile> {
    match path {
        Some(p) => ConfigFile::load(p),
        None => ConfigFile::parse(
            home().join("deploy/gatehouse.toml"),
            DEFAULT_POLICY.to_owned(),
        ),
    }
}
