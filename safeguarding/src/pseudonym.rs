//! Keyed pseudonyms: the same user always gets the same pseudonym (so patterns stay
//! visible), nobody without the key can turn it back into a name, and the subject-access
//! export can still find the records by computing it.

use crate::Error;
use aws_lc_rs::hmac;
use std::path::Path;

#[derive(Debug)]
pub struct Pseudonyms {
    key: hmac::Key,
}

impl Pseudonyms {
    /// Loads the key from `path`, creating it (32 random bytes, mode 0600) on first use.
    pub fn load_or_create(path: &Path) -> Result<Pseudonyms, Error> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                aws_lc_rs::rand::fill(&mut key)
                    .map_err(|_| Error::Config("no randomness for the pseudonym key".into()))?;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| Error::io(path, e))?;
                f.write_all(&key).map_err(|e| Error::io(path, e))?;
                key.to_vec()
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        Ok(Pseudonyms {
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
        })
    }

    /// `user`'s pseudonym: `p-` and 16 hex digits.
    pub fn of(&self, user: &str) -> String {
        let tag = hmac::sign(&self.key, user.as_bytes());
        let mut s = String::from("p-");
        for b in &tag.as_ref()[..8] {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}
