//! Labelled searches: a policy's themes scored on searches a DSL has labelled, so a school
//! (and Gatehouse's own test) can see what the themes catch, what they miss and where they
//! raise a false alarm.
//!
//! A set is one or more tab-separated files of five columns (`lang`, `theme`, `expect`,
//! `query`, `source`; `#` starts a comment), the format of `eval/searches/`. Each search is
//! sent as a Google search through the policy for one role. A search labelled `alert` is
//! caught when its theme fires unlowered; a `lowered` or `quiet` search is a false alert
//! when any theme fires unlowered.

use crate::config::Severity;
use crate::policy::RoleId;
use crate::{evaluate, Facts, RulesError, Snapshot, Target};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What a DSL wants done with a search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The theme must fire (the DSL is told now).
    Alert,
    /// The theme is touched in a study, news or help-seeking context: no alert.
    Lowered,
    /// An ordinary search: nothing fires.
    Quiet,
}

/// One labelled search.
#[derive(Clone, Debug)]
pub struct LabelledSearch {
    /// The file and line it was read from (`pl.tsv:12`).
    pub place: String,
    pub lang: String,
    /// The theme, or `-` for an ordinary search.
    pub theme: String,
    pub expect: Expect,
    pub query: String,
}

/// Reads labelled searches from files, or from every `.tsv` file of a folder (not its
/// subfolders), in name order. A malformed line is an error naming its file and line.
pub fn read_set(paths: &[PathBuf]) -> Result<Vec<LabelledSearch>, RulesError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| RulesError::Io {
                path: path.clone(),
                source,
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "tsv"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| RulesError::Io {
            path: path.clone(),
            source,
        })?;
        read_lines(&path, &text, &mut out)?;
    }
    Ok(out)
}

fn read_lines(path: &Path, text: &str, out: &mut Vec<LabelledSearch>) -> Result<(), RulesError> {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let invalid = |field: &str, message: String| RulesError::Invalid {
            path: path.to_path_buf(),
            line: i + 1,
            field: field.to_owned(),
            message,
        };
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 5 {
            return Err(invalid(
                "columns",
                format!(
                    "{} tab-separated columns, expected 5 (lang, theme, expect, query, source)",
                    f.len()
                ),
            ));
        }
        let expect = match f[2] {
            "alert" => Expect::Alert,
            "lowered" => Expect::Lowered,
            "quiet" => Expect::Quiet,
            other => {
                return Err(invalid(
                    "expect",
                    format!("{other:?}: expected alert, lowered or quiet"),
                ))
            }
        };
        if expect == Expect::Alert && f[1] == "-" {
            return Err(invalid(
                "theme",
                "an alert search names its theme".to_owned(),
            ));
        }
        out.push(LabelledSearch {
            place: format!("{name}:{}", i + 1),
            lang: f[0].to_owned(),
            theme: f[1].to_owned(),
            expect,
            query: f[3].to_owned(),
        });
    }
    Ok(())
}

/// Counts for one theme, one language, or all.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    /// Searches labelled `alert`.
    pub alerts: usize,
    /// Of those, the ones whose theme fired.
    pub caught: usize,
    /// Times this theme fired on a search labelled with another theme or none.
    pub wrong: usize,
    /// Searches labelled `lowered` or `quiet`.
    pub quiet: usize,
    /// Of those, the ones on which some theme fired.
    pub false_alerts: usize,
}

