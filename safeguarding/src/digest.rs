//! The daily digest: one site's safeguarding events of one school day, grouped by theme
//! and by person, staff marked as such, as text (the email), HTML and CSV.

use crate::event::Event;
use crate::store::{timestamp, Query};
use chrono::{NaiveDate, TimeZone as _};
use chrono_tz::Tz;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Ends the rule of an event whose theme hit the search's context lowered (study, news,
/// help-seeking): logged for the digest, not alerted.
pub const LOWERED: &str = "+lowered";

/// The store query for `site`'s flagged events on `day` in the school's time zone.
pub fn query(site: Option<&str>, day: NaiveDate, tz: Tz) -> Query {
    let start = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| tz.from_local_datetime(&t).earliest())
            .map(|t| timestamp(t.with_timezone(&chrono::Utc)))
    };
    Query {
        site: site.map(str::to_owned),
        from: start(day),
        to: day.succ_opt().and_then(start),
        flagged_only: true,
        limit: 100_000,
        ..Query::default()
    }
}

/// One line of the digest.
#[derive(Clone, Debug)]
pub struct Line {
    pub time: String,
    pub who: String,
    pub staff: bool,
    pub role: String,
    pub device: String,
    pub what: String,
    pub verdict: String,
    pub alert: Option<String>,
    /// The search's context lowered the hit: the DSL checks the model's judgement here.
    pub lowered: bool,
}

#[derive(Debug)]
pub struct Digest {
    pub site: String,
    pub day: NaiveDate,
    pub by_theme: BTreeMap<String, Vec<Line>>,
    /// Person, whether staff, and their number of events.
    pub by_person: Vec<(String, bool, usize)>,
    pub total: usize,
}

impl Digest {
    /// Builds the digest from the day's flagged events (any order).
    pub fn build(
        site: &str,
        day: NaiveDate,
        tz: Tz,
        events: &[Event],
        staff_roles: &[String],
    ) -> Digest {
        let mut by_theme: BTreeMap<String, Vec<Line>> = BTreeMap::new();
        let mut people: BTreeMap<(String, bool), usize> = BTreeMap::new();
        let mut sorted: Vec<&Event> = events.iter().collect();
        sorted.sort_by(|a, b| a.time.cmp(&b.time));
        for e in &sorted {
            let staff = staff_roles.iter().any(|r| r == &e.role);
            let time = chrono::DateTime::parse_from_rfc3339(&e.time)
                .map(|t| t.with_timezone(&tz).format("%H:%M").to_string())
                .unwrap_or_else(|_| e.time.clone());
            let what = match &e.search_term {
                Some(q) => format!("searched \"{q}\" ({})", e.host),
                None => format!("visited {}", e.url),
            };
            let line = Line {
                time,
                who: e.who().to_owned(),
                staff,
                role: e.role.clone(),
                device: e.client_ip.clone(),
                what,
                verdict: e.verdict.clone(),
                alert: e.alert.clone(),
                lowered: e.rule.ends_with(LOWERED),
            };
            let themes: Vec<String> = if e.themes.is_empty() {
                e.categories.clone()
            } else {
                e.themes.clone()
            };
            for t in if themes.is_empty() {
                vec!["other".to_owned()]
            } else {
                themes
            } {
                by_theme.entry(t).or_default().push(line.clone());
            }
            *people.entry((e.who().to_owned(), staff)).or_default() += 1;
        }
        let mut by_person: Vec<(String, bool, usize)> =
            people.into_iter().map(|((w, s), n)| (w, s, n)).collect();
        by_person.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        Digest {
            site: site.to_owned(),
            day,
            by_theme,
            by_person,
            total: sorted.len(),
        }
    }

    pub fn subject(&self) -> String {
        format!(
            "Gatehouse daily safeguarding digest: {} ({}), {} event{}",
            self.site,
            self.day.format("%A %-d %B %Y"),
            self.total,
            if self.total == 1 { "" } else { "s" }
        )
    }

