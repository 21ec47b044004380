//! The shipped themes scored on the labelled search sets: each search is sent as a pupil's
//! Google search through the shipped policy, and recall, precision and false alerts are
//! counted per theme and per language: the development set (`eval/searches/`), which the
//! lists were tuned on and the learned weights trained on, and the held-out sets
//! (`eval/searches/heldout*/`, [`HELD_OUT`]), each written before the tuning or training
//! it measures and never used for it, whose figures are the honest ones. The tables are printed (`cargo
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

/// One held-out set (`eval/searches/<folder>/*.tsv`).
fn held_out(folder: &str) -> Vec<LabelledSearch> {
    read_set(&[root().join("eval/searches").join(folder)]).unwrap()
}

/// Every held-out set together.
fn every_held_out() -> Vec<LabelledSearch> {
    HELD_OUT
        .iter()
        .flat_map(|(_, folder, _)| held_out(folder))
        .collect()
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
/// (quiet) searches that alert, at most 2 %, over the seven held-out sets together (each
/// set alone is held to its own floor above).
#[test]
fn at_most_two_in_a_hundred_ordinary_searches_alert_on_the_held_out_sets() {
    let snap = shipped();
    let all = every_held_out();
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
    shipped_on("development", &cases(), &DEV);
}

/// Every held-out set, each written before the tuning or training it measures and never
/// used for it (a set whose figures aimed a later round says so in [`HELD_OUT`]).
#[test]
fn the_shipped_themes_on_each_held_out_set() {
    for (set, folder, floors) in HELD_OUT {
        shipped_on(set, &held_out(folder), floors);
    }
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
    let unseen = every_held_out();
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
        "{differ} of {} weights differ from a fresh training: run `gatehouse train-themes --config deploy/gatehouse.toml --out lists/themes/_model/weights.tsv --exclude eval/searches/heldout --exclude eval/searches/heldout2 --exclude eval/searches/heldout3 --exclude eval/searches/heldout4 --exclude eval/searches/heldout5 --exclude eval/searches/heldout6 --exclude eval/searches/heldout7 eval/searches/train eval/searches`",
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

// Floors: the figures reached with the learned weights of the ninth training round (3
// December), rounded down. Issue 11's targets are 95 % on the high-severity English themes,
// 90 % elsewhere and at most 2 % false alerts on quiet searches (asserted over the held-out
// sets together above; each set alone is held to its own figure). Quiet and lowered
// together are held to the floors below: lowered searches are examples of their theme for
// the weights (context lowering is the lists' rule, which first-person words override), so
// study or help-seeking searches worded without a known context word alert. Figures
// (high-severity English, all, false alerts on quiet and lowered, on quiet alone):
// development 99.1 %, 99.6 %, 2.4 %, 0.3 % (tuned and trained on); held-out 1 87.5 %,
// 86.4 %, 4.8 %, 1.0 %; held-out 2 93.8 %, 92.8 %, 3.0 %, 0.8 %; held-out 3 95.1 %, 91.0 %,
// 2.6 %, 2.1 %; held-out 4 88.4 %, 91.2 %, 2.3 %, 0.3 %; held-out 5 87.3 %, 87.2 %, 6.1 %,
// 1.3 %; held-out 6 (scored once on the eighth round's weights: 91.2 %, 90.0 %, 2.8 %,
// 0.6 %) 90.2 %, 89.7 %, 2.8 %, 0.6 %; held-out 7, written before the ninth round and
// scored once on its weights, 84.8 %, 86.1 %, 5.6 %, 1.3 % (benches/README.md §9).
const DEV: Floors = Floors {
    high_en: 0.97,
    all: 0.97,
    false_alerts: 0.03,
    quiet: 0.01,
};

/// The held-out sets, oldest first: (name, folder, floors).
const HELD_OUT: &[(&str, &str, Floors)] = &[
    // Written before the lists' tuning of 2 December.
    ("held-out", "heldout", floors(0.86, 0.84, 0.05, 0.015)),
    // Written before the learned weights were first trained.
    ("held-out-2", "heldout2", floors(0.92, 0.91, 0.035, 0.015)),
    // Written before the sixth training round.
    ("held-out-3", "heldout3", floors(0.93, 0.89, 0.03, 0.025)),
    // Written before the seventh round; scored on the sixth round's weights, then the seventh's.
    ("held-out-4", "heldout4", floors(0.86, 0.89, 0.03, 0.015)),
    // Written after the seventh round; its abuse figure aimed the eighth round.
    ("held-out-5", "heldout5", floors(0.85, 0.86, 0.07, 0.02)),
    // Written before the eighth round; its figures aimed the ninth.
    ("held-out-6", "heldout6", floors(0.90, 0.89, 0.03, 0.01)),
    // Written before the ninth round, scored once on its weights.
    ("held-out-7", "heldout7", floors(0.84, 0.85, 0.06, 0.015)),
];

const fn floors(high_en: f64, all: f64, false_alerts: f64, quiet: f64) -> Floors {
    Floors {
        high_en,
        all,
        false_alerts,
        quiet,
    }
}

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
    let sets = std::iter::once(("development", cases())).chain(
        HELD_OUT
            .iter()
            .map(|(set, folder, _)| (*set, held_out(folder))),
    );
    for (set, cases) in sets {
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
