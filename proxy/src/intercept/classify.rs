//! What a client sends first inside a CONNECT tunnel it asked the filter to decrypt. Only
//! two answers let the bytes through: a TLS handshake record (intercepted) or an HTTP request
//! line (served by the filter as plain HTTP to the tunnel's host). Everything else is closed
//! and logged; nothing is ever relayed unseen. The decision waits for as many bytes as it
//! needs, however the client splits its writes.

/// The bytes read so far are...
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Classified {
    /// a TLS handshake record header (`16 03 0x`).
    Tls,
    /// an HTTP request line's method and the space after it.
    Http,
    /// not yet decidable: read more.
    NeedMore,
    /// neither: the reason, for the log.
    Other(&'static str),
}

/// The longest method token accepted (`PROPPATCH`, `MKCALENDAR`... are shorter).
pub const MAX_METHOD: usize = 20;

/// The most bytes [`classify`] ever needs to decide.
pub const MAX_PREFIX: usize = MAX_METHOD + 1;

/// Classifies the first bytes of a tunnel. Never needs more than [`MAX_PREFIX`] bytes.
pub fn classify(prefix: &[u8]) -> Classified {
    let Some(&first) = prefix.first() else {
        return Classified::NeedMore;
    };
    if first == 0x16 {
        return match prefix.get(1..3) {
            None if prefix.get(1).is_none_or(|&b| b == 0x03) => Classified::NeedMore,
            Some([0x03, 0x00..=0x04]) => Classified::Tls,
            _ => Classified::Other("a TLS record of an unknown version"),
        };
    }
    if (0x14..=0x17).contains(&first) {
        return Classified::Other("a TLS record that is not a handshake");
    }
    for (i, &b) in prefix.iter().enumerate().take(MAX_PREFIX) {
        match b {
            b'A'..=b'Z' | b'-' | b'_' if i < MAX_METHOD => continue,
            b' ' if i > 0 => return Classified::Http,
            _ => return Classified::Other("neither TLS nor an HTTP request"),
        }
    }
    if prefix.len() >= MAX_PREFIX {
        Classified::Other("neither TLS nor an HTTP request")
    } else {
        Classified::NeedMore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_of_first_bytes() {
        let cases: &[(&[u8], Classified)] = &[
            (b"", Classified::NeedMore),
            (b"\x16", Classified::NeedMore),
            (b"\x16\x03", Classified::NeedMore),
            (b"\x16\x03\x01", Classified::Tls),
            (b"\x16\x03\x03\x02\x00\x01", Classified::Tls),
            (
                b"\x16\x02",
                Classified::Other("a TLS record of an unknown version"),
            ),
            (
                b"\x16\x03\x09",
                Classified::Other("a TLS record of an unknown version"),
            ),
            (
                b"\x17\x03\x03",
                Classified::Other("a TLS record that is not a handshake"),
            ),
            (b"G", Classified::NeedMore),
            (b"GE", Classified::NeedMore),
            (b"GET", Classified::NeedMore),
            (b"GET ", Classified::Http),
            (b"POST /x HTTP/1.1", Classified::Http),
            (b"PROPFIND / HTTP/1.1", Classified::Http),
            (
                b"get / HTTP/1.1",
                Classified::Other("neither TLS nor an HTTP request"),
            ),
            (
                b" GET",
                Classified::Other("neither TLS nor an HTTP request"),
            ),
            (
                b"SSH-2.0-OpenSSH_9.2",
                Classified::Other("neither TLS nor an HTTP request"),
            ),
            (
                b"\x00\x00\x00",
                Classified::Other("neither TLS nor an HTTP request"),
            ),
            (
                b"\x05\x01\x00",
                Classified::Other("neither TLS nor an HTTP request"),
            ),
            (b"PRI * HTTP/2.0", Classified::Http),
            (b"AAAAAAAAAAAAAAAAAAAA", Classified::NeedMore),
            (
                b"AAAAAAAAAAAAAAAAAAAAA",
                Classified::Other("neither TLS nor an HTTP request"),
            ),
            (b"AAAAAAAAAAAAAAAAAAAA ", Classified::Http),
        ];
        for (bytes, expected) in cases {
            assert_eq!(classify(bytes), *expected, "{bytes:?}");
        }
    }

    /// Whatever the split, feeding the bytes one at a time reaches the same answer as
    /// feeding them whole, and never asks for more than `MAX_PREFIX` bytes.
    #[test]
    fn any_split_reaches_the_whole_answer() {
        let inputs: &[&[u8]] = &[
            b"\x16\x03\x01\x02\x00",
            b"GET / HTTP/1.1\r\n",
            b"POST /x HTTP/1.1\r\n",
            b"SSH-2.0-x",
            b"\x16\x02\x00",
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        ];
        for input in inputs {
            let whole = classify(input);
            let mut answer = Classified::NeedMore;
            for end in 1..=input.len() {
                answer = classify(&input[..end]);
                if answer != Classified::NeedMore {
                    assert!(end <= MAX_PREFIX);
                    break;
                }
            }
            assert_eq!(answer, whole, "{input:?}");
        }
    }
}
