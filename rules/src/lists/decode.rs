//! Text decoding for list files: UTF-8 (with or without a BOM), else ISO-8859-1/Windows-1252.

use std::borrow::Cow;

/// A decoded file and the warning to report, if its encoding was not plain UTF-8.
#[derive(Debug)]
pub struct Decoded<'a> {
    pub text: Cow<'a, str>,
    pub warning: Option<String>,
}

/// Decodes list bytes. Never fails: bytes that are not UTF-8 are read as Windows-1252 (a
/// superset of ISO-8859-1 for printable text), which is what the older European lists use.
pub fn decode(bytes: &[u8]) -> Decoded<'_> {
    let (bytes, bom) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (rest, true),
        None => (bytes, false),
    };
    match std::str::from_utf8(bytes) {
        Ok(text) => Decoded {
            text: Cow::Borrowed(text),
            warning: bom.then(|| "starts with a UTF-8 byte order mark (ignored)".to_owned()),
        },
        Err(e) => {
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            Decoded {
                text,
                warning: Some(format!(
                    "not UTF-8 (first bad byte on line {line}); read as ISO-8859-1/Windows-1252"
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_encoding() {
        let cases: &[(&[u8], &str, bool)] = &[
            (b"plain\n", "plain\n", false),
            (b"\xEF\xBB\xBFbom.example\n", "bom.example\n", true),
            (b"caf\xE9\n", "caf\u{e9}\n", true),
            ("café\n".as_bytes(), "café\n", false),
        ];
        for (bytes, text, warned) in cases {
            let d = decode(bytes);
            assert_eq!(d.text, *text);
            assert_eq!(d.warning.is_some(), *warned, "{text}");
        }
    }

    #[test]
    fn warning_names_the_line() {
        let d = decode(b"ok\nok\nbad \xFF\n");
        assert!(d.warning.unwrap().contains("line 3"));
    }
}
