//! The text of a page (or a post, or an AI chat's answer) read as it streams: cut into
//! passages at the ends of sentences, each passage matched against the themes' lists and
//! combinations, and the page's finding turned into what the role's policy says.
//!
//! - **Passages**: a sentence (up to `.`, `!`, `?`, a line break or a block of the page;
//!   sentences of fewer than [`MIN_PASSAGE_WORDS`] words are read with those after them),
//!   cut into windows of [`PASSAGE_WORDS`] words overlapping by [`OVERLAP_WORDS`] when it is
//!   longer. Text that has not reached the end of its sentence waits for the next chunk, so
//!   a phrase split across two chunks of the body is read whole.
//! - **Matching**: the lists and combinations of the search themes, with their context
//!   (study, news and help words in the same passage lower a hit). The learned weights are
//!   not used: they were trained on searches, not on the sentences of a page.
//! - **Finding**: a theme fires for a page when at least [`FIRE_PASSAGES`] passages hit it
//!   unlowered (one sentence of a news story, "took his own life", is logged for the
//!   digest; a page that keeps returning to a method alerts). A theme hit only once, or only
//!   lowered, is a sensitive log.
//! - **Bounds**: at most [`MAX_PASSAGES`] passages and [`MAX_PENDING`] bytes waiting are read
//!   from one body; the rest is counted as not read.

use crate::config::{Action, Severity};
use crate::policy::RoleId;
use crate::search::{normalize, PhraseId, SieveBuf, ThemeId, ThemeMatcher, ThemeSet};
use crate::snapshot::Snapshot;

/// Words in one passage at most.
pub const PASSAGE_WORDS: usize = 48;
/// Words a long sentence's windows share, so a phrase across a cut is read whole.
pub const OVERLAP_WORDS: usize = 8;
/// Passages that must hit a theme unlowered for it to fire for a page.
pub const FIRE_PASSAGES: u32 = 2;
/// Passages read from one body at most (a passage has at least
/// [`MIN_PASSAGE_WORDS`] words: some 2 MB of text).
pub const MAX_PASSAGES: u64 = 50_000;
/// Sentences shorter than this are read with the ones after them.
pub const MIN_PASSAGE_WORDS: usize = 8;
/// Bytes of text waiting for the end of their sentence at most; past it they are read as
/// they are (a page of one endless line).
pub const MAX_PENDING: usize = 4096;
/// Excerpts kept per theme, and their length in characters at most.
pub const EXCERPTS_PER_THEME: usize = 3;
pub const EXCERPT_CHARS: usize = 240;
/// Terms kept from one body at most.
const MAX_TERMS: usize = 32;

const THEMES: usize = 64;

/// A body's text being read.
#[derive(Debug)]
pub struct ContentScan {
    pending: String,
    /// Per theme: passages that hit it unlowered, and lowered.
    strong: [u32; THEMES],
    lowered: [u32; THEMES],
    terms: Vec<PhraseId>,
    excerpts: Vec<(ThemeId, String)>,
    passages: u64,
    text_bytes: u64,
    /// Text left unread because a bound was reached.
    unread_bytes: u64,
    /// Passages that must hit a theme unlowered for it to fire.
    fire: u32,
    /// The sieve's buffers.
    sieve: SieveBuf,
    /// Passages the sieve passed to the matcher.
    matched: u64,
}

impl Default for ContentScan {
    fn default() -> Self {
        ContentScan::new()
    }
}

/// What a body's text hit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentFinding {
    /// Themes hit by at least [`FIRE_PASSAGES`] passages unlowered.
    pub fired: ThemeSet,
    /// Themes hit, fired or not.
    pub hit: ThemeSet,
    pub terms: Vec<PhraseId>,
    /// Per theme, the passages that hit it (as the page has them, shortened).
    pub excerpts: Vec<(ThemeId, String)>,
    /// Per theme hit: passages that hit it unlowered, and lowered.
    pub counts: Vec<(ThemeId, u32, u32)>,
    pub passages: u64,
    /// Passages the sieve could not rule out, read by the matcher.
    pub matched: u64,
    pub text_bytes: u64,
    pub unread_bytes: u64,
}

