//! `Content-Encoding` undone as the body streams: gzip, deflate (zlib or raw), br and zstd,
//! each written into a bounded sink, so a decompression bomb costs at most the budget.

use std::io::Write;

/// Why a body's content was not (or no longer) decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// An encoding the filter does not decode (or several stacked).
    Unknown,
    /// The encoded stream is corrupt.
    Corrupt,
    /// The decoded body passed the budget (a large page, or a bomb).
    Budget,
    /// The body is labelled as text but is binary.
    Binary,
}

impl Stop {
    pub fn label(self) -> &'static str {
        match self {
            Stop::Unknown => "encoding",
            Stop::Corrupt => "corrupt",
            Stop::Budget => "limit",
            Stop::Binary => "binary",
        }
    }
}

/// Bytes of buffer a decoder keeps between chunks.
const KEEP: usize = 64 * 1024;

/// Decoded bytes, refusing to hold more than `room`.
#[derive(Debug, Default)]
pub struct Sink {
    pub out: Vec<u8>,
    room: usize,
    pub full: bool,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let take = buf.len().min(self.room);
        if take == 0 && !buf.is_empty() {
            self.full = true;
            return Err(std::io::Error::other("decoded body over the budget"));
        }
        self.out.extend_from_slice(&buf[..take]);
        self.room -= take;
        Ok(take)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Inner {
    Identity,
    /// Deflate waits for its first two bytes to tell zlib from raw.
    DeflatePending(Vec<u8>),
    Gzip(Box<flate2::write::MultiGzDecoder<Sink>>),
    Zlib(Box<flate2::write::ZlibDecoder<Sink>>),
    Raw(Box<flate2::write::DeflateDecoder<Sink>>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<Sink>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, Sink>>),
}

/// One body's decoder.
pub struct Decoder {
    inner: Inner,
    /// For stacked encodings (`gzip, br`): the decoder of the one applied before this one.
    next: Option<Box<Decoder>>,
    /// Decoded bytes still allowed.
    budget: usize,
    identity_sink: Sink,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// A decoder for a `Content-Encoding` header value (absent or `identity`: none).
    pub fn new(encoding: Option<&str>, budget: usize) -> Result<Decoder, Stop> {
        let sink = || Sink {
            out: Vec::new(),
            room: budget,
            full: false,
        };
        // `identity, identity` (or any case, or empty) is no encoding; stacked ones are
        // undone last first (at most three, as a browser would).
        let names: Vec<String> = encoding
            .unwrap_or("")
            .split(',')
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty() && p != "identity")
            .collect();
        if names.len() > 3 {
            return Err(Stop::Unknown);
        }
        let next = match names.split_last() {
            Some((_, before)) if !before.is_empty() => {
                Some(Box::new(Decoder::new(Some(&before.join(",")), budget)?))
            }
            _ => None,
        };
        let name = names.last().cloned();
        let inner = match name.as_deref() {
            None | Some("" | "identity") => Inner::Identity,
            Some("gzip" | "x-gzip") => {
                Inner::Gzip(Box::new(flate2::write::MultiGzDecoder::new(sink())))
            }
            Some("deflate") => Inner::DeflatePending(Vec::new()),
            Some("br") => Inner::Brotli(Box::new(brotli_decompressor::DecompressorWriter::new(
                sink(),
                8192,
            ))),
            Some("zstd") => {
                let mut d = zstd::stream::write::Decoder::new(sink()).map_err(|_| Stop::Unknown)?;
                // An 8 MiB window at most, the limit for zstd over HTTP (RFC 8878).
                d.window_log_max(23).map_err(|_| Stop::Unknown)?;
                Inner::Zstd(Box::new(d))
            }
            Some(_) => return Err(Stop::Unknown),
        };
        Ok(Decoder {
            inner,
            next,
            budget,
            identity_sink: sink(),
        })
    }

