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

/// A policy with one listed theme, context words and learned weights beside them.
fn learned_policy(weights: &str) -> (tempfile::TempDir, gatehouse_rules::compile::Compiled) {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in [
        (
            "themes/suicide/en.txt",
            "@method: pills, rope\nend my life\n",
        ),
        (
            "themes/_context/en.txt",
            "@lower: essay, statistics\n@plan: i, me, my\n",
        ),
        ("themes/_model/weights.tsv", weights),
    ] {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let toml = "[school]\nname = \"P\"\ntimezone = \"UTC\"\n[themes.suicide]\nhelp = true\n\
                [roles.pupil]\ndefault = \"allow\"\nthemes = { suicide = { action = \"log\", alert = \"high\" } }\n";
    let file = ConfigFile::parse(dir.path().join("p.toml"), toml.to_owned()).unwrap();
    let compiled = compile(&file).unwrap();
    (dir, compiled)
}

fn search(snap: &gatehouse_rules::Snapshot, q: &str) -> gatehouse_rules::Decision {
    let url = format!("https://www.google.com/search?q={}", q.replace(' ', "+"));
    let facts = gatehouse_rules::Facts {
        role: snap.role_id("pupil").unwrap(),
        user: None,
        client: None,
        at: chrono::DateTime::UNIX_EPOCH,
        method: "GET",
        target: gatehouse_rules::Target::Url(&url),
    };
    gatehouse_rules::evaluate(snap, &facts)
}

const WEIGHTS: &str = "# learned weights\n\
bias\tsuicide\t-2.0\n\
pair\thow many\tsuicide\t1.0\n\
class\tmethod\tsuicide\t0.6\n\
word\tSleeping\tsuicide\t0.8\n\
start\toverd\tsuicide\t1.2\n\
word\tvitamin\tsuicide\t-3\n\
word\tdragons\tdragons\t2\n\
class\tnowhere\tsuicide\t1\n\
bogus\tx\tsuicide\t1\n\
word\tx\tsuicide\tlots\n\
pair\tone\tsuicide\t1\n";

#[test]
fn learned_weights_add_hits_the_lists_miss_context_lowers_them_and_explain_says_why() {
    let (_dir, compiled) = learned_policy(WEIGHTS);
    let snap = &compiled.snapshot;
    // No listed phrase matches; the weights do: a pair, a class word, a normalised word.
    let d = search(snap, "how many sleeping pills");
    assert!(d.alert.is_some(), "{d:?}");
    let e = gatehouse_rules::explain::explain(
        snap,
        &gatehouse_rules::Facts {
            role: snap.role_id("pupil").unwrap(),
            user: None,
            client: None,
            at: chrono::DateTime::UNIX_EPOCH,
            method: "GET",
            target: gatehouse_rules::Target::Url(
                "https://www.google.com/search?q=how+many+sleeping+pills",
            ),
        },
        &d,
    );
    assert_eq!(e.themes, vec!["suicide"]);
    assert_eq!(e.learned.len(), 1, "{e:?}");
    let weights = e.learned[0].weights.join(", ");
    assert!(
        weights.contains("how many: +1.00") && weights.contains("{method}: +0.60"),
        "{weights}"
    );
    assert!((e.learned[0].score - 0.4).abs() < 1e-4, "{e:?}");
    assert!(e.reason.contains("learned"), "{}", e.reason);
    // A word beginning: `overdosing`, `overdoses`.
    assert!(search(snap, "how many overdosing").alert.is_some());
    // A negative weight keeps an ordinary search quiet; too little evidence stays quiet.
    assert!(search(snap, "how many vitamin pills").themes.is_empty());
    assert!(search(snap, "sleeping pills").themes.is_empty());
    // Context lowers a learned hit as it lowers a listed one, unless it is the person's own.
    let d = search(snap, "how many sleeping pills statistics");
    assert!(d.alert.is_none() && !d.lowered.is_empty(), "{d:?}");
    assert!(search(snap, "how many sleeping pills do i need statistics")
        .alert
        .is_some());
    // The lists still fire whatever the weights say.
    assert!(search(snap, "end my life vitamin").alert.is_some());
    // Broken lines are skipped with their line number; weights for what this policy does
    // not have are left out, and said once.
    let rep = compiled
        .report
        .files
        .iter()
        .find(|f| f.format == "learned-weights")
        .unwrap();
    assert_eq!(rep.entries, 6, "{rep:?}");
    assert_eq!(rep.skipped, 3, "{rep:?}");
    let problems = rep.problems.join("\n");
    assert!(
        problems.contains("weights.tsv:10") && problems.contains("\"bogus\""),
        "{problems}"
    );
    assert!(problems.contains("\"lots\" is not a number"), "{problems}");
    assert!(
        problems.contains("a pair feature is two words"),
        "{problems}"
    );
    let warnings = rep.warnings.join("\n");
    assert!(
        warnings.contains("theme dragons") && warnings.contains("class {nowhere}"),
        "{warnings}"
    );
}

#[test]
fn without_weights_the_lists_alone_decide() {
    let (_dir, compiled) = learned_policy("# no weights yet\n");
    let snap = &compiled.snapshot;
    assert!(search(snap, "how many sleeping pills").themes.is_empty());
    assert!(search(snap, "end my life").alert.is_some());
}

#[test]
fn a_stray_byte_in_the_weights_spoils_its_line_not_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in [
        ("themes/suicide/en.txt", &b"@method: pills\nend my life\n= 60: {method} 'way out'\n"[..]),
        ("themes/_context/en.txt", b"@lower: essay\n@plan: i, me, my\n"),
        (
            "themes/_model/weights.tsv",
            b"# caf\xa0 comment\r\nbias\tsuicide\t-1\r\nword\tzzq\xff\tsuicide\t3\r\nword\tunalive\tsuicide\t2\r\nclass\t'way out'\tsuicide\t0.5\r\n",
        ),
    ] {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let toml = "[school]\nname = \"P\"\ntimezone = \"UTC\"\n[themes.suicide]\n\
                [roles.pupil]\ndefault = \"allow\"\nthemes = { suicide = { action = \"log\", alert = \"high\" } }\n";
    let file = ConfigFile::parse(dir.path().join("p.toml"), toml.to_owned()).unwrap();
    let compiled = compile(&file).unwrap();
    let rep = compiled
        .report
        .files
        .iter()
        .find(|f| f.format == "learned-weights")
        .unwrap();
    // The bias, the word and the class named with a space load; the broken line is named.
    assert_eq!(rep.entries, 3, "{rep:?}");
    assert_eq!(rep.skipped, 1, "{rep:?}");
    assert!(
        rep.problems[0].contains("weights.tsv:3") && rep.problems[0].contains("not UTF-8"),
        "{rep:?}"
    );
    assert!(search(&compiled.snapshot, "unalive").alert.is_some());
}
