//! Theme settings in the policy file: a disclosure theme may not be blocked or warned on,
//! a theme without a file reads its folder, and a wrong setting names its place.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use gatehouse_rules::config::ConfigFile;
use gatehouse_rules::{compile, RulesError};

fn policy(toml: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, gatehouse_rules::Result<()>) {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let toml = format!("[school]\nname = \"P\"\ntimezone = \"UTC\"\n{toml}");
    let file = ConfigFile::parse(dir.path().join("p.toml"), toml).unwrap();
    let result = compile(&file).map(|_| ());
    (dir, result)
}

const FILES: &[(&str, &str)] = &[
    (
        "themes/disclosure/en.txt",
        "@adult: dad\n@hurts: hits me\n= 60: {adult} {hurts}\n",
    ),
    ("themes/_context/en.txt", "@lower: essay\n@plan: i\n"),
];

#[test]
fn a_disclosure_theme_cannot_be_blocked_and_names_the_place() {
    let toml = "[themes.disclosure]\ndisclosure = true\n[roles.pupil]\ndefault = \"allow\"\n\
                themes = { disclosure = \"block\" }\n";
    let (_dir, result) = policy(toml, FILES);
    match result {
        Err(RulesError::Invalid {
            line,
            field,
            message,
            ..
        }) => {
            assert_eq!(line, 8);
            assert!(field.contains("themes.disclosure"), "{field}");
            assert!(message.contains("disclosure theme"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let toml = toml.replace("\"block\"", "{ action = \"log\", alert = \"critical\" }");
    let (_dir, result) = policy(&toml, FILES);
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn a_theme_without_a_file_reads_its_folder_or_says_which_is_missing() {
    let (_dir, result) = policy(
        "[themes.disclosure]\n[roles.pupil]\ndefault = \"allow\"\n",
        FILES,
    );
    assert!(result.is_ok(), "{result:?}");
    let (_dir, result) = policy(
        "[themes.nowhere]\n[roles.pupil]\ndefault = \"allow\"\n",
        FILES,
    );
    match result {
        Err(RulesError::Invalid { field, message, .. }) => {
            assert_eq!(field, "themes.nowhere");
            assert!(message.contains("themes/nowhere"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
