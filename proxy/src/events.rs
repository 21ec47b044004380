//! One event per request, with the fields the DfE filtering standard asks for, handed to a
//! bounded channel and written by a thread of its own: as JSON lines (rotated), then to the
//! safeguarding pipeline (alerts, the event store). The request path never waits for the
//! disk: when the channel is full the event is counted as dropped.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

pub use gatehouse_safeguarding::Event;

/// Where events go. Cloning is cheap.
#[derive(Clone, Debug)]
pub struct EventSink {
    /// Boxed: the channel's ring of slots is allocated (and, once it has wrapped, resident)
    /// in full, and an event is a few hundred bytes, so unboxed 16,384 slots would hold
    /// about 7 MiB of memory even when nothing waits.
    tx: SyncSender<Box<Event>>,
    writer: Arc<Writer>,
}

/// The writer thread, stopped (after writing everything queued) by `EventSink::close`.
#[derive(Debug)]
struct Writer {
    stop: AtomicBool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// How long the writer sleeps when the queue is empty. It polls rather than waiting on the
/// channel so that a request never has to wake it (a wake-up is a system call and, on a
/// busy core, a context switch per request).
const POLL: std::time::Duration = std::time::Duration::from_millis(20);

impl EventSink {
    /// Starts the writer thread: `events.jsonl` in `dir`, rotated to `events.jsonl.1` ...
    /// `.N` when it passes `max_bytes`.
    pub fn start(
        dir: PathBuf,
        max_bytes: u64,
        keep: usize,
        capacity: usize,
        pipeline: Arc<crate::safeguard::Pipeline>,
    ) -> anyhow::Result<EventSink> {
        std::fs::create_dir_all(&dir)?;
        let (tx, rx) = sync_channel(capacity);
        let writer = Arc::new(Writer {
            stop: AtomicBool::new(false),
            thread: Mutex::new(None),
        });
        let stop = Arc::clone(&writer);
        let thread = std::thread::Builder::new()
            .name("gatehouse-events".into())
            .spawn(move || {
                gatehouse_safeguarding::background_priority();
                write_loop(&rx, &stop.stop, &dir, max_bytes, keep, &pipeline);
            })?;
        if let Ok(mut slot) = writer.thread.lock() {
            *slot = Some(thread);
        }
        Ok(EventSink { tx, writer })
    }

    /// Hands an event over without waiting; counts it as dropped if the writer is behind.
    pub fn send(&self, event: Event) {
        match self.tx.try_send(Box::new(event)) {
            Ok(()) => crate::metrics::get().events_written.inc(),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                crate::metrics::get().events_dropped.inc();
            }
        }
    }

    /// Writes what is queued and stops the writer (at shutdown, after the last request).
    pub fn close(&self) {
        self.writer.stop.store(true, Ordering::Release);
        let thread = self.writer.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

fn open(path: &std::path::Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .ok()
}

fn write_loop(
    rx: &Receiver<Box<Event>>,
    stop: &AtomicBool,
    dir: &std::path::Path,
    max_bytes: u64,
    keep: usize,
    pipeline: &crate::safeguard::Pipeline,
) {
    let path = dir.join("events.jsonl");
    let mut file = open(&path);
    let mut size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let mut text: Vec<u8> = Vec::new();
    loop {
        // Read the flag before draining: whatever was queued before `close` is written.
        let stopping = stop.load(Ordering::Acquire);
        text.clear();
        let mut batch: Vec<Event> = rx.try_iter().take(BATCH).map(|event| *event).collect();
        let taken = batch.len();
        pipeline.prepare(&mut batch);
        gatehouse_safeguarding::event::write_json_lines(&batch, &mut text);
        if !batch.is_empty() {
            pipeline.take(batch, &text);
        }
        if text.is_empty() {
            if stopping {
                return;
            }
            std::thread::sleep(POLL);
            continue;
        }
        if size + text.len() as u64 > max_bytes && size > 0 {
            for i in (1..keep).rev() {
                let _ = std::fs::rename(
                    dir.join(format!("events.jsonl.{i}")),
                    dir.join(format!("events.jsonl.{}", i + 1)),
                );
            }
            let _ = std::fs::rename(&path, dir.join("events.jsonl.1"));
            file = open(&path);
            size = 0;
        }
        if let Some(f) = file.as_mut() {
            if f.write_all(&text).and_then(|()| f.flush()).is_ok() {
                size += text.len() as u64;
            }
        }
        if taken < BATCH && !stopping {
            std::thread::sleep(POLL);
        }
    }
}

/// Events written per write call at most.
const BATCH: usize = 4096;