/// The policy's answer to a finding, for one role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentVerdict {
    /// The strictest action the role's theme settings ask for (a theme not fired is at most
    /// a log).
    pub action: Action,
    pub alert: Option<Severity>,
    pub sensitive: bool,
    /// The theme that decided.
    pub theme: Option<ThemeId>,
}

impl ContentScan {
    pub fn new() -> ContentScan {
        ContentScan {
            pending: String::new(),
            strong: [0; THEMES],
            lowered: [0; THEMES],
            terms: Vec::new(),
            excerpts: Vec::new(),
            passages: 0,
            text_bytes: 0,
            unread_bytes: 0,
            fire: FIRE_PASSAGES,
            sieve: SieveBuf::default(),
            matched: 0,
        }
    }

    /// A scan of what a person sent (a form, a post, a prompt to an AI chat): their own
    /// words, so one passage that hits a theme fires it, as a search does.
    pub fn sent() -> ContentScan {
        ContentScan {
            fire: 1,
            ..ContentScan::new()
        }
    }

    /// Reads more of the body's text (any length, cut anywhere).
    pub fn push(&mut self, themes: &ThemeMatcher, text: &str) {
        self.text_bytes += text.len() as u64;
        if self.passages >= MAX_PASSAGES {
            self.unread_bytes += text.len() as u64;
            return;
        }
        // In slices, so a chunk that is one endless line (a decompressed bomb) is read in
        // steps of bounded cost, never rescanned whole.
        let mut rest = text;
        while !rest.is_empty() {
            if self.passages >= MAX_PASSAGES {
                self.unread_bytes += rest.len() as u64;
                return;
            }
            let mut at = rest.len().min(MAX_PENDING / 2);
            while !rest.is_char_boundary(at) {
                at += 1;
            }
            self.pending.push_str(&rest[..at]);
            rest = &rest[at..];
            self.read_ready(themes, false);
        }
    }

    /// A break in the text no sentence crosses (the end of a paragraph, a heading, a cell).
    pub fn push_break(&mut self, themes: &ThemeMatcher) {
        if !self.pending.trim().is_empty() {
            self.pending.push('\n');
            self.read_ready(themes, false);
        }
    }

    /// Reads what is left and says what the text hit.
    pub fn finish(mut self, themes: &ThemeMatcher) -> ContentFinding {
        self.read_ready(themes, true);
        let mut fired = ThemeSet::default();
        let mut hit = ThemeSet::default();
        let mut counts = Vec::new();
        for t in 0..THEMES {
            let id = ThemeId(t as u8);
            if self.strong[t] > 0 || self.lowered[t] > 0 {
                counts.push((id, self.strong[t], self.lowered[t]));
            }
            if self.strong[t] >= self.fire {
                fired.insert(id);
            }
            if self.strong[t] > 0 || self.lowered[t] > 0 {
                hit.insert(id);
            }
        }
        self.terms.sort_unstable();
        self.terms.dedup();
        ContentFinding {
            fired,
            hit,
            terms: self.terms,
            excerpts: self.excerpts,
            counts,
            passages: self.passages,
            matched: self.matched,
            text_bytes: self.text_bytes,
            unread_bytes: self.unread_bytes,
        }
    }

