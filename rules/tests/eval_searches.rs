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
use gatehouse_rules::{compile, evaluate, Facts, Snapshot, Target};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const HIGH: [&str; 9] = [
    "suicide",
    "self-harm",
    "eating-disorders",
    "disclosure",
    "abuse",
    "grooming",
    "sextortion",
    "criminal-exploitation",
    "extremism",
];

struct Case {
    file: String,
    lang: String,
    theme: String,
    expect: String,
    query: String,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cases() -> Vec<Case> {
    let dir = root().join("eval/searches");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tsv"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 5, "{}:{}: five columns", path.display(), i + 1);
            assert!(
                matches!(f[2], "alert" | "lowered" | "quiet"),
                "{}:{}: expect is alert, lowered or quiet",
                path.display(),
                i + 1
            );
            out.push(Case {
                file: path.file_name().unwrap().to_string_lossy().into_owned(),
                lang: f[0].to_owned(),
                theme: f[1].to_owned(),
                expect: f[2].to_owned(),
                query: f[3].to_owned(),
            });
        }
    }
    out
}

fn encode(q: &str) -> String {
    let mut out = String::new();
    for b in q.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The themes a pupil's search fires (not lowered), and the ones it touched but the
/// context lowered.
fn judge(snap: &Snapshot, query: &str) -> (Vec<String>, Vec<String>) {
    let url = format!("https://www.google.com/search?q={}", encode(query));
    let facts = Facts {
        role: snap.role_id("pupil").unwrap(),
        user: None,
        client: None,
        at: chrono::DateTime::UNIX_EPOCH,
        method: "GET",
        target: Target::Url(&url),
    };
    let d = evaluate(snap, &facts);
    let name = |t| snap.themes().theme_name(t).to_owned();
    let fired = d
        .themes
        .iter()
        .filter(|&t| !d.lowered.contains(t))
        .map(name)
        .collect();
    let lowered = d.lowered.iter().map(name).collect();
    (fired, lowered)
}

#[derive(Default, Clone, Copy)]
struct Tally {
    alerts: usize,
    caught: usize,
    /// Fired on a search labelled with another theme or none.
    wrong: usize,
    quiet: usize,
    false_alerts: usize,
}

impl Tally {
    fn recall(&self) -> f64 {
        ratio(self.caught, self.alerts)
    }
    fn precision(&self) -> f64 {
        ratio(self.caught, self.caught + self.wrong)
    }
    fn false_rate(&self) -> f64 {
        ratio(self.false_alerts, self.quiet)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

struct Score {
    by_theme: BTreeMap<String, Tally>,
    by_lang: BTreeMap<String, Tally>,
    total: Tally,
    high_en: Tally,
    misses: Vec<String>,
    false_alerts: Vec<String>,
}

impl Tally {
    fn add(&mut self, alert: bool, right: bool) {
        if alert {
            self.alerts += 1;
            self.caught += usize::from(right);
        } else {
            self.quiet += 1;
            self.false_alerts += usize::from(!right);
        }
    }
}

fn score(snap: &Snapshot, cases: &[Case]) -> Score {
    let mut s = Score {
        by_theme: BTreeMap::new(),
        by_lang: BTreeMap::new(),
        total: Tally::default(),
        high_en: Tally::default(),
        misses: Vec::new(),
        false_alerts: Vec::new(),
    };
    for c in cases {
        let (fired, _lowered) = judge(snap, &c.query);
        let alert = c.expect == "alert";
        // Right: an alert search fires its theme; any other search fires nothing.
        let right = if alert {
            fired.contains(&c.theme)
        } else {
            fired.is_empty()
        };
        let theme_key = if alert {
            c.theme.clone()
        } else {
            "-".to_owned()
        };
        s.by_theme.entry(theme_key).or_default().add(alert, right);
        s.by_lang
            .entry(c.lang.clone())
            .or_default()
            .add(alert, right);
        s.total.add(alert, right);
        if c.lang == "en" && HIGH.contains(&c.theme.as_str()) && alert {
            s.high_en.add(alert, right);
        }
        match (alert, right) {
            (true, false) => s.misses.push(format!(
                "{} {} {:?} fired {:?}",
                c.file, c.theme, c.query, fired
            )),
            (false, false) => s.false_alerts.push(format!(
                "{} {} {} {:?} fired {:?}",
                c.file, c.expect, c.theme, c.query, fired
            )),
            _ => {}
        }
        // Precision: a theme fired that the label does not name is a wrong hit for it.
        for f in &fired {
            if !(alert && *f == c.theme) {
                s.by_theme.entry(f.clone()).or_default().wrong += 1;
            }
        }
    }
    s
}

fn table(s: &Score, title: &str) -> String {
    let pct = |x: f64| format!("{:.1} %", x * 100.0);
    let mut out = format!(
        "### {title}\n\n| theme | searches to catch | recall | precision |\n|---|---:|---:|---:|\n"
    );
    for (theme, t) in &s.by_theme {
        if theme == "-" {
            continue;
        }
        out.push_str(&format!(
            "| {theme} | {} | {} | {} |\n",
            t.alerts,
            pct(t.recall()),
            pct(t.precision())
        ));
    }
    out.push_str("\n| language | searches to catch | recall | quiet or lowered | false alerts |\n|---|---:|---:|---:|---:|\n");
    for (lang, t) in &s.by_lang {
        out.push_str(&format!(
            "| {lang} | {} | {} | {} | {} |\n",
            t.alerts,
            pct(t.recall()),
            t.quiet,
            pct(t.false_rate())
        ));
    }
    out.push_str(&format!(
        "\nAll: recall {} of {} searches; high-severity English themes {} of {}; false alerts {} of {} quiet or lowered searches.\n",
        pct(s.total.recall()),
        s.total.alerts,
        pct(s.high_en.recall()),
        s.high_en.alerts,
        pct(s.total.false_rate()),
        s.total.quiet
    ));
    out
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
    let s = score(&snap, &cases);
    let report = table(&s, "Gatehouse themes (deploy/gatehouse.toml)");
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
    let s = score(&snap, &cases());
    let report = table(&s, "e2guardian 5.3 weighted phrase lists (threshold 50)");
    println!("{report}");
    let _ = std::fs::write(root().join("target/eval-searches-e2guardian.md"), &report);
    // e2guardian has no suicide, self-harm or disclosure lists: the baseline catches none.
    assert_eq!(s.by_theme.get("suicide").map_or(0, |t| t.caught), 0);
}
