//! Search-text normalisation and the theme matcher on arbitrary bytes, decoded as a query
//! component is: normalising never panics, is idempotent on both forms, and the matcher
//! (with combinations, context, exceptions, slips and learned weights) never panics on
//! what it gives.
#![no_main]

use gatehouse_rules::search::{
    decode_component, normalize, ComboPart, FeatureKind, ThemeMatcher, ThemeMatcherBuilder,
    LOWER, PLAN,
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn matcher() -> &'static ThemeMatcher {
    static M: OnceLock<ThemeMatcher> = OnceLock::new();
    M.get_or_init(|| {
        let mut b = ThemeMatcherBuilder::default();
        let t = b.theme("suicide").expect("theme");
        b.set_language("en");
        b.phrase(t, "suicide", false).expect("phrase");
        b.phrase(t, "thinspo", true).expect("phrase");
        b.exception(Some(t), "suicide squad").expect("exception");
        for w in ["paracetamol", "pills", "sleeping pills"] {
            b.class_word("medicine", w, false).expect("class");
        }
        for w in ["die", "kill me", "dying"] {
            b.class_word("die", w, false).expect("class");
        }
        b.class_word(LOWER, "essay", false).expect("class");
        b.class_word(PLAN, "i want to", false).expect("class");
        let c = ComboPart::Class;
        b.combination(t, &[c("medicine"), c("die")], 60, 6).expect("combination");
        b.learned_bias(t, -1.0);
        b.learned(FeatureKind::Word, "unalive", t, 2.0).expect("word");
        b.learned(FeatureKind::Pair, "how many", t, 0.8).expect("pair");
        b.learned(FeatureKind::Start, "overd", t, 0.7).expect("start");
        b.learned(FeatureKind::Class, "medicine", t, 0.5).expect("class");
        b.learned(FeatureKind::Word, "vitamin", t, -2.0).expect("word");
        b.build().expect("build")
    })
}

fuzz_target!(|data: &[u8]| {
    let text = decode_component(&String::from_utf8_lossy(data));
    let once = normalize(&text);
    assert_eq!(normalize(&once.loose).loose, once.loose, "{text:?}");
    assert_eq!(normalize(&once.strict).strict, once.strict, "{text:?}");
    let _ = matcher().find(&once);
});
