//! Phrase lists: Gatehouse's own theme files and e2guardian's weighted phrase lists.
//!
//! A **theme file** is what IT edits: one phrase a line, matched as whole words.
//!
//! ```text
//! # self-harm: phrases that suggest a young person may hurt themselves
//! cut myself
//! self harm
//! thinspo*            <- a trailing * lets the last word run on (thinspo, thinspos)
//! !self harm support  <- an exception: hits inside it do not count
//! ```
//!
//! An **e2guardian weighted list** scores text: `<phrase><weight>`, where spaces inside the
//! angle brackets ask for a word boundary on that side (`< anal >` is the word, `<porn>` any
//! text containing it), `<a>,<b><weight>` scores when all parts are present, weights may be
//! negative or a percentage of the limit (`<10%>`), `#listcategory: "Name"` names the list and
//! `.Include</path/to/list>` pulls in another file.

/// One useful line of a theme file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ThemeLine<'a> {
    /// Whole words.
    Phrase(&'a str),
    /// Whole words, the last of which may run on (`thinspo*`).
    Prefix(&'a str),
    /// Suppresses hits that fall inside it (`!suicide prevention`).
    Exception(&'a str),
}

/// Parses one theme-file line. `Ok(None)` for blanks and comments.
pub fn theme_line(line: &str) -> Result<Option<ThemeLine<'_>>, String> {
    let text = line.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let (exception, text) = match text.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, text),
    };
    let (prefix, text) = match text.strip_suffix('*') {
        Some(rest) => (true, rest.trim_end()),
        None => (false, text),
    };
    if text.is_empty() {
        return Err("empty phrase".to_owned());
    }
    if text.contains('*') {
        return Err(format!("{text:?}: '*' is only allowed at the end"));
    }
    if !text.chars().any(char::is_alphanumeric) {
        return Err(format!("{text:?} has no letters or digits"));
    }
    Ok(Some(match (exception, prefix) {
        (true, _) => ThemeLine::Exception(text),
        (false, true) => ThemeLine::Prefix(text),
        (false, false) => ThemeLine::Phrase(text),
    }))
}

/// One part of a weighted phrase: its text and which sides need a word boundary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightedPart<'a> {
    pub text: &'a str,
    pub word_start: bool,
    pub word_end: bool,
}

/// A weight: points, or a percentage of the list's limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weight {
    Points(i32),
    Percent(i32),
}

impl Weight {
    /// The points this weight adds against `limit`.
    pub fn points(self, limit: i32) -> i32 {
        match self {
            Weight::Points(p) => p,
            Weight::Percent(pc) => limit.saturating_mul(pc) / 100,
        }
    }
}

/// One useful line of an e2guardian weighted phrase list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WeightedLine<'a> {
    Phrase {
        parts: Vec<WeightedPart<'a>>,
        weight: Weight,
    },
    /// `#listcategory: "Pornography"`.
    Category(&'a str),
    /// `.Include</etc/e2guardian/lists/phraselists/...>`.
    Include(&'a str),
}

/// Parses one e2guardian weighted-list line. `Ok(None)` for blanks and comments.
pub fn weighted_line(line: &str) -> Result<Option<WeightedLine<'_>>, String> {
    let text = line.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Some(rest) = text.strip_prefix("#listcategory:") {
        return Ok(Some(WeightedLine::Category(rest.trim().trim_matches('"'))));
    }
    if text.starts_with('#') {
        return Ok(None);
    }
    if let Some(rest) = text.strip_prefix(".Include<") {
        let path = rest
            .strip_suffix('>')
            .ok_or_else(|| format!("unterminated .Include in {text:?}"))?;
        return Ok(Some(WeightedLine::Include(path)));
    }
    let mut groups = Vec::new();
    let mut rest = text;
    while let Some(after_open) = rest.strip_prefix('<') {
        let close = after_open
            .find('>')
            .ok_or_else(|| format!("unclosed '<' in {text:?}"))?;
        groups.push(&after_open[..close]);
        rest = after_open[close + 1..].trim_start_matches(',').trim_start();
        // Anything after the weight (often a trailing comment) is ignored.
        if groups.len() >= 2 && !rest.starts_with('<') {
            break;
        }
    }
    if groups.len() < 2 {
        return Err(format!("expected <phrase><weight>, found {text:?}"));
    }
    let weight = parse_weight(groups.pop().unwrap_or_default())
        .ok_or_else(|| format!("the last <...> of {text:?} is not a weight"))?;
    let mut parts = Vec::with_capacity(groups.len());
    for g in groups {
        let inner = g.trim();
        if inner.is_empty() {
            return Err(format!("empty phrase in {text:?}"));
        }
        parts.push(WeightedPart {
            text: inner,
            word_start: g.starts_with(' '),
            word_end: g.ends_with(' '),
        });
    }
    Ok(Some(WeightedLine::Phrase { parts, weight }))
}