impl Tally {
    pub fn recall(&self) -> f64 {
        ratio(self.caught, self.alerts)
    }
    pub fn precision(&self) -> f64 {
        ratio(self.caught, self.caught + self.wrong)
    }
    pub fn false_rate(&self) -> f64 {
        ratio(self.false_alerts, self.quiet)
    }
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

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// A set scored for one role.
#[derive(Clone, Debug, Default)]
pub struct Score {
    pub by_theme: BTreeMap<String, Tally>,
    pub by_lang: BTreeMap<String, Tally>,
    pub total: Tally,
    /// English searches of the high-severity themes (see [`score`]).
    pub high_en: Tally,
    /// The searches labelled `quiet` alone (ordinary searches: the false-alert
    /// measure; `total` also counts `lowered` ones).
    pub quiet_only: Tally,
    /// Alert searches whose theme did not fire: place, theme, query, themes that fired.
    pub misses: Vec<String>,
    /// Lowered or quiet searches on which a theme fired.
    pub false_alerts: Vec<String>,
}

/// The themes `role` alerts on at high or critical severity.
pub fn high_severity(snap: &Snapshot, role: RoleId) -> Vec<String> {
    let Some(policy) = snap.role(role) else {
        return Vec::new();
    };
    snap.themes()
        .theme_names()
        .iter()
        .enumerate()
        .filter(|&(i, _)| {
            matches!(
                policy.themes.get(i).and_then(|a| a.alert()),
                Some(Severity::High | Severity::Critical)
            )
        })
        .map(|(_, name)| name.clone())
        .collect()
}

/// Sends each search through the policy as `role`'s Google search and counts the results;
/// `high` names the themes whose English searches are also counted in [`Score::high_en`].
pub fn score(snap: &Snapshot, role: RoleId, set: &[LabelledSearch], high: &[String]) -> Score {
    let mut s = Score::default();
    let mut url = String::new();
    for c in set {
        url.clear();
        url.push_str("https://www.google.com/search?q=");
        encode_into(&c.query, &mut url);
        let facts = Facts {
            role,
            user: None,
            client: None,
            at: chrono::DateTime::UNIX_EPOCH,
            method: "GET",
            target: Target::Url(&url),
        };
        let d = evaluate(snap, &facts);
        let fired: Vec<&str> = d
            .themes
            .iter()
            .filter(|&t| !d.lowered.contains(t))
            .map(|t| snap.themes().theme_name(t))
            .collect();
        let alert = c.expect == Expect::Alert;
        let right = if alert {
            fired.contains(&c.theme.as_str())
        } else {
            fired.is_empty()
        };
        let theme_key = if alert { c.theme.as_str() } else { "-" };
        s.by_theme
            .entry(theme_key.to_owned())
            .or_default()
            .add(alert, right);
        s.by_lang
            .entry(c.lang.clone())
            .or_default()
            .add(alert, right);
        s.total.add(alert, right);
        if alert && c.lang == "en" && high.contains(&c.theme) {
            s.high_en.add(alert, right);
        }
        if c.expect == Expect::Quiet {
            s.quiet_only.add(alert, right);
        }
        match (alert, right) {
            (true, false) => s.misses.push(format!(
                "{} {} {:?} fired {:?}",
                c.place, c.theme, c.query, fired
            )),
            (false, false) => s.false_alerts.push(format!(
                "{} {} {} {:?} fired {:?}",
                c.place,
                if c.expect == Expect::Lowered {
                    "lowered"
                } else {
                    "quiet"
                },
                c.theme,
                c.query,
                fired
            )),
            _ => {}
        }
        for f in &fired {
            if !(alert && *f == c.theme) {
                s.by_theme.entry((*f).to_owned()).or_default().wrong += 1;
            }
        }
    }
    s
}

/// Percent-encodes a query for a URL's query string (space as `+`).
fn encode_into(q: &str, out: &mut String) {
    for b in q.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

impl Score {
    /// The figures as Markdown tables: per theme, per language, and all together.
    pub fn table(&self, title: &str) -> String {
        let pct = |x: f64| format!("{:.1} %", x * 100.0);
        let mut out = format!(
            "### {title}\n\n| theme | searches to catch | recall | precision |\n|---|---:|---:|---:|\n"
        );
        for (theme, t) in &self.by_theme {
            if theme == "-" {
                continue;
            }
            let _ = writeln!(
                out,
                "| {theme} | {} | {} | {} |",
                t.alerts,
                pct(t.recall()),
                pct(t.precision())
            );
        }
        out.push_str("\n| language | searches to catch | recall | quiet or lowered | false alerts |\n|---|---:|---:|---:|---:|\n");
        for (lang, t) in &self.by_lang {
            let _ = writeln!(
                out,
                "| {lang} | {} | {} | {} | {} |",
                t.alerts,
                pct(t.recall()),
                t.quiet,
                pct(t.false_rate())
            );
        }
        let _ = writeln!(
            out,
            "\nAll: recall {} of {} searches; high-severity English themes {} of {}; false alerts {} of {} quiet or lowered searches ({} of {} quiet ones).",
            pct(self.total.recall()),
            self.total.alerts,
            pct(self.high_en.recall()),
            self.high_en.alerts,
            pct(self.total.false_rate()),
            self.total.quiet,
            pct(self.quiet_only.false_rate()),
            self.quiet_only.quiet
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_line_is_named() {
        let mut out = Vec::new();
        let bad = "# comment\nen\tsuicide\talert\tkms\tslang\nen\tsuicide\tmaybe\tkms\tslang\n";
        let e = read_lines(Path::new("set.tsv"), bad, &mut out).unwrap_err();
        assert_eq!(
            e.to_string(),
            "set.tsv:3: expect: \"maybe\": expected alert, lowered or quiet"
        );
        let e =
            read_lines(Path::new("set.tsv"), "en\tsuicide\talert\tkms\n", &mut out).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("set.tsv:1: columns: 4 tab-separated"),
            "{e}"
        );
        let e = read_lines(Path::new("set.tsv"), "en\t-\talert\tkms\tx\n", &mut out).unwrap_err();
        assert!(e.to_string().contains("names its theme"), "{e}");
    }

    #[test]
    fn queries_are_encoded_for_a_url() {
        let mut s = String::new();
        encode_into("how to kill myself? ść", &mut s);
        assert_eq!(s, "how+to+kill+myself%3F+%C5%9B%C4%87");
    }
}
