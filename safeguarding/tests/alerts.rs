//! Alerts from events to the DSL's inbox: de-duplication, escalation, email through a real
//! SMTP server (aiosmtpd) that goes down and comes back, and signed webhooks received by a
//! loopback HTTP server.

#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failure is a failed test"
)]

#[path = "../../tests/common/servers.rs"]
mod servers;

use gatehouse_safeguarding::alerts::AlertEngine;
use gatehouse_safeguarding::config::{
    AlertSettings, SiteRoute, SmtpSecurity, SmtpSettings, StoreSettings, Webhook, WebhookFormat,
};
use gatehouse_safeguarding::deliver::{sign, Deliverer};
use gatehouse_safeguarding::metrics::Metrics;
use gatehouse_safeguarding::outbox::Outbox;
use gatehouse_safeguarding::store::{timestamp, Store};
use gatehouse_safeguarding::Event;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn search(user: &str, role: &str, term: &str, theme: &str) -> Event {
    Event {
        time: timestamp(chrono::Utc::now()),
        request_id: "r".into(),
        client_ip: "10.10.3.7".into(),
        user: Some(user.into()),
        person: None,
        identified_by: String::new(),
        role: role.into(),
        site: Some("main".into()),
        method: "GET".into(),
        host: "www.google.com".into(),
        url: "http://www.google.com/search".into(),
        search_term: Some(term.into()),
        themes: vec![theme.into()],
        terms: vec![term.into()],
        verdict: "block".into(),
        alert: Some("high".into()),
        sensitive: true,
        rule: "theme".into(),
        reason: "test".into(),
        status: 403,
        ..Event::default()
    }
}

