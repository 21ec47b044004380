//! People, not only accounts: the school's MIS export (a CSV) read into a compact table, so
//! events, alerts and the admin page say "Amy Pupil, Year 9, 9B" and a person can be found
//! by name. Leavers are kept (their history still names them) but identify no one.
//!
//! The table is one text arena and a vector of small entries sorted by account: about 60
//! bytes a person plus the text itself, so 50,000 people fit in a few MiB.

use anyhow::{bail, Context as _};
use std::path::Path;

#[derive(Clone, Copy, Debug, Default)]
struct Span {
    start: u32,
    len: u32,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    account: Span,
    name: Span,
    year: Span,
    form: Span,
    role: Span,
    /// The day (from the common era) the person counts as left: `NEVER`, or `ALREADY`.
    left_from: i32,
}

const NEVER: i32 = i32::MAX;
const ALREADY: i32 = i32::MIN;

/// One person, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person<'a> {
    pub account: &'a str,
    pub name: &'a str,
    pub year: &'a str,
    pub form: &'a str,
    /// The role the MIS gives (empty: the one the login or network gives).
    pub role: &'a str,
    pub left: bool,
}

impl Person<'_> {
    /// "Amy Pupil, Year 9, 9B" (the parts the MIS gave).
    pub fn display(&self) -> String {
        let mut out = if self.name.is_empty() {
            self.account.to_owned()
        } else {
            self.name.to_owned()
        };
        if !self.year.is_empty() {
            out.push_str(", ");
            if self.year.bytes().all(|b| b.is_ascii_digit()) {
                out.push_str("Year ");
            }
            out.push_str(self.year);
        }
        if !self.form.is_empty() {
            out.push_str(", ");
            out.push_str(self.form);
        }
        out
    }
}

/// One person to add.
#[derive(Clone, Copy, Debug)]
pub struct Row<'a> {
    pub account: &'a str,
    pub name: &'a str,
    pub year: &'a str,
    pub form: &'a str,
    pub role: &'a str,
    /// The `left` field as the MIS wrote it (a date, a word, or empty).
    pub left: &'a str,
}

/// The people table.
#[derive(Debug, Default)]
pub struct People {
    text: String,
    entries: Vec<Entry>,
}

const COLUMNS: [&str; 6] = ["account", "name", "year", "form", "role", "left"];

