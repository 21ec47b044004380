//! Time-based one-time codes (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits), the second
//! factor of local admin accounts. The secret is 20 random bytes, shown once as base32 and as
//! an `otpauth://` link for an authenticator app (`gatehouse admin totp NAME`).

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SecureRandom as _;

const STEP_SECS: u64 = 30;
const DIGITS: u32 = 6;
/// Steps either side of now that are accepted (a phone's clock a little off).
const DRIFT: u64 = 1;

/// A new secret, base32 (RFC 4648, no padding), or `None` if the system's generator failed.
pub fn new_secret() -> Option<String> {
    let mut bytes = [0u8; 20];
    aws_lc_rs::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(base32(&bytes))
}

/// The link an authenticator app reads (as a QR code, or pasted).
pub fn link(issuer: &str, account: &str, secret: &str) -> String {
    let enc = |s: &str| crate::html::url_value(s);
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

/// The code for time step `step` (Unix seconds / 30).
pub fn code(secret: &[u8], step: u64) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let word = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    word % 10u32.pow(DIGITS)
}

/// The step a code given at `now` (Unix seconds) matches, if it matches one within the
/// drift allowed and after `used` (the last step this account signed in with: a code is
/// good once).
pub fn check(secret_b32: &str, given: &str, now: u64, used: Option<u64>) -> Option<u64> {
    let given = given.trim().replace(' ', "");
    if given.len() != DIGITS as usize || !given.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let given: u32 = given.parse().ok()?;
    let secret = unbase32(secret_b32)?;
    let now_step = now / STEP_SECS;
    (now_step.saturating_sub(DRIFT)..=now_step + DRIFT)
        .filter(|step| used.is_none_or(|u| *step > u))
        .find(|step| {
            let expected = code(&secret, *step);
            // Compared in constant time.
            aws_lc_rs::constant_time::verify_slices_are_equal(
                &expected.to_be_bytes(),
                &given.to_be_bytes(),
            )
            .is_ok()
        })
}

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut buffer: u64 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

fn unbase32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buffer: u64 = 0;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase())?;
        buffer = (buffer << 5) | v as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (its 8-digit codes, last 6 digits).
    #[test]
    fn rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (time, eight) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(code(secret, time / 30), eight % 1_000_000, "{time}");
        }
    }

    #[test]
    fn base32_round_trips_and_codes_are_checked_once() {
        let secret = b"12345678901234567890";
        let b32 = base32(secret);
        assert_eq!(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(unbase32(&b32).unwrap(), secret);
        let now = 1_234_567_890;
        let good = format!("{:06}", code(secret, now / 30));
        let step = check(&b32, &good, now, None).unwrap();
        // Used once: not again.
        assert_eq!(check(&b32, &good, now, Some(step)), None);
        // The previous step's code still works (clock drift), two steps back does not.
        let previous = format!("{:06}", code(secret, now / 30 - 1));
        assert!(check(&b32, &previous, now, None).is_some());
        let old = format!("{:06}", code(secret, now / 30 - 2));
        assert!(check(&b32, &old, now, None).is_none());
        for bad in ["", "12345", "1234567", "abcdef", "00000a"] {
            assert!(check(&b32, bad, now, None).is_none(), "{bad}");
        }
        assert!(new_secret().is_some_and(|s| s.len() == 32));
    }
}
