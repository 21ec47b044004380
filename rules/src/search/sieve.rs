//! The sieve: a first pass over a passage of page text that tells the passages that cannot
//! hit any theme from those that may, so that only the second kind are normalised and read
//! by the theme matcher (most of a page hits nothing).
//!
//! It is exact in one direction: when it says a passage cannot hit, the matcher would have
//! found no theme in it. For plain text (ASCII, and the common typographic punctuation) it
//! writes the passage's loose and strict forms as [`normalize`](super::normalize) would, in
//! reused buffers, and looks in them for **anchors**: of every pattern that can make a hit
//! (a phrase, a weighted part, a word of a combination's rarest class), its longest word, with
//! the spaces around it that a match must have. A pattern found by the matcher has its anchor
//! in the text, so a passage with no anchor, no slip of a listed word and no letters spaced
//! out cannot hit. Anything it does not read exactly (leetspeak, words mixing letters and
//! digits, spaced-out letters, other scripts) is passed on to the matcher whole.

use super::slips::{Slips, SLIP_MIN};
use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

/// A pattern of the matcher, as the sieve sees it.
pub(super) struct Pattern<'a> {
    /// In the strict form (double letters kept), not the loose one.
    pub strict: bool,
    pub text: &'a str,
    /// A match must start a word.
    pub start: bool,
    /// A match must end a word.
    pub end: bool,
    pub source: Source,
}

/// What a pattern is part of.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// A phrase: a hit on its own.
    Phrase,
    /// One of the parts of a weighted entry with positive points: a hit needs them all.
    Part(u32),
    /// A word of a class: a hit only with the other classes of a combination.
    Class(u16),
}

/// The anchors, looked up by the hash of each word of the text as it is written.
#[derive(Clone, Debug, Default)]
pub struct Sieve {
    /// Whole words, by hash (each form hashed from its own seed).
    words: Table,
    /// Two words one after the other, by their hashes (loose form).
    pairs: Table,
    /// Words' beginnings, by hash, and per form the lengths that have one.
    prefixes: Table,
    prefix_lengths: [u64; 2],
    /// Anchors that may start inside a word (e2guardian's weighted parts), over the forms
    /// written out.
    inner: [Option<AhoCorasick>; 2],
    anchors: usize,
}

/// The sieve's buffers, kept by the reader of a body and reused for every passage.
#[derive(Debug, Default)]
pub struct SieveBuf {
    loose: Vec<u8>,
    strict: Vec<u8>,
    /// Long words already read as slips or not (a page repeats its words): by hash, each
    /// with the word itself, so that only the same word is ever taken from it.
    slips: Vec<SlipSeen>,
}

/// A word read for slips: the word (up to [`SLIP_SEEN`] bytes), and the hash of the listed
/// word it is a slip of, if it is one.
#[derive(Clone, Copy, Debug)]
struct SlipSeen {
    len: u8,
    word: [u8; SLIP_SEEN],
    slip: Slip,
}

const SLIP_SEEN: usize = 22;
const SLIP_SLOTS: usize = 512;

const SEED: [u64; 2] = [0xcbf2_9ce4_8422_2325, 0x6c62_272e_07bb_0142];
const PRIME: u64 = 0x100_0000_01b3;
/// Prefix anchors longer than this are looked for by their first bytes (a word is looked
/// up at these lengths only).
const MAX_PREFIX: usize = 6;

fn step(h: u64, c: u8) -> u64 {
    (h ^ u64::from(c)).wrapping_mul(PRIME)
}

fn hash(form: usize, word: &[u8]) -> u64 {
    word.iter().fold(SEED[form & 1], |h, &c| step(h, c))
}

