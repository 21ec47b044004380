//! The safeguarding path end to end, through the running proxy: a pupil's search reaches
//! the DSL's mailbox (a real SMTP server, aiosmtpd, on 127.0.0.1), a burst is one alert
//! with its count, a teacher's lesson-planning search is logged and shows in the digest as
//! staff without an alert, a proxy killed with SIGKILL loses and repeats no alert, and
//! pseudonymised traffic can still be exported for a subject access request.
//!
//! Search engines are reached without leaving the machine: `[proxy] hosts` pins
//! www.google.com to 127.0.0.1, where a small origin answers.

#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "an end-to-end test: a failure is a failed test"
)]

mod common;
#[path = "common/servers.rs"]
mod servers;

use common::Workspace;
use std::process::{Child, Command};

fn policy(smtp: u16, digest_time: &str, extra_store: &str) -> String {
    format!(
        r#"
[[network]]
cidr = "127.0.0.1/32"
role = "pupil"
site = "main"
[[network]]
cidr = "127.0.0.2/32"
role = "staff"
site = "main"
[[network]]
cidr = "127.0.0.4/32"
role = "pupil"
site = "main"
login = true
[themes.self-harm]
file = "themes/self-harm/en.txt"
[themes.abuse]
file = "themes/abuse/en.txt"
[roles.pupil]
default = "allow"
themes = {{ self-harm = {{ action = "block", alert = "high" }}, abuse = {{ action = "block", alert = "high" }} }}
[roles.staff]
default = "allow"
themes = {{ self-harm = "log", abuse = "log" }}
[store]
{extra_store}
[alerts]
admin_url = "https://gatehouse.school.example"
hold_secs = 10
digest_time = "{digest_time}"
[alerts.smtp]
host = "127.0.0.1"
port = {smtp}
security = "none"
from = "Gatehouse <gatehouse@school.example>"
[alerts.sites.main]
dsl = ["dsl@school.example"]
"#
    )
}

struct Running {
    ws: Workspace,
    child: Child,
    addr: String,
    google: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(
    ws: &Workspace,
    smtp: u16,
    digest_time: &str,
    extra_store: &str,
    google: u16,
) -> std::path::PathBuf {
    ws.config(&format!(
        "{}[proxy]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\nallow_loopback_origins = true\nhosts = {{ \"www.google.com\" = \"127.0.0.1\" }}\nconnect_ports = [443, {google}]\n",
        policy(smtp, digest_time, extra_store),
        ws.path("data").display().to_string()
    ))
}

fn start(smtp: u16, digest_time: &str, extra_store: &str) -> Running {
    let ws = Workspace::new();
    let google = servers::results_origin();
    let config = write_config(&ws, smtp, digest_time, extra_store, google);
    let (child, addr, _) = common::spawn_proxy(&config);
    Running {
        ws,
        child,
        addr,
        google,
    }
}

impl Running {
    fn restart(&mut self, smtp: u16, digest_time: &str, extra_store: &str) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let config = write_config(&self.ws, smtp, digest_time, extra_store, self.google);
        let (child, addr, _) = common::spawn_proxy(&config);
        self.child = child;
        self.addr = addr;
    }

    /// A Google search through the proxy from `source`; returns the status.
    fn search(&self, source: &str, query: &str, login: Option<&str>) -> u16 {
        let url = format!(
            "http://www.google.com:{}/search?q={}",
            self.google,
            query.replace(' ', "+")
        );
        self.get(source, &url, login)
    }

    fn get(&self, source: &str, url: &str, login: Option<&str>) -> u16 {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
        ])
        .args([
            "-x",
            &format!("http://{}", self.addr),
            "--interface",
            source,
        ]);
        if let Some(l) = login {
            cmd.args(["--proxy-user", l]);
        }
        let out = cmd.arg(url).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    fn config(&self) -> String {
        self.ws.path("gatehouse.toml").display().to_string()
    }
}

