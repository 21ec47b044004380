//! Normalisation of search text, so that spellings meant to slip past a filter meet the
//! phrase they spell.
//!
//! Steps, in order: `+` and percent escapes decoded; Unicode NFKC (full-width letters and
//! ligatures become plain ones); full case folding (`ß` is `ss`); accents stripped
//! (`é` is `e`); leetspeak read as letters inside words that have letters (`p0rn`,
//! `s3lf h4rm`, `$uicide`); everything that is not a letter or digit becomes one space.
//!
//! Repeated letters are then folded two ways. The **loose** form keeps one of each run
//! (`kiiilll` -> `kil`), the **strict** form keeps up to two (`kiiilll` -> `kiill`). Phrases
//! are normalised by the same function, so `kill myself` meets `kiiill myseeelf` in the
//! loose form; short phrases that need their double letter to stay distinct (`ass`, whose
//! loose form is the harmless `as`) are matched in the strict form.

use caseless::Caseless;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The two forms of one normalised text: words separated by single spaces.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Normalized {
    /// Runs of the same character folded to one.
    pub loose: String,
    /// Runs of the same character folded to at most two.
    pub strict: String,
}

/// Decodes a query-string component: `+` is a space, `%XX` a byte; invalid UTF-8 is replaced.
pub fn decode_component(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Leetspeak read as letters, inside words that contain a letter.
fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' | '!' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        '8' => 'b',
        '9' => 'g',
        _ => return None,
    })
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '@' | '$' | '!')
}

/// Normalises search text (already decoded) into its loose and strict forms.
pub fn normalize(text: &str) -> Normalized {
    // ASCII is its own NFKC and NFD form, and its case folding is plain lower case.
    let folded: Vec<char> = if text.is_ascii() {
        text.bytes()
            .map(|b| char::from(b.to_ascii_lowercase()))
            .collect()
    } else {
        text.chars()
            .nfkc()
            .default_case_fold()
            .nfd()
            .filter(|&c| !is_combining_mark(c))
            .collect()
    };
    let mut words = String::with_capacity(folded.len());
    let mut i = 0;
    while i < folded.len() {
        if !is_word_char(folded[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < folded.len() && is_word_char(folded[i]) {
            i += 1;
        }
        push_word(&folded[start..i], &mut words);
    }
    Normalized {
        loose: fold_runs(&words, 1),
        strict: fold_runs(&words, 2),
    }
}

/// Appends one word: leetspeak mapped if the word has a letter, symbols kept only between
/// word characters (`k!ll` yes, `wow!` no).
fn push_word(word: &[char], out: &mut String) {
    let has_letter = word.iter().any(|c| c.is_alphabetic());
    let before = out.len();
    if !out.is_empty() {
        out.push(' ');
    }
    let mut pushed = false;
    for (k, &c) in word.iter().enumerate() {
        let next_is_alnum = word.get(k + 1).is_some_and(|n| n.is_alphanumeric());
        let mapped = if c.is_alphabetic() {
            Some(c)
        } else if c.is_numeric() {
            Some(if has_letter { leet(c).unwrap_or(c) } else { c })
        } else if has_letter && next_is_alnum {
            leet(c)
        } else {
            None
        };
        if let Some(m) = mapped {
            out.push(m);
            pushed = true;
        }
    }
    if !pushed {
        out.truncate(before);
    }
}

fn fold_runs(text: &str, keep: usize) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = None;
    let mut run = 0;
    for c in text.chars() {
        if Some(c) == last && c != ' ' {
            run += 1;
            if run > keep {
                continue;
            }
        } else {
            last = Some(c);
            run = 1;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_components() {
        let cases = [
            ("self+harm", "self harm"),
            ("how%20to%20vote", "how to vote"),
            ("caf%C3%A9", "café"),
            ("100%25", "100%"),
            ("bad%zzescape", "bad%zzescape"),
            ("trail%2", "trail%2"),
            ("trail%", "trail%"),
            ("%FF", "\u{fffd}"),
        ];
        for (raw, want) in cases {
            assert_eq!(decode_component(raw), want, "{raw}");
        }
    }

    #[test]
    fn normalises_table() {
        // (input, loose, strict)
        let cases = [
            ("Self Harm", "self harm", "self harm"),
            ("S3LF H4RM", "self harm", "self harm"),
            ("p0rn", "porn", "porn"),
            ("$uicide", "suicide", "suicide"),
            ("k!ll mys3lf!!!", "kil myself", "kill myself"),
            ("kiiiilll myseeelf", "kil myself", "kiill myseelf"),
            ("Straße", "strase", "strasse"),
            ("ÉCOLE élève", "ecole eleve", "ecole eleve"),
            ("ｆｕｌｌｗｉｄｔｈ", "fulwidth", "fullwidth"),
            ("ﬁnd", "find", "find"),
            (
                "top 10 games 2024",
                "top 10 games 2024",
                "top 10 games 2024",
            ),
            ("covid-19", "covid 19", "covid 19"),
            (
                "how-to...kill;myself",
                "how to kil myself",
                "how to kill myself",
            ),
            ("   ", "", ""),
            ("!!!", "", ""),
            ("c++ tutorial", "c tutorial", "c tutorial"),
            ("Ärger über Öl", "arger uber ol", "arger uber ol"),
        ];
        for (input, loose, strict) in cases {
            let n = normalize(input);
            assert_eq!(
                (n.loose.as_str(), n.strict.as_str()),
                (loose, strict),
                "{input}"
            );
        }
    }
}
