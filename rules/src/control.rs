//! The one owner of the policy in force: the policy file, the admin page's edits laid over
//! it, approvals that run out, compiling and swapping. One writer at a time; every reader
//! (`gatehouse run`, `check`, `explain`, `squid-helper`, the admin page) loads through
//! [`PolicyControl`], so they can never disagree about what the policy says.
//!
//! A load (start, `SIGHUP`, a changed file, an edit on the page, an approval running out) always
//! does the same: read the policy file, lay the edits file over it
//! ([`gatehouse_rules::overrides`]), compile off the request path, and swap the result into
//! [`Live`]; if anything fails the policy in force stays and the error is returned. An edit is
//! written to the edits file only after the policy it makes has compiled, so the file never
//! holds an edit that does not load.

use crate::config::ConfigFile;
use crate::overrides::Overrides;
use crate::RulesError as Error;
use crate::{compile, Live, LoadReport};
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Called after every swap with the new generation, or with the error of a failed load.
pub type OnSwap = Box<dyn Fn(Result<u64, &str>) + Send + Sync>;

/// Loads, edits and swaps the policy.
pub struct PolicyControl {
    config_path: PathBuf,
    /// The policy text when it is compiled into the binary rather than read from disk.
    embedded: Option<String>,
    edits_path: PathBuf,
    live: Arc<Live>,
    report: ArcSwap<LoadReport>,
    next_expiry: Mutex<Option<DateTime<Utc>>>,
    /// One load or edit at a time (never taken on the request path).
    busy: Mutex<()>,
    on_swap: OnSwap,
}

impl std::fmt::Debug for PolicyControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyControl")
            .field("config_path", &self.config_path)
            .field("edits_path", &self.edits_path)
            .finish_non_exhaustive()
    }
}

/// A compiled policy and what goes with it.
struct Loaded {
    compiled: crate::Compiled,
    next_expiry: Option<DateTime<Utc>>,
}

impl PolicyControl {
    /// Compiles the policy with its edits for the first time. `file` is the policy as read
    /// (its text is kept when `embedded`).
    pub fn start(
        file: &ConfigFile,
        embedded: bool,
        edits_path: PathBuf,
        on_swap: OnSwap,
        now: DateTime<Utc>,
    ) -> Result<PolicyControl, Error> {
        let edits = Overrides::load(&edits_path).map_err(|e| Error::Policy(e.to_string()))?;
        let loaded = build(file, &edits, now)?;
        let control = PolicyControl {
            config_path: file.path.clone(),
            embedded: embedded.then(|| file.text.clone()),
            edits_path,
            live: Arc::new(Live::new(loaded.compiled.snapshot)),
            report: ArcSwap::from_pointee(loaded.compiled.report),
            next_expiry: Mutex::new(loaded.next_expiry),
            busy: Mutex::new(()),
            on_swap,
        };
        (control.on_swap)(Ok(1));
        Ok(control)
    }

    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn edits_path(&self) -> &Path {
        &self.edits_path
    }

    /// Hosts that are tunnelled, never decrypted (`[proxy] no_decrypt`, or the page's list).
    pub fn no_decrypt(&self) -> Vec<String> {
        self.live.load().no_decrypt().entries().to_vec()
    }

    /// What the last successful load read.
    pub fn report(&self) -> Arc<LoadReport> {
        self.report.load_full()
    }

    /// The edits in the edits file now.
    pub fn edits(&self) -> Result<Overrides, Error> {
        Overrides::load(&self.edits_path).map_err(|e| Error::Policy(e.to_string()))
    }

    /// When an approval runs out and the policy must be loaded again.
    pub fn next_expiry(&self) -> Option<DateTime<Utc>> {
        self.next_expiry.lock().ok().and_then(|g| *g)
    }

    /// Loads the policy file and the edits again and swaps them in. Blocking: call it off the
    /// async workers.
    pub fn reload(&self, now: DateTime<Utc>) -> Result<u64, Error> {
        let _one = self
            .busy
            .lock()
            .map_err(|_| Error::Policy("poisoned".into()))?;
        let result = self
            .edits()
            .and_then(|edits| self.read().and_then(|file| build(&file, &edits, now)));
        self.put(result)
    }

    /// Applies `change` to the edits, compiles, and only if that works writes the edits file
    /// and swaps the policy in. Returns the edits before and after, and the new generation.
    pub fn edit(
        &self,
        change: impl FnOnce(&mut Overrides) -> Result<(), String>,
        now: DateTime<Utc>,
    ) -> Result<(Overrides, Overrides, u64), Error> {
        let _one = self
            .busy
            .lock()
            .map_err(|_| Error::Policy("poisoned".into()))?;
        let before = self.edits()?;
        let mut after = before.clone();
        change(&mut after).map_err(Error::Rejected)?;
        after.approvals.retain(|a| a.until > now);
        let loaded = self.read().and_then(|file| build(&file, &after, now))?;
        write_private(&self.edits_path, &after.to_toml())?;
        let generation = self.put(Ok(loaded))?;
        Ok((before, after, generation))
    }

    /// The policy file as it is now (without the edits).
    pub fn policy_file(&self) -> Result<ConfigFile, Error> {
        self.read()
    }

    fn read(&self) -> Result<ConfigFile, Error> {
        let parsed = match &self.embedded {
            Some(text) => ConfigFile::parse(self.config_path.clone(), text.clone()),
            None => ConfigFile::load(&self.config_path),
        };
        parsed.map_err(|e| Error::Policy(e.to_string()))
    }

    fn put(&self, result: Result<Loaded, Error>) -> Result<u64, Error> {
        match result {
            Ok(loaded) => {
                self.report.store(Arc::new(loaded.compiled.report));
                if let Ok(mut next) = self.next_expiry.lock() {
                    *next = loaded.next_expiry;
                }
                let generation = self.live.swap(loaded.compiled.snapshot);
                (self.on_swap)(Ok(generation));
                Ok(generation)
            }
            Err(e) => {
                (self.on_swap)(Err(&e.to_string()));
                Err(e)
            }
        }
    }
}

/// Lays `edits` over `file` and compiles.
fn build(file: &ConfigFile, edits: &Overrides, now: DateTime<Utc>) -> Result<Loaded, Error> {
    let mut config = ConfigFile::parse(file.path.clone(), file.text.clone())
        .map_err(|e| Error::Policy(e.to_string()))?;
    let policy_error = |e: Error| {
        if edits.is_empty() {
            Error::Policy(e.to_string())
        } else {
            Error::Policy(format!("{e} (with the admin page's edits)"))
        }
    };
    edits.apply(&mut config.config, now).map_err(policy_error)?;
    if let Some(list) = &edits.no_decrypt {
        let list = toml::Value::Array(list.iter().cloned().map(toml::Value::String).collect());
        config
            .config
            .proxy
            .get_or_insert_with(Default::default)
            .insert("no_decrypt".to_owned(), list);
    }
    let compiled = compile(&config).map_err(policy_error)?;
    Ok(Loaded {
        compiled,
        next_expiry: edits.next_expiry(now),
    })
}

/// Writes a file readable by its owner only, replacing the old one in one step.
pub fn write_private(path: &Path, text: &str) -> Result<(), Error> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|source| Error::Io {
            path: tmp.clone(),
            source,
        })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|source| Error::Io {
            path: tmp.clone(),
            source,
        })?;
    std::fs::rename(&tmp, path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}
