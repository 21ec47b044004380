//! Slips: a searched word one edit from a listed word (a letter dropped, added, changed, or
//! two neighbours swapped) is read as that word, so `suicde` meets `suicide`.
//!
//! A symmetric-delete index: every listed word, and every form of it with one letter
//! deleted, is kept as a 64-bit polynomial hash pointing at the word. A searched word is
//! looked up by its own hash and by the hash of each of its one-letter deletions, computed
//! in place from prefix and suffix hashes (nothing is built or allocated); every candidate
//! found is then checked letter by letter, so a hash collision can never make a slip that
//! is not one.

use std::collections::{HashMap, HashSet};

/// Words shorter than this are never read as slips of another word, nor is another word
/// read as a slip of them.
pub const SLIP_MIN: usize = 6;
/// Listed words this long or longer are read with an ending added (`knife`, `knifes`).
const STEM_MIN: usize = 5;
/// Longer words are neither indexed nor read.
const SLIP_MAX: usize = 40;

/// The hash's base (odd, so multiplication by it is invertible modulo 2^64).
const BASE: u64 = 0x100_0000_01b3;

type Fast = foldhash::fast::RandomState;

#[derive(Clone, Debug, Default)]
pub struct Slips {
    /// Every indexed word.
    words: Vec<Box<str>>,
    /// Hashes of every word listed in any language: these are read as themselves.
    exact: HashSet<u64, Fast>,
    /// Hashes of the real words of a language (its word list): read as themselves, unless
    /// they are a listed word with `s` or `d` added (`overdoses`, `overdosed`).
    known: HashSet<u64, Fast>,
    /// Listed five-letter words (English) by hash: a word that is one of them with `s` or
    /// `d` added is read as it (`purges`, `knifed`); longer listed words are found through
    /// `deletes`, which holds their own hashes too.
    stems: HashMap<u64, u32, Fast>,
    /// A hash (of a word, or of a word with one letter deleted): a range of `ids`.
    deletes: HashMap<u64, (u32, u32), Fast>,
    ids: Vec<u32>,
}

fn indexable(word: &str) -> bool {
    (SLIP_MIN..=SLIP_MAX).contains(&word.len()) && word.bytes().all(|b| b.is_ascii_lowercase())
}

fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |h, &b| {
        h.wrapping_mul(BASE).wrapping_add(u64::from(b))
    })
}

/// The hash of `word` with the letter at `i` deleted, for every `i`, in order.
fn deletion_hashes(word: &[u8], mut each: impl FnMut(u64) -> bool) -> bool {
    let n = word.len();
    // suffix[k]: the hash of word[k..], and the power of BASE for each length.
    let mut suffix = [0u64; SLIP_MAX + 2];
    let mut power = [1u64; SLIP_MAX + 2];
    for k in (0..n).rev() {
        power[n - k] = power[n - k - 1].wrapping_mul(BASE);
        suffix[k] = u64::from(word[k])
            .wrapping_mul(power[n - k - 1])
            .wrapping_add(suffix[k + 1]);
    }
    let mut prefix = 0u64;
    for i in 0..n {
        let h = prefix
            .wrapping_mul(power[n - 1 - i])
            .wrapping_add(suffix[i + 1]);
        if each(h) {
            return true;
        }
        prefix = prefix.wrapping_mul(BASE).wrapping_add(u64::from(word[i]));
    }
    false
}

/// Whether `typed` is exactly one edit from `listed`: a letter dropped, added, changed, or
/// two neighbouring letters swapped.
fn one_edit(typed: &[u8], listed: &[u8]) -> bool {
    if typed == listed {
        return false;
    }
    let (short, long) = if typed.len() <= listed.len() {
        (typed, listed)
    } else {
        (listed, typed)
    };
    let lead = short.iter().zip(long).take_while(|(a, b)| a == b).count();
    match long.len() - short.len() {
        // Added or dropped: the rest after the difference lines up one letter on.
        1 => short[lead..] == long[lead + 1..],
        0 => {
            // Changed: only this letter differs; swapped: it and the next trade places.
            short[lead + 1..] == long[lead + 1..]
                || (lead + 1 < short.len()
                    && short[lead] == long[lead + 1]
                    && short[lead + 1] == long[lead]
                    && short[lead + 2..] == long[lead + 2..])
        }
        _ => false,
    }
}