struct Setup {
    dir: tempfile::TempDir,
    engine: AlertEngine,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    metrics: Arc<Metrics>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn settings(smtp_port: u16, webhooks: Vec<Webhook>) -> AlertSettings {
    let mut s = AlertSettings {
        admin_url: Some("https://gatehouse.school.example".into()),
        hold_secs: 1,
        smtp: Some(SmtpSettings {
            host: "127.0.0.1".into(),
            port: smtp_port,
            security: SmtpSecurity::None,
            username: None,
            password_file: None,
            ca_file: None,
            from: "Gatehouse <gatehouse@school.example>".into(),
        }),
        // Far in the future so no digest is queued during these tests.
        digest_time: "23:59".into(),
        ..AlertSettings::default()
    };
    s.sites.insert(
        "main".into(),
        SiteRoute {
            dsl: vec!["dsl@school.example".into()],
            webhooks,
        },
    );
    s
}

fn start(settings: AlertSettings) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new(None).unwrap());
    let outbox = dir.path().join("outbox.db");
    let engine = AlertEngine::new(
        settings.clone(),
        Outbox::open(&outbox).unwrap(),
        Arc::clone(&metrics),
        chrono::Utc::now().timestamp_millis(),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let data = dir.path().to_owned();
    let thread = Deliverer {
        outbox: Outbox::open(&outbox).unwrap(),
        settings,
        tz: chrono_tz::Europe::London,
        data_dir: data.clone(),
        metrics: Arc::clone(&metrics),
        store: Box::new(move || Store::open(&StoreSettings::default(), &data)),
        school: "Test Academy".into(),
        alert_retention_days: 30,
    }
    .spawn(Arc::clone(&stop))
    .unwrap();
    Setup {
        dir,
        engine,
        stop,
        thread: Some(thread),
        metrics,
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[test]
fn fifty_identical_searches_are_one_alert_with_its_count_written_for_a_dsl() {
    let smtp = servers::Smtp::start();
    // The burst must fit in the hold, even on a busy CI machine.
    let mut settings = settings(smtp.port, vec![]);
    settings.hold_secs = 5;
    let mut s = start(settings);
    let hit = search("amy.pupil", "pupil", "how to self harm", "self-harm");
    for _ in 0..50 {
        s.engine
            .observe(std::slice::from_ref(&hit), now_ms())
            .unwrap();
    }
    // Another person's search is another alert.
    let other = search("ben.pupil", "pupil", "how to self harm", "self-harm");
    s.engine.observe(&[other], now_ms()).unwrap();
    let mail = servers::wait_for(30, || {
        let m = smtp.messages();
        (m.len() >= 2).then_some(m)
    })
    .expect("two alerts arrive");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let mail = if smtp.messages().len() > mail.len() {
        smtp.messages()
    } else {
        mail
    };
    assert_eq!(mail.len(), 2, "{mail:#?}");
    let amy = mail
        .iter()
        .find(|m| m.subject.contains("amy.pupil"))
        .unwrap();
    assert_eq!(amy.to, "dsl@school.example");
    // 50 hits inside the escalation window (10 in 10 minutes by default) raised the high
    // alert before it was sent: it goes once, as critical, with its count.
    assert!(
        amy.subject.starts_with("CRITICAL")
            && amy.subject.contains("(self-harm)")
            && amy.subject.ends_with("amy.pupil x50"),
        "{amy:?}"
    );
    for part in [
        "Who: amy.pupil (pupil), on device 10.10.3.7",
        "What: searched for \"how to self harm\" on www.google.com",
        "Repeated: 50 times",
        "Where: main",
        "Open the alert: https://gatehouse.school.example/alerts/",
    ] {
        assert!(
            amy.text.contains(part),
            "{part:?} missing from:\n{}",
            amy.text
        );
    }
    assert_eq!(
        s.metrics.alerts_raised.with_label_values(&["high"]).get(),
        2
    );
    assert_eq!(s.metrics.alerts_repeated.get(), 49);
}

#[test]
fn repeated_hits_escalate_and_an_alert_already_sent_gets_an_update() {
    let smtp = servers::Smtp::start();
    let mut settings = settings(smtp.port, vec![]);
    settings.escalate_hits = 5;
    let mut s = start(settings);
    let mut hit = search("cal.pupil", "pupil", "where to buy a knife", "weapons");
    hit.alert = Some("medium".into());
    s.engine
        .observe(std::slice::from_ref(&hit), now_ms())
        .unwrap();
    servers::wait_for(30, || (smtp.messages().len() == 1).then_some(())).expect("first alert");
    for _ in 0..5 {
        s.engine
            .observe(std::slice::from_ref(&hit), now_ms())
            .unwrap();
    }
    let mail = servers::wait_for(30, || {
        let m = smtp.messages();
        (m.len() == 2).then_some(m)
    })
    .expect("an update after escalation");
    assert!(mail[0].subject.starts_with("MEDIUM"), "{:?}", mail[0]);
    assert!(mail[1].subject.starts_with("HIGH"), "{:?}", mail[1]);
    assert!(mail[1]
        .text
        .contains("raised again because it kept happening"));
    assert_eq!(s.metrics.alerts_escalated.get(), 1);
}

#[test]
fn an_alert_waits_out_a_mail_server_outage_and_is_delivered_once() {
    // Nothing listens on the SMTP port yet.
    let mut smtp = servers::Smtp::start();
    smtp.stop();
    let mut s = start(settings(smtp.port, vec![]));
    s.engine
        .observe(
            &[search("dee.pupil", "pupil", "suicide methods", "suicide")],
            now_ms(),
        )
        .unwrap();
    let outbox = Outbox::open(&s.dir.path().join("outbox.db")).unwrap();
    let failing = servers::wait_for(60, || {
        let d = outbox.deliveries(10).unwrap();
        (d[0].attempts >= 3).then(|| d[0].clone())
    })
    .expect("delivery is retried while the server is down");
    assert_eq!(failing.state, "pending");
    assert!(
        !failing.last_error.is_empty(),
        "the last error is kept: {failing:?}"
    );
    assert!(
        s.metrics
            .delivery_attempts
            .with_label_values(&["email", "failed"])
            .get()
            >= 3
    );
    // The state a 30-minute outage leaves: 35 failed attempts, the back-off at its 60 s cap.
    // One more attempt fails with that count, and the message is still not given up.
    rusqlite::Connection::open(s.dir.path().join("outbox.db"))
        .unwrap()
        .execute("UPDATE deliveries SET attempts = 35", [])
        .unwrap();
    servers::wait_for(30, || {
        let d = outbox.deliveries(10).unwrap().remove(0);
        (d.attempts >= 36).then_some(())
    })
    .expect("retried after 35 failures");
    assert_eq!(outbox.deliveries(10).unwrap()[0].state, "pending");
    // The server comes back: the alert arrives (within the 60 s back-off), once.
    smtp.start_again();
    servers::wait_for(90, || (!smtp.messages().is_empty()).then_some(())).expect("delivered");
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(outbox.deliveries(10).unwrap()[0].state, "sent");
    // Retention: an alert past its days goes, with its messages.
    let mut outbox = outbox;
    assert_eq!(
        outbox.purge(now_ms() - 3_600_000).unwrap(),
        0,
        "a recent alert stays"
    );
    assert_eq!(outbox.purge(now_ms() + 1).unwrap(), 1);
    assert!(outbox.deliveries(10).unwrap().is_empty());
}

#[test]
fn webhooks_are_signed_json_or_teams_and_slack_cards() {
    let receiver = servers::WebhookReceiver::start();
    let smtp = servers::Smtp::start();
    let base = format!("http://127.0.0.1:{}", receiver.port);
    let hooks = vec![
        Webhook {
            url: format!("{base}/json"),
            format: WebhookFormat::Json,
            secret_file: Some("hook.key".into()),
        },
        Webhook {
            url: format!("{base}/teams"),
            format: WebhookFormat::Teams,
            secret_file: None,
        },
        Webhook {
            url: format!("{base}/slack"),
            format: WebhookFormat::Slack,
            secret_file: None,
        },
    ];
    let mut s = start(settings(smtp.port, hooks));
    std::fs::write(s.dir.path().join("hook.key"), "a shared secret\n").unwrap();
    s.engine
        .observe(
            &[search("eve.pupil", "pupil", "join the cause", "extremism")],
            now_ms(),
        )
        .unwrap();
    let got = servers::wait_for(30, || {
        let r = receiver.received.lock().unwrap().clone();
        (r.len() >= 3).then_some(r)
    })
    .expect("three webhooks");
    let json = got
        .iter()
        .find(|(h, _)| h.iter().any(|(k, _)| k == "x-gatehouse-signature"))
        .expect("the JSON hook is signed");
    let header = |name: &str| {
        json.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let expected = sign(
        b"a shared secret",
        &header("x-gatehouse-timestamp"),
        &json.1,
    );
    assert_eq!(
        header("x-gatehouse-signature"),
        expected,
        "the receiver can verify it"
    );
    let body: serde_json::Value = serde_json::from_slice(&json.1).unwrap();
    assert_eq!(body["alert"]["user"], "eve.pupil");
    assert_eq!(body["alert"]["theme"], "extremism");
    assert!(body["alert"]["link"].as_str().unwrap().contains("/alerts/"));
    let texts: Vec<serde_json::Value> = got
        .iter()
        .map(|(_, b)| serde_json::from_slice(b).unwrap())
        .collect();
    assert!(
        texts
            .iter()
            .any(|v| v["@type"] == "MessageCard"
                && v["title"].as_str().unwrap().contains("extremism"))
    );
    assert!(texts
        .iter()
        .any(|v| v["text"].as_str().is_some_and(|t| t.starts_with("*HIGH"))));
    // The email went too.
    servers::wait_for(30, || (!smtp.messages().is_empty()).then_some(())).expect("email");
}

#[test]
fn alerts_go_over_starttls_to_a_server_that_requires_it_trusting_the_schools_ca() {
    let (smtp, ca) = servers::Smtp::start_tls();
    let mut settings = settings(smtp.port, vec![]);
    if let Some(s) = settings.smtp.as_mut() {
        s.security = SmtpSecurity::Starttls;
        s.ca_file = Some(ca.display().to_string());
    }
    let mut s = start(settings);
    s.engine
        .observe(
            &[search("gus.pupil", "pupil", "self harm", "self-harm")],
            now_ms(),
        )
        .unwrap();
    let mail = servers::wait_for(30, || smtp.messages().into_iter().next())
        .expect("delivered over STARTTLS");
    assert!(mail.subject.contains("gus.pupil"), "{mail:?}");
}

#[test]
fn alerts_log_in_to_a_mail_server_that_requires_it_and_a_wrong_password_is_kept_as_the_error() {
    let smtp = servers::Smtp::start_with_login("gatehouse", "mail secret");
    let mut settings = settings(smtp.port, vec![]);
    if let Some(s) = settings.smtp.as_mut() {
        s.username = Some("gatehouse".into());
        s.password_file = Some("smtp.password".into());
    }
    let mut s = start(settings);
    // First the wrong password: the alert waits, with the server's refusal as its error.
    std::fs::write(s.dir.path().join("smtp.password"), "not it\n").unwrap();
    s.engine
        .observe(
            &[search("hal.pupil", "pupil", "self harm", "self-harm")],
            now_ms(),
        )
        .unwrap();
    let outbox = Outbox::open(&s.dir.path().join("outbox.db")).unwrap();
    let refused = servers::wait_for(30, || {
        let d = outbox.deliveries(1).unwrap().remove(0);
        (d.attempts >= 1).then_some(d)
    })
    .expect("an attempt was made");
    assert_eq!(refused.state, "pending");
    assert!(!refused.last_error.is_empty(), "{refused:?}");
    // The right password (read at each attempt): delivered.
    std::fs::write(s.dir.path().join("smtp.password"), "mail secret\n").unwrap();
    let mail = servers::wait_for(60, || smtp.messages().into_iter().next()).expect("delivered");
    assert!(mail.subject.contains("hal.pupil"), "{mail:?}");
}
