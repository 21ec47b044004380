//! A role's download rules in the policy file: kinds by name, a size limit in MiB, and a
//! wrong kind or a zero limit refused with its place named.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use gatehouse_rules::config::ConfigFile;
use gatehouse_rules::files::FileKind;
use gatehouse_rules::{compile, Action, RulesError};

fn compiled(role: &str) -> gatehouse_rules::Result<gatehouse_rules::Snapshot> {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[school]\nname = \"P\"\ntimezone = \"UTC\"\n[roles.pupil]\ndefault = \"allow\"\n{role}"
    );
    let file = ConfigFile::parse(dir.path().join("p.toml"), toml).unwrap();
    compile(&file).map(|c| c.snapshot)
}

#[test]
fn file_rules_and_the_size_limit_are_read_per_role() {
    let snap =
        compiled("files = { executable = \"block\", video = \"log\" }\nmax_download_mib = 50\n")
            .unwrap();
    let pupil = snap.role(snap.role_id("pupil").unwrap()).unwrap();
    assert_eq!(
        pupil.file_action(FileKind::Executable).action(),
        Action::Block
    );
    assert_eq!(pupil.file_action(FileKind::Video).action(), Action::Log);
    assert_eq!(pupil.file_action(FileKind::Archive).action(), Action::Allow);
    assert_eq!(pupil.max_download_bytes, Some(50 << 20));
    assert!(pupil.checks_downloads());
    let plain = compiled("").unwrap();
    assert!(!plain
        .role(plain.role_id("pupil").unwrap())
        .unwrap()
        .checks_downloads());
}

#[test]
fn a_wrong_kind_or_a_zero_limit_names_its_place() {
    for (role, field, says) in [
        (
            "files = { exe = \"block\" }\n",
            "roles.pupil.files.exe",
            "kinds are executable",
        ),
        (
            "max_download_mib = 0\n",
            "roles.pupil.max_download_mib",
            "refuses every download",
        ),
    ] {
        match compiled(role) {
            Err(RulesError::Invalid {
                line,
                field: f,
                message,
                ..
            }) => {
                assert_eq!(line, 6, "{role}");
                assert_eq!(f, field);
                assert!(message.contains(says), "{message}");
            }
            other => panic!("{role}: {other:?}"),
        }
    }
}