#[test]
fn pupil_searches_alert_the_dsl_and_a_teachers_lesson_planning_is_in_the_digest_as_staff() {
    let smtp = servers::Smtp::start();
    let mut proxy = start(smtp.port, "23:59", "");
    // A pupil searches for a self-harm phrase: blocked, and the DSL gets an email.
    assert_eq!(proxy.search("127.0.0.1", "how to self harm", None), 403);
    let first = servers::wait_for(30, || smtp.messages().into_iter().next()).expect("alert email");
    assert_eq!(first.to, "dsl@school.example");
    assert!(first.subject.contains("(self-harm)"), "{first:?}");
    for part in [
        "a pupil not signed in, on device 127.0.0.1",
        "searched for \"how to self harm\" on www.google.com",
        "Where: main",
        "Open the alert: https://gatehouse.school.example/alerts/",
    ] {
        assert!(
            first.text.contains(part),
            "{part:?} not in:\n{}",
            first.text
        );
    }
    // 50 identical searches in a burst (within the 10 s hold): one alert, with its count.
    for _ in 0..50 {
        assert_eq!(proxy.search("127.0.0.1", "hide my cuts", None), 403);
    }
    let burst = servers::wait_for(30, || {
        smtp.messages()
            .into_iter()
            .find(|m| m.text.contains("hide my cuts"))
    })
    .expect("the burst's alert");
    assert!(burst.subject.ends_with("x50"), "{burst:?}");
    assert!(burst.text.contains("Repeated: 50 times"), "{}", burst.text);
    // A teacher plans a lesson on FGM: allowed, logged, no instant alert.
    assert_eq!(
        proxy.search("127.0.0.2", "fgm lesson plan year 9", None),
        200
    );
    // A pupil's homework search on the theme: the context lowers it to a sensitive log
    // (allowed, no alert), and the digest shows it apart, for the DSL to check.
    assert_eq!(
        proxy.search("127.0.0.1", "self harm in poetry gcse essay", None),
        200
    );
    std::thread::sleep(std::time::Duration::from_secs(4));
    let mails = smtp.messages();
    assert_eq!(mails.len(), 2, "{mails:#?}");
    assert!(
        mails.iter().all(|m| !m.text.contains("127.0.0.2")),
        "no alert for staff"
    );
    // The day's digest (sent at the configured time; here: restart with a time that has
    // passed) lists all of it, the teacher marked as staff.
    proxy.restart(smtp.port, "00:00", "");
    let digest = servers::wait_for(30, || {
        smtp.messages()
            .into_iter()
            .find(|m| m.subject.contains("daily safeguarding digest"))
    })
    .expect("the digest email");
    assert!(digest.text.contains("127.0.0.2 [STAFF]"), "{}", digest.text);
    assert!(
        digest.text.contains("searched \"fgm lesson plan year 9\""),
        "{}",
        digest.text
    );
    assert!(digest.text.contains("self-harm (52)"), "{}", digest.text);
    assert!(
        digest
            .text
            .contains("context lowered it (study, news or help-seeking): check the judgement (1)")
            && digest
                .text
                .contains("searched \"self harm in poetry gcse essay\""),
        "{}",
        digest.text
    );
    assert!(digest.text.contains("abuse (1)"), "{}", digest.text);
    // Once a day: a second restart sends no second digest.
    proxy.restart(smtp.port, "00:00", "");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let digests = smtp
        .messages()
        .iter()
        .filter(|m| m.subject.contains("digest"))
        .count();
    assert_eq!(digests, 1);
    // The same digest on demand, as CSV.
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::London)
        .format("%Y-%m-%d")
        .to_string();
    let out = common::run(
        &[
            "report",
            "daily",
            "--config",
            &proxy.config(),
            "--date",
            &today,
            "--site",
            "main",
            "--format",
            "csv",
        ],
        "",
    );
    let csv = common::stdout(&out);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(
        csv.starts_with("theme,time,who,staff,role,device,what,decision,alert,context\n"),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("abuse,") && l.contains(",127.0.0.2,yes,staff,")),
        "{csv}"
    );
    assert_eq!(
        csv.lines().filter(|l| l.starts_with("self-harm,")).count(),
        52
    );
    assert!(
        csv.lines()
            .any(|l| l.contains("self harm in poetry gcse essay") && l.ends_with(",lowered")),
        "{csv}"
    );
}