impl People {
    pub fn load(path: &Path) -> anyhow::Result<People> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("[identity.people] csv: {}", path.display()))?;
        People::parse(&text).with_context(|| format!("{}", path.display()))
    }

    /// Reads the CSV text (RFC 4180: quoted fields, doubled quotes, CRLF or LF). Every bad
    /// line is an error that names it; an account given twice is an error.
    pub fn parse(text: &str) -> anyhow::Result<People> {
        let mut rows = Rows::new(text.strip_prefix('\u{feff}').unwrap_or(text));
        let Some((_, header)) = rows.next_row()? else {
            bail!("line 1: empty file; expected a header like account,name,year,form,role,left");
        };
        let mut at = [None; 6];
        for (i, h) in header.iter().enumerate() {
            let h = h.trim().to_ascii_lowercase();
            match COLUMNS.iter().position(|c| *c == h) {
                Some(c) if at[c].is_none() => at[c] = Some(i),
                Some(_) => bail!("line 1: column {h:?} twice"),
                None => bail!(
                    "line 1: unknown column {h:?} (the columns are {})",
                    COLUMNS.join(",")
                ),
            }
        }
        if at[0].is_none() {
            bail!("line 1: no `account` column");
        }
        let mut people = People::default();
        while let Some((line, row)) = rows.next_row()? {
            if row.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            if row.len() != header.len() {
                bail!(
                    "line {line}: {} fields, the header has {}",
                    row.len(),
                    header.len()
                );
            }
            let field = |c: usize| at[c].map_or("", |i| row[i].trim());
            let account = field(0).to_lowercase();
            if account.is_empty() || account.len() > 256 || account.chars().any(char::is_control) {
                bail!("line {line}: the account is empty, too long or holds control characters");
            }
            people
                .add(Row {
                    account: &account,
                    name: field(1),
                    year: field(2).trim_start_matches("Year ").trim(),
                    form: field(3),
                    role: field(4),
                    left: field(5),
                })
                .with_context(|| format!("line {line}"))?;
        }
        people.finish()
    }

    /// Adds one person (the account in lower case); [`People::finish`] sorts and checks.
    pub fn add(&mut self, row: Row<'_>) -> anyhow::Result<()> {
        let entry = Entry {
            account: self.push(row.account)?,
            name: self.push(row.name)?,
            year: self.push(row.year)?,
            form: self.push(row.form)?,
            role: self.push(row.role)?,
            left_from: left_from(row.left),
        };
        self.entries.push(entry);
        Ok(())
    }

    /// Sorts the table by account; an account given twice is an error.
    pub fn finish(mut self) -> anyhow::Result<People> {
        let text = std::mem::take(&mut self.text);
        self.entries
            .sort_by(|a, b| people_str(&text, a.account).cmp(people_str(&text, b.account)));
        self.text = text;
        for pair in self.entries.windows(2) {
            let (a, b) = (
                people_str(&self.text, pair[0].account),
                people_str(&self.text, pair[1].account),
            );
            if a == b {
                bail!("the account {a:?} is given twice");
            }
        }
        self.text.shrink_to_fit();
        self.entries.shrink_to_fit();
        Ok(self)
    }

    fn push(&mut self, s: &str) -> anyhow::Result<Span> {
        let start = u32::try_from(self.text.len()).context("the file is over 4 GiB")?;
        let len = u32::try_from(s.len()).context("a field is over 4 GiB")?;
        self.text.push_str(s);
        Ok(Span { start, len })
    }

    fn person(&self, e: &Entry) -> Person<'_> {
        self.person_on(e, today())
    }

    fn person_on(&self, e: &Entry, today: i32) -> Person<'_> {
        Person {
            account: people_str(&self.text, e.account),
            name: people_str(&self.text, e.name),
            year: people_str(&self.text, e.year),
            form: people_str(&self.text, e.form),
            role: people_str(&self.text, e.role),
            left: e.left_from <= today,
        }
    }

    /// The person with this account (case-insensitive).
    pub fn get(&self, account: &str) -> Option<Person<'_>> {
        let lower;
        let account = if account.bytes().any(|b| b.is_ascii_uppercase()) || !account.is_ascii() {
            lower = account.to_lowercase();
            lower.as_str()
        } else {
            account
        };
        let i = self
            .entries
            .binary_search_by(|e| people_str(&self.text, e.account).cmp(account))
            .ok()?;
        Some(self.person(&self.entries[i]))
    }

    /// People whose name or account contains `needle` (case-insensitive), at most `limit`.
    pub fn find(&self, needle: &str, limit: usize) -> Vec<Person<'_>> {
        let needle = needle.trim().to_lowercase();
        if needle.is_empty() {
            return Vec::new();
        }
        self.entries
            .iter()
            .map(|e| self.person(e))
            .filter(|p| p.name.to_lowercase().contains(&needle) || p.account.contains(&needle))
            .take(limit)
            .collect()
    }

    /// People marked as having left.
    pub fn leavers(&self) -> usize {
        let today = today();
        self.entries.iter().filter(|e| e.left_from <= today).count()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every role the table names, with the first account that names it.
    pub fn roles(&self) -> Vec<(&str, &str)> {
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for e in &self.entries {
            let p = self.person(e);
            if !p.role.is_empty() && !seen.iter().any(|(r, _)| *r == p.role) {
                seen.push((p.role, p.account));
            }
        }
        seen
    }

    /// Heap bytes the table holds.
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity() + self.entries.capacity() * std::mem::size_of::<Entry>()
    }
}

/// Today, as a day of the common era (UTC).
fn today() -> i32 {
    use chrono::Datelike as _;
    chrono::Utc::now().date_naive().num_days_from_ce()
}

/// The day a `left` field says the person counts as left from: its date (checked on each
/// look-up, so a leaving date in an unchanged file takes effect on the day), `ALREADY` for
/// a word that says so, `NEVER` for `no`, `n`, `false`, `0` and empty.
fn left_from(field: &str) -> i32 {
    use chrono::Datelike as _;
    let field = field.trim();
    if let Ok(date) = chrono::NaiveDate::parse_from_str(field, "%Y-%m-%d")
        .or_else(|_| chrono::NaiveDate::parse_from_str(field, "%d/%m/%Y"))
    {
        return date.num_days_from_ce();
    }
    match field.to_ascii_lowercase().as_str() {
        "" | "no" | "n" | "false" | "0" => NEVER,
        _ => ALREADY,
    }
}

