//! A page's text read in passages against the shipped themes: a how-to that keeps returning
//! to a method fires the theme, one sentence of a news story is only logged, a phrase split
//! across two chunks is read whole, and adversarial text is read within bounds.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use gatehouse_rules::config::ConfigFile;
use gatehouse_rules::content::{self, ContentScan, MAX_PASSAGES};
use gatehouse_rules::{compile, Action, Snapshot};
use std::path::PathBuf;

fn shipped() -> Snapshot {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let file = ConfigFile::load(&root.join("deploy/gatehouse.toml")).unwrap();
    compile(&file).unwrap().snapshot
}

fn scan(snap: &Snapshot, chunks: &[&str]) -> content::ContentFinding {
    let mut scan = ContentScan::new();
    for c in chunks {
        scan.push(snap.themes(), c);
    }
    scan.finish(snap.themes())
}

fn names(snap: &Snapshot, set: gatehouse_rules::search::ThemeSet) -> Vec<String> {
    set.iter()
        .map(|t| snap.themes().theme_name(t).to_owned())
        .collect()
}

const HOW_TO: &str = "Welcome to the forum. How many sleeping pills would kill you? \
    Someone asked which is the quickest way to die without pain. \
    Another reply says how to kill yourself with an overdose of paracetamol. \
    Reply to this thread.";

#[test]
fn a_page_that_keeps_returning_to_a_method_fires_for_the_pupil() {
    let snap = shipped();
    let found = scan(&snap, &[HOW_TO]);
    assert!(
        names(&snap, found.fired).contains(&"suicide".to_owned()),
        "{:?} hit {:?}",
        names(&snap, found.fired),
        names(&snap, found.hit)
    );
    let suicide = snap.themes().theme_id("suicide").unwrap();
    let excerpts: Vec<&String> = found
        .excerpts
        .iter()
        .filter(|(t, _)| *t == suicide)
        .map(|(_, e)| e)
        .collect();
    assert!(!excerpts.is_empty() && excerpts.len() <= 3, "{excerpts:?}");
    assert!(
        excerpts.iter().all(|e| HOW_TO.contains(e.as_str())),
        "excerpts are the page's own words: {excerpts:?}"
    );
    let pupil = snap.role_id("pupil").unwrap();
    let v = content::verdict(&snap, pupil, &found);
    assert!(v.alert.is_some(), "{v:?}");
    assert!(v.sensitive);
}

#[test]
fn one_sentence_of_a_news_story_is_logged_not_alerted() {
    let snap = shipped();
    let page = "Local news. The singer's family said he had taken an overdose of sleeping pills \
                and died last year. The funeral will be held on Friday. Weather: sunny.";
    let found = scan(&snap, &[page]);
    assert!(found.fired.is_empty(), "{:?}", names(&snap, found.fired));
    let pupil = snap.role_id("pupil").unwrap();
    let v = content::verdict(&snap, pupil, &found);
    assert_eq!(v.alert, None, "{v:?}");
    assert!(v.action <= Action::Log);
}

#[test]
fn an_ordinary_page_hits_nothing() {
    let snap = shipped();
    let page = "Photosynthesis is the process by which green plants make food. \
                Light energy is absorbed by chlorophyll. Carbon dioxide and water become \
                glucose and oxygen. Revise this for your GCSE biology exam.";
    let found = scan(&snap, &[page]);
    assert!(found.hit.is_empty(), "{:?}", names(&snap, found.hit));
    assert!(found.passages >= 2, "{found:?}");
}

#[test]
fn a_phrase_split_across_chunks_is_read_whole() {
    let snap = shipped();
    let whole = scan(&snap, &[HOW_TO]);
    // Cut inside words, at every tenth byte.
    let bytes: Vec<&str> = {
        let mut out = Vec::new();
        let mut at = 0;
        while at < HOW_TO.len() {
            let end = (at + 10).min(HOW_TO.len());
            out.push(&HOW_TO[at..end]);
            at = end;
        }
        out
    };
    let split = scan(&snap, &bytes);
    assert_eq!(whole.fired, split.fired);
    assert_eq!(whole.terms, split.terms);
    assert!(!split.fired.is_empty());
}

#[test]
fn adversarial_text_is_read_within_bounds() {
    let snap = shipped();
    // One endless line without spaces, spaced letters, and many short sentences.
    let endless = "a".repeat(300_000);
    let spaced = "s u i c i d e ".repeat(20_000);
    let sentences = "Go. ".repeat(100_000);
    // Found by attacking the proxy: a 3 KB gzip body that decompresses to 2 MiB of one
    // line arrives as one chunk, and must be read in bounded steps (it was quadratic).
    let mut scan = ContentScan::new();
    let bomb = "ab ".repeat(700_000);
    scan.push(snap.themes(), &bomb);
    let found = scan.finish(snap.themes());
    assert_eq!(found.text_bytes, bomb.len() as u64);
    assert!(found.passages <= MAX_PASSAGES);
    for text in [&endless, &spaced, &sentences] {
        let mut scan = ContentScan::new();
        for chunk in text.as_bytes().chunks(16 * 1024) {
            scan.push(snap.themes(), std::str::from_utf8(chunk).unwrap());
        }
        let found = scan.finish(snap.themes());
        assert!(found.passages <= MAX_PASSAGES);
        assert_eq!(found.text_bytes, text.len() as u64);
    }
}

/// Found by attacking: sentences ended by an ellipsis, a semicolon or a dash were one
/// passage, and words joined by punctuation instead of spaces made the whole page one
/// passage: a how-to repeated throughout was only logged.
#[test]
fn typographic_sentence_ends_and_words_joined_by_punctuation_are_read_as_passages() {
    let snap = shipped();
    let a = "The quickest way to kill yourself is an overdose of paracetamol tablets";
    let b = "How many sleeping pills would kill you depends on your body weight";
    let c = "If you want to hang yourself you need a strong rope and a high beam";
    let joined = |sep: &str| format!("{a} {b} {c}").replace(' ', sep);
    let pages = [
        format!("{a}\u{2026} {b}\u{2026} {c}\u{2026}"),
        format!("{a}; {b}; {c};"),
        format!("{a} \u{2014} {b} \u{2014} {c}"),
        format!("{a}: {b}: {c}"),
        format!("{}\n{}", joined("\u{2014}"), joined("\u{2014}")),
        format!("{}. {}.", joined("-"), joined("-")),
        format!("{} {}", joined("_"), joined("_")),
        format!("{}\u{ff0e} {}\u{ff0e}", joined("\u{b7}"), joined("\u{b7}")),
    ];
    let pupil = snap.role_id("pupil").unwrap();
    for page in &pages {
        let found = scan(&snap, &[page]);
        assert!(
            names(&snap, found.fired).contains(&"suicide".to_owned()),
            "{page:?}: fired {:?}, hit {:?}, {} passages",
            names(&snap, found.fired),
            names(&snap, found.hit),
            found.passages
        );
        assert!(
            content::verdict(&snap, pupil, &found).alert.is_some(),
            "{page:?}"
        );
    }
}
