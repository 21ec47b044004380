//! The CONNECT classification (`proxy/src/intercept/classify.rs`) fed the client's bytes in
//! arbitrary splits, as `intercept::tunnel::first_bytes` reads them: the first byte of the
//! input chooses how many splits, the next ones where they fall, the rest is what the client
//! sends. Whatever the split, the answer is the one for the whole input, it is reached
//! within `MAX_PREFIX` bytes, and a tunnel is only let through as TLS or HTTP when the bytes
//! really start that way.
#![no_main]

#[path = "../../src/intercept/classify.rs"]
#[allow(dead_code)]
mod classify;

use classify::{classify, Classified, MAX_PREFIX};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&splits, rest)) = data.split_first() else { return };
    let splits = (splits % 8) as usize;
    if rest.len() < splits {
        return;
    }
    let (cuts, bytes) = rest.split_at(splits);
    let whole = classify(&bytes[..bytes.len().min(MAX_PREFIX)]);
    // Read as first_bytes does: chunks ending at the cut points, capped at MAX_PREFIX.
    let mut ends: Vec<usize> = cuts.iter().map(|&c| c as usize % (bytes.len() + 1)).collect();
    ends.push(bytes.len());
    ends.sort_unstable();
    let mut answer = Classified::NeedMore;
    for end in ends {
        let end = end.min(MAX_PREFIX);
        answer = classify(&bytes[..end]);
        if answer != Classified::NeedMore {
            break;
        }
    }
    if bytes.len() >= MAX_PREFIX {
        assert_ne!(answer, Classified::NeedMore, "undecided after {MAX_PREFIX} bytes");
    }
    if answer != Classified::NeedMore {
        assert_eq!(answer, whole, "the split changed the answer");
    }
    match answer {
        Classified::Tls => assert!(bytes.len() >= 3 && bytes[0] == 0x16 && bytes[1] == 0x03),
        Classified::Http => {
            let space = bytes.iter().position(|&b| b == b' ').unwrap_or(usize::MAX);
            assert!(space > 0 && space <= 20);
            assert!(bytes[..space].iter().all(|b| b.is_ascii_uppercase() || *b == b'-' || *b == b'_'));
        }
        _ => {}
    }
});