    /// The digest as the email's text.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}\n", self.subject());
        if self.total == 0 {
            let _ = writeln!(s, "No safeguarding rule fired today.");
            return s;
        }
        let _ = writeln!(s, "By theme");
        let _ = writeln!(s, "--------");
        for (theme, lines) in &self.by_theme {
            let _ = writeln!(s, "\n{theme} ({})", lines.len());
            let (lowered, fired): (Vec<&Line>, Vec<&Line>) = lines.iter().partition(|l| l.lowered);
            for (heading, group) in [
                ("alerted, blocked or logged", fired),
                (
                    "context lowered it (study, news or help-seeking): check the judgement",
                    lowered,
                ),
            ] {
                if group.is_empty() {
                    continue;
                }
                let _ = writeln!(s, "  {heading} ({})", group.len());
                for l in group {
                    let _ = writeln!(
                        s,
                        "  {}  {}{} ({}, device {}): {} [{}{}]",
                        l.time,
                        l.who,
                        if l.staff { " [STAFF]" } else { "" },
                        l.role,
                        l.device,
                        l.what,
                        l.verdict,
                        l.alert
                            .as_deref()
                            .map(|a| format!(", {a} alert"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        let _ = writeln!(s, "\nBy person");
        let _ = writeln!(s, "---------");
        for (who, staff, n) in &self.by_person {
            let _ = writeln!(s, "  {who}{}: {n}", if *staff { " [STAFF]" } else { "" });
        }
        let _ = writeln!(
            s,
            "\nStaff entries are marked [STAFF]: staff searches are often lesson planning and are \
             logged rather than alerted; approach them sensitively."
        );
        s
    }

    pub fn html(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title></head><body><h1>{}</h1>",
            esc(&self.subject()),
            esc(&self.subject())
        );
        if self.total == 0 {
            s.push_str("<p>No safeguarding rule fired today.</p></body></html>");
            return s;
        }
        for (theme, lines) in &self.by_theme {
            let _ = write!(
                s,
                "<h2>{} ({})</h2><table><tr><th>Time</th><th>Who</th><th>Role</th><th>Device</th><th>What</th><th>Decision</th><th>Context</th></tr>",
                esc(theme),
                lines.len()
            );
            for l in lines {
                let _ = write!(
                    s,
                    "<tr><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td></tr>",
                    esc(&l.time),
                    esc(&l.who),
                    if l.staff { " <strong>(staff)</strong>" } else { "" },
                    esc(&l.role),
                    esc(&l.device),
                    esc(&l.what),
                    esc(&l.verdict),
                    l.alert
                        .as_deref()
                        .map(|a| format!(", {} alert", esc(a)))
                        .unwrap_or_default(),
                    if l.lowered {
                        "lowered: study, news or help-seeking"
                    } else {
                        ""
                    }
                );
            }
            s.push_str("</table>");
        }
        s.push_str("<h2>By person</h2><ul>");
        for (who, staff, n) in &self.by_person {
            let _ = write!(
                s,
                "<li>{}{}: {n}</li>",
                esc(who),
                if *staff {
                    " <strong>(staff)</strong>"
                } else {
                    ""
                }
            );
        }
        s.push_str("</ul></body></html>");
        s
    }

    pub fn csv(&self) -> String {
        let mut s = String::from("theme,time,who,staff,role,device,what,decision,alert,context\n");
        for (theme, lines) in &self.by_theme {
            for l in lines {
                let fields = [
                    theme.as_str(),
                    &l.time,
                    &l.who,
                    if l.staff { "yes" } else { "no" },
                    &l.role,
                    &l.device,
                    &l.what,
                    &l.verdict,
                    l.alert.as_deref().unwrap_or(""),
                    if l.lowered { "lowered" } else { "" },
                ];
                let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                s.push_str(&row.join(","));
                s.push('\n');
            }
        }
        s
    }
}

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A CSV field, quoted when needed; a leading `=`, `+`, `-` or `@` is defused so the file
/// is safe to open in a spreadsheet.
pub fn csv_field(f: &str) -> String {
    let f = if f.starts_with(['=', '+', '-', '@']) {
        format!("'{f}")
    } else {
        f.to_owned()
    };
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f
    }
}
