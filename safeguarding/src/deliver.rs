//! The delivery thread: sends what the outbox holds (alert emails over SMTP, webhooks),
//! retries failures with back-off, and queues each site's daily digest at its time.

use crate::alerts::SEVERITIES;
use crate::config::{AlertSettings, SmtpSecurity, WebhookFormat};
use crate::digest::{esc, Digest};
use crate::metrics::Metrics;
use crate::outbox::{queue, AlertRow, Delivery, NewDelivery, Outbox};
use crate::store::Store;
use crate::{report, Error};
use chrono::{TimeZone as _, Timelike as _};
use chrono_tz::Tz;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A message that keeps failing is retried for this long, then marked failed.
const GIVE_UP_AFTER_ATTEMPTS: i64 = 3000;
/// How often the outbox is read.
const TICK: Duration = Duration::from_millis(250);

pub struct Deliverer {
    pub outbox: Outbox,
    pub settings: AlertSettings,
    pub tz: Tz,
    /// Where `password_file` and `secret_file` are found.
    pub data_dir: PathBuf,
    pub metrics: Arc<Metrics>,
    /// Opens the event store for the digest.
    pub store: Box<dyn FnMut() -> Result<Store, Error> + Send>,
    pub school: String,
    /// Alerts and their messages are kept this many days.
    pub alert_retention_days: u32,
}

