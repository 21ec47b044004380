//! The sieve (the first pass over a page's text) never rules out a passage the theme
//! matcher would find a theme in: checked on every search of the evaluation sets, in
//! sentences and typeset, and on many random texts made of their words, mutated as pupils
//! and pages write them (capitals, doubled letters, slips, leetspeak, spaced letters,
//! typographic punctuation).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use gatehouse_rules::config::ConfigFile;
use gatehouse_rules::search::{normalize, SieveBuf};
use gatehouse_rules::{compile, Snapshot};
use std::path::PathBuf;
use std::sync::OnceLock;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn shipped() -> &'static Snapshot {
    static SNAP: OnceLock<Snapshot> = OnceLock::new();
    SNAP.get_or_init(|| {
        let file = ConfigFile::load(&root().join("deploy/gatehouse.toml")).unwrap();
        compile(&file).unwrap().snapshot
    })
}

/// Every search of every evaluation set (training and held out).
fn searches() -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![root().join("eval/searches")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "tsv") {
                let text = std::fs::read_to_string(&path).unwrap();
                for line in text.lines().filter(|l| !l.starts_with('#')) {
                    if let Some(query) = line.split('\t').nth(3) {
                        out.push(query.to_owned());
                    }
                }
            }
        }
    }
    out
}

/// Fails with the text if the matcher finds a theme the sieve ruled out.
fn check(snap: &Snapshot, buf: &mut SieveBuf, text: &str) -> bool {
    let themes = snap.themes();
    let hit = !themes.find_listed(&normalize(text)).themes.is_empty();
    let may = themes.may_hit(text, buf);
    assert!(
        may || !hit,
        "the sieve ruled out {text:?}, which the matcher reads as {:?}",
        themes.find_listed(&normalize(text)).themes
    );
    hit
}

#[test]
fn every_evaluation_search_that_hits_passes_the_sieve_as_written_and_in_prose() {
    let snap = shipped();
    let mut buf = SieveBuf::default();
    let all = searches();
    assert!(all.len() > 10_000, "{} searches", all.len());
    let mut hits = 0;
    for q in &all {
        let variants = [
            q.clone(),
            q.to_uppercase(),
            format!("The reply said: \u{201c}{q}\u{201d}\u{2014}and then the thread ended."),
            format!("Posted by a user. {}. Reply.", q.replace('\'', "\u{2019}")),
            q.replace(' ', "\u{a0}"),
        ];
        for v in &variants {
            hits += usize::from(check(snap, &mut buf, v));
        }
    }
    // The property is about hits: there must be many.
    assert!(hits > 20_000, "{hits} hits");
}

/// A small deterministic generator (xorshift), so a failure is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A word as a page or a pupil might write it.
fn mutate(rng: &mut Rng, word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    match rng.below(12) {
        0 => word.to_uppercase(),
        1 => {
            let mut c = chars.clone();
            if let Some(first) = c.first_mut() {
                *first = first.to_ascii_uppercase();
            }
            c.into_iter().collect()
        }
        // A letter doubled, tripled.
        2 if !chars.is_empty() => {
            let at = rng.below(chars.len());
            let mut c = chars.clone();
            let n = 1 + rng.below(2);
            for _ in 0..n {
                c.insert(at, chars[at]);
            }
            c.into_iter().collect()
        }
        // A slip: a letter dropped, or two swapped.
        3 if chars.len() > 5 => {
            let at = rng.below(chars.len() - 1);
            let mut c = chars.clone();
            if rng.below(2) == 0 {
                c.remove(at);
            } else {
                c.swap(at, at + 1);
            }
            c.into_iter().collect()
        }
        // Leetspeak.
        4 => word
            .chars()
            .map(|c| match c {
                'i' => '1',
                'e' => '3',
                'a' => '@',
                's' => '$',
                'o' => '0',
                c => c,
            })
            .collect(),
        // Spaced or dotted out.
        5 => {
            let sep = if rng.below(2) == 0 { " " } else { "." };
            chars
                .iter()
                .map(char::to_string)
                .collect::<Vec<_>>()
                .join(sep)
        }
        // Punctuation stuck to it.
        6 => format!("{word}!"),
        7 => format!("\u{2018}{word}\u{2019}"),
        _ => word.to_owned(),
    }
}

#[test]
fn random_text_of_listed_and_ordinary_words_never_slips_past_the_sieve() {
    let snap = shipped();
    let mut buf = SieveBuf::default();
    let mut words: Vec<String> = searches()
        .iter()
        .flat_map(|q| q.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    words.sort();
    words.dedup();
    let ordinary = [
        "the", "of", "and", "a", "to", "in", "is", "you", "that", "it", "was", "for", "on", "are",
        "with", "as", "they", "be", "at", "one", "have", "this", "from", "or", "by", "school",
        "lesson", "page", "history", "2024", "7", "I", "-", ",", ".", "?", "\u{2014}", "\u{2026}",
        "\u{a0}", "(", ")", "\"", "'",
    ];
    let seps = [
        " ",
        " ",
        " ",
        ", ",
        ". ",
        "\n",
        " \u{2013} ",
        "\u{a0}",
        "  ",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut hits = 0;
    for _ in 0..60_000 {
        let n = 1 + rng.below(14);
        let mut text = String::new();
        for k in 0..n {
            if k > 0 {
                text.push_str(seps[rng.below(seps.len())]);
            }
            let word = if rng.below(3) == 0 {
                ordinary[rng.below(ordinary.len())].to_owned()
            } else {
                words[rng.below(words.len())].clone()
            };
            text.push_str(&mutate(&mut rng, &word));
        }
        hits += usize::from(check(snap, &mut buf, &text));
    }
    assert!(hits > 1_000, "{hits} hits");
}

#[test]
fn ordinary_prose_is_ruled_out_where_no_listed_word_is_in_it() {
    let snap = shipped();
    let mut buf = SieveBuf::default();
    let prose = [
        "The museum opens at ten in the morning and closes at five in the afternoon.",
        "Our Year 8 trip to the science centre will leave from the school gates on Monday.",
        "Photosynthesis converts light energy into chemical energy stored in glucose.",
        "Please bring a packed lunch, a waterproof coat and a notebook for the worksheets.",
        "The council approved the new cycle lanes after a long public consultation.",
    ];
    let passed = prose
        .iter()
        .filter(|p| snap.themes().may_hit(p, &mut buf))
        .count();
    // Some ordinary words are listed as one part of a combination (`lunch`, `year 8`,
    // `photo...`): such sentences go on to the matcher, which finds nothing.
    assert!(
        passed <= 3,
        "{passed} of {} ordinary sentences passed",
        prose.len()
    );
    for p in prose {
        assert!(
            snap.themes().find_listed(&normalize(p)).themes.is_empty(),
            "{p}"
        );
    }
}
