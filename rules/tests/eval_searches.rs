//! The shipped themes scored on the labelled search sets: each search is sent as a pupil's
//! Google search through the shipped policy, and recall, precision and false alerts are
//! counted per theme and per language. Four sets: the development set (`eval/searches/`),
//! which the lists were tuned on and the learned weights trained on, and three held-out
//! sets (`eval/searches/heldout*/`), written before the tuning or training they measure and
//! never used for it, whose figures are the honest ones. The tables are printed (`cargo
//! test -p gatehouse-rules --test eval_searches -- --nocapture`) and written to
//! `target/eval-searches-*.md`.
//!
//! Issue 11's targets are recall of at least 95 % on the high-severity English themes and
//! 90 % elsewhere, with at most 2 % false alerts on the quiet searches. The assertions below
//! hold the figures reached so far, so nothing slips back; where a floor is below its
//! target, `benches/README.md` says so.

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

/// The second held-out set (`eval/searches/heldout2/*.tsv`), written before the learned
/// weights were trained.
fn held_out_2() -> Vec<LabelledSearch> {
    read_set(&[root().join("eval/searches/heldout2")]).unwrap()
}

/// The third held-out set (`eval/searches/heldout3/*.tsv`), written before the sixth
/// training round.
fn held_out_3() -> Vec<LabelledSearch> {
    read_set(&[root().join("eval/searches/heldout3")]).unwrap()
}

/// The fifth held-out set (`eval/searches/heldout5/*.tsv`), written after the seventh
/// training round and scored once on its weights.
fn held_out_5() -> Vec<LabelledSearch> {
    read_set(&[root().join("eval/searches/heldout5")]).unwrap()
}

/// The sixth held-out set (`eval/searches/heldout6/*.tsv`), written before the eighth
/// training round and scored once on its weights.
fn held_out_6() -> Vec<LabelledSearch> {
    read_set(&[root().join("eval/searches/heldout6")]).unwrap()
}

/// The fourth held-out set (`eval/searches/heldout4/*.tsv`), written before the seventh
/// training round and scored once, as written, on the weights of the sixth.
fn held_out_4() -> Vec<LabelledSearch> {
    read_set(&[root().join("eval/searches/heldout4")]).unwrap()
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
    /// False alerts on quiet searches alone.
    quiet: f64,
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
        "{set}: false alerts on quiet and lowered searches"
    );
    assert!(
        s.quiet_only.false_rate() <= floors.quiet,
        "{set}: false alerts on quiet searches"
    );
}

/// The issue's own measure on the searches no tuning or training has used: ordinary
/// (quiet) searches that alert, at most 2 %, over the six held-out sets together (each
/// set alone is held to its own floor above).
#[test]
fn at_most_two_in_a_hundred_ordinary_searches_alert_on_the_held_out_sets() {
    let snap = shipped();
    let all: Vec<LabelledSearch> = held_out()
        .into_iter()
        .chain(held_out_2())
        .chain(held_out_3())
        .chain(held_out_4())
        .chain(held_out_5())
        .chain(held_out_6())
        .collect();
    let s = pupil_score(&snap, &all);
    println!(
        "{}",
        s.table("Gatehouse themes, the held-out sets together")
    );
    assert!(s.quiet_only.quiet >= 1500, "{} quiet", s.quiet_only.quiet);
    assert!(s.quiet_only.false_rate() <= 0.02);
}

/// The development set: the lists were tuned on it, so its figures flatter them.
#[test]
fn the_shipped_themes_on_the_development_set() {
    let floors = Floors {
        high_en: DEV_HIGH_EN,
        all: DEV_ALL,
        false_alerts: DEV_FALSE,
        quiet: DEV_QUIET,
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
        quiet: HELD_OUT_QUIET,
    };
    shipped_on("held-out", &held_out(), &floors);
}

/// The second held-out set, written before the learned weights were trained and never
/// used to train or tune them.
#[test]
fn the_shipped_themes_on_the_second_held_out_set() {
    let floors = Floors {
        high_en: HELD_OUT_2_HIGH_EN,
        all: HELD_OUT_2_ALL,
        false_alerts: HELD_OUT_2_FALSE,
        quiet: HELD_OUT_2_QUIET,
    };
    shipped_on("held-out-2", &held_out_2(), &floors);
}

/// The third held-out set, written before the last training round and never used to train
/// or tune anything.
#[test]
fn the_shipped_themes_on_the_third_held_out_set() {
    let floors = Floors {
        high_en: HELD_OUT_3_HIGH_EN,
        all: HELD_OUT_3_ALL,
        false_alerts: HELD_OUT_3_FALSE,
        quiet: HELD_OUT_3_QUIET,
    };
    shipped_on("held-out-3", &held_out_3(), &floors);
}

