//! AI chat services in the policy: a role that names the services it may use gets them
//! whatever their category and is refused every other one (by any host spelling); a role
//! that names none is decided by its categories; a school's own service is added by
//! `[[ai_service]]`; a wrong service name, and sign-in limits that could not be applied,
//! are refused with their place named.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use gatehouse_rules::config::ConfigFile;
use gatehouse_rules::{compile, evaluate, Facts, Rule, RulesError, Snapshot, Target, Verdict};

const BASE: &str = r#"
[school]
name = "P"
timezone = "UTC"


[local]
deny = ["blocked.example"]

[roles.staff]
default = "allow"
"#;

fn compiled(extra: &str) -> gatehouse_rules::Result<Snapshot> {
    let dir = tempfile::tempdir().unwrap();
    let file = ConfigFile::parse(dir.path().join("p.toml"), format!("{BASE}{extra}")).unwrap();
    compile(&file).map(|c| c.snapshot)
}

fn verdict(snap: &Snapshot, role: &str, url: &str) -> (Verdict, Rule) {
    let facts = Facts {
        role: snap.role_id(role).unwrap(),
        user: None,
        client: None,
        at: "2026-12-03T10:00:00Z".parse().unwrap(),
        method: "GET",
        target: Target::Url(url),
    };
    let d = evaluate(snap, &facts);
    (d.verdict, d.rule)
}

const PUPIL: &str = r#"
[roles.pupil]
default = "block"
ai_services = ["gemini", "school-bot"]

[[ai_service]]
name = "school-bot"
label = "The school's tutor"
hosts = ["tutor.example.sch.uk"]
chat_paths = ["/ask"]
answer_keys = ["reply"]
"#;

#[test]
fn approved_services_are_allowed_and_every_other_refused() {
    let snap = compiled(PUPIL).unwrap();
    let gemini = snap.ai_services().id("gemini").unwrap();
    // Approved: allowed though the role's default blocks.
    for url in [
        "https://gemini.google.com/app",
        "https://GEMINI.google.com./app",
        "https://tutor.example.sch.uk/ask",
    ] {
        let (v, rule) = verdict(&snap, "pupil", url);
        assert_eq!(v, Verdict::Allow, "{url}");
        assert!(
            matches!(rule, Rule::AiService { approved: true, .. }),
            "{url}"
        );
    }
    assert!(matches!(
        verdict(&snap, "pupil", "https://gemini.google.com/").1,
        Rule::AiService { service, approved: true } if service == gemini
    ));
    // Any other service, by any of its hosts: refused.
    for url in [
        "https://chatgpt.com/",
        "https://chat.openai.com/backend-api/conversation",
        "https://x.y.claude.ai/",
        "http://chat.deepseek.com:8080/",
        "https://www.perplexity.ai/search?q=hello",
    ] {
        let (v, rule) = verdict(&snap, "pupil", url);
        assert_eq!(v, Verdict::Block, "{url}");
        assert!(
            matches!(
                rule,
                Rule::AiService {
                    approved: false,
                    ..
                }
            ),
            "{url}"
        );
    }
    // Not an AI service: the role's rules as before.
    assert_eq!(
        verdict(&snap, "pupil", "https://www.google.com/").0,
        Verdict::Block
    );
    // The school's deny list still comes first.
    assert_eq!(
        verdict(&snap, "pupil", "https://blocked.example/").0,
        Verdict::Block
    );
    // A role that names no services: its categories and default decide.
    let (v, rule) = verdict(&snap, "staff", "https://chatgpt.com/");
    assert_eq!((v, rule), (Verdict::Allow, Rule::RoleDefault));
}

#[test]
fn a_wrong_service_or_an_unusable_sign_in_limit_names_its_place() {
    let cases = [
        (
            "[roles.pupil]\ndefault = \"allow\"\nai_services = [\"chatgtp\"]\n",
            "roles.pupil.ai_services",
            "\"chatgtp\" is not an AI service",
        ),
        (
            "[roles.pupil]\ndefault = \"allow\"\nschool_accounts_only = true\n",
            "roles.pupil.school_accounts_only",
            "[accounts]",
        ),
        (
            "[accounts]\ngoogle = [\"example.sch.uk\"]\n[roles.pupil]\ndefault = \"allow\"\ndecrypt_https = false\nschool_accounts_only = true\n",
            "roles.pupil.school_accounts_only",
            "decrypt_https",
        ),
        (
            "[accounts]\nmicrosoft = [\"example.sch.uk\"]\n[roles.pupil]\ndefault = \"allow\"\n",
            "accounts.microsoft_tenant_id",
            "directory",
        ),
        (
            "[[ai_service]]\nname = \"bot\"\nhosts = [\"chatgpt.com\"]\n[roles.pupil]\ndefault = \"allow\"\n",
            "ai_service",
            "another service",
        ),
        (
            "[proxy]\nno_decrypt = [\"microsoftonline.com\"]\n[accounts]\nmicrosoft = [\"example.sch.uk\"]\nmicrosoft_tenant_id = \"8f2e4c1a-0b7d-4e55-9a3c-2d1f6b0e7a91\"\n[roles.pupil]\ndefault = \"allow\"\nschool_accounts_only = true\n",
            "roles.pupil.school_accounts_only",
            "no_decrypt",
        ),
    ];
    for (extra, field, says) in cases {
        match compiled(extra) {
            Err(RulesError::Invalid {
                line,
                field: f,
                message,
                ..
            }) => {
                assert_eq!(f, field, "{extra}");
                assert!(message.contains(says), "{message}");
                assert!(line > 10, "line {line} for {extra}");
            }
            other => panic!("{extra}: {other:?}"),
        }
    }
}

#[test]
fn sign_in_limits_compile_for_a_role_that_decrypts() {
    let snap = compiled(
        "[accounts]\nmicrosoft = [\"example.sch.uk\"]\nmicrosoft_tenant_id = \"8f2e4c1a-0b7d-4e55-9a3c-2d1f6b0e7a91\"\ngoogle = [\"example.sch.uk\"]\n[roles.pupil]\ndefault = \"allow\"\nschool_accounts_only = true\n",
    )
    .unwrap();
    let pupil = snap.role(snap.role_id("pupil").unwrap()).unwrap();
    assert!(pupil.school_accounts_only);
    assert_eq!(
        snap.school_accounts().headers("accounts.google.com"),
        vec![("x-googapps-allowed-domains", "example.sch.uk")]
    );
}
