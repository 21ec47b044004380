//! Reading what a page and an AI chat say, as the response streams to the client.
//!
//! An allowed response whose `Content-Type` is text (HTML, XHTML, plain text, JSON, an
//! event stream) is passed on frame by frame, unchanged and undelayed; a copy of each frame
//! is decoded (`Content-Encoding`, then the charset), reduced to the text a person reads
//! ([`text`]) and read in passages against the themes (`gatehouse_rules::content`). When
//! the body ends (or the client goes), what its text hit becomes one event, and an alert
//! when the role's theme setting alerts, carrying the page's title and the passages that
//! matched.
//!
//! This is **alert only**: the page is never held back, so reading it adds no delay; the
//! DSL learns of a harmful page while the pupil is still on it. Reading stops at the
//! budget (`scan_content_kib`, 2 MiB of decoded body by default); a body past it, in an
//! encoding the filter does not decode or corrupt, streams on untouched and is counted.

pub mod decode;
pub mod sent;
pub mod text;

use crate::body::Body;
use crate::events::Event;
use crate::handler::Shared;
use crate::metrics;
use bytes::Bytes;
use gatehouse_rules::content::{ContentFinding, ContentScan};
use gatehouse_rules::{RoleId, Snapshot};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::{header, Response};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// What reading a response's text needs to report on it.
#[derive(Debug)]
pub struct Plan {
    pub shared: Arc<Shared>,
    pub snap: Arc<Snapshot>,
    pub role: RoleId,
    /// The request's event, as recorded: the report is a copy of it.
    pub event: Event,
}

/// Whether a response's body is text that is read (and reading is on).
pub fn reads(settings: &crate::settings::ProxySettings, headers: &hyper::HeaderMap) -> bool {
    settings.scan_content_kib > 0
        && text::Kind::of(
            headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        )
        .is_some()
}

/// A reader for a response's body, if it is text that is read; `None` for other bodies
/// (and for encodings the filter does not decode, counted).
fn reader_for(plan: &Plan, res: &Response<Body>) -> Option<(Reader, text::Kind)> {
    let budget = plan.shared.settings.scan_content_kib.saturating_mul(1024);
    if budget == 0 {
        return None;
    }
    let headers = res.headers();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let kind = text::Kind::of(content_type)?;
    let charset = content_type
        .split(';')
        .skip(1)
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, v)| v.trim().trim_matches('"').to_owned());
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match decode::Decoder::new(encoding.as_deref(), budget) {
        Ok(decoder) => Some((
            Reader {
                decoder,
                text: text::TextReader::new(kind, charset.as_deref()).with_answer_keys(
                    plan.snap
                        .ai_services()
                        .lookup(&plan.event.host)
                        .and_then(|id| plan.snap.ai_services().get(id))
                        .map(|s| s.answer_keys.clone())
                        .unwrap_or_default(),
                ),
                scan: ContentScan::new(),
                decoded: Vec::new(),
                stopped: None,
                spent: Duration::ZERO,
                binary: BinaryCheck::default(),
            },
            kind,
        )),
        Err(stop) => {
            metrics::get()
                .content_bodies
                .with_label_values(&[stop.label()])
                .inc();
            None
        }
    }
}

/// The response, its body read on the way through if it is text (alert only).
pub fn scan(plan: Plan, res: Response<Body>) -> Response<Body> {
    let Some((reader, _)) = reader_for(&plan, &res) else {
        return res;
    };
    res.map(|inner| {
        http_body_util::BodyExt::boxed(ScannedBody {
            inner,
            held: VecDeque::new(),
            failed: None,
            reader: Some(reader),
            plan: Some(plan),
        })
    })
}

/// What holding a page found.
#[derive(Debug)]
pub enum Held {
    /// Deliver this response (the page was clean, only logged or alerted, or longer than
    /// what is held: the rest is read as it streams).
    Deliver(Response<Body>),
    /// The whole page was read and a theme the role blocks fired: it is not delivered.
    Block {
        finding: ContentFinding,
        title: String,
    },
}

