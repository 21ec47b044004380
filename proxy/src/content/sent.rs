//! What a person sends: the text fields of a form (URL-encoded or multipart), a JSON body
//! (the prompt an AI chat's page posts) or plain text, read before the request goes on.
//!
//! The first `scan_request_kib` of the body is held, read in passages against the themes
//! (one passage is enough to fire: these are the person's own words, as a search is) and
//! then, if the role's theme setting blocks, the request is refused with the block page
//! (and the help a child needs); otherwise it goes on, held part first, and the hit is
//! reported like a page's. File parts of a multipart form are not read.

use super::decode;
use super::text::{self, Piece};
use crate::body::Body;
use bytes::Bytes;
use gatehouse_rules::content::{ContentFinding, ContentScan};
use gatehouse_rules::Snapshot;
use http_body_util::BodyExt as _;
use hyper::{header, Method, Request};
use std::collections::VecDeque;
use std::time::Duration;

/// How a request body is read.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Form {
    UrlEncoded,
    Multipart {
        boundary: String,
    },
    /// JSON (`application/json`, `text/json`, `+json`, NDJSON), with its charset if named.
    Json(Option<String>),
    Plain(Option<String>),
}

fn form_of(req: &Request<Body>) -> Option<Form> {
    let Some(ctype) = req.headers().get(header::CONTENT_TYPE) else {
        // No type: whatever a script posts is read as plain text.
        let sends = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH);
        return sends.then_some(Form::Plain(None));
    };
    let ctype = String::from_utf8_lossy(ctype.as_bytes());
    let essence = ctype.split(';').next()?.trim().to_ascii_lowercase();
    let param = |name: &str| {
        ctype
            .split(';')
            .skip(1)
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().trim_matches('"').to_owned())
    };
    Some(match essence.as_str() {
        "application/x-www-form-urlencoded" => Form::UrlEncoded,
        "multipart/form-data" => Form::Multipart {
            boundary: param("boundary")?,
        },
        "text/plain" | "" => Form::Plain(param("charset")),
        e if e.ends_with("json") => Form::Json(param("charset")),
        _ => return None,
    })
}

/// The request after its body was read, and what its text hit (if it was read).
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "once per request, moved once; the request is the common case"
)]
pub enum Read {
    /// Go on with this request (its body whole again).
    On(Request<Body>, Option<ContentFinding>),
    /// The client's body failed (cut off, malformed) or came too slowly.
    BadBody,
}

/// Holds and reads the first `limit` bytes of a request's body, if it is text a person
/// typed; the request comes back with its body whole.
pub async fn read(snap: &Snapshot, req: Request<Body>, limit: usize, wait: Duration) -> Read {
    let Some(form) = form_of(&req).filter(|_| limit > 0) else {
        return Read::On(req, None);
    };
    let encoding = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    let (parts, mut body) = req.into_parts();
    let mut held: VecDeque<Bytes> = VecDeque::new();
    let mut size = 0usize;
    let mut ended = false;
    let reading = async {
        while size < limit {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        size += data.len();
                        held.push_back(data);
                    }
                }
                Some(Err(_)) => return false,
                None => {
                    ended = true;
                    break;
                }
            }
        }
        true
    };
    match tokio::time::timeout(wait, reading).await {
        Ok(true) => {}
        Ok(false) | Err(_) => return Read::BadBody,
    }
    let bytes: Vec<u8> = held.iter().flat_map(|b| b.iter().copied()).collect();
    // A body sent compressed is read decompressed (any case of the encoding's name).
    let mut decoded = Vec::new();
    let text_of: &[u8] = match decode::Decoder::new(encoding.as_deref(), limit) {
        Ok(mut d) => {
            if d.push(&bytes, &mut decoded).is_ok() {
                let _ = d.finish(&mut decoded);
            }
            &decoded
        }
        Err(_) => &[],
    };
    let finding = scan(snap, &form, &text_of[..text_of.len().min(limit)]);
    let body = if ended {
        crate::body::full(Bytes::from(bytes))
    } else {
        http_body_util::BodyExt::boxed(crate::body::Prefixed {
            held,
            failed: None,
            rest: body,
        })
    };
    Read::On(Request::from_parts(parts, body), Some(finding))
}

fn scan(snap: &Snapshot, form: &Form, body: &[u8]) -> ContentFinding {
    let themes = snap.themes();
    let mut scan = ContentScan::sent();
    let mut sink = |piece: Piece<'_>| match piece {
        Piece::Text(t) => scan.push(themes, t),
        Piece::Break => scan.push_break(themes),
    };
    match form {
        Form::UrlEncoded => {
            for (_, value) in crate::pages::form_fields(body) {
                sink(Piece::Text(&value));
                sink(Piece::Break);
            }
        }
        Form::Multipart { boundary } => {
            for part in multipart_text_fields(body, boundary) {
                sink(Piece::Text(&part));
                sink(Piece::Break);
            }
        }
        Form::Json(charset) => {
            let mut reader = text::TextReader::new(text::Kind::Json, charset.as_deref());
            reader.push(body, &mut sink);
            reader.finish(&mut sink);
        }
        Form::Plain(charset) => {
            let mut reader = text::TextReader::new(text::Kind::Plain, charset.as_deref());
            reader.push(body, &mut sink);
            reader.finish(&mut sink);
        }
    }
    scan.finish(themes)
}

/// The values of a multipart form's text fields (parts without a file name, or with a
/// text type).
fn multipart_text_fields(body: &[u8], boundary: &str) -> Vec<String> {
    let delimiter = format!("--{boundary}");
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    for part in text.split(delimiter.as_str()).skip(1) {
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let head = head.to_ascii_lowercase();
        let file = head.contains("filename=");
        let textual = head
            .lines()
            .find(|l| l.starts_with("content-type:"))
            .is_none_or(|l| l.contains("text/"));
        if file && !textual {
            continue;
        }
        let value = value.strip_suffix("\r\n").unwrap_or(value);
        out.push(value.to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_text_fields_are_read_and_files_are_not() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"post\"\r\n\r\nI want to die\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\nkill myself\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"notes\"; filename=\"n.txt\"\r\nContent-Type: text/plain\r\n\r\nnotes\r\n\
                    --XyZ--\r\n";
        assert_eq!(
            multipart_text_fields(body.as_bytes(), "XyZ"),
            vec!["I want to die".to_owned(), "notes".to_owned()]
        );
    }
}