/// Words so common in prose that a pattern is better found by another of its words (or
/// by two of them together): some of the most frequent words of English.
const COMMON: &[&str] = &[
    "a",
    "about",
    "above",
    "across",
    "act",
    "add",
    "after",
    "again",
    "against",
    "age",
    "ago",
    "air",
    "all",
    "almost",
    "alone",
    "along",
    "already",
    "also",
    "although",
    "always",
    "am",
    "among",
    "an",
    "and",
    "another",
    "any",
    "anyone",
    "anything",
    "are",
    "area",
    "around",
    "as",
    "ask",
    "at",
    "away",
    "back",
    "bad",
    "be",
    "became",
    "because",
    "become",
    "been",
    "before",
    "began",
    "behind",
    "being",
    "below",
    "best",
    "better",
    "between",
    "big",
    "both",
    "bring",
    "but",
    "by",
    "call",
    "came",
    "can",
    "case",
    "change",
    "child",
    "children",
    "city",
    "close",
    "come",
    "could",
    "country",
    "course",
    "day",
    "did",
    "different",
    "do",
    "does",
    "done",
    "down",
    "during",
    "each",
    "early",
    "end",
    "enough",
    "even",
    "ever",
    "every",
    "eye",
    "face",
    "fact",
    "family",
    "far",
    "feel",
    "few",
    "find",
    "first",
    "five",
    "follow",
    "for",
    "form",
    "found",
    "four",
    "free",
    "from",
    "full",
    "gave",
    "get",
    "give",
    "given",
    "go",
    "going",
    "good",
    "got",
    "great",
    "group",
    "had",
    "half",
    "hand",
    "has",
    "have",
    "he",
    "head",
    "hear",
    "help",
    "her",
    "here",
    "high",
    "him",
    "his",
    "home",
    "house",
    "how",
    "however",
    "i",
    "if",
    "important",
    "in",
    "into",
    "is",
    "it",
    "its",
    "just",
    "keep",
    "kind",
    "knew",
    "know",
    "large",
    "last",
    "later",
    "lead",
    "least",
    "leave",
    "left",
    "less",
    "let",
    "life",
    "like",
    "line",
    "little",
    "live",
    "long",
    "look",
    "made",
    "make",
    "man",
    "many",
    "may",
    "me",
    "mean",
    "might",
    "more",
    "most",
    "move",
    "much",
    "must",
    "my",
    "name",
    "need",
    "never",
    "new",
    "next",
    "night",
    "no",
    "not",
    "nothing",
    "now",
    "number",
    "of",
    "off",
    "often",
    "old",
    "on",
    "once",
    "one",
    "only",
    "open",
    "or",
    "order",
    "other",
    "our",
    "out",
    "over",
    "own",
    "page",
    "part",
    "people",
    "place",
    "play",
    "point",
    "put",
    "read",
    "real",
    "right",
    "room",
    "run",
    "said",
    "same",
    "saw",
    "say",
    "see",
    "seem",
    "set",
    "she",
    "should",
    "show",
    "side",
    "since",
    "small",
    "so",
    "some",
    "something",
    "sometimes",
    "soon",
    "start",
    "state",
    "still",
    "stop",
    "such",
    "sure",
    "take",
    "tell",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "thing",
    "think",
    "this",
    "those",
    "though",
    "three",
    "through",
    "time",
    "to",
    "today",
    "together",
    "told",
    "too",
    "took",
    "toward",
    "try",
    "turn",
    "two",
    "under",
    "until",
    "up",
    "upon",
    "us",
    "use",
    "used",
    "very",
    "want",
    "was",
    "water",
    "way",
    "we",
    "well",
    "went",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whole",
    "why",
    "will",
    "with",
    "within",
    "without",
    "word",
    "words",
    "work",
    "world",
    "would",
    "write",
    "year",
    "yes",
    "yet",
    "you",
    "young",
    "your",
];

/// How likely a word is to appear at a given place in prose, as a power of two: a common
/// word most, then a number, then the shorter the likelier.
fn likelihood(word: &str) -> i32 {
    if COMMON.contains(&word) {
        -4
    } else if word.bytes().all(|b| b.is_ascii_digit()) {
        -6
    } else {
        -(2 * i32::try_from(word.len().min(18)).unwrap_or(18) + 4)
    }
}