/// Holds the first `limit` bytes of a text response (or all of it, if shorter) and reads
/// them before anything is delivered. An event stream (an AI chat's answer) is never held.
pub async fn hold(plan: Plan, res: Response<Body>, limit: usize, wait: Duration) -> Held {
    use http_body_util::BodyExt as _;
    let Some((mut reader, kind)) = reader_for(&plan, &res) else {
        return Held::Deliver(res);
    };
    if kind == text::Kind::EventStream {
        return Held::Deliver(scan(plan, res));
    }
    let (parts, mut body) = res.into_parts();
    let mut held: VecDeque<Bytes> = VecDeque::new();
    let mut size = 0usize;
    let mut ended = false;
    let mut failed = None;
    let snap = Arc::clone(&plan.snap);
    let reading = async {
        while size < limit {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        size += data.len();
                        reader.push(&snap, &data);
                        held.push_back(data);
                    }
                }
                // The origin's stream broke: the client gets the break too, after what
                // was held (never a short page that looks whole).
                Some(Err(e)) => {
                    failed = Some(e);
                    break;
                }
                None => {
                    ended = true;
                    break;
                }
            }
        }
    };
    // A page that trickles is delivered as far as it came, and read on as it streams.
    let _ = tokio::time::timeout(wait, reading).await;
    if !ended {
        let body = ScannedBody {
            inner: body,
            held,
            failed,
            reader: Some(reader),
            plan: Some(plan),
        };
        return Held::Deliver(Response::from_parts(
            parts,
            http_body_util::BodyExt::boxed(body),
        ));
    }
    let (finding, title, stopped, spent) = reader.finish(&snap, true);
    count(&finding, stopped, spent);
    let verdict = gatehouse_rules::content::verdict(&snap, plan.role, &finding);
    if verdict.action == gatehouse_rules::Action::Block {
        return Held::Block { finding, title };
    }
    report(plan, &finding, &title);
    let whole: Vec<u8> = held.iter().flat_map(|b| b.iter().copied()).collect();
    Held::Deliver(Response::from_parts(parts, crate::body::full(whole)))
}

fn count(finding: &ContentFinding, stopped: Option<decode::Stop>, spent: Duration) {
    let m = metrics::get();
    m.content_seconds.observe(spent.as_secs_f64());
    m.content_bytes.inc_by(finding.text_bytes);
    let outcome = match stopped {
        Some(stop) => stop.label(),
        None if finding.unread_bytes > 0 => "limit",
        None => "scanned",
    };
    m.content_bodies.with_label_values(&[outcome]).inc();
}

/// Decoded bytes of one frame past which reading it is treated as blocking work.
const LONG_STEP: usize = 256 * 1024;

/// Runs `work` where it may take a while: on a worker of the multi-threaded runtime, marked
/// as blocking (its other tasks are moved to other workers); elsewhere, as it is.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// One body's decoding, text and passages.
struct Reader {
    decoder: decode::Decoder,
    text: text::TextReader,
    scan: ContentScan,
    decoded: Vec<u8>,
    /// Why reading stopped before the end, if it did.
    stopped: Option<decode::Stop>,
    binary: BinaryCheck,
    spent: Duration,
}

impl Reader {
    fn push(&mut self, snap: &Snapshot, chunk: &[u8]) {
        if self.stopped.is_some() {
            return;
        }
        let started = Instant::now();
        self.decoded.clear();
        let result = self.decoder.push(chunk, &mut self.decoded);
        if self.decoded.len() > LONG_STEP {
            // A frame that decoded to a lot of text (a compressed page, a bomb up to the
            // budget) is read with the worker marked as blocking, so the connections that
            // share it move on meanwhile.
            blocking(|| self.read_decoded(snap));
        } else {
            self.read_decoded(snap);
        }
        if let Err(stop) = result {
            self.stopped = Some(stop);
        }
        self.decoded.shrink_to(64 * 1024);
        self.spent += started.elapsed();
    }

    fn read_decoded(&mut self, snap: &Snapshot) {
        let themes = snap.themes();
        let (scan, binary) = (&mut self.scan, &mut self.binary);
        self.text.push(&self.decoded, &mut |piece| {
            feed(scan, binary, themes, piece)
        });
        if self.binary.is_binary() {
            self.stopped = Some(decode::Stop::Binary);
        }
    }

    fn finish(
        mut self,
        snap: &Snapshot,
        complete: bool,
    ) -> (ContentFinding, String, Option<decode::Stop>, Duration) {
        let started = Instant::now();
        if self.stopped.is_none() {
            // A body cut short still gives what its decoder holds; only a complete one is
            // called corrupt if it does not end as its encoding says.
            self.decoded.clear();
            let result = self.decoder.finish(&mut self.decoded);
            self.read_decoded(snap);
            if let (Err(stop), true) = (result, complete) {
                self.stopped = Some(stop);
            }
        }
        let themes = snap.themes();
        let (scan, binary) = (&mut self.scan, &mut self.binary);
        self.text
            .finish(&mut |piece| feed(scan, binary, themes, piece));
        let title = self
            .text
            .title
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let mut finding = self.scan.finish(themes);
        if self.binary.is_binary() {
            // Bytes labelled as text are not text: what they "said" is noise.
            self.stopped = Some(decode::Stop::Binary);
            finding = ContentFinding {
                text_bytes: finding.text_bytes,
                ..ContentFinding::default()
            };
        }
        (finding, title, self.stopped, self.spent + started.elapsed())
    }
}