impl Deliverer {
    /// Runs until `stop` is set.
    pub fn spawn(mut self, stop: Arc<AtomicBool>) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("gatehouse-deliver".into())
            .spawn(move || {
                crate::background_priority();
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(15))
                    .build()
                    .ok();
                let mut last_digest_check = None;
                let mut last_purge: Option<std::time::Instant> = None;
                while !stop.load(Ordering::Acquire) {
                    let now = chrono::Utc::now();
                    if let Err(e) = self.send_due(now, http.as_ref()) {
                        report(&format!("alert delivery: {e}"));
                    }
                    let minute = now.timestamp() / 60;
                    if last_digest_check != Some(minute) {
                        last_digest_check = Some(minute);
                        if let Err(e) = self.queue_digests(now) {
                            report(&format!("daily digest: {e}"));
                        }
                    }
                    if last_purge.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
                        last_purge = Some(std::time::Instant::now());
                        let keep = chrono::Duration::days(i64::from(self.alert_retention_days));
                        if let Err(e) = self.outbox.purge((now - keep).timestamp_millis()) {
                            report(&format!("alert retention: {e}"));
                        }
                    }
                    std::thread::sleep(TICK);
                }
            })
    }

    /// Sends every message due now.
    pub fn send_due(
        &mut self,
        now: chrono::DateTime<chrono::Utc>,
        http: Option<&reqwest::blocking::Client>,
    ) -> Result<(), Error> {
        let now_ms = now.timestamp_millis();
        for d in self.outbox.due(now_ms, 50)? {
            let result = self.send(&d, http);
            let channel = d.channel.as_str();
            match result {
                Ok(()) => {
                    self.outbox.mark_sent(d.id, &crate::store::timestamp(now))?;
                    self.metrics
                        .delivery_attempts
                        .with_label_values(&[channel, "sent"])
                        .inc();
                }
                Err(e) => {
                    self.metrics
                        .delivery_attempts
                        .with_label_values(&[channel, "failed"])
                        .inc();
                    let retry = (d.attempts < GIVE_UP_AFTER_ATTEMPTS).then(|| {
                        let backoff = 1000i64 << d.attempts.min(6);
                        now_ms + backoff.min(60_000)
                    });
                    self.outbox.mark_failed(d.id, &e.to_string(), retry)?;
                }
            }
        }
        for state in ["pending", "sent", "failed"] {
            self.metrics.deliveries.with_label_values(&[state]).set(0);
        }
        for (state, n) in self.outbox.counts()? {
            self.metrics
                .deliveries
                .with_label_values(&[state.as_str()])
                .set(n);
        }
        Ok(())
    }

    fn send(&self, d: &Delivery, http: Option<&reqwest::blocking::Client>) -> Result<(), Error> {
        let alert = match d.alert_id {
            Some(id) => self.outbox.alert(id)?,
            None => None,
        };
        let (subject, text, html) = match &alert {
            Some(a) => render_alert(a, &d.kind, &self.settings, self.tz, &self.school),
            None => (d.subject.clone(), d.body.clone(), d.html.clone()),
        };
        match d.channel.as_str() {
            "email" => self.send_email(d, &subject, &text, &html),
            _ => {
                let http = http.ok_or_else(|| Error::Delivery {
                    target: d.target.clone(),
                    message: "no HTTP client".into(),
                })?;
                self.send_webhook(http, d, alert.as_ref(), &subject, &text)
            }
        }
    }

    fn send_email(&self, d: &Delivery, subject: &str, text: &str, html: &str) -> Result<(), Error> {
        let fail = |message: String| Error::Delivery {
            target: d.target.clone(),
            message,
        };
        let smtp = self
            .settings
            .smtp
            .as_ref()
            .ok_or_else(|| fail("no [alerts.smtp] configured".into()))?;
        let from: Mailbox = smtp
            .from
            .parse()
            .map_err(|e| fail(format!("[alerts.smtp] from: {e}")))?;
        let to: Mailbox = d
            .target
            .parse()
            .map_err(|e| fail(format!("address: {e}")))?;
        let body = if html.is_empty() {
            MultiPart::mixed().singlepart(SinglePart::plain(text.to_owned()))
        } else {
            MultiPart::alternative()
                .singlepart(SinglePart::plain(text.to_owned()))
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html.to_owned()),
                )
        };
        let email = Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            // Stable per message: a retry after an unclear failure is recognisably the same.
            .message_id(Some(format!("<gatehouse-delivery-{}@gatehouse>", d.id)))
            .multipart(body)
            .map_err(|e| fail(e.to_string()))?;
        let tls = || {
            let mut params = TlsParameters::builder(smtp.host.clone());
            if let Some(file) = &smtp.ca_file {
                let pem = std::fs::read(self.data_dir.join(file))
                    .map_err(|e| fail(format!("ca_file {file}: {e}")))?;
                let ca = Certificate::from_pem(&pem)
                    .map_err(|e| fail(format!("ca_file {file}: {e}")))?;
                params = params.add_root_certificate(ca);
            }
            params.build_rustls().map_err(|e| fail(e.to_string()))
        };
        let mut builder = SmtpTransport::builder_dangerous(&smtp.host)
            .tls(match smtp.security {
                SmtpSecurity::None => Tls::None,
                SmtpSecurity::Starttls => Tls::Required(tls()?),
                SmtpSecurity::Tls => Tls::Wrapper(tls()?),
            })
            .port(smtp.port)
            .timeout(Some(Duration::from_secs(15)));
        if let Some(user) = &smtp.username {
            let password = match &smtp.password_file {
                Some(f) => std::fs::read_to_string(self.data_dir.join(f))
                    .map_err(|e| fail(format!("password_file {f}: {e}")))?
                    .trim()
                    .to_owned(),
                None => String::new(),
            };
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        builder
            .build()
            .send(&email)
            .map(|_| ())
            .map_err(|e| fail(e.to_string()))
    }

    fn send_webhook(
        &self,
        http: &reqwest::blocking::Client,
        d: &Delivery,
        alert: Option<&AlertRow>,
        subject: &str,
        text: &str,
    ) -> Result<(), Error> {
        let fail = |message: String| Error::Delivery {
            target: d.target.clone(),
            message,
        };
        let format = match d.format.as_str() {
            "teams" => WebhookFormat::Teams,
            "slack" => WebhookFormat::Slack,
            _ => WebhookFormat::Json,
        };
        let payload = match format {
            WebhookFormat::Teams => serde_json::json!({
                "@type": "MessageCard",
                "summary": subject,
                "title": subject,
                "text": text.replace('\n', "\n\n"),
            }),
            WebhookFormat::Slack => serde_json::json!({ "text": format!("*{subject}*\n{text}") }),
            WebhookFormat::Json => serde_json::json!({
                "delivery": d.id,
                "kind": d.kind,
                "subject": subject,
                "text": text,
                "alert": alert.map(|a| serde_json::json!({
                    "id": a.id, "site": a.site, "user": a.user, "person": a.person, "client_ip": a.client_ip,
                    "role": a.role, "theme": a.theme, "term": a.term, "host": a.host,
                    "url": a.url, "search_term": a.search_term, "severity": a.severity,
                    "first_seen": a.first_seen, "last_seen": a.last_seen, "count": a.count,
                    "link": alert_link(&self.settings, a.id),
                })),
            }),
        };
        let body = serde_json::to_vec(&payload).map_err(|e| fail(e.to_string()))?;
        let mut req = http
            .post(&d.target)
            .header("content-type", "application/json")
            .header("x-gatehouse-delivery", d.id.to_string());
        if let Some(file) = &d.secret_file {
            let secret = std::fs::read(self.data_dir.join(file))
                .map_err(|e| fail(format!("secret_file {file}: {e}")))?;
            let stamp = chrono::Utc::now().timestamp().to_string();
            req = req.header("x-gatehouse-timestamp", &stamp).header(
                "x-gatehouse-signature",
                sign(trim_newline(&secret), &stamp, &body),
            );
        }
        let res = req.body(body).send().map_err(|e| fail(e.to_string()))?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(fail(format!("the server answered {}", res.status())))
        }
    }

    /// Queues each site's digest once its local time has come, once per day.
    pub fn queue_digests(&mut self, now: chrono::DateTime<chrono::Utc>) -> Result<(), Error> {
        let (hour, minute) = self.settings.digest_at().map_err(Error::Config)?;
        let local = now.with_timezone(&self.tz);
        if (local.hour(), local.minute()) < (hour, minute) {
            return Ok(());
        }
        let day = local.date_naive();
        let day_text = day.to_string();
        let sites: Vec<String> = self.settings.sites.keys().cloned().collect();
        for site in sites {
            if self.outbox.digest_done(&site, &day_text)? {
                continue;
            }
            let digest = self.build_digest(&site, day)?;
            let Some(route) = self.settings.sites.get(&site).cloned() else {
                continue;
            };
            let now_ms = now.timestamp_millis();
            let (subject, text, html) = (digest.subject(), digest.text(), digest.html());
            self.outbox.transaction(|tx| {
                tx.execute(
                    "INSERT INTO digests (site, day) VALUES (?1, ?2)",
                    rusqlite::params![site, day_text],
                )?;
                for dsl in &route.dsl {
                    let d = NewDelivery {
                        kind: "digest",
                        channel: "email",
                        target: dsl.clone(),
                        subject: subject.clone(),
                        body: text.clone(),
                        html: html.clone(),
                        ..NewDelivery::default()
                    };
                    queue(tx, None, &d, now_ms)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// `site`'s digest for `day`, from the event store.
    pub fn build_digest(&mut self, site: &str, day: chrono::NaiveDate) -> Result<Digest, Error> {
        let mut store = (self.store)()?;
        let filter = (site != "default").then_some(site);
        let events = store.query(&crate::digest::query(filter, day, self.tz))?;
        Ok(Digest::build(
            site,
            day,
            self.tz,
            &events,
            &self.settings.staff_roles,
        ))
    }
}

fn trim_newline(b: &[u8]) -> &[u8] {
    let mut b = b;
    while let [rest @ .., b'\n' | b'\r'] = b {
        b = rest;
    }
    b
}

/// `sha256=` and the hex HMAC-SHA256 of `timestamp.body` under `secret`: the receiver
/// recomputes it to know the message came from Gatehouse and was not replayed later.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    let mut s = String::from("sha256=");
    for b in tag.as_ref() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn alert_link(settings: &AlertSettings, id: i64) -> Option<String> {
    settings
        .admin_url
        .as_ref()
        .map(|u| format!("{}/alerts/{id}", u.trim_end_matches('/')))
}

fn local(time: &str, tz: Tz) -> String {
    chrono::DateTime::parse_from_rfc3339(time)
        .map(|t| {
            tz.from_utc_datetime(&t.naive_utc())
                .format("%A %-d %B %Y at %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| time.to_owned())
}

/// The alert as a DSL reads it: who, what, when, where, and what to do next.
pub fn render_alert(
    a: &AlertRow,
    kind: &str,
    settings: &AlertSettings,
    tz: Tz,
    school: &str,
) -> (String, String, String) {
    let severity = a.severity.to_uppercase();
    let who = match (&a.person, &a.user) {
        (Some(p), Some(u)) => format!("{p} ({u}, {})", a.role),
        (None, Some(u)) => format!("{u} ({})", a.role),
        (_, None) => format!("a {} not signed in", a.role),
    };
    let what = match (&a.search_term, &a.excerpt) {
        (Some(q), _) => format!("searched for \"{q}\" on {}", a.host),
        (None, Some(excerpt)) => format!("went to {}, and {excerpt}\n", a.url),
        (None, None) => format!("went to {}", a.url),
    };
    let repeated = if a.count > 1 {
        format!(
            "\nRepeated: {} times, the last on {}",
            a.count,
            local(&a.last_seen, tz)
        )
    } else {
        String::new()
    };
    let update = if kind == "escalation" {
        "This alert was raised again because it kept happening.\n\n"
    } else {
        ""
    };
    let subject = format!(
        "{severity} safeguarding alert ({}): {} {}",
        a.theme,
        a.person
            .as_deref()
            .or(a.user.as_deref())
            .unwrap_or(&a.client_ip),
        if a.count > 1 {
            format!("x{}", a.count)
        } else {
            String::new()
        }
    )
    .trim_end()
    .to_owned();
    let link = alert_link(settings, a.id)
        .map(|l| format!("\nOpen the alert: {l}\n"))
        .unwrap_or_default();
    let site = a.site.as_deref().unwrap_or("the school");
    let text = format!(
        "{update}The web filter at {school} matched the {theme} safeguarding theme.\n\n\
         Who: {who}, on device {ip}\n\
         What: {what} (matched \"{term}\")\n\
         When: {when}{repeated}\n\
         Where: {site}\n\
         Severity: {sev}\n{link}\n\
         The policy asks for an alert when this theme is matched for the {role} role. Please \
         follow the school's safeguarding procedure; the surrounding activity is on the admin \
         page.\n",
        theme = a.theme,
        ip = a.client_ip,
        term = a.term,
        when = local(&a.first_seen, tz),
        sev = SEVERITIES
            .iter()
            .find(|s| **s == a.severity)
            .unwrap_or(&"medium"),
        role = a.role,
    );
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"></head><body><pre style=\"font-family:sans-serif;white-space:pre-wrap\">{}</pre></body></html>",
        esc(&text)
    );
    (subject, text, html)
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("outbox", &self.outbox)
            .finish_non_exhaustive()
    }
}
