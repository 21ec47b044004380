//! Getting events into the store without the proxy ever waiting for it.
//!
//! Batches arrive from the proxy's event writer and are handed to the store thread through
//! a bounded queue. When that queue is full (the store is slow) or anything is already
//! waiting on disk, the batch is appended to the spill file instead, so order is kept: once
//! something is spilled, everything after it is spilled too until the store thread has
//! replayed the file (in order, remembering how far it got, so a restart neither loses nor
//! repeats a replayed event). A store that fails is retried with back-off while the spill
//! file takes the traffic.

use crate::event::Event;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::{report, Error};
use std::io::{BufRead as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Batches waiting for the store thread before new ones spill. Small on purpose: what waits
/// here is memory, and the spill file takes the rest in order (16 writer batches are up to
/// 65,536 events, about 25 MiB at the worst; usually a few hundred events each).
const QUEUE_BATCHES: usize = 16;
/// Events read back from the spill file per store transaction (about 4 MiB in memory).
const REPLAY_CHUNK: usize = 8_192;
/// Queued batches are joined into one transaction up to this many events.
const COALESCE: usize = 8_192;
/// Spilled bytes not yet stored beyond which the store thread stops waiting for idle CPU
/// and takes a share of it (nice 10) until the spill file is replayed: about a minute of a
/// saturated core's events, far more than any busy school's lesson change.
pub const CATCH_UP_BYTES: u64 = 1 << 30;

/// The append-only file events wait in while the store is slow or away.
#[derive(Debug)]
struct Spill {
    path: PathBuf,
    offset_path: PathBuf,
    /// True while the file holds events not yet stored.
    active: bool,
}

impl Spill {
    fn open(path: PathBuf) -> Spill {
        let offset_path = path.with_extension("offset");
        let active = std::fs::metadata(&path).is_ok_and(|m| m.len() > 0);
        Spill {
            path,
            offset_path,
            active,
        }
    }

    /// Appends a batch, written as JSON lines (`event::write_json_lines`).
    fn append(&mut self, lines: &[u8]) -> Result<(), Error> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        file.write_all(lines)
            .and_then(|()| file.sync_data())
            .map_err(|e| Error::io(&self.path, e))?;
        self.active = true;
        Ok(())
    }

    /// How far the replay got (bytes into the file).
    fn replayed(&self) -> u64 {
        std::fs::read_to_string(&self.offset_path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    fn set_replayed(&self, offset: u64) -> Result<(), Error> {
        let tmp = self.offset_path.with_extension("offset.tmp");
        std::fs::write(&tmp, offset.to_string())
            .and_then(|()| std::fs::rename(&tmp, &self.offset_path))
            .map_err(|e| Error::io(&self.offset_path, e))
    }

    /// Up to `max` events from `offset`; returns them and the offset after them. A torn last
    /// line (a crash mid-write) is left for later; a line that is not an event is skipped.
    fn read_from(&self, offset: u64, max: usize) -> Result<(Vec<Event>, u64), Error> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        file.seek(std::io::SeekFrom::Start(offset))
            .map_err(|e| Error::io(&self.path, e))?;
        let mut reader = std::io::BufReader::new(file);
        let (mut events, mut at, mut line) = (Vec::new(), offset, String::new());
        while events.len() < max {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .map_err(|e| Error::io(&self.path, e))?;
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            at += n as u64;
            if let Ok(e) = serde_json::from_str::<Event>(&line) {
                events.push(e);
            }
        }
        Ok((events, at))
    }

    fn len(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    fn clear(&mut self) -> Result<(), Error> {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(&self.offset_path);
        self.active = false;
        Ok(())
    }
}

/// The hand-off from the proxy's event writer to the store.
#[derive(Debug)]
pub struct Recorder {
    queue: SyncSender<Vec<Event>>,
    spill: Arc<Mutex<Spill>>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    metrics: Arc<Metrics>,
}

/// What the store thread needs besides the queue.
pub struct StoreThread {
    /// Opens (or re-opens) the store.
    pub open: Box<dyn FnMut() -> Result<Store, Error> + Send>,
    /// Called about once an hour, between batches (retention).
    pub housekeeping: Box<dyn FnMut(&mut Store) + Send>,
    /// Spilled bytes waiting beyond which the thread leaves idle scheduling
    /// ([`CATCH_UP_BYTES`] in the proxy).
    pub catch_up_bytes: u64,
}

impl Recorder {
    /// Starts the store thread. The store is opened there (and retried), so a store that is
    /// down at start does not stop the proxy: events spill until it answers.
    pub fn start(
        spill_path: &Path,
        thread: StoreThread,
        metrics: Arc<Metrics>,
    ) -> Result<Recorder, Error> {
        if let Some(dir) = spill_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let (queue, rx) = sync_channel(QUEUE_BATCHES);
        let spill = Arc::new(Mutex::new(Spill::open(spill_path.to_owned())));
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            rx,
            spill: Arc::clone(&spill),
            stop: Arc::clone(&stop),
            metrics: Arc::clone(&metrics),
            store: None,
            thread,
            schedule: Schedule::Fixed,
        };
        let handle = std::thread::Builder::new()
            .name("gatehouse-store".into())
            .spawn(move || worker.run())
            .map_err(|e| Error::io(spill_path, e))?;
        Ok(Recorder {
            queue,
            spill,
            stop,
            thread: Mutex::new(Some(handle)),
            metrics,
        })
    }

    /// Hands a batch over without waiting for the store.
    pub fn record(&self, batch: Vec<Event>) {
        self.record_inner(batch, None);
    }

    /// As `record`, for a batch the caller has already written as JSON lines
    /// (`event::write_json_lines`, e.g. for the events log): if it has to spill, those bytes
    /// are appended as they are instead of being written again.
    pub fn record_rendered(&self, batch: Vec<Event>, lines: &[u8]) {
        self.record_inner(batch, Some(lines));
    }

    fn record_inner(&self, batch: Vec<Event>, lines: Option<&[u8]>) {
        if batch.is_empty() {
            return;
        }
        let Ok(mut spill) = self.spill.lock() else {
            return;
        };
        let batch = if spill.active {
            batch
        } else {
            match self.queue.try_send(batch) {
                Ok(()) => return,
                Err(TrySendError::Full(b) | TrySendError::Disconnected(b)) => b,
            }
        };
        let n = batch.len() as u64;
        let mut own = Vec::new();
        let lines = lines.unwrap_or_else(|| {
            crate::event::write_json_lines(&batch, &mut own);
            &own
        });
        match spill.append(lines) {
            Ok(()) => self.metrics.events_spilled.inc_by(n),
            Err(e) => {
                self.metrics.events_lost.inc_by(n);
                report(&format!("events could not be spilled, {n} lost: {e}"));
            }
        }
    }

    /// Stores what is queued (or spills it) and stops the store thread.
    pub fn close(&self) {
        self.stop.store(true, Ordering::Release);
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

struct Worker {
    rx: Receiver<Vec<Event>>,
    spill: Arc<Mutex<Spill>>,
    stop: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    store: Option<Store>,
    thread: StoreThread,
    schedule: Schedule,
}

/// How the store thread is scheduled. Storing events is never urgent (they are already in
/// the JSON-lines log and, when the store is behind, in the spill file), so it runs on CPU
/// that requests leave idle; a backlog that idle CPU does not clear gets a fair share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Schedule {
    /// `SCHED_IDLE`: runs only when nothing else wants the CPU.
    Idle,
    /// Nice 10 until the spill file is replayed, then back to `Idle`.
    CatchingUp,
    /// Nice 10 throughout (the kernel refused `SCHED_IDLE`), or `SCHED_IDLE` throughout
    /// (the kernel refused to leave it); either way nothing more to try.
    Fixed,
}

/// How often housekeeping runs without traffic.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(3600);

impl Worker {
    fn run(mut self) {
        self.schedule = if crate::idle_priority() {
            Schedule::Idle
        } else {
            crate::background_priority();
            Schedule::Fixed
        };
        // The first housekeeping (retention) runs a minute after start, then hourly.
        let mut next_housekeeping = Instant::now() + Duration::from_secs(60);
        loop {
            let stopping = self.stop.load(Ordering::Acquire);
            if Instant::now() >= next_housekeeping {
                next_housekeeping = Instant::now() + HOUSEKEEPING_EVERY;
                if let Some(store) = self.store.as_mut() {
                    (self.thread.housekeeping)(store);
                }
            }
            match self.rx.recv_timeout(Duration::from_millis(200)) {
                Ok(mut batch) => {
                    // Behind? Take what else is queued into the same transaction: a
                    // bigger batch writes each index page once for many events.
                    while batch.len() < COALESCE {
                        match self.rx.try_recv() {
                            Ok(more) => {
                                batch.reserve_exact(more.len());
                                batch.extend(more);
                            }
                            Err(_) => break,
                        }
                    }
                    if !self.store_batch(&batch, stopping) {
                        self.spill_at_shutdown(&batch);
                    }
                    continue;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            self.replay(stopping);
            if stopping {
                return;
            }
        }
    }

    /// Stores one batch, retrying with back-off while the store is away. Returns false
    /// only when shutting down with the store still away.
    fn store_batch(&mut self, batch: &[Event], stopping: bool) -> bool {
        let mut wait = Duration::from_millis(100);
        let mut reported = false;
        loop {
            if self.store.is_none() {
                match (self.thread.open)() {
                    Ok(s) => self.store = Some(s),
                    Err(e) => {
                        if !reported {
                            report(&format!("the event store is not answering: {e}"));
                            reported = true;
                        }
                    }
                }
            }
            if let Some(store) = self.store.as_mut() {
                match store.insert(batch) {
                    Ok(()) => {
                        self.metrics.store_up.set(1);
                        self.metrics.events_stored.inc_by(batch.len() as u64);
                        if reported {
                            report("the event store is answering again");
                        }
                        return true;
                    }
                    Err(e) => {
                        self.metrics.store_errors.inc();
                        if !reported {
                            report(&format!(
                                "the event store failed, events wait in the spill file: {e}"
                            ));
                            reported = true;
                        }
                        if !store.healthy() {
                            self.store = None;
                        }
                    }
                }
            }
            self.metrics.store_up.set(0);
            if stopping {
                return false;
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    /// At shutdown with the store away: the batch goes to the spill file, after whatever is
    /// there, and is stored on the next start.
    fn spill_at_shutdown(&mut self, batch: &[Event]) {
        let mut lines = Vec::new();
        crate::event::write_json_lines(batch, &mut lines);
        if let Ok(mut spill) = self.spill.lock() {
            if spill.append(&lines).is_ok() {
                self.metrics.events_spilled.inc_by(batch.len() as u64);
            }
        }
    }

    /// Stores what waits in the spill file, in order (batches still in the queue are older
    /// and were stored first). Returns true if there was anything to do.
    fn replay(&mut self, stopping: bool) -> bool {
        let spill = Arc::clone(&self.spill);
        let (mut offset, active) = match spill.lock() {
            Ok(s) => (s.replayed(), s.active),
            Err(_) => return false,
        };
        if !active {
            return false;
        }
        loop {
            let read = match spill.lock() {
                Ok(s) => {
                    self.pace(s.len().saturating_sub(offset));
                    s.read_from(offset, REPLAY_CHUNK)
                }
                Err(_) => return true,
            };
            let (events, next) = match read {
                Ok(r) => r,
                Err(e) => {
                    report(&format!("the spill file cannot be read: {e}"));
                    return true;
                }
            };
            if events.is_empty() && next == offset {
                // Caught up: if nothing was appended meanwhile, the file goes and new
                // batches use the queue again.
                if let Ok(mut s) = spill.lock() {
                    if s.len() == offset {
                        let _ = s.clear();
                        self.pace(0);
                    }
                }
                return true;
            }
            if !events.is_empty() && !self.store_batch(&events, stopping) {
                return true;
            }
            offset = next;
            if let Ok(s) = spill.lock() {
                if let Err(e) = s.set_replayed(offset) {
                    report(&format!("{e}"));
                }
            }
        }
    }
}

impl Worker {
    /// Moves between idle scheduling and a fair share as the spill backlog grows and goes.
    fn pace(&mut self, backlog: u64) {
        match self.schedule {
            Schedule::Idle if backlog > self.thread.catch_up_bytes => {
                if crate::background_priority_from_idle() {
                    self.schedule = Schedule::CatchingUp;
                } else {
                    self.schedule = Schedule::Fixed;
                    report(&format!(
                        "{} MiB of events wait in the spill file and the store thread may not \
                         leave idle scheduling (allow nice 10: LimitNICE=+10); they are stored \
                         when the CPU is idle",
                        backlog >> 20
                    ));
                }
            }
            Schedule::CatchingUp if backlog == 0 && crate::idle_priority() => {
                self.schedule = Schedule::Idle;
            }
            _ => {}
        }
    }
}

impl std::fmt::Debug for StoreThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreThread")
    }
}
