//! Every list format's line parser, on arbitrary bytes decoded the way list files are.
#![no_main]

use gatehouse_rules::lists::{decode, parse_line, Entry, ListFormat};
use libfuzzer_sys::fuzz_target;

const FORMATS: [ListFormat; 6] = [
    ListFormat::Domains,
    ListFormat::Hosts,
    ListFormat::Adblock,
    ListFormat::Dnsmasq,
    ListFormat::Urls,
    ListFormat::Regex,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let format = FORMATS[selector as usize % FORMATS.len()];
    let text = decode(rest).text;
    for line in text.lines() {
        parse_line(format, line, &mut |entry| {
            // Whatever a parser emits must be a normalised name.
            if let Entry::Domain(name) | Entry::Url { host: name, .. } = entry {
                assert!(gatehouse_rules::host::Host::parse(&name).is_some(), "{name:?}");
            }
        });
    }
});