/// The fourth held-out set, written on the day of the sixth round's weights and never used
/// to train or tune anything.
#[test]
fn the_shipped_themes_on_the_fourth_held_out_set() {
    let floors = Floors {
        high_en: HELD_OUT_4_HIGH_EN,
        all: HELD_OUT_4_ALL,
        false_alerts: HELD_OUT_4_FALSE,
        quiet: HELD_OUT_4_QUIET,
    };
    shipped_on("held-out-4", &held_out_4(), &floors);
}

/// The fifth held-out set, written after the seventh training round and never used to
/// train or tune anything.
#[test]
fn the_shipped_themes_on_the_fifth_held_out_set() {
    let floors = Floors {
        high_en: HELD_OUT_5_HIGH_EN,
        all: HELD_OUT_5_ALL,
        false_alerts: HELD_OUT_5_FALSE,
        quiet: HELD_OUT_5_QUIET,
    };
    shipped_on("held-out-5", &held_out_5(), &floors);
}

/// The sixth held-out set, written before the eighth training round and never used to
/// train or tune anything.
#[test]
fn the_shipped_themes_on_the_sixth_held_out_set() {
    let floors = Floors {
        high_en: HELD_OUT_6_HIGH_EN,
        all: HELD_OUT_6_ALL,
        false_alerts: HELD_OUT_6_FALSE,
        quiet: HELD_OUT_6_QUIET,
    };
    shipped_on("held-out-6", &held_out_6(), &floors);
}

/// The shipped weights (`lists/themes/_model/weights.tsv`) are what `gatehouse
/// train-themes` learns from the shipped training and development sets with the shipped
/// lists: nobody edited them by hand, and the lists' classes they name are still there.
/// (Equal to within rounding: the exponential of another C library may differ in the
/// last bit.)
#[test]
fn the_shipped_weights_are_what_training_on_the_shipped_sets_gives() {
    use gatehouse_rules::train::{train, Options};
    let snap = shipped();
    let set = read_set(&[
        root().join("eval/searches/train"),
        root().join("eval/searches"),
    ])
    .unwrap();
    let unseen: Vec<LabelledSearch> = held_out()
        .into_iter()
        .chain(held_out_2())
        .chain(held_out_3())
        .chain(held_out_4())
        .chain(held_out_5())
        .chain(held_out_6())
        .collect();
    let trained = train(snap.themes(), &set, &unseen, &Options::default(), "");
    let weights = |text: &str| -> std::collections::BTreeMap<String, f64> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let (key, value) = l.rsplit_once('\t')?;
                Some((key.to_owned(), value.parse().ok()?))
            })
            .collect()
    };
    let shipped = std::fs::read_to_string(root().join("lists/themes/_model/weights.tsv")).unwrap();
    let (ours, theirs) = (weights(&trained.text), weights(&shipped));
    assert!(theirs.len() > 1000, "{} weights shipped", theirs.len());
    let differ = ours
        .iter()
        .filter(|(k, v)| theirs.get(*k).is_none_or(|t| (t - *v).abs() > 0.01))
        .count()
        + theirs.keys().filter(|k| !ours.contains_key(*k)).count();
    assert!(
        differ * 1000 <= theirs.len(),
        "{differ} of {} weights differ from a fresh training: run `gatehouse train-themes --config deploy/gatehouse.toml --out lists/themes/_model/weights.tsv --exclude eval/searches/heldout --exclude eval/searches/heldout2 --exclude eval/searches/heldout3 --exclude eval/searches/heldout4 --exclude eval/searches/heldout5 --exclude eval/searches/heldout6 eval/searches/train eval/searches`",
        theirs.len()
    );
}

/// The shipped weights load whole (no line skipped: a class a combination writes as a
/// literal, `'way out'`, is a class too).
#[test]
fn the_shipped_weights_load_without_a_skipped_line() {
    let file = ConfigFile::load(&root().join("deploy/gatehouse.toml")).unwrap();
    let compiled = compile(&file).unwrap();
    let rep = compiled
        .report
        .files
        .iter()
        .find(|f| f.format == "learned-weights")
        .expect("the weights file is read");
    assert!(rep.entries > 10_000, "{rep:?}");
    assert_eq!(rep.skipped, 0, "{:?}", rep.problems);
    assert!(rep.warnings.is_empty(), "{:?}", rep.warnings);
}