    /// Reads every complete passage waiting (all of them at the end).
    fn read_ready(&mut self, themes: &ThemeMatcher, at_end: bool) {
        // Read in place, by offsets; what was read is removed once at the end.
        let pending = std::mem::take(&mut self.pending);
        let mut start = 0;
        while start < pending.len() {
            if self.passages >= MAX_PASSAGES {
                self.unread_bytes += (pending.len() - start) as u64;
                start = pending.len();
                break;
            }
            let rest = &pending[start..];
            // The first sentence end with at least MIN_PASSAGE_WORDS words before it: short
            // sentences are read together (context, and a bounded number of passages).
            match sentence_end(rest) {
                Some(end) => {
                    self.read_sentence(themes, &rest[..end]);
                    start += end;
                }
                None if at_end => {
                    self.read_sentence(themes, rest);
                    start = pending.len();
                }
                None if rest.len() > MAX_PENDING || word_count(rest) > 2 * PASSAGE_WORDS => {
                    // A long run with no sentence end: read one window, keep its overlap.
                    let window_end = nth_word_end(rest, PASSAGE_WORDS)
                        .unwrap_or(rest.len())
                        .min(floor_char(rest, MAX_PENDING));
                    let window = &rest[..window_end];
                    self.read_passage(themes, window);
                    start += overlap_start(window);
                }
                None => break,
            }
        }
        self.pending = pending;
        self.pending.drain(..start);
    }

    /// A sentence, in windows if it is long.
    fn read_sentence(&mut self, themes: &ThemeMatcher, sentence: &str) {
        if word_starts(sentence).nth(PASSAGE_WORDS).is_none() {
            self.read_passage(themes, sentence);
            return;
        }
        let starts: Vec<usize> = word_starts(sentence).collect();
        let step = PASSAGE_WORDS - OVERLAP_WORDS;
        let mut first = 0;
        while first < starts.len() {
            let from = starts[first];
            let to = starts
                .get(first + PASSAGE_WORDS)
                .copied()
                .unwrap_or(sentence.len());
            self.read_passage(themes, &sentence[from..to]);
            if first + PASSAGE_WORDS >= starts.len() {
                break;
            }
            first += step;
        }
    }

    fn read_passage(&mut self, themes: &ThemeMatcher, passage: &str) {
        if !passage.chars().any(char::is_alphabetic) || self.passages >= MAX_PASSAGES {
            return;
        }
        self.passages += 1;
        // Most passages of a page hit nothing: the sieve finds them without normalising.
        if !themes.may_hit(passage, &mut self.sieve) {
            return;
        }
        self.matched += 1;
        let hits = themes.find_listed(&normalize(passage));
        if hits.themes.is_empty() {
            return;
        }
        for theme in hits.themes.iter() {
            let t = usize::from(theme.0);
            if t >= THEMES {
                continue;
            }
            if hits.lowered.contains(theme) {
                self.lowered[t] += 1;
            } else {
                self.strong[t] += 1;
            }
            let kept = self.excerpts.iter().filter(|(x, _)| *x == theme).count();
            if kept < EXCERPTS_PER_THEME {
                self.excerpts.push((theme, excerpt(passage)));
            }
        }
        for term in hits.terms {
            if self.terms.len() < MAX_TERMS && !self.terms.contains(&term) {
                self.terms.push(term);
            }
        }
    }
}

/// What `role`'s policy says of a finding: a fired theme as the role's theme setting says;
/// a theme only hit, a sensitive log.
pub fn verdict(snap: &Snapshot, role: RoleId, finding: &ContentFinding) -> ContentVerdict {
    let mut out = ContentVerdict {
        action: Action::Allow,
        alert: None,
        sensitive: false,
        theme: None,
    };
    let Some(policy) = snap.role(role) else {
        return out;
    };
    for theme in finding.hit.iter() {
        let spec = policy.theme_action(theme);
        let (action, alert) = if finding.fired.contains(theme) {
            (spec.action(), spec.alert())
        } else {
            (spec.action().min(Action::Log), None)
        };
        if out.theme.is_none() || action > out.action || alert > out.alert {
            if action >= out.action {
                out.theme = Some(theme);
            }
            out.action = out.action.max(action);
            out.alert = out.alert.max(alert);
        }
        out.sensitive |= action >= Action::Log || alert.is_some();
    }
    out
}