#[test]
fn a_proxy_killed_mid_stream_loses_no_alert_and_sends_none_twice() {
    let smtp = servers::Smtp::start();
    let mut proxy = start(smtp.port, "23:59", "");
    // Phrases of the theme file that are separate alerts: none contains another (spaces
    // ignored), since "selfharm" and "self harming" are the same term as "self harm" and
    // fold into its alert.
    let mut phrases: Vec<String> = Vec::new();
    let squash = |p: &str| p.replace(' ', "");
    for line in std::fs::read_to_string(common::lists().join("themes/self-harm/en.txt"))
        .unwrap()
        .lines()
        .filter(|l| {
            !l.starts_with(['#', '!', '@', '=']) && !l.trim().is_empty() && !l.contains(['*', '#'])
        })
    {
        if phrases.len() < 16
            && phrases
                .iter()
                .all(|p| !squash(line).contains(&squash(p)) && !squash(p).contains(&squash(line)))
        {
            phrases.push(line.to_owned());
        }
    }
    assert_eq!(phrases.len(), 16);
    // Searches go one after another; the proxy is killed (SIGKILL) after the 8th answer,
    // while alerts are still being delivered.
    let mut answered = Vec::new();
    for (i, phrase) in phrases.iter().enumerate() {
        if i == 8 {
            proxy.child.kill().unwrap();
            let _ = proxy.child.wait();
            break;
        }
        if proxy.search("127.0.0.1", phrase, None) == 403 {
            answered.push(phrase.clone());
        }
    }
    assert_eq!(answered.len(), 8);
    // Restarted: the rest of the searches, then every alert is delivered exactly once.
    proxy.restart(smtp.port, "23:59", "");
    for phrase in &phrases[8..] {
        assert_eq!(proxy.search("127.0.0.1", phrase, None), 403);
        answered.push(phrase.clone());
    }
    let mails = servers::wait_for(60, || {
        let m = smtp.messages();
        (m.len() >= answered.len()).then_some(m)
    })
    .unwrap_or_else(|| smtp.messages());
    std::thread::sleep(std::time::Duration::from_secs(3));
    let mails = if smtp.messages().len() > mails.len() {
        smtp.messages()
    } else {
        mails
    };
    for phrase in &answered {
        let n = mails
            .iter()
            .filter(|m| m.text.contains(&format!("searched for \"{phrase}\"")))
            .count();
        assert_eq!(n, 1, "{phrase:?} alerted {n} times");
    }
    assert_eq!(mails.len(), answered.len());
}

#[test]
fn pseudonymised_traffic_keeps_flagged_names_and_a_users_records_can_be_exported() {
    let smtp = servers::Smtp::start();
    let mut proxy = start(
        smtp.port,
        "23:59",
        "pseudonymise_traffic = true\nsqlite_cache_mib = 8",
    );
    let out = common::run(
        &[
            "user-add",
            "--config",
            &proxy.config(),
            "--role",
            "pupil",
            "fay.pupil",
        ],
        "correct horse\n",
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    // Logins are read at start.
    proxy.restart(smtp.port, "23:59", "pseudonymise_traffic = true");
    let login = Some("fay.pupil:correct horse");
    assert_eq!(proxy.search("127.0.0.4", "weather tomorrow", login), 200);
    assert_eq!(proxy.search("127.0.0.4", "how to self harm", login), 403);
    // The events reach the store; the export finds both, the flagged one under the name.
    let records = servers::wait_for(30, || {
        let out = common::run(
            &[
                "export-user",
                "--config",
                &proxy.config(),
                "--user",
                "fay.pupil",
            ],
            "",
        );
        let lines: Vec<serde_json::Value> = common::stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (lines.len() >= 2).then_some(lines)
    })
    .expect("two records exported");
    let flagged = records
        .iter()
        .find(|r| r["search_term"] == "how to self harm")
        .unwrap();
    assert_eq!(flagged["user"], "fay.pupil");
    let plain = records
        .iter()
        .find(|r| r["search_term"] == "weather tomorrow")
        .unwrap();
    let pseudonym = plain["user"].as_str().unwrap();
    assert!(
        pseudonym.starts_with("p-") && !pseudonym.contains("fay"),
        "{pseudonym}"
    );
    // The JSON-lines log holds the pseudonym, never the name, for all-traffic records.
    let log = std::fs::read_to_string(proxy.ws.path("data/events/events.jsonl")).unwrap();
    for line in log.lines().filter(|l| l.contains("weather tomorrow")) {
        assert!(!line.contains("fay.pupil"), "{line}");
    }
}

/// A wrong `[store]` value stops the start with the file, the section and what to give
/// instead; nothing is listening afterwards.
#[test]
fn a_bad_store_setting_is_refused_at_start_naming_it() {
    for (value, message) in [
        ("0", "sqlite_cache_mib = 0: give 1 to 4096 (MiB)"),
        ("5000", "sqlite_cache_mib = 5000: give 1 to 4096 (MiB)"),
        ("\"big\"", "sqlite_cache_mib"),
    ] {
        let ws = Workspace::new();
        let config = write_config(
            &ws,
            1,
            "23:59",
            &format!("sqlite_cache_mib = {value}"),
            servers::results_origin(),
        );
        let out = common::run(&["run", "--config", config.to_str().unwrap()], "");
        let err = common::stderr(&out);
        // 2: the command could not do its job (1 is `check`'s "policy not loaded").
        assert_eq!(out.status.code(), Some(2), "{value}: {err}");
        assert!(
            err.contains("gatehouse.toml") && err.contains("[store]") && err.contains(message),
            "{value}: {err}"
        );
    }
}
