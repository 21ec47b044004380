//! The shipped themes scored on the labelled search set (`eval/searches/`, written before
//! the lists were tuned): each search is sent as a pupil's Google search through the
//! shipped policy, and recall, precision and false alerts are counted per theme and per
//! language. The table is printed (`cargo test -p gatehouse-rules --test eval_searches --
//! --nocapture`) and written to `target/eval-searches.md`.
//!
//! Issue 11's targets are recall of at least 95 % on the high-severity English themes and
//! 90 % elsewhere, with at most 2 % false alerts on the quiet and lowered searches. The
//! assertions below hold the figures reached so far, so nothing slips back; where a floor
//! is below its target, `benches/README.md` says so.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use gatehouse_rules::config::ConfigFile;
use gatehouse_rules::labelled::{high_severity, read_set, score, LabelledSearch, Score};
use gatehouse_rules::{compile, Snapshot};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The development set (`eval/searches/*.tsv`).
fn cases() -> Vec<LabelledSearch> {
    read_set(&[root().join("eval/searches")]).unwrap()
}

/// The set sent as a pupil's searches; the high-severity themes are the shipped policy's
/// (for the baseline too).
fn pupil_score(snap: &Snapshot, set: &[LabelledSearch]) -> Score {
    let shipped = shipped();
    let high = high_severity(&shipped, shipped.role_id("pupil").unwrap());
    assert_eq!(high.len(), 9, "{high:?}");
    score(snap, snap.role_id("pupil").unwrap(), set, &high)
}

fn shipped() -> Snapshot {
    let file = ConfigFile::load(&root().join("deploy/gatehouse.toml")).unwrap();
    compile(&file).unwrap().snapshot
}

#[test]
fn the_shipped_themes_on_the_labelled_searches() {
    let cases = cases();
    assert!(cases.len() >= 1500, "{} searches", cases.len());
    let snap = shipped();
    let s = pupil_score(&snap, &cases);
    let report = s.table("Gatehouse themes (deploy/gatehouse.toml)");
    println!("{report}");
    for m in &s.misses {
        println!("miss: {m}");
    }
    for f in &s.false_alerts {
        println!("false alert: {f}");
    }
    let target = root().join("target");
    let _ = std::fs::create_dir_all(&target);
    let _ = std::fs::write(target.join("eval-searches.md"), &report);
    // Floors: the figures reached so far (issue 11's targets in the module's note).
    assert!(
        s.high_en.recall() >= FLOOR_HIGH_EN,
        "high-severity English recall"
    );
    assert!(
        s.total.recall() >= FLOOR_ALL,
        "recall over every theme and language"
    );
    assert!(s.total.false_rate() <= CEILING_FALSE, "false alerts");
}

// Reached on 2 December: high-severity English 57.6 %, all 59.7 %, false alerts 3.2 %
// (targets 95 %, 90 %, 2 %: not met yet).
const FLOOR_HIGH_EN: f64 = 0.50;
const FLOOR_ALL: f64 = 0.50;
const CEILING_FALSE: f64 = 0.05;

/// e2guardian's own weighted phrase lists scored on the same set, as the baseline (only
/// where the shared data is present: `../shared/data/phrases/e2guardian`).
#[test]
fn e2guardian_weighted_lists_on_the_labelled_searches() {
    let lists = root().join("../shared/data/phrases/e2guardian/phraselists");
    if !lists.is_dir() {
        println!(
            "e2guardian lists not found at {}: baseline skipped",
            lists.display()
        );
        return;
    }
    let themes = [
        ("sexual-content", "pornography/weighted"),
        ("drugs", "illegaldrugs/weighted"),
        ("weapons", "weapons/weighted"),
        ("gambling", "gambling/weighted"),
        ("filter-bypass", "proxies/weighted"),
        ("extremism", "intolerance/weighted"),
    ];
    let mut toml = format!(
        "lists_dir = \"{}\"\n[school]\nname = \"e2guardian\"\ntimezone = \"UTC\"\n",
        lists.display()
    );
    let mut actions = String::from("[roles.pupil]\ndefault = \"allow\"\n[roles.pupil.themes]\n");
    for (theme, path) in themes {
        toml.push_str(&format!(
            "[themes.{theme}]\nweighted = [{{ path = \"{path}\", threshold = 50 }}]\n"
        ));
        actions.push_str(&format!(
            "{theme} = {{ action = \"block\", alert = \"high\" }}\n"
        ));
    }
    toml.push_str(&actions);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e2guardian.toml");
    std::fs::write(&path, &toml).unwrap();
    let file = ConfigFile::load(&path).unwrap();
    let snap = compile(&file).unwrap().snapshot;
    let s = pupil_score(&snap, &cases());
    let report = s.table("e2guardian 5.3 weighted phrase lists (threshold 50)");
    println!("{report}");
    let _ = std::fs::write(root().join("target/eval-searches-e2guardian.md"), &report);
    // e2guardian has no suicide, self-harm or disclosure lists: the baseline catches none.
    assert_eq!(s.by_theme.get("suicide").map_or(0, |t| t.caught), 0);
}