    /// Decodes one chunk of the body; the decoded bytes are appended to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), Stop> {
        let Some(next) = self.next.as_mut() else {
            return self.push_one(chunk, out);
        };
        let mut middle = Vec::new();
        let result = Self::push_stage(
            &mut self.inner,
            &mut self.identity_sink,
            self.budget,
            chunk,
            &mut middle,
        );
        next.push(&middle, out)?;
        result
    }

    fn push_stage(
        inner: &mut Inner,
        identity: &mut Sink,
        budget: usize,
        chunk: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Stop> {
        let mut one = Decoder {
            inner: std::mem::replace(inner, Inner::Identity),
            next: None,
            budget,
            identity_sink: std::mem::take(identity),
        };
        let result = one.push_one(chunk, out);
        *inner = one.inner;
        *identity = one.identity_sink;
        result
    }

    /// Ends the stream: what the decoders still held is appended to `out`.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), Stop> {
        let Some(mut next) = self.next.take() else {
            return self.finish_one(out);
        };
        let mut middle = Vec::new();
        let result = self.finish_one(&mut middle);
        next.push(&middle, out)?;
        next.finish(out)?;
        self.next = Some(next);
        result
    }

    fn push_one(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), Stop> {
        if let Inner::DeflatePending(head) = &mut self.inner {
            head.extend_from_slice(chunk);
            if head.len() < 2 {
                return Ok(());
            }
            let head = std::mem::take(head);
            // zlib: CM 8 in the low nibble and a header checksum divisible by 31.
            let zlib =
                head[0] & 0x0f == 8 && (u16::from(head[0]) << 8 | u16::from(head[1])) % 31 == 0;
            let sink = Sink {
                out: Vec::new(),
                room: self.budget,
                full: false,
            };
            self.inner = if zlib {
                Inner::Zlib(Box::new(flate2::write::ZlibDecoder::new(sink)))
            } else {
                Inner::Raw(Box::new(flate2::write::DeflateDecoder::new(sink)))
            };
            return self.push_one(&head, out);
        }
        let result = match &mut self.inner {
            Inner::Identity => self.identity_sink.write_all(chunk),
            Inner::DeflatePending(_) => Ok(()),
            Inner::Gzip(d) => d.write_all(chunk),
            Inner::Zlib(d) => d.write_all(chunk),
            Inner::Raw(d) => d.write_all(chunk),
            Inner::Brotli(d) => d.write_all(chunk),
            Inner::Zstd(d) => d.write_all(chunk),
        };
        self.drain(result, out)
    }

    fn finish_one(&mut self, out: &mut Vec<u8>) -> Result<(), Stop> {
        let result = match &mut self.inner {
            Inner::Identity | Inner::DeflatePending(_) => Ok(()),
            Inner::Gzip(d) => d.try_finish(),
            Inner::Zlib(d) => d.try_finish(),
            Inner::Raw(d) => d.try_finish(),
            Inner::Brotli(d) => d.flush(),
            Inner::Zstd(d) => d.flush(),
        };
        self.drain(result, out)
    }

    /// Moves what the sink holds to `out` and says how the step went.
    fn drain(&mut self, result: std::io::Result<()>, out: &mut Vec<u8>) -> Result<(), Stop> {
        let sink = self.sink();
        out.append(&mut sink.out);
        // A bomb's one large step must not keep its memory for the rest of the body.
        sink.out.shrink_to(KEEP);
        match result {
            Ok(()) => Ok(()),
            Err(_) if sink.full => Err(Stop::Budget),
            Err(_) => Err(Stop::Corrupt),
        }
    }

    fn sink(&mut self) -> &mut Sink {
        match &mut self.inner {
            Inner::Identity | Inner::DeflatePending(_) => &mut self.identity_sink,
            Inner::Gzip(d) => d.get_mut(),
            Inner::Zlib(d) => d.get_mut(),
            Inner::Raw(d) => d.get_mut(),
            Inner::Brotli(d) => d.get_mut(),
            Inner::Zstd(d) => d.get_mut(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode_in_pieces(
        encoding: &str,
        body: &[u8],
        piece: usize,
        budget: usize,
    ) -> (Vec<u8>, Result<(), Stop>) {
        let mut d = Decoder::new(Some(encoding), budget).unwrap();
        let mut out = Vec::new();
        for chunk in body.chunks(piece) {
            if let Err(stop) = d.push(chunk, &mut out) {
                return (out, Err(stop));
            }
        }
        let end = d.finish(&mut out);
        (out, end)
    }

    #[test]
    fn every_encoding_decodes_in_one_byte_pieces() {
        let text = b"how many sleeping pills would kill you ".repeat(50);
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(&text).unwrap();
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&text).unwrap();
        let zstd = zstd::stream::encode_all(&text[..], 3).unwrap();
        for (name, body) in [
            ("gzip", gzip(&text)),
            ("deflate", zlib.finish().unwrap()),
            ("deflate", raw.finish().unwrap()),
            ("zstd", zstd),
            ("identity", text.clone()),
        ] {
            for piece in [1, 7, 1 << 20] {
                let (out, end) = decode_in_pieces(name, &body, piece, 1 << 20);
                assert_eq!(end, Ok(()), "{name} in pieces of {piece}");
                assert_eq!(out, text, "{name} in pieces of {piece}");
            }
        }
    }

    #[test]
    fn a_bomb_stops_at_the_budget_and_a_corrupt_stream_says_so() {
        let bomb = gzip(&vec![b'a'; 50 << 20]);
        let (out, end) = decode_in_pieces("gzip", &bomb, 16 * 1024, 1 << 20);
        assert_eq!(end, Err(Stop::Budget));
        assert!(out.len() <= 1 << 20);
        let mut corrupt = gzip(b"hello world, hello world");
        let n = corrupt.len();
        corrupt[12..n - 8].iter_mut().for_each(|b| *b ^= 0x5a);
        let (_, end) = decode_in_pieces("gzip", &corrupt, 7, 1 << 20);
        assert_eq!(end, Err(Stop::Corrupt));
        assert_eq!(
            Decoder::new(Some("compress"), 10).err(),
            Some(Stop::Unknown)
        );
    }

    #[test]
    fn stacked_encodings_are_undone_last_first() {
        // Found by attacking: `gzip, gzip` was not read, though browsers decode it.
        let text = b"how many sleeping pills would kill you ".repeat(20);
        let twice = gzip(&gzip(&text));
        for piece in [1, 5, 1 << 20] {
            let (out, end) = decode_in_pieces("gzip, GZIP", &twice, piece, 1 << 20);
            assert_eq!(end, Ok(()), "{piece}");
            assert_eq!(out, text);
        }
        let zstd_then_gzip = gzip(&zstd::stream::encode_all(&text[..], 3).unwrap());
        let (out, end) = decode_in_pieces("zstd, gzip", &zstd_then_gzip, 3, 1 << 20);
        assert_eq!((end, out), (Ok(()), text.clone()));
        assert_eq!(
            Decoder::new(Some("gzip,gzip,gzip,gzip"), 10).err(),
            Some(Stop::Unknown)
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// Any bytes under any encoding: no panic, and never more out than the budget.
        #[test]
        fn any_bytes_decode_within_the_budget(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000),
            encoding in proptest::sample::select(vec!["gzip", "deflate", "br", "zstd", "gzip, br", "identity"]),
            piece in 1usize..300,
        ) {
            let (out, _) = decode_in_pieces(encoding, &body, piece, 4096);
            proptest::prop_assert!(out.len() <= 4096);
        }
    }
}