/// One piece of text to the passages, unless the text has turned out to be binary.
fn feed(
    scan: &mut ContentScan,
    binary: &mut BinaryCheck,
    themes: &gatehouse_rules::search::ThemeMatcher,
    piece: text::Piece<'_>,
) {
    match piece {
        text::Piece::Text(t) => {
            binary.look(t);
            if !binary.is_binary() {
                scan.push(themes, t);
            }
        }
        text::Piece::Break => {
            if !binary.is_binary() {
                scan.push_break(themes);
            }
        }
    }
}

/// Whether a body labelled as text is binary: among its first characters, more than one in
/// ten is a control character or an undecodable byte (found by attacking: random bytes served
/// as `text/html` read as words and raised a false alert).
#[derive(Debug, Default)]
struct BinaryCheck {
    looked: usize,
    odd: usize,
}

impl BinaryCheck {
    const LOOK: usize = 4096;

    fn look(&mut self, text: &str) {
        for c in text.chars() {
            if self.looked >= Self::LOOK {
                return;
            }
            self.looked += 1;
            if c == '\u{fffd}' || (c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
                self.odd += 1;
            }
        }
    }

    fn is_binary(&self) -> bool {
        self.looked >= 64 && self.odd * 10 > self.looked
    }
}

/// A response body passed on unchanged, its text read on the way (frames already read
/// while the page was held come first).
struct ScannedBody {
    inner: Body,
    held: VecDeque<Bytes>,
    /// The origin's error met while the page was held, given after the held frames.
    failed: Option<crate::body::BodyError>,
    reader: Option<Reader>,
    plan: Option<Plan>,
}

impl ScannedBody {
    fn end(&mut self, complete: bool) {
        let (Some(reader), Some(plan)) = (self.reader.take(), self.plan.take()) else {
            return;
        };
        let (finding, title, stopped, spent) = reader.finish(&plan.snap, complete);
        count(&finding, stopped, spent);
        report(plan, &finding, &title);
    }
}

impl HttpBody for ScannedBody {
    type Data = Bytes;
    type Error = crate::body::BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, crate::body::BodyError>>> {
        let this = &mut *self;
        if let Some(data) = this.held.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if let Some(e) = this.failed.take() {
            this.end(false);
            return Poll::Ready(Some(Err(e)));
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(reader), Some(plan)) =
                    (frame.data_ref(), this.reader.as_mut(), this.plan.as_ref())
                {
                    reader.push(&plan.snap, data);
                }
                // A body of known length ends with its last frame: the server may never
                // poll again for the end.
                if this.inner.is_end_stream() {
                    this.end(true);
                }
            }
            Poll::Ready(None) => this.end(true),
            Poll::Ready(Some(Err(_))) => this.end(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_empty() && self.failed.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        crate::body::held_then(&self.held, self.inner.size_hint())
    }
}

impl Drop for ScannedBody {
    /// The client went before the end: what was read is still reported.
    fn drop(&mut self) {
        self.end(false);
    }
}

/// The event of a body whose text hit a theme (nothing for one that hit none), alerted as
/// the role's theme setting says.
fn report(plan: Plan, finding: &ContentFinding, title: &str) {
    if finding.hit.is_empty() {
        return;
    }
    let mut event = plan.event;
    event.request_id = crate::pages::request_id();
    event.time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    event.search_term = None;
    event.categories = Vec::new();
    event.alert = None;
    event.sensitive = false;
    event.status = 0;
    // The page's own hits only (the request's event may carry what the person sent).
    event.themes = Vec::new();
    event.terms = Vec::new();
    event.excerpt = None;
    annotate(
        &mut event,
        &plan.snap,
        plan.role,
        finding,
        title,
        Source::Page,
    );
    let alerting = event.alert.is_some().then(|| event.clone());
    let shared = plan.shared;
    shared.events.send(event);
    if let Some(event) = alerting {
        let pipeline = Arc::clone(&shared.safeguarding);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(move || pipeline.raise(&event));
            }
            Err(_) => pipeline.raise(&event),
        }
    }
}

/// Whose text it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A page or an AI chat's answer, delivered as it streamed.
    Page,
    /// What the person sent, let through.
    Sent,
    /// What the person sent, refused.
    SentBlocked,
    /// A page held and read before delivery, refused.
    PageBlocked,
}

