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
    /// `@name: word, phrase, word*`: words added to a class (`true`: the last word may run
    /// on).
    Class {
        name: &'a str,
        words: Vec<(&'a str, bool)>,
    },
    /// `= 60: {class} word {class}` or `= 60 near 3: ...`: points when every part is
    /// present within `near` words. `= 60 near 3 kept: ...`: context does not lower the
    /// theme this combination fires (a particular child harmed now).
    Combination {
        points: i32,
        near: u8,
        kept: bool,
        parts: Vec<ComboPart<'a>>,
    },
}

/// Combination parts are within this many words of each other unless the line says.
pub const DEFAULT_NEAR: u8 = 6;

/// Parses one theme-file line. `Ok(None)` for blanks and comments; a `#` after a space
/// starts a comment (a slang file's note of its source).
pub fn theme_line(line: &str) -> Result<Option<ThemeLine<'_>>, String> {
    let mut text = line.trim();
    if let Some(i) = text.find(" #").or_else(|| text.find("\t#")) {
        text = text[..i].trim_end();
    }
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    if let Some(rest) = text.strip_prefix('@') {
        return class_line(rest).map(Some);
    }
    if let Some(rest) = text.strip_prefix('=') {
        return combination_line(rest).map(Some);
    }
    let (exception, text) = match text.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, text),
    };
    let (prefix, text) = word_or_prefix(text)?;
    Ok(Some(match (exception, prefix) {
        (true, _) => ThemeLine::Exception(text),
        (false, true) => ThemeLine::Prefix(text),
        (false, false) => ThemeLine::Phrase(text),
    }))
}

fn word_or_prefix(text: &str) -> Result<(bool, &str), String> {
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
    Ok((prefix, text))
}

fn class_line(rest: &str) -> Result<ThemeLine<'_>, String> {
    let (name, words) = rest
        .split_once(':')
        .ok_or_else(|| "a class line is `@name: word, word`".to_owned())?;
    let name = name.trim();
    if name.is_empty() {
        return Err("a class line needs a name: `@name: word, word`".to_owned());
    }
    let words = words
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|w| word_or_prefix(w).map(|(prefix, w)| (w, prefix)))
        .collect::<Result<Vec<_>, _>>()?;
    if words.is_empty() {
        return Err(format!("class {name:?} lists no words"));
    }
    Ok(ThemeLine::Class { name, words })
}

fn combination_line(rest: &str) -> Result<ThemeLine<'_>, String> {
    let (head, body) = rest
        .split_once(':')
        .ok_or_else(|| "a combination is `= 60: {class} word` or `= 60 near 3: ...`".to_owned())?;
    let mut head = head.split_whitespace();
    let points: i32 = head
        .next()
        .and_then(|p| p.parse().ok())
        .filter(|p: &i32| (-1000..=1000).contains(p))
        .ok_or_else(|| "a combination starts with its points, -1000 to 1000: `= 60:`".to_owned())?;
    let words: Vec<&str> = head.collect();
    let (near, kept) = match words.as_slice() {
        [] => (DEFAULT_NEAR, false),
        ["kept"] => (DEFAULT_NEAR, true),
        ["near", n] | ["near", n, "kept"] => (
            n.parse::<u8>()
                .ok()
                .filter(|n| (1..=50).contains(n))
                .ok_or_else(|| format!("near {n:?}: a number of words, 1 to 50"))?,
            words.len() == 3,
        ),
        _ => {
            return Err(
                "after the points only `near N` and `kept` may come: `= 60 near 3 kept:`"
                    .to_owned(),
            )
        }
    };
    if kept && points <= 0 {
        return Err("`kept` is for a combination that adds points".to_owned());
    }
    let mut parts = Vec::new();
    let mut rest = body.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('{') {
            let (name, tail) = after
                .split_once('}')
                .ok_or_else(|| format!("{rest:?}: '{{' without '}}'"))?;
            let name = name.trim();
            if name.is_empty() {
                return Err("an empty {} in a combination".to_owned());
            }
            parts.push(ComboPart::Class(name));
            rest = tail.trim_start();
        } else {
            let end = rest.find('{').unwrap_or(rest.len());
            let literal = rest[..end].trim();
            if literal.contains('}') {
                return Err(format!("{literal:?}: '}}' without '{{'"));
            }
            if !literal.chars().any(char::is_alphanumeric) {
                return Err(format!("{literal:?} has no letters or digits"));
            }
            parts.push(ComboPart::Literal(literal));
            rest = rest[end..].trim_start();
        }
    }
    if parts.is_empty() || parts.len() > 6 {
        return Err("a combination needs 1 to 6 parts".to_owned());
    }
    Ok(ThemeLine::Combination {
        points,
        near,
        kept,
        parts,
    })
}

pub use crate::search::ComboPart;

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
    fn class_and_combination_lines() {
        assert_eq!(
            theme_line("@die: die, kill myself, unalive*  # Urban Dictionary"),
            Ok(Some(ThemeLine::Class {
                name: "die",
                words: vec![("die", false), ("kill myself", false), ("unalive", true)],
            }))
        );
        assert_eq!(
            theme_line("= 60: {amount} {medicine} kill you"),
            Ok(Some(ThemeLine::Combination {
                points: 60,
                near: DEFAULT_NEAR,
                kept: false,
                parts: vec![
                    ComboPart::Class("amount"),
                    ComboPart::Class("medicine"),
                    ComboPart::Literal("kill you"),
                ],
            }))
        );
        assert_eq!(
            theme_line("= -20 near 3: quickest way {die}"),
            Ok(Some(ThemeLine::Combination {
                points: -20,
                near: 3,
                kept: false,
                parts: vec![ComboPart::Literal("quickest way"), ComboPart::Class("die")],
            }))
        );
        assert_eq!(
            theme_line("= 60 near 10 kept: {child} {harm}"),
            Ok(Some(ThemeLine::Combination {
                points: 60,
                near: 10,
                kept: true,
                parts: vec![ComboPart::Class("child"), ComboPart::Class("harm")],
            }))
        );
        assert!(theme_line("= 60 kept near 3: {a}").is_err());
        assert!(theme_line("= -100 kept: {a}").is_err());
        for bad in [
            "@: a",
            "@die",
            "@die: ,",
            "= x: {a}",
            "= 60",
            "= 60 far 3: {a}",
            "= 60 near 99: {a}",
            "= 60: {a",
            "= 60: {}",
            "= 60: a } b",
            "= 60: {a} {b} {c} {d} {e} {f} {g}",
        ] {
            assert!(theme_line(bad).is_err(), "{bad:?}");
        }
    }

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
