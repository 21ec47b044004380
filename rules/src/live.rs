//! The policy in force, swapped whole.
//!
//! Readers take a snapshot with one atomic load and keep it for the whole request; a reload
//! compiles a new snapshot on its own thread and stores it with one atomic swap. Neither
//! waits for the other: a reload never blocks `evaluate`.

use crate::snapshot::Snapshot;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The current snapshot and its generation number (1 for the first, +1 per swap).
#[derive(Debug)]
pub struct Live {
    current: ArcSwap<Snapshot>,
    generation: AtomicU64,
}

impl Live {
    pub fn new(snapshot: Snapshot) -> Live {
        Live {
            current: ArcSwap::from_pointee(snapshot),
            generation: AtomicU64::new(1),
        }
    }

    /// The snapshot in force now. Cheap; hold it for the request, not for ever.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Puts a new snapshot in force; returns its generation.
    pub fn swap(&self, snapshot: Snapshot) -> u64 {
        self.current.store(Arc::new(snapshot));
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}