/// Marks `event` with what a text's finding hit, for `role`: the themes (the deciding one
/// first), the phrases, the alert and rule the role's settings give, a reason, and the
/// excerpt the alert carries (never the traffic log). Counted in the metrics.
pub fn annotate(
    event: &mut Event,
    snap: &Snapshot,
    role: RoleId,
    finding: &ContentFinding,
    title: &str,
    source: Source,
) {
    let themes = snap.themes();
    let verdict = gatehouse_rules::content::verdict(snap, role, finding);
    let Some(decided) = verdict.theme.or_else(|| finding.hit.iter().next()) else {
        return;
    };
    let m = metrics::get();
    for theme in finding.hit.iter() {
        let outcome = if finding.fired.contains(theme) {
            "fired"
        } else {
            "logged"
        };
        m.content_verdicts
            .with_label_values(&[themes.theme_name(theme), outcome])
            .inc();
    }
    let name = themes.theme_name(decided).to_owned();
    let mut names: Vec<String> = finding
        .hit
        .iter()
        .map(|t| themes.theme_name(t).to_owned())
        .collect();
    names.sort_by_key(|t| *t != name);
    for n in event.themes.drain(..) {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    event.themes = names;
    let mut terms: Vec<String> = finding
        .terms
        .iter()
        .filter(|&&p| themes.phrase_theme(p) == Some(decided))
        .chain(
            finding
                .terms
                .iter()
                .filter(|&&p| themes.phrase_theme(p) != Some(decided)),
        )
        .map(|&p| themes.phrase_text(p).to_owned())
        .collect();
    terms.append(&mut event.terms);
    event.terms = terms;
    let alert = verdict
        .alert
        .map(|s| gatehouse_rules::explain::severity_name(s).to_owned());
    if alert.is_some() {
        if let Some(a) = &alert {
            m.alerts.with_label_values(&[a.as_str()]).inc();
        }
        event.alert = alert;
    }
    event.sensitive |= verdict.sensitive;
    let fired = finding.fired.contains(decided);
    // An AI chat's prompt or answer is named as one.
    let ai = snap
        .ai_services()
        .lookup(&event.host)
        .and_then(|id| snap.ai_services().get(id))
        .map(|s| s.label.as_str());
    let (prefix, whose) = match (source, ai) {
        (Source::Page | Source::PageBlocked, None) => ("content", "The page's text".to_owned()),
        (Source::Sent | Source::SentBlocked, None) => ("sent", "The text sent".to_owned()),
        (Source::Page | Source::PageBlocked, Some(ai)) => ("content", format!("{ai}'s answer")),
        (Source::Sent | Source::SentBlocked, Some(ai)) => {
            ("sent", format!("What was typed into {ai}"))
        }
    };
    event.rule = if fired {
        format!("{prefix}:{name}")
    } else {
        format!("{prefix}:{name}{}", gatehouse_safeguarding::digest::LOWERED)
    };
    let (strong, lowered) = finding
        .counts
        .iter()
        .find(|(t, _, _)| *t == decided)
        .map_or((0, 0), |&(_, s, l)| (s, l));
    let judged = if fired {
        "alerted as the policy says"
    } else {
        "logged only (too few passages, or study, news or help context)"
    };
    let outcome = match source {
        Source::Page => "It was delivered (page text is reported, not held).",
        Source::Sent => "It was sent on.",
        Source::SentBlocked => "It was not sent on.",
        Source::PageBlocked => "It was held and not delivered: the block page was shown.",
    };
    event.reason = format!(
        "{whose} matched {name} in {strong} passages ({lowered} more lowered by study, news or help context) of {} read: {judged}. {outcome}",
        finding.passages
    );
    let passages: Vec<String> = finding
        .excerpts
        .iter()
        .filter(|(t, _)| *t == decided)
        .map(|(_, e)| format!("\"{e}\""))
        .collect();
    let mut excerpt = match (source, ai) {
        (Source::Page | Source::PageBlocked, None) => String::from("the page's text reads:\n  "),
        (Source::Sent | Source::SentBlocked, None) => {
            String::from("what the person sent reads:\n  ")
        }
        (Source::Page | Source::PageBlocked, Some(ai)) => format!("{ai}'s answer reads:\n  "),
        (Source::Sent | Source::SentBlocked, Some(ai)) => {
            format!("what the person typed into {ai} reads:\n  ")
        }
    };
    if !title.is_empty() {
        excerpt.push_str(&format!("Title: \"{title}\"\n  "));
    }
    excerpt.push_str(&passages.join("\n  "));
    event.excerpt = Some(excerpt);
}
