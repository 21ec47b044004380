//! Properties of search-text normalisation on arbitrary and adversarial input: it never
//! panics, it is idempotent (a normalised text normalises to itself), its output is words of
//! letters and digits separated by single spaces, and it stays linear on long hostile input
//! such as ten thousand spaced letters.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use gatehouse_rules::search::normalize;
use proptest::prelude::*;

/// Characters that exercise every step: Latin with accents, leetspeak symbols, Cyrillic and
/// Greek look-alikes, Arabic with harakat and tatweel, Bengali and Gurmukhi with vowel signs,
/// zero-width joiners, full-width letters, separators.
fn hostile_char() -> impl Strategy<Value = char> {
    prop::sample::select(vec![
        'a', 'e', 's', 'i', 'k', 'l', 'm', 'é', 'ß', 'İ', '3', '4', '1', '0', '$', '@', '!', ' ',
        '.', '-', '\t', 'с', 'і', 'о', 'ѕ', 'д', 'α', 'ο', 'ا', 'ن', 'ت', 'ح', 'ر', 'َ', 'ْ', 'ـ',
        'ك', 'ي', 'ى', 'ة', 'আ', 'ত', '্', 'ম', 'া', 'ਖ', 'ੁ', '਼', '\u{200B}', '\u{200D}', '\u{00AD}',
        'ｆ', 'ﬁ', '%', '+',
    ])
}

proptest! {
    #[test]
    fn is_idempotent_and_well_formed(text in prop::collection::vec(hostile_char(), 0..80)) {
        let text: String = text.into_iter().collect();
        let once = normalize(&text);
        for form in [&once.loose, &once.strict] {
            prop_assert!(!form.starts_with(' ') && !form.ends_with(' ') && !form.contains("  "));
            prop_assert!(form.chars().all(|c| c == ' ' || c.is_alphanumeric()
                || unicode_normalization::char::is_combining_mark(c)), "{form:?}");
        }
        let twice = normalize(&once.loose);
        prop_assert_eq!(&twice.loose, &once.loose, "loose of {:?}", text);
        let twice = normalize(&once.strict);
        prop_assert_eq!(&twice.strict, &once.strict, "strict of {:?}", text);
    }

    #[test]
    fn never_panics_on_any_string(text in ".{0,200}") {
        let _ = normalize(&text);
    }
}

#[test]
fn ten_thousand_spaced_letters_are_one_word() {
    let spaced = "s ".repeat(10_000) + "u i c i d e";
    let n = normalize(&spaced);
    // One spelled-out word, folded: the whole run is read in one pass.
    assert_eq!(n.loose, "suicide");
    let dotted = "k.".repeat(10_000);
    assert_eq!(normalize(&dotted).loose, "k");
    let mixed = "с".repeat(5_000) + "a";
    assert_eq!(normalize(&mixed).loose, "ca");
    // A run of one-digit words has no letter to join: each stays a word (the run is
    // measured once, not again from each word).
    let digits = "7 ".repeat(20_000);
    assert_eq!(normalize(&digits).loose.len(), 39_999);
    let unicode = "7\u{200B} ".repeat(20_000);
    assert_eq!(normalize(&unicode).loose.len(), 39_999);
}