fn has_double(word: &str) -> bool {
    word.as_bytes().windows(2).any(|w| w[0] == w[1])
}

/// What the sieve looks for to find one pattern.
#[derive(Debug, PartialEq, Eq)]
enum Anchor<'a> {
    /// A whole word, in a form.
    Word(usize, &'a str),
    /// A word's beginning, in a form.
    Prefix(usize, &'a str),
    /// Two words one after the other (loose form).
    Pair(&'a str, &'a str),
    /// Text that may start inside a word, in a form.
    Inner(usize, String),
}

/// Of a pattern, the word or pair of words least likely to appear in prose, with its
/// likelihood: a match of the pattern has it, delimited as the pattern's match must be.
fn anchor<'a>(p: &Pattern<'a>) -> (Anchor<'a>, i32) {
    let words: Vec<&'a str> = p.text.split(' ').collect();
    let last = words.len().saturating_sub(1);
    let lead = |i: usize| i > 0 || p.start;
    let trail = |i: usize| i < last || p.end;
    let form = |w: &str| usize::from(p.strict && has_double(w));
    let mut best: Option<(Anchor<'a>, i32)> = None;
    let mut offer = |a: Anchor<'a>, l: i32| {
        if best.as_ref().is_none_or(|(_, b)| l < *b) {
            best = Some((a, l));
        }
    };
    for (i, &w) in words.iter().enumerate() {
        let l = likelihood(w);
        match (lead(i), trail(i)) {
            (true, true) => offer(Anchor::Word(form(w), w), l),
            (true, false) => offer(Anchor::Prefix(form(w), w), l),
            (false, t) => offer(
                Anchor::Inner(form(w), if t { format!("{w} ") } else { w.to_owned() }),
                l + 4,
            ),
        }
        if let Some(&next) = words.get(i + 1) {
            let loose = !p.strict || !(has_double(w) || has_double(next));
            if lead(i) && trail(i + 1) && loose {
                offer(Anchor::Pair(w, next), l + likelihood(next) + 2);
            }
        }
    }
    best.unwrap_or((Anchor::Inner(0, p.text.to_owned()), 0))
}

fn pair_hash(a: u64, b: u64) -> u64 {
    a.rotate_left(29).wrapping_mul(PRIME) ^ b
}

/// What one byte of plain text is to the sieve.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Byte {
    /// A letter, lower-cased.
    Letter(u8),
    Digit(u8),
    /// Leetspeak that is read as a letter when a letter or digit follows (`$uicide`), and
    /// dropped otherwise.
    Leet,
    Separator,
    /// The first byte of a character outside ASCII.
    Wide,
}

fn byte(b: u8) -> Byte {
    match b {
        b'a'..=b'z' => Byte::Letter(b),
        b'A'..=b'Z' => Byte::Letter(b.to_ascii_lowercase()),
        b'0'..=b'9' => Byte::Digit(b),
        b'@' | b'$' | b'!' => Byte::Leet,
        0x80.. => Byte::Wide,
        _ => Byte::Separator,
    }
}

