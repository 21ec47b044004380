//! Downloads checked against the role's file rules as the response starts: the first bytes
//! are held (at most [`files::SNIFF_BYTES`], undoing a `Content-Encoding` on a copy) and
//! read for what the file really is (`gatehouse_rules::files`), whatever its name or
//! `Content-Type` say; a kind the role blocks (or warns on: it needs IT's approval) gets
//! the download page with a review form. A download longer than the role's limit is refused
//! before it starts when its length is known, and cut where it passes the limit when not
//! (the client sees a failed download, never a short file that looks whole).

use crate::body::{Body, BodyError};
use crate::content::decode;
use bytes::Bytes;
use gatehouse_rules::files::{self, FileKind};
use gatehouse_rules::policy::RolePolicy;
use gatehouse_rules::{Action, ActionSpec};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::{header, Response};
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// How long the first bytes of a download are waited for, at most.
const SNIFF_WAIT: Duration = Duration::from_secs(2);

/// What the check found.
#[derive(Debug)]
pub enum Checked {
    /// Deliver this response; the file's kind (if one of the kinds) and its setting.
    Deliver(Response<Body>, Option<(FileKind, ActionSpec)>),
    /// Refused: why, for the person and the log, and the kind.
    Refused {
        why: String,
        kind: Option<FileKind>,
        spec: Option<ActionSpec>,
    },
}

/// Checks a response against `role`'s file rules (`path` is the URL's path).
pub async fn check(role: &RolePolicy, path: &str, res: Response<Body>, wait: Duration) -> Checked {
    let max = role.max_download_bytes;
    let length: Option<u64> = res
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    // A range of a larger file counts as the whole file (`Content-Range: bytes 0-9/total`):
    // a download manager must not fetch a large file in pieces under the limit.
    let total: Option<u64> = res
        .headers()
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit_once('/'))
        .and_then(|(_, t)| t.trim().parse().ok());
    let length = total.or(length);
    if let (Some(max), Some(length)) = (max, length) {
        if length > max {
            return Checked::Refused {
                why: format!(
                    "It is {} MiB; downloads for your role are limited to {} MiB.",
                    length.div_ceil(1 << 20),
                    max >> 20
                ),
                kind: None,
                spec: None,
            };
        }
    }
    let sniffing = FileKind::ALL
        .iter()
        .any(|&k| role.file_action(k) != ActionSpec::Plain(Action::Allow));
    let encoding = res
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (parts, mut body) = res.into_parts();
    let mut held: VecDeque<Bytes> = VecDeque::new();
    let mut found = None;
    let mut failed = None;
    if sniffing {
        let mut head = Vec::new();
        let decoded = |head: &[u8]| -> Vec<u8> {
            match decode::Decoder::new(encoding.as_deref(), files::SNIFF_BYTES * 8) {
                Ok(mut d) => {
                    let mut out = Vec::new();
                    // The decoder may hold its output until told the input ended.
                    if d.push(head, &mut out).is_ok() {
                        let _ = d.finish(&mut out);
                    }
                    out
                }
                Err(_) => head.to_vec(),
            }
        };
        // Most kinds show in their first 16 bytes; a ZIP's first name and an MPEG-TS's
        // second packet need more. Whatever the type says (a "text/plain" can be a
        // program), the first bytes decide.
        let enough = |d: &[u8]| {
            d.len() >= files::SNIFF_BYTES
                || (d.len() >= 16 && !d.starts_with(b"PK") && d[0] != 0x47)
        };
        let reading = async {
            while !enough(&decoded(&head)) {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            let room = (files::SNIFF_BYTES * 4).saturating_sub(head.len());
                            head.extend_from_slice(&data[..data.len().min(room)]);
                            held.push_back(data);
                        }
                    }
                    Some(Err(e)) => {
                        failed = Some(e);
                        break;
                    }
                    None => break,
                }
            }
        };
        // An origin that sends a few bytes and stalls is judged on what it sent (a stream
        // that starts slowly waits at most this long).
        let _ = tokio::time::timeout(SNIFF_WAIT.min(wait), reading).await;
        let decoded = decoded(&head);
        found = files::sniff(&decoded, path).map(|k| (k, role.file_action(k)));
        if let Some((kind, spec)) = found {
            if matches!(spec.action(), Action::Block | Action::Warn) {
                return Checked::Refused {
                    why: format!(
                        "It is {} file, which your role cannot download without the IT team's approval.",
                        article(kind)
                    ),
                    kind: Some(kind),
                    spec: Some(spec),
                };
            }
        }
    }
    let body = Checking {
        inner: crate::body::Prefixed {
            held,
            failed,
            rest: body,
        },
        sent: 0,
        max,
    };
    Checked::Deliver(Response::from_parts(parts, body.boxed()), found)
}

fn article(kind: FileKind) -> String {
    match kind {
        FileKind::Executable => "a program (executable)".to_owned(),
        FileKind::Installer => "an installer".to_owned(),
        FileKind::Archive => "an archive".to_owned(),
        FileKind::Audio => "an audio".to_owned(),
        k => format!("a {}", k.name().replace('-', " ")),
    }
}

/// The held first frames, then the rest, failing past the size limit.
struct Checking {
    /// The frames held while sniffing, the origin's error met then, and the rest.
    inner: crate::body::Prefixed,
    sent: u64,
    max: Option<u64>,
}

impl HttpBody for Checking {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &frame {
            if let Some(data) = f.data_ref() {
                self.sent += data.len() as u64;
                if self.max.is_some_and(|max| self.sent > max) {
                    crate::metrics::get()
                        .refused
                        .with_label_values(&["download-limit"])
                        .inc();
                    return Poll::Ready(Some(Err(BodyError::Cut(
                        "the download passed the role's size limit",
                    ))));
                }
            }
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
