//! The "continue" link of a warning page: signed (HMAC-SHA256 with a key made at start),
//! bound to the role and the exact URL, and valid for a few minutes. A link copied to another
//! role, another page or another day does nothing.

use aws_lc_rs::{hmac, rand::SecureRandom};
use std::borrow::Cow;

/// The query parameter that carries the token.
pub const PARAM: &str = "gatehouse-continue";
/// How long a "continue" stays valid, in seconds.
pub const VALID_FOR: i64 = 600;

#[derive(Debug)]
pub struct ContinueTokens {
    key: hmac::Key,
}

impl ContinueTokens {
    pub fn new() -> anyhow::Result<ContinueTokens> {
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| anyhow::anyhow!("no randomness for the continue-link key"))?;
        Ok(ContinueTokens {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        })
    }

    fn message(role: &str, url: &str, expires: i64) -> String {
        format!("{role}\n{url}\n{expires}")
    }

    /// A token for `role` to continue to `url` until `now + VALID_FOR`.
    pub fn issue(&self, role: &str, url: &str, now: i64) -> String {
        let expires = now + VALID_FOR;
        let tag = hmac::sign(&self.key, Self::message(role, url, expires).as_bytes());
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("{expires}.{hex}")
    }

    /// True when `token` lets `role` continue to `url` at `now`.
    pub fn check(&self, role: &str, url: &str, token: &str, now: i64) -> bool {
        let Some((expires, hex)) = token.split_once('.') else {
            return false;
        };
        let Ok(expires) = expires.parse::<i64>() else {
            return false;
        };
        if now > expires || hex.len() != 64 {
            return false;
        }
        let tag: Option<Vec<u8>> = (0..32)
            .map(|i| {
                hex.get(2 * i..2 * i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect();
        let Some(tag) = tag else { return false };
        hmac::verify(
            &self.key,
            Self::message(role, url, expires).as_bytes(),
            &tag,
        )
        .is_ok()
    }
}

/// Splits the continue token off a URL: (the URL without it, the token).
pub fn take_token(url: &str) -> (Cow<'_, str>, Option<&str>) {
    let Some((base, query)) = url.split_once('?') else {
        return (Cow::Borrowed(url), None);
    };
    let mut token = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(
            |pair| match pair.strip_prefix(PARAM).and_then(|r| r.strip_prefix('=')) {
                Some(t) => {
                    token = Some(t);
                    false
                }
                None => true,
            },
        )
        .collect();
    if token.is_none() {
        return (Cow::Borrowed(url), None);
    }
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (Cow::Owned(url), token)
}

/// `url` with a continue token added.
pub fn with_token(url: &str, token: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{PARAM}={token}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_role_url_and_time() {
        let t = ContinueTokens::new().unwrap();
        let token = t.issue("pupil", "http://a.example/x", 1000);
        assert!(t.check("pupil", "http://a.example/x", &token, 1000 + VALID_FOR));
        assert!(
            !t.check("pupil", "http://a.example/x", &token, 1001 + VALID_FOR),
            "expired"
        );
        assert!(
            !t.check("staff", "http://a.example/x", &token, 1000),
            "other role"
        );
        assert!(
            !t.check("pupil", "http://a.example/y", &token, 1000),
            "other URL"
        );
        let forged = token.replacen(&token[..4], "9999", 1);
        assert!(
            !t.check("pupil", "http://a.example/x", &forged, 1000),
            "changed expiry"
        );
        assert!(
            !ContinueTokens::new()
                .unwrap()
                .check("pupil", "http://a.example/x", &token, 1000),
            "another key"
        );
        assert!(!t.check("pupil", "http://a.example/x", "garbage", 1000));
    }

    #[test]
    fn token_is_taken_off_the_url() {
        assert_eq!(
            take_token("http://a/x?q=1&gatehouse-continue=T&r=2"),
            (Cow::Owned("http://a/x?q=1&r=2".into()), Some("T"))
        );
        assert_eq!(
            take_token("http://a/x?gatehouse-continue=T"),
            (Cow::Owned("http://a/x".into()), Some("T"))
        );
        assert_eq!(
            take_token("http://a/x?q=1"),
            (Cow::Borrowed("http://a/x?q=1"), None)
        );
        assert_eq!(
            with_token("http://a/x", "T"),
            "http://a/x?gatehouse-continue=T"
        );
        assert_eq!(
            with_token("http://a/x?q", "T"),
            "http://a/x?q&gatehouse-continue=T"
        );
    }
}
