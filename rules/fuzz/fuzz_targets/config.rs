//! The policy parser and compiler on arbitrary TOML: an error, never a panic.
#![no_main]

use gatehouse_rules::{compile, config::ConfigFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(file) = ConfigFile::parse("/nonexistent/fuzz.toml".into(), text.to_owned()) {
        let _ = compile(&file);
    }
});