/// A study word never silences a pupil's own search, and padding with a repeated word
/// never hides one: context words carry no learned weight (lowering is the context rule's
/// decision), and repeated words are read once.
#[test]
fn a_study_word_or_padding_never_silences_a_first_person_search() {
    let snap = shipped();
    let role = snap.role_id("pupil").unwrap();
    let alerts = |q: &str| {
        let url = format!("https://www.google.com/search?q={}", q.replace(' ', "+"));
        let facts = gatehouse_rules::Facts {
            role,
            user: None,
            client: None,
            at: chrono::DateTime::UNIX_EPOCH,
            method: "GET",
            target: gatehouse_rules::Target::Url(&url),
        };
        gatehouse_rules::evaluate(&snap, &facts).alert.is_some()
    };
    for q in [
        "i hurt down there after my uncle stayed over",
        "my step dad hits me when mum is at work",
        "how many of my mums pills would it take",
    ] {
        assert!(alerts(q), "{q}");
        for extra in ["gcse", "homework", "essay", "statistics", "analysis"] {
            assert!(alerts(&format!("{q} {extra}")), "{q} + {extra}");
        }
        let padded = format!("{} {q}", vec!["the"; 300].join(" "));
        assert!(alerts(&padded), "300 x the + {q}");
    }
}

// Floors: the figures reached with the learned weights of the eighth training round (3
// December), rounded down. Issue 11's targets are 95 % on the high-severity English themes,
// 90 % elsewhere and at most 2 % false alerts on quiet searches (asserted over the held-out
// sets together above; each set alone is held to its own figure). Quiet and lowered
// together are held to the floors below: lowered searches are examples of their theme for
// the weights (context lowering is the lists' rule, which first-person words override), so
// study or help-seeking searches worded without a known context word alert. Figures
// (high-severity English, all, false alerts on quiet and lowered, on quiet alone):
// development 99.1 %, 99.6 %, 2.2 %, 0.0 % (tuned and trained on); held-out 1 86.8 %,
// 85.3 %, 4.8 %, 1.0 %; held-out 2 93.8 %, 92.8 %, 3.2 %, 1.1 %; held-out 3 95.1 %, 91.1 %,
// 2.4 %, 1.8 %; held-out 4 88.0 %, 91.2 %, 2.5 %, 0.6 %; held-out 5 (its weakest theme,
// abuse, was the eighth round's aim) 86.3 %, 87.2 %, 6.5 %, 1.6 %; held-out 6, written
// before the eighth round and scored once on its weights, 91.2 %, 90.0 %, 2.8 %, 0.6 %
// (benches/README.md §9).
const DEV_HIGH_EN: f64 = 0.97;
const DEV_ALL: f64 = 0.97;
const DEV_FALSE: f64 = 0.03;
const DEV_QUIET: f64 = 0.01;
const HELD_OUT_HIGH_EN: f64 = 0.86;
const HELD_OUT_ALL: f64 = 0.84;
const HELD_OUT_FALSE: f64 = 0.05;
const HELD_OUT_QUIET: f64 = 0.015;
const HELD_OUT_2_HIGH_EN: f64 = 0.92;
const HELD_OUT_2_ALL: f64 = 0.91;
const HELD_OUT_2_FALSE: f64 = 0.035;
const HELD_OUT_2_QUIET: f64 = 0.015;
const HELD_OUT_3_HIGH_EN: f64 = 0.93;
const HELD_OUT_3_ALL: f64 = 0.89;
const HELD_OUT_3_FALSE: f64 = 0.03;
const HELD_OUT_3_QUIET: f64 = 0.025;
const HELD_OUT_4_HIGH_EN: f64 = 0.86;
const HELD_OUT_4_ALL: f64 = 0.89;
const HELD_OUT_4_FALSE: f64 = 0.03;
const HELD_OUT_4_QUIET: f64 = 0.015;
const HELD_OUT_5_HIGH_EN: f64 = 0.85;
const HELD_OUT_5_ALL: f64 = 0.86;
const HELD_OUT_5_FALSE: f64 = 0.07;
const HELD_OUT_5_QUIET: f64 = 0.02;
const HELD_OUT_6_HIGH_EN: f64 = 0.90;
const HELD_OUT_6_ALL: f64 = 0.89;
const HELD_OUT_6_FALSE: f64 = 0.03;
const HELD_OUT_6_QUIET: f64 = 0.01;

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
    for (set, cases) in [
        ("development", cases()),
        ("held-out", held_out()),
        ("held-out-2", held_out_2()),
        ("held-out-3", held_out_3()),
        ("held-out-4", held_out_4()),
        ("held-out-5", held_out_5()),
        ("held-out-6", held_out_6()),
    ] {
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
