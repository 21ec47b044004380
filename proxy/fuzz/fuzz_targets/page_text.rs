//! The text reader (`proxy/src/content/text.rs`) fed any bytes, cut anywhere: the first
//! byte picks the kind of body, the second how many cuts, the next ones where they fall.
//! Whatever the cuts, the text is the text of the whole body, and nothing panics.
#![no_main]

#[path = "../../src/content/text.rs"]
#[allow(dead_code)]
mod text;

use libfuzzer_sys::fuzz_target;
use text::{Kind, Piece, TextReader};

fn read(kind: Kind, body: &[u8], ends: &[usize]) -> (String, String) {
    let mut r = TextReader::new(kind, None);
    let mut out = String::new();
    let mut sink = |p: Piece<'_>| match p {
        Piece::Text(t) => out.push_str(t),
        Piece::Break => out.push_str(" | "),
    };
    let mut from = 0;
    for &end in ends {
        r.push(&body[from..end], &mut sink);
        from = end;
    }
    r.finish(&mut sink);
    let words: Vec<&str> = out.split_whitespace().collect();
    (words.join(" "), r.title.clone())
}

fuzz_target!(|data: &[u8]| {
    let [k, splits, rest @ ..] = data else { return };
    let kind = [Kind::Html, Kind::Plain, Kind::Json, Kind::EventStream][usize::from(*k) % 4];
    let splits = usize::from(*splits % 8);
    if rest.len() < splits {
        return;
    }
    let (cuts, body) = rest.split_at(splits);
    let mut ends: Vec<usize> = cuts.iter().map(|&c| usize::from(c) % (body.len() + 1)).collect();
    ends.push(body.len());
    ends.sort_unstable();
    assert_eq!(read(kind, body, &ends), read(kind, body, &[body.len()]));
});