impl Slips {
    /// Indexes `listed` (the words slips are read towards).
    pub fn build<'a>(listed: impl Iterator<Item = &'a str>) -> Slips {
        let mut s = Slips::default();
        let mut seen: HashSet<&str, Fast> = HashSet::default();
        let mut pairs: Vec<(u64, u32)> = Vec::new();
        for word in listed {
            let stem = (STEM_MIN..=SLIP_MAX).contains(&word.len())
                && word.bytes().all(|b| b.is_ascii_lowercase());
            if stem && !indexable(word) && seen.insert(word) {
                let id = s.words.len() as u32;
                s.words.push(word.into());
                s.stems.insert(hash(word.as_bytes()), id);
                continue;
            }
            if !indexable(word) || !seen.insert(word) {
                continue;
            }
            let id = s.words.len() as u32;
            s.words.push(word.into());
            let whole = hash(word.as_bytes());
            s.exact.insert(whole);
            pairs.push((whole, id));
            deletion_hashes(word.as_bytes(), |h| {
                pairs.push((h, id));
                false
            });
        }
        pairs.sort_unstable();
        pairs.dedup();
        s.ids.reserve_exact(pairs.len());
        let mut k = 0;
        while k < pairs.len() {
            let key = pairs[k].0;
            let start = s.ids.len() as u32;
            while k < pairs.len() && pairs[k].0 == key {
                s.ids.push(pairs[k].1);
                k += 1;
            }
            s.deletes.insert(key, (start, s.ids.len() as u32 - start));
        }
        s
    }

    /// Words that are never read as slips (they are listed themselves, in any language).
    pub fn protect<'a>(&mut self, listed: impl Iterator<Item = &'a str>) {
        for word in listed {
            if indexable(word) {
                self.exact.insert(hash(word.as_bytes()));
            }
        }
    }

    /// Real words of a language (see `known`).
    pub fn know<'a>(&mut self, words: impl Iterator<Item = &'a str>) {
        for word in words {
            if indexable(word)
                || (word.len() == SLIP_MAX + 1 && word.bytes().all(|b| b.is_ascii_lowercase()))
            {
                self.known.insert(hash(word.as_bytes()));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The listed words whose hash, or the hash of one of whose one-letter deletions, is `h`.
    fn candidates(&self, h: u64) -> Option<&[u32]> {
        let &(start, len) = self.deletes.get(&h)?;
        self.ids.get(start as usize..(start + len) as usize)
    }

    /// The listed word `word` is a slip of, if it is one (and not itself listed).
    pub fn correct(&self, word: &str) -> Option<&str> {
        let typed = word.as_bytes();
        // A listed word is one letter longer or shorter at most.
        if typed.len() < SLIP_MIN || typed.len() > SLIP_MAX + 1 {
            return None;
        }
        if !typed.iter().all(u8::is_ascii_lowercase) {
            return None;
        }
        let whole = hash(typed);
        if self.exact.contains(&whole) {
            return None;
        }
        // A listed word with an ending: read as it, before any other word one edit away.
        if let Some((&last, stem)) = typed.split_last() {
            if matches!(last, b's' | b'd') {
                let h = hash(stem);
                // Five-letter stems have their own table; longer ones are among the
                // listed words' own hashes (checked letter by letter).
                let ids = self
                    .stems
                    .get(&h)
                    .map(std::slice::from_ref)
                    .or_else(|| self.candidates(h))
                    .unwrap_or_default();
                if let Some(w) = ids
                    .iter()
                    .filter_map(|&id| self.words.get(id as usize))
                    .find(|w| w.as_bytes() == stem)
                {
                    return Some(w);
                }
            }
        }
        // A real word is itself.
        if self.known.contains(&whole) {
            return None;
        }
        let mut found = None;
        let mut check = |h: u64| {
            let Some(ids) = self.candidates(h) else {
                return false;
            };
            found = ids
                .iter()
                .filter_map(|&id| self.words.get(id as usize))
                .find(|w| one_edit(typed, w.as_bytes()))
                .map(|w| &**w);
            found.is_some()
        };
        // A letter added, changed or swapped (a deletion of the typed word is listed, or is
        // a deletion of a listed word), then a letter dropped (the typed word is a listed
        // word less one letter).
        if !deletion_hashes(typed, &mut check) && !check(whole) {
            return None;
        }
        found
    }

    /// Heap bytes of the index (approximate).
    pub fn heap_bytes(&self) -> usize {
        self.words.iter().map(|w| w.len() + 16).sum::<usize>()
            + (self.exact.capacity() + self.known.capacity()) * 9
            + self.deletes.capacity() * 17
            + self.ids.capacity() * 4
            + self.stems.capacity() * 13
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_edit() {
        let slips = Slips::build(["roastie", "suicide", "paracetamol"].into_iter());
        assert_eq!(slips.correct("suicjde"), Some("suicide"));
        assert_eq!(slips.correct("suiccide"), Some("suicide"));
        assert_eq!(slips.correct("suicid"), Some("suicide"));
        assert_eq!(slips.correct("suicdie"), Some("suicide"));
        assert_eq!(slips.correct("usicide"), Some("suicide"));
        assert_eq!(slips.correct("suicied"), Some("suicide"));
        assert_eq!(slips.correct("paracetmol"), Some("paracetamol"));
        assert_eq!(slips.correct("roasted"), None);
        assert_eq!(slips.correct("siucdie"), None);
        assert_eq!(slips.correct("suicide"), None);
        assert_eq!(slips.correct("SUICDE"), None);
        assert_eq!(slips.correct(""), None);
    }

    #[test]
    fn protected_words_are_themselves() {
        let mut slips = Slips::build(["weather"].into_iter());
        assert_eq!(slips.correct("werther"), Some("weather"));
        slips.protect(["werther"].into_iter());
        assert_eq!(slips.correct("werther"), None);
    }

    #[test]
    fn real_words_are_themselves_but_endings_still_count() {
        let mut slips = Slips::build(["county", "overdose"].into_iter());
        assert_eq!(slips.correct("counts"), Some("county"));
        assert_eq!(slips.correct("overdoses"), Some("overdose"));
        slips.know(["counts", "overdoses", "overdosed"].into_iter());
        assert_eq!(slips.correct("counts"), None);
        assert_eq!(slips.correct("overdoses"), Some("overdose"));
        assert_eq!(slips.correct("overdosed"), Some("overdose"));
        assert_eq!(slips.correct("countys"), Some("county"));
        // Only `s` and `d` endings: `aspiring` is a word of its own, not `aspirin`.
        let mut slips = Slips::build(["aspirin", "knife", "unblock", "unlocks"].into_iter());
        slips.know(["aspiring", "knifes", "unblocks"].into_iter());
        assert_eq!(slips.correct("aspiring"), None);
        assert_eq!(slips.correct("knifes"), Some("knife"));
        // The ending is read before another listed word one edit away (`unlocks`).
        assert_eq!(slips.correct("unblocks"), Some("unblock"));
        // A five-letter word is a stem, never a slip target.
        assert_eq!(slips.correct("knive"), None);
    }

    #[test]
    fn one_edit_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("abcdef", "abcdef", false),
            ("abcdef", "abcdeg", true),
            ("abcdef", "abcde", true),
            ("abcdef", "abcdefg", true),
            ("abcdef", "bacdef", true),
            ("abcdef", "abcdfe", true),
            ("abcdef", "badcef", false),
            ("abcdef", "abcd", false),
            ("abcdef", "xbcdeg", false),
            ("abcdef", "acbdfe", false),
        ];
        for &(a, b, want) in cases {
            assert_eq!(one_edit(a.as_bytes(), b.as_bytes()), want, "{a} {b}");
            assert_eq!(one_edit(b.as_bytes(), a.as_bytes()), want, "{b} {a}");
        }
    }

    #[test]
    fn deletion_hashes_are_the_hashes_of_the_deletions() {
        let word = b"paracetamol";
        let mut got = Vec::new();
        deletion_hashes(word, |h| {
            got.push(h);
            false
        });
        let want: Vec<u64> = (0..word.len())
            .map(|i| {
                let mut d = word.to_vec();
                d.remove(i);
                hash(&d)
            })
            .collect();
        assert_eq!(got, want);
    }
}
