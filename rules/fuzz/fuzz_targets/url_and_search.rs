//! URL splitting, host normalisation, search-query extraction and normalisation, and a
//! whole evaluate() against a small policy, on arbitrary request targets.
#![no_main]

use gatehouse_rules::config::ConfigFile;
use gatehouse_rules::search::{extract_query, normalize};
use gatehouse_rules::{compile, evaluate, Facts, Snapshot, Target};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn policy() -> &'static Snapshot {
    static POLICY: OnceLock<Snapshot> = OnceLock::new();
    POLICY.get_or_init(|| {
        let toml = "[school]\nname = \"F\"\ntimezone = \"Europe/London\"\n[local]\ndeny = [\"bad.example\", \"x.example/p\"]\n[roles.pupil]\ndefault = \"allow\"\n";
        let file = ConfigFile::parse("fuzz.toml".into(), toml.into()).expect("policy parses");
        compile(&file).expect("policy compiles").snapshot
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(parts) = gatehouse_rules::url::split_url(text) {
        assert!(text.contains(parts.host));
        let _ = gatehouse_rules::host::Host::parse(parts.host).map(|h| h.suffixes());
    }
    if let Some(q) = extract_query(text) {
        let n = normalize(&q.decoded());
        assert!(!n.loose.contains("  "));
    }
    let snap = policy();
    let role = snap.role_id("pupil").expect("role");
    for target in [Target::Url(text), Target::Authority(text)] {
        let facts = Facts { role, user: None, client: None, at: chrono::DateTime::UNIX_EPOCH, method: "GET", target };
        let _ = evaluate(snap, &facts);
    }
});