fn people_str(text: &str, s: Span) -> &str {
    let start = s.start as usize;
    text.get(start..start + s.len as usize).unwrap_or_default()
}

/// CSV rows with their first line numbers.
struct Rows<'a> {
    rest: &'a str,
    line: usize,
}

impl<'a> Rows<'a> {
    fn new(text: &'a str) -> Rows<'a> {
        Rows {
            rest: text,
            line: 1,
        }
    }

    fn next_row(&mut self) -> anyhow::Result<Option<(usize, Vec<String>)>> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let first = self.line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut chars = self.rest.char_indices().peekable();
        let mut quoted = false;
        let mut at_start = true;
        let mut end = self.rest.len();
        while let Some((i, c)) = chars.next() {
            if quoted {
                match c {
                    '"' if chars.peek().map(|p| p.1) == Some('"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => quoted = false,
                    '\n' => {
                        self.line += 1;
                        field.push(c);
                    }
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                '"' if at_start => {
                    quoted = true;
                    at_start = false;
                }
                ',' => {
                    fields.push(std::mem::take(&mut field));
                    at_start = true;
                }
                '\r' if chars.peek().map(|p| p.1) == Some('\n') => {}
                '\n' => {
                    end = i + 1;
                    break;
                }
                _ => {
                    field.push(c);
                    at_start = false;
                }
            }
        }
        if quoted {
            bail!("line {first}: a quoted field is not closed");
        }
        fields.push(field);
        self.rest = &self.rest[end.min(self.rest.len())..];
        self.line += 1;
        Ok(Some((first, fields)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mis_export_is_read_with_quotes_and_leavers() {
        let people = People::parse(
            "\u{feff}Account,Name,Year,Form,Role,Left\r\n\
             amy.pupil,Amy Pupil,9,9B,pupil,\r\n\
             BEN.P,\"Pupil, Ben \"\"BJ\"\"\",Year 11,11C,,2026-07-20\r\n\
             t.teacher,Tess Teacher,,,staff,no\r\n",
        )
        .unwrap();
        assert_eq!(people.len(), 3);
        let amy = people.get("Amy.Pupil").unwrap();
        assert_eq!(amy.display(), "Amy Pupil, Year 9, 9B");
        assert_eq!(amy.role, "pupil");
        let ben = people.get("ben.p").unwrap();
        assert_eq!(ben.name, "Pupil, Ben \"BJ\"");
        assert!(ben.left);
        assert_eq!(ben.display(), "Pupil, Ben \"BJ\", Year 11, 11C");
        assert_eq!(people.find("tess", 5).len(), 1);
        assert!(!people.get("t.teacher").unwrap().left);
    }

    #[test]
    fn a_leaving_date_still_to_come_is_not_left_yet() {
        use chrono::Datelike as _;
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 3)
            .unwrap()
            .num_days_from_ce();
        for (field, left) in [
            ("2030-07-20", false),
            ("20/07/2030", false),
            ("2026-12-03", true),
            ("2026-07-20", true),
            ("N", false),
            ("no", false),
            ("yes", true),
            ("", false),
        ] {
            assert_eq!(left_from(field) <= today, left, "{field:?}");
        }
    }

    #[test]
    fn bad_files_name_the_line() {
        let e = People::parse("account,name\namy,Amy\nbob\n").unwrap_err();
        assert!(format!("{e:#}").contains("line 3"), "{e:#}");
        let e = People::parse("account,nickname\n").unwrap_err();
        assert!(format!("{e:#}").contains("nickname"), "{e:#}");
        let e = People::parse("account,name\namy,A\nAMY,B\n").unwrap_err();
        assert!(format!("{e:#}").contains("twice"), "{e:#}");
        let e = People::parse("account,name\namy,\"A\n").unwrap_err();
        assert!(format!("{e:#}").contains("not closed"), "{e:#}");
    }

    #[test]
    fn fifty_thousand_people_take_under_200_bytes_each() {
        let mut csv = String::from("account,name,year,form,role,left\n");
        for i in 0..50_000 {
            csv.push_str(&format!(
                "pupil{i:05}@school.example,Firstname{i} Lastname{i},{},{}{},pupil,\n",
                7 + i % 7,
                7 + i % 7,
                ["A", "B", "C", "D"][i % 4]
            ));
        }
        let people = People::parse(&csv).unwrap();
        assert_eq!(people.len(), 50_000);
        let per = people.heap_bytes() / people.len();
        assert!(per <= 200, "{per} bytes a person");
    }
}
