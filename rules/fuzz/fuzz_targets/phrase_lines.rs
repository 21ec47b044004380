//! Theme-file and e2guardian weighted-list lines, then a matcher built from what parsed.
#![no_main]

use gatehouse_rules::lists::decode;
use gatehouse_rules::lists::phrases::{theme_line, weighted_line, ThemeLine, WeightedLine};
use gatehouse_rules::search::{normalize, ThemeMatcherBuilder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = decode(data).text;
    let mut b = ThemeMatcherBuilder::default();
    let Ok(theme) = b.theme("fuzz") else { return };
    for line in text.lines().take(200) {
        match theme_line(line) {
            Ok(Some(ThemeLine::Phrase(p))) => drop(b.phrase(theme, p, false)),
            Ok(Some(ThemeLine::Prefix(p))) => drop(b.phrase(theme, p, true)),
            Ok(Some(ThemeLine::Exception(p))) => drop(b.exception(p)),
            _ => {}
        }
        if let Ok(Some(WeightedLine::Phrase { parts, weight })) = weighted_line(line) {
            let _ = b.weighted(theme, &parts, weight.points(50));
        }
    }
    if let Ok(m) = b.build() {
        let _ = m.find(&normalize(&text));
    }
});