/// Characters outside ASCII that normalisation reads as a space as the sieve does: spaces,
/// dashes, quotation marks, bullets and the ellipsis of ordinary typeset prose.
fn is_plain_punctuation(c: char) -> bool {
    matches!(
        c,
        '\u{a0}'
            | '\u{ab}'
            | '\u{bb}'
            | '\u{2002}'..='\u{200a}'
            | '\u{2010}'..='\u{2015}'
            | '\u{2018}'..='\u{201f}'
            | '\u{2022}'
            | '\u{2026}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// An open-addressed set of 64-bit hashes, with a one-bit-per-entry filter in front so
/// that most look-ups of absent words touch only a small, cache-resident bit array.
#[derive(Clone, Debug, Default)]
struct Table {
    slots: Vec<u64>,
    shift: u32,
    filter: Vec<u64>,
    filter_shift: u32,
}

impl Table {
    fn build(mut hashes: Vec<u64>) -> Table {
        hashes.sort_unstable();
        hashes.dedup();
        let size = (hashes.len() * 2).next_power_of_two().max(16);
        // About eight bits an entry: one look-up in ten of an absent word goes on to the
        // slots.
        let bits = (hashes.len() * 8).next_power_of_two().max(64);
        let mut table = Table {
            slots: vec![0; size],
            shift: 64 - size.trailing_zeros(),
            filter: vec![0; bits / 64],
            filter_shift: 64 - bits.trailing_zeros(),
        };
        for h in hashes {
            let h = h.max(1);
            let bit = table.filter_bit(h);
            if let Some(w) = table.filter.get_mut(bit / 64) {
                *w |= 1 << (bit % 64);
            }
            let mut i = table.index(h);
            while table.slots[i] != 0 {
                i = (i + 1) & (size - 1);
            }
            table.slots[i] = h;
        }
        table
    }

    fn index(&self, h: u64) -> usize {
        (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    fn filter_bit(&self, h: u64) -> usize {
        (h.wrapping_mul(0xc2b2_ae3d_27d4_eb4f) >> self.filter_shift) as usize
    }

    fn contains(&self, h: u64) -> bool {
        let h = h.max(1);
        let bit = self.filter_bit(h);
        if self
            .filter
            .get(bit / 64)
            .is_none_or(|w| w & (1 << (bit % 64)) == 0)
        {
            return false;
        }
        let mask = self.slots.len().wrapping_sub(1);
        let mut i = self.index(h);
        while let Some(&slot) = self.slots.get(i) {
            if slot == h {
                return true;
            }
            if slot == 0 {
                return false;
            }
            i = (i + 1) & mask;
        }
        false
    }

    fn heap_bytes(&self) -> usize {
        self.slots.capacity() * 8 + self.filter.capacity() * 8
    }
}

impl Sieve {
    /// A sieve over the matcher's patterns. `combinations` are the classes of every
    /// combination with positive points: of each, the class whose words are rarest is
    /// looked for.
    pub(super) fn build(
        patterns: &[Pattern<'_>],
        combinations: &[&[u16]],
    ) -> Result<Sieve, String> {
        let anchors: Vec<(Anchor<'_>, i32)> = patterns.iter().map(anchor).collect();
        // Per class: how often its words are likely to appear, together.
        let mut classes: std::collections::HashMap<u16, f64> = Default::default();
        // Per weighted entry: the part to look for (the rarest).
        let mut parts: std::collections::HashMap<u32, (usize, i32)> = Default::default();
        for (i, (p, (_, l))) in patterns.iter().zip(&anchors).enumerate() {
            match p.source {
                Source::Class(c) => *classes.entry(c).or_default() += f64::from(*l).exp2(),
                Source::Part(g) => {
                    let e = parts.entry(g).or_insert((i, *l));
                    if *l < e.1 {
                        *e = (i, *l);
                    }
                }
                Source::Phrase => {}
            }
        }
        // Of each combination, the class whose words are likely to appear least often.
        let mut looked_for = std::collections::HashSet::new();
        for combo in combinations {
            let rarest = combo.iter().copied().min_by(|a, b| {
                let f = |c| classes.get(c).copied().unwrap_or(f64::MAX);
                f(a).total_cmp(&f(b))
            });
            looked_for.extend(rarest);
        }
        let mut words = Vec::new();
        let mut pairs = Vec::new();
        let mut prefixes = Vec::new();
        let mut prefix_lengths = [0u64; 2];
        let mut inner: [Vec<String>; 2] = Default::default();
        let mut count = 0;
        for (i, (p, (a, _))) in patterns.iter().zip(anchors).enumerate() {
            let wanted = match p.source {
                Source::Phrase => true,
                Source::Part(g) => parts.get(&g).is_some_and(|&(at, _)| at == i),
                Source::Class(c) => looked_for.contains(&c),
            };
            if !wanted {
                continue;
            }
            count += 1;
            match a {
                Anchor::Word(form, w) => words.push(hash(form, w.as_bytes())),
                Anchor::Pair(a, b) => {
                    pairs.push(pair_hash(hash(0, a.as_bytes()), hash(0, b.as_bytes())));
                }
                Anchor::Prefix(form, w) => {
                    let w = &w.as_bytes()[..w.len().min(MAX_PREFIX)];
                    prefixes.push(hash(form, w));
                    prefix_lengths[form] |= 1 << w.len();
                }
                Anchor::Inner(form, text) => inner[form].push(text),
            }
        }
        let automaton = |mut anchors: Vec<String>| -> Result<Option<AhoCorasick>, String> {
            anchors.sort_unstable();
            anchors.dedup();
            if anchors.is_empty() {
                return Ok(None);
            }
            AhoCorasick::builder()
                .kind(Some(AhoCorasickKind::ContiguousNFA))
                .match_kind(MatchKind::Standard)
                .build(&anchors)
                .map(Some)
                .map_err(|e| format!("the sieve's automaton: {e}"))
        };
        let [loose, strict] = inner;
        Ok(Sieve {
            words: Table::build(words),
            pairs: Table::build(pairs),
            prefixes: Table::build(prefixes),
            prefix_lengths,
            inner: [automaton(loose)?, automaton(strict)?],
            anchors: count,
        })
    }

    /// How many patterns it looks for.
    pub fn anchors(&self) -> usize {
        self.anchors
    }

    pub fn heap_bytes(&self) -> usize {
        self.words.heap_bytes()
            + self.pairs.heap_bytes()
            + self.prefixes.heap_bytes()
            + self
                .inner
                .iter()
                .flatten()
                .map(AhoCorasick::memory_usage)
                .sum::<usize>()
    }

    /// Whether the matcher could find a theme in `text`. `false` only when it certainly
    /// would not.
    pub(super) fn may_hit(&self, text: &str, slips: &Slips, buf: &mut SieveBuf) -> bool {
        if !write_forms(text, self, slips, buf) {
            return true;
        }
        let inner = |form: usize, text: &[u8]| {
            self.inner[form]
                .as_ref()
                .is_some_and(|ac| ac.is_match(text))
        };
        inner(0, &buf.loose) || (buf.strict != buf.loose && inner(1, &buf.strict))
    }

    /// Whether a word's beginning of `len` bytes in `form`, hashed `h`, is an anchor.
    fn prefix(&self, form: usize, len: usize, h: u64) -> bool {
        len <= MAX_PREFIX
            && self.prefix_lengths[form] & (1 << len) != 0
            && self.prefixes.contains(h)
    }
}

/// Writes the loose and strict forms of plain `text` into `buf`, a space before and after
/// every word, looking up each word as it ends. Returns `false` when the text may hit: it is
/// not plain (it needs the full normalisation), a word is an anchor, or a word is a slip of
/// a listed word.
fn write_forms(text: &str, sieve: &Sieve, slips: &Slips, buf: &mut SieveBuf) -> bool {
    buf.loose.clear();
    buf.strict.clear();
    buf.loose.push(b' ');
    buf.strict.push(b' ');
    let bytes = text.as_bytes();
    let mut word = Word::default();
    // Consecutive words of one repeated character (`s u i c i d e`): normalisation joins
    // three or more when one is a letter.
    let mut singles = 0u32;
    let mut singles_letter = false;
    // The loose hash of the word before.
    let mut before: Option<u64> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let class = byte(b);
        if let Byte::Letter(c) | Byte::Digit(c) = class {
            if !word.push(c, class, sieve, buf) {
                return false;
            }
            i += 1;
            continue;
        }
        match class {
            Byte::Leet if bytes.get(i + 1).is_some_and(u8::is_ascii_alphanumeric) => {
                return false;
            }
            Byte::Wide => {
                let Some(c) = text.get(i..).and_then(|t| t.chars().next()) else {
                    return false;
                };
                if !is_plain_punctuation(c) {
                    return false;
                }
                i += c.len_utf8();
            }
            _ => i += 1,
        }
        if word.len > 0 {
            let Some(read) = word.end(before, sieve, slips, buf) else {
                return false;
            };
            before = Some(read);
            if word.same {
                singles += 1;
                singles_letter |= word.letter;
                if singles >= 3 && singles_letter {
                    return false;
                }
            } else {
                singles = 0;
                singles_letter = false;
            }
            word = Word::default();
        }
    }
    if word.len > 0 {
        if word.end(before, sieve, slips, buf).is_none() {
            return false;
        }
        if word.same && singles + 1 >= 3 && (singles_letter || word.letter) {
            return false;
        }
    }
    true
}

/// The word being written.
#[derive(Default)]
struct Word {
    /// Characters read (before folding).
    len: usize,
    /// Where it starts in the loose and the strict form.
    from: [usize; 2],
    /// Its hash so far in each form.
    hash: [u64; 2],
    first: u8,
    last: u8,
    run: u32,
    letter: bool,
    digit: bool,
    /// Every character is the first.
    same: bool,
}

impl Word {
    /// Adds a letter or digit; `false` when the text may hit: the word mixes letters and
    /// digits (leetspeak: not plain) or begins as an anchor does.
    fn push(&mut self, c: u8, class: Byte, sieve: &Sieve, buf: &mut SieveBuf) -> bool {
        let letter = matches!(class, Byte::Letter(_));
        if self.len == 0 {
            self.from = [buf.loose.len(), buf.strict.len()];
            self.hash = SEED;
            self.first = c;
            self.same = true;
        }
        self.len += 1;
        self.same &= c == self.first;
        if letter {
            self.letter = true;
        } else {
            self.digit = true;
        }
        if self.letter && self.digit {
            return false;
        }
        // Runs of a letter fold (one in the loose form, two in the strict); digits do not.
        if letter && c == self.last {
            self.run += 1;
        } else {
            self.last = c;
            self.run = 1;
        }
        if self.run == 1 {
            buf.loose.push(c);
            self.hash[0] = step(self.hash[0], c);
            if sieve.prefix(0, buf.loose.len() - self.from[0], self.hash[0]) {
                return false;
            }
        }
        if self.run <= 2 {
            buf.strict.push(c);
            self.hash[1] = step(self.hash[1], c);
            if sieve.prefix(1, buf.strict.len() - self.from[1], self.hash[1]) {
                return false;
            }
        }
        true
    }

    /// Ends the word (`before` is the hash of the word before it). `None` when it may
    /// hit: it is an anchor, ends a pair that is one, or is a slip of a listed word that
    /// is; otherwise the hash of the word as the matcher reads it (a slip as the listed
    /// word), for the pair it begins.
    fn end(
        &self,
        before: Option<u64>,
        sieve: &Sieve,
        slips: &Slips,
        buf: &mut SieveBuf,
    ) -> Option<u64> {
        let loose_len = buf.loose.len() - self.from[0];
        let doubled = buf.strict.len() - self.from[1] != loose_len;
        let anchor = |h: u64| {
            sieve.words.contains(h) || before.is_some_and(|b| sieve.pairs.contains(pair_hash(b, h)))
        };
        if anchor(self.hash[0]) || (doubled && sieve.words.contains(self.hash[1])) {
            return None;
        }
        let mut read = self.hash[0];
        if self.letter && loose_len >= SLIP_MIN {
            match slip(sieve, self.hash[0], self.from[0], slips, buf) {
                Slip::Anchor => return None,
                Slip::Listed(h) => {
                    if anchor(h) {
                        return None;
                    }
                    read = h;
                }
                Slip::None => {}
            }
        }
        buf.loose.push(b' ');
        buf.strict.push(b' ');
        Some(read)
    }
}

/// What a word's slip means to the sieve.
#[derive(Clone, Copy, Debug)]
enum Slip {
    None,
    /// A slip of a listed word that begins as an anchor does.
    Anchor,
    /// A slip of the listed word with this (loose) hash.
    Listed(u64),
}

/// Whether the loose word at `from` in `buf` (hashed `hash`) is a slip of a listed word,
/// remembered for the rest of the body.
fn slip(sieve: &Sieve, hash: u64, from: usize, slips: &Slips, buf: &mut SieveBuf) -> Slip {
    let word = buf.loose.get(from..).unwrap_or_default();
    let slot = (hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize % SLIP_SLOTS;
    if let Some(seen) = buf.slips.get(slot) {
        if usize::from(seen.len) == word.len() && seen.word.get(..word.len()) == Some(word) {
            return seen.slip;
        }
    }
    let listed = std::str::from_utf8(word)
        .ok()
        .and_then(|w| slips.correct(w));
    let found = match listed {
        None => Slip::None,
        Some(listed) => {
            // The matcher reads the listed word in its place.
            let mut h = SEED[0];
            let mut anchor = false;
            for (n, &c) in listed.as_bytes().iter().enumerate() {
                h = step(h, c);
                anchor |= sieve.prefix(0, n + 1, h);
            }
            if anchor {
                Slip::Anchor
            } else {
                Slip::Listed(h)
            }
        }
    };
    if word.len() <= SLIP_SEEN {
        let mut seen = SlipSeen {
            len: word.len() as u8,
            word: [0; SLIP_SEEN],
            slip: found,
        };
        seen.word[..word.len()].copy_from_slice(word);
        if buf.slips.len() < SLIP_SLOTS {
            buf.slips.resize(
                SLIP_SLOTS,
                SlipSeen {
                    len: u8::MAX,
                    word: [0; SLIP_SEEN],
                    slip: Slip::None,
                },
            );
        }
        if let Some(s) = buf.slips.get_mut(slot) {
            *s = seen;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forms(text: &str) -> Option<(String, String)> {
        let mut buf = SieveBuf::default();
        write_forms(text, &Sieve::default(), &Slips::default(), &mut buf).then(|| {
            (
                String::from_utf8(buf.loose).unwrap(),
                String::from_utf8(buf.strict).unwrap(),
            )
        })
    }

    #[test]
    fn plain_text_is_written_as_normalisation_writes_it() {
        for text in [
            "Hello, World!  It's   a TEST of 1000 things.",
            "Kiiilll the  lights\u{2014}now \u{201c}please\u{201d}\u{2026}",
            "a b",
            "",
            "5$ is 7 7 7 and b!",
            "e-mail: xy (y) [z]",
        ] {
            let n = super::super::normalize(text);
            let (loose, strict) = forms(text).unwrap_or_else(|| panic!("{text:?} is plain"));
            assert_eq!(
                loose,
                format!(" {} ", n.loose).replace("  ", " "),
                "{text:?}"
            );
            assert_eq!(
                strict,
                format!(" {} ", n.strict).replace("  ", " "),
                "{text:?}"
            );
        }
    }

    #[test]
    fn what_is_not_plain_goes_to_the_matcher() {
        for text in [
            "k1ll myself",
            "$uicide",
            "s u i c i d e",
            "k.m.s",
            "caf\u{e9}",
            "sui\u{200b}cide",
            "\u{456}t",
            "ab!cd",
        ] {
            assert_eq!(forms(text), None, "{text:?}");
        }
    }
}
