//! The shipped themes scored on the labelled search sets: each search is sent as a pupil's
//! Google search through the shipped policy, and recall, precision and false alerts are
//! counted per theme and per language. Two sets: the development set (`eval/searches/`),
//! which the lists were tuned on, and the held-out set (`eval/searches/heldout/`), written
//! before the tuning and never used for it, whose figures are the honest ones. The tables
//! are printed (`cargo test -p gatehouse-rules --test eval_searches -- --nocapture`) and
//! written to `target/eval-searches-*.md`.
//!
//! Issue 11's targets are recall of at least 95 % on the high-severity English themes and
//! 90 % elsewhere, with at most 2 % false alerts on the quiet and lowered searches. The
//! assertions below hold the figures reached so far, so nothing slips back; where a floor
//! is below its target, `benches/README.md` says so.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "tests: the figures are printed"
)]

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

/// The held-out set (`eval/searches/heldout/*.tsv`).
fn held_out() -> Vec<LabelledSearch> {
    read_set(&[root().join("eval/searches/heldout")]).unwrap()
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

/// Floors a set's figures must not fall below: the figures reached so far.
struct Floors {
    high_en: f64,
    all: f64,
    false_alerts: f64,
}

/// Scores the shipped themes on one set, prints and writes the table, and holds the floors.
fn shipped_on(set: &str, cases: &[LabelledSearch], floors: &Floors) {
    assert!(cases.len() >= 1000, "{set}: {} searches", cases.len());
    let snap = shipped();
    let s = pupil_score(&snap, cases);
    let report = s.table(&format!("Gatehouse themes (deploy/gatehouse.toml), {set}"));
    println!("{report}");
    for m in &s.misses {
        println!("miss: {m}");
    }
    for f in &s.false_alerts {
        println!("false alert: {f}");
    }
    let target = root().join("target");
    let _ = std::fs::create_dir_all(&target);
    let _ = std::fs::write(target.join(format!("eval-searches-{set}.md")), &report);
    assert!(
        s.high_en.recall() >= floors.high_en,
        "{set}: high-severity English recall"
    );
    assert!(
        s.total.recall() >= floors.all,
        "{set}: recall over every theme and language"
    );
    assert!(
        s.total.false_rate() <= floors.false_alerts,
        "{set}: false alerts"
    );
}

/// The development set: the lists were tuned on it, so its figures flatter them.
#[test]
fn the_shipped_themes_on_the_development_set() {
    let floors = Floors {
        high_en: DEV_HIGH_EN,
        all: DEV_ALL,
        false_alerts: DEV_FALSE,
    };
    shipped_on("development", &cases(), &floors);
}

/// The held-out set (`eval/searches/heldout/`), written before the lists were tuned and
/// never used to tune them: the honest figures.
#[test]
fn the_shipped_themes_on_the_held_out_set() {
    let floors = Floors {
        high_en: HELD_OUT_HIGH_EN,
        all: HELD_OUT_ALL,
        false_alerts: HELD_OUT_FALSE,
    };
    shipped_on("held-out", &held_out(), &floors);
}

// Floors: the figures reached on 2 December, rounded down (issue 11's targets, 95 % on
// the high-severity English themes, 90 % elsewhere and at most 2 % false alerts, are met
// on neither set yet: benches/README.md §9).
// Development: 98.9 %, 99.4 %, 0.1 %. Held-out: 58.3 %, 58.2 %, 1.5 %.
const DEV_HIGH_EN: f64 = 0.97;
const DEV_ALL: f64 = 0.97;
const DEV_FALSE: f64 = 0.01;
const HELD_OUT_HIGH_EN: f64 = 0.55;
const HELD_OUT_ALL: f64 = 0.55;
const HELD_OUT_FALSE: f64 = 0.02;

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
    for (set, cases) in [("development", cases()), ("held-out", held_out())] {
        let s = pupil_score(&snap, &cases);
        let report = s.table(&format!(
            "e2guardian 5.3 weighted phrase lists (threshold 50), {set}"
        ));
        println!("{report}");
        let _ = std::fs::create_dir_all(root().join("target"));
        let _ = std::fs::write(
            root().join(format!("target/eval-searches-{set}-e2guardian.md")),
            &report,
        );
        // e2guardian has no suicide, self-harm or disclosure lists: the baseline catches none.
        assert_eq!(s.by_theme.get("suicide").map_or(0, |t| t.caught), 0);
    }
}