fn parse_weight(text: &str) -> Option<Weight> {
    let text = text.trim();
    match text.strip_suffix('%') {
        Some(pc) => pc.trim().parse().ok().map(Weight::Percent),
        None => text.parse().ok().map(Weight::Points),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theme_lines() {
        let cases: &[(&str, Result<Option<ThemeLine<'_>>, ()>)] = &[
            ("cut myself", Ok(Some(ThemeLine::Phrase("cut myself")))),
            ("  self harm  ", Ok(Some(ThemeLine::Phrase("self harm")))),
            ("thinspo*", Ok(Some(ThemeLine::Prefix("thinspo")))),
            (
                "!suicide prevention",
                Ok(Some(ThemeLine::Exception("suicide prevention"))),
            ),
            (
                "! sexual health",
                Ok(Some(ThemeLine::Exception("sexual health"))),
            ),
            ("# comment", Ok(None)),
            ("", Ok(None)),
            ("*", Err(())),
            ("a*b", Err(())),
            ("!!!", Err(())),
        ];
        for (line, want) in cases {
            let got = theme_line(line).map_err(|_| ());
            assert_eq!(&got, want, "{line:?}");
        }
    }

    fn part(text: &str, word_start: bool, word_end: bool) -> WeightedPart<'_> {
        WeightedPart {
            text,
            word_start,
            word_end,
        }
    }

    #[test]
    fn weighted_lines() {
        use WeightedLine::*;
        assert_eq!(
            weighted_line("< anal ><20>").unwrap(),
            Some(Phrase {
                parts: vec![part("anal", true, true)],
                weight: Weight::Points(20)
            })
        );
        assert_eq!(
            weighted_line("< adultos><40>").unwrap(),
            Some(Phrase {
                parts: vec![part("adultos", true, false)],
                weight: Weight::Points(40)
            })
        );
        assert_eq!(
            weighted_line("< anal >,< porn><70>   ").unwrap(),
            Some(Phrase {
                parts: vec![part("anal", true, true), part("porn", true, false)],
                weight: Weight::Points(70)
            })
        );
        assert_eq!(
            weighted_line("<breast>,<medical><-30>").unwrap(),
            Some(Phrase {
                parts: vec![part("breast", false, false), part("medical", false, false)],
                weight: Weight::Points(-30)
            })
        );
        assert_eq!(
            weighted_line("< slut ><10%>").unwrap(),
            Some(Phrase {
                parts: vec![part("slut", true, true)],
                weight: Weight::Percent(10)
            })
        );
        assert_eq!(
            weighted_line("#listcategory: \"Pornography\"").unwrap(),
            Some(Category("Pornography"))
        );
        assert_eq!(
            weighted_line(".Include</etc/e2guardian/lists/phraselists/x/weighted>").unwrap(),
            Some(Include("/etc/e2guardian/lists/phraselists/x/weighted"))
        );
        assert_eq!(weighted_line("# plain comment").unwrap(), None);
        for bad in [
            "<word>",
            "<word><ten>",
            "<unclosed<5>",
            "<><5>",
            "word<5>",
            ".Include<x",
        ] {
            assert!(weighted_line(bad).is_err(), "{bad}");
        }
        assert_eq!(Weight::Percent(10).points(200), 20);
    }
}
