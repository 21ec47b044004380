//! Properties of list matching, checked on generated names through the public API: a
//! compiled policy and `evaluate`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use gatehouse_rules::config::ConfigFile;
use gatehouse_rules::{compile, evaluate, CategorySet, Facts, Snapshot, Target};
use proptest::prelude::*;

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?"
}

fn name() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(label(), 1..4),
        prop::sample::select(vec!["com", "co.uk", "org", "example"]),
    )
        .prop_map(|(labels, tld)| format!("{}.{tld}", labels.join(".")))
}

fn policy(names: &[String]) -> (tempfile::TempDir, Snapshot) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("list.txt"), names.join("\n")).unwrap();
    let toml = "[school]\nname = \"P\"\ntimezone = \"UTC\"\n[[source]]\nformat = \"domains\"\npath = \"list.txt\"\ncategory = \"games\"\n[roles.pupil]\ndefault = \"allow\"\n";
    let file = ConfigFile::parse(dir.path().join("p.toml"), toml.into()).unwrap();
    let snap = compile(&file).unwrap().snapshot;
    (dir, snap)
}

fn categories(snap: &Snapshot, host: &str) -> CategorySet {
    let url = format!("http://{host}/");
    let facts = Facts {
        role: snap.role_id("pupil").unwrap(),
        user: None,
        client: None,
        at: chrono::DateTime::UNIX_EPOCH,
        method: "GET",
        target: Target::Url(&url),
    };
    evaluate(snap, &facts).categories
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A listed name matches itself and every name below it, in any case, with or without
    /// a trailing dot.
    #[test]
    fn a_listed_name_matches_all_its_subdomains(listed in name(), sub in prop::collection::vec(label(), 1..4)) {
        let (_dir, snap) = policy(std::slice::from_ref(&listed));
        let games = CategorySet::one(snap.category_id("games").unwrap());
        prop_assert_eq!(categories(&snap, &listed), games);
        let below = format!("{}.{listed}", sub.join("."));
        prop_assert_eq!(categories(&snap, &below), games);
        prop_assert_eq!(categories(&snap, &format!("{}.", below.to_uppercase())), games);
    }

    /// ...and no sibling, no parent, and no name that merely ends with the same letters.
    #[test]
    fn a_listed_name_matches_no_sibling_or_parent(listed in name(), other in label()) {
        let (_dir, snap) = policy(std::slice::from_ref(&listed));
        let (first, parent) = listed.split_once('.').unwrap();
        prop_assume!(other != first);
        let sibling = format!("{other}.{parent}");
        let glued = format!("{other}{listed}");
        let longer_tld = format!("{listed}.{other}");
        for host in [sibling.as_str(), parent, glued.as_str(), longer_tld.as_str()] {
            prop_assert!(categories(&snap, host).is_empty(), "{} matched", host);
        }
    }

    /// Many names at once: each is found, and names not listed are not.
    #[test]
    fn many_names_each_found(names in prop::collection::hash_set(name(), 1..200), probes in prop::collection::vec(name(), 0..50)) {
        let names: Vec<String> = names.into_iter().collect();
        let (_dir, snap) = policy(&names);
        for n in &names {
            prop_assert!(!categories(&snap, n).is_empty(), "{}", n);
        }
        for p in &probes {
            let covered = names.iter().any(|n| p == n || p.ends_with(&format!(".{n}")));
            prop_assert_eq!(!categories(&snap, p).is_empty(), covered, "{}", p);
        }
    }
}
