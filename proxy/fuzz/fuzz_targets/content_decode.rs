//! The `Content-Encoding` decoders (`proxy/src/content/decode.rs`) fed any bytes in any
//! pieces: the first byte picks the encoding, the second the piece size. Nothing panics and
//! nothing decodes past the budget.
#![no_main]

#[path = "../../src/content/decode.rs"]
#[allow(dead_code)]
mod decode;

use libfuzzer_sys::fuzz_target;

const BUDGET: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let [e, piece, body @ ..] = data else { return };
    let encoding = ["gzip", "deflate", "br", "zstd", "gzip, br", "identity"][usize::from(*e) % 6];
    let piece = usize::from(*piece).max(1);
    let Ok(mut d) = decode::Decoder::new(Some(encoding), BUDGET) else { return };
    let mut out = Vec::new();
    for chunk in body.chunks(piece) {
        if d.push(chunk, &mut out).is_err() {
            break;
        }
    }
    let _ = d.finish(&mut out);
    assert!(out.len() <= BUDGET);
});