/// Where the first sentence of `text` with at least [`MIN_PASSAGE_WORDS`] words ends (the
/// byte after its end), if it has ended. Bytes of ASCII are read as bytes.
fn sentence_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut words = 0;
    let mut after_space = true;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let (space, end, len) = if b.is_ascii() {
            (
                !b.is_ascii_alphanumeric(),
                matches!(b, b'.' | b'!' | b'?' | b'\n' | b';' | b':'),
                1,
            )
        } else {
            let c = text.get(i..).and_then(|t| t.chars().next())?;
            (!is_word_char(c), is_sentence_end(c), c.len_utf8())
        };
        if !space && after_space {
            words += 1;
        }
        after_space = space;
        if end && words >= MIN_PASSAGE_WORDS {
            return Some(i + len);
        }
        i += len;
    }
    None
}

/// The end of a sentence or a clause: full stops, question and exclamation marks (and
/// their full-width and other scripts' forms), the ellipsis, `;`, `:`, the em dash and a
/// line break.
fn is_sentence_end(c: char) -> bool {
    matches!(
        c,
        '.' | '!' | '?' | ';' | ':' | '\n' | '\u{2014}' | '\u{2026}' | '\u{203c}' | '\u{2047}'
            ..='\u{2049}'
                | '\u{3002}'
                | '\u{06d4}'
                | '\u{0964}'
                | '\u{061f}'
                | '\u{ff01}'
                | '\u{ff0e}'
                | '\u{ff1b}'
                | '\u{ff1f}'
    )
}

/// A character of a word: words are counted as normalisation reads them (letters and digits
/// joined by punctuation, `the—quickest—way`, are several words, not one).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

fn word_starts(text: &str) -> impl Iterator<Item = usize> + '_ {
    let mut before = ' ';
    text.char_indices().filter_map(move |(i, c)| {
        let start = is_word_char(c) && !is_word_char(before);
        before = c;
        start.then_some(i)
    })
}

fn word_count(text: &str) -> usize {
    word_starts(text).count()
}

/// The byte offset where the `n`-th word starts (the end of the first `n` words).
fn nth_word_end(text: &str, n: usize) -> Option<usize> {
    word_starts(text).nth(n)
}

/// Where the last [`OVERLAP_WORDS`] words of a window start.
fn overlap_start(window: &str) -> usize {
    let starts: Vec<usize> = word_starts(window).collect();
    match starts.len().checked_sub(OVERLAP_WORDS) {
        Some(k) if k > 0 => starts[k],
        _ => window.len(),
    }
}

fn floor_char(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    if at == 0 {
        // At least the first character, so a cut always makes progress.
        at = text.chars().next().map_or(0, char::len_utf8);
    }
    at
}

/// A passage as the page has it, spaces collapsed, cut to [`EXCERPT_CHARS`].
fn excerpt(passage: &str) -> String {
    let mut out = String::new();
    for (n, word) in passage.split_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() > EXCERPT_CHARS {
            let cut: String = out.chars().take(EXCERPT_CHARS).collect();
            return format!("{cut}…");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_of_a_long_sentence_overlap() {
        let text: Vec<String> = (0..100).map(|i| format!("w{i}")).collect();
        let text = text.join(" ");
        let starts: Vec<usize> = word_starts(&text).collect();
        assert_eq!(starts.len(), 100);
        assert_eq!(nth_word_end(&text, 2), Some(starts[2]));
        let window = &text[..starts[PASSAGE_WORDS]];
        assert_eq!(
            &window[overlap_start(window)..].split_whitespace().count(),
            &OVERLAP_WORDS
        );
    }

    #[test]
    fn excerpts_are_short_and_tidy() {
        assert_eq!(excerpt("  a \n b\tc "), "a b c");
        let long = "word ".repeat(200);
        let e = excerpt(&long);
        assert!(e.chars().count() <= EXCERPT_CHARS + 1, "{e}");
        assert!(e.ends_with('…'));
    }

    #[test]
    fn floor_char_stays_on_a_boundary() {
        let s = "ééééé";
        for at in 0..=s.len() + 2 {
            let f = floor_char(s, at);
            assert!(s.is_char_boundary(f) && f >= 2, "{at} -> {f}");
        }
    }
}
