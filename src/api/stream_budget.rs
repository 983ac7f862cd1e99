//! What one event stream may hold in memory, and how many streams may be open.
//!
//! A client that does not read keeps its events in agentd's memory until they
//! are written. Each stream gets a byte budget: the feed waits before handing
//! over an event that would exceed it (the live hub moves on, and the reader
//! catches up from the store once it reads again). Streams are counted per
//! tenant and in all; beyond either cap a new stream is refused (429 / 503
//! with `Retry-After`), and when the last stream closes the allocator is asked
//! to return freed memory to the system.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

/// Bytes of events one stream may hold between the feed and the socket: 256 KiB.
pub const STREAM_BYTES: usize = 256 << 10;

/// One stream's byte budget. An event larger than the whole budget still
/// passes, alone. Clones share it; when the last goes, what it still held is
/// taken off the tally.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    permits: Semaphore,
    total: usize,
    /// Every stream's held bytes, summed (for the metrics).
    tally: Arc<AtomicUsize>,
}

impl ByteBudget {
    /// A budget of `total` bytes.
    pub fn new(total: usize) -> ByteBudget {
        ByteBudget::counted(total, Arc::default())
    }

    /// A budget of `total` bytes whose holdings are added to `tally`.
    pub fn counted(total: usize, tally: Arc<AtomicUsize>) -> ByteBudget {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        ByteBudget {
            inner: Arc::new(Inner {
                permits: Semaphore::new(total),
                total,
                tally,
            }),
        }
    }

    fn share(&self, bytes: usize) -> u32 {
        bytes
            .clamp(1, self.inner.total)
            .try_into()
            .unwrap_or(u32::MAX)
    }

    /// Waits until `bytes` fit, then holds them.
    pub async fn take(&self, bytes: usize) {
        let share = self.share(bytes);
        if let Ok(permit) = self.inner.permits.acquire_many(share).await {
            permit.forget();
            self.inner
                .tally
                .fetch_add(share as usize, Ordering::Relaxed);
        }
    }

    /// Gives back what [`ByteBudget::take`] held for `bytes`.
    pub fn give(&self, bytes: usize) {
        let share = self.share(bytes) as usize;
        self.inner.permits.add_permits(share);
        self.inner.tally.fetch_sub(share, Ordering::Relaxed);
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.inner.held()
    }
}

impl Inner {
    fn held(&self) -> usize {
        self.total.saturating_sub(self.permits.available_permits())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.tally.fetch_sub(self.held(), Ordering::Relaxed);
    }
}

/// Caps on open event streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamCaps {
    /// Streams open at once, all tenants.
    pub total: usize,
    /// Streams open at once for one tenant.
    pub per_tenant: usize,
}

impl Default for StreamCaps {
    fn default() -> Self {
        StreamCaps {
            total: 1024,
            per_tenant: 128,
        }
    }
}

/// Which cap refused a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRefusal {
    /// The tenant has its most streams open.
    Tenant,
    /// The server has its most streams open.
    Server,
}

/// The open streams, by tenant.
#[derive(Debug, Default)]
pub struct StreamSlots {
    caps: StreamCaps,
    open: Mutex<(usize, HashMap<String, usize>)>,
    held: Arc<AtomicUsize>,
}

/// One open stream; closing it (dropping) frees its slot.
#[derive(Debug)]
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    tenant: String,
}

impl StreamSlots {
    /// Slots under `caps`.
    pub fn new(caps: StreamCaps) -> StreamSlots {
        StreamSlots {
            caps,
            open: Mutex::default(),
            held: Arc::default(),
        }
    }

    /// A slot for a new stream of `tenant`, or which cap refuses it.
    pub fn open(self: &Arc<Self>, tenant: &str) -> Result<StreamSlot, StreamRefusal> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (total, by_tenant) = &mut *open;
        let mine = by_tenant.get(tenant).copied().unwrap_or(0);
        if mine >= self.caps.per_tenant {
            return Err(StreamRefusal::Tenant);
        }
        if *total >= self.caps.total {
            return Err(StreamRefusal::Server);
        }
        *total += 1;
        by_tenant.insert(tenant.to_string(), mine + 1);
        Ok(StreamSlot {
            slots: self.clone(),
            tenant: tenant.to_string(),
        })
    }

    /// A byte budget for one stream, counted in [`StreamSlots::held_bytes`].
    pub fn budget(&self, total: usize) -> ByteBudget {
        ByteBudget::counted(total, self.held.clone())
    }

    /// Bytes of events handed to streams and not yet written, in all.
    pub fn held_bytes(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Streams open now.
    pub fn open_count(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).0
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let last = {
            let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
            let (total, by_tenant) = &mut *open;
            *total = total.saturating_sub(1);
            if let Some(mine) = by_tenant.get_mut(&self.tenant) {
                *mine -= 1;
                if *mine == 0 {
                    by_tenant.remove(&self.tenant);
                }
            }
            *total == 0
        };
        if last {
            return_freed_memory();
        }
    }
}

/// Asks glibc's allocator to give freed memory back to the system (it keeps
/// freed pages of its arenas otherwise, so a burst of large buffers would hold
/// the process's RSS high after the streams closed).
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_budget_holds_back_what_does_not_fit() {
        let budget = ByteBudget::new(100);
        budget.take(60).await;
        assert_eq!(budget.held(), 60);
        let waiting = tokio::time::timeout(Duration::from_millis(50), budget.take(50)).await;
        assert!(waiting.is_err(), "50 more bytes must wait");
        budget.give(60);
        budget.take(50).await;
        // Larger than the whole budget: passes alone.
        budget.give(50);
        budget.take(1_000).await;
        assert_eq!(budget.held(), 100);
        budget.give(1_000);
        assert_eq!(budget.held(), 0);
    }

    #[tokio::test]
    async fn a_dropped_stream_gives_back_what_it_held() {
        let tally = Arc::new(AtomicUsize::new(0));
        let budget = ByteBudget::counted(100, tally.clone());
        let feed = budget.clone();
        feed.take(70).await;
        assert_eq!(tally.load(Ordering::Relaxed), 70);
        drop(feed);
        assert_eq!(tally.load(Ordering::Relaxed), 70, "a clone is still alive");
        drop(budget);
        assert_eq!(tally.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn streams_are_capped_per_tenant_and_in_all() {
        let slots = Arc::new(StreamSlots::new(StreamCaps {
            total: 3,
            per_tenant: 2,
        }));
        let a1 = slots.open("a").unwrap();
        let _a2 = slots.open("a").unwrap();
        assert_eq!(slots.open("a").unwrap_err(), StreamRefusal::Tenant);
        let _b1 = slots.open("b").unwrap();
        assert_eq!(slots.open("c").unwrap_err(), StreamRefusal::Server);
        drop(a1);
        let _c1 = slots.open("c").unwrap();
        assert_eq!(slots.open_count(), 3);
    }
}
