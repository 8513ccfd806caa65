//! Prefetch: blocks submitted with deadlines, fetched earliest deadline first by a bounded
//! number of workers, into the cache's tiers. Counted apart from demand fetches
//! ([`crate::cache::Why::Prefetch`]). A block already in a tier costs a lookup, not a fetch.
//!
//! Memory: at most `concurrency` blocks are being fetched at once; queued requests are a few
//! dozen bytes each. Cancellation: [`Prefetcher::cancel_all`] empties the queue (fetches in
//! flight finish), a [`Ticket`] cancels one request, and dropping the prefetcher stops its
//! workers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::cache::{BlockCache, Why};
use crate::key::ObjectVersion;
use crate::source::BlockSource;

struct Request {
    deadline: Instant,
    seq: u64,
    object: ObjectVersion,
    index: u64,
    cancelled: Arc<AtomicBool>,
}

impl PartialEq for Request {
    fn eq(&self, o: &Self) -> bool {
        (self.deadline, self.seq) == (o.deadline, o.seq)
    }
}
impl Eq for Request {}
impl PartialOrd for Request {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Request {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.deadline, self.seq).cmp(&(o.deadline, o.seq))
    }
}

/// Cancels one prefetch request.
#[derive(Clone)]
pub struct Ticket(Arc<AtomicBool>);

impl Ticket {
    /// The request will not be fetched if it has not started.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

struct Shared {
    queue: Mutex<BinaryHeap<Reverse<Request>>>,
    wake: Notify,
    seq: AtomicU64,
    done: AtomicU64,
    skipped: AtomicU64,
    stop: AtomicBool,
}

/// Counters of a prefetcher.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrefetchStats {
    /// Requests waiting.
    pub queued: usize,
    /// Requests completed (fetched, or found already cached).
    pub done: u64,
    /// Requests cancelled or failed.
    pub skipped: u64,
}

/// Fetches blocks ahead of use, earliest deadline first.
pub struct Prefetcher {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Prefetcher {
    /// Starts `concurrency` workers on the current tokio runtime.
    pub fn new(cache: Arc<BlockCache>, source: Arc<dyn BlockSource>, concurrency: usize) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(BinaryHeap::new()),
            wake: Notify::new(),
            seq: AtomicU64::new(0),
            done: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let workers = (0..concurrency.max(1))
            .map(|_| {
                let (shared, cache, source) = (shared.clone(), cache.clone(), source.clone());
                tokio::spawn(async move { work(shared, cache, source).await })
            })
            .collect();
        Self { shared, workers }
    }

    /// Queues block `index` of `object`, due by `deadline`.
    pub fn submit(&self, object: ObjectVersion, index: u64, deadline: Instant) -> Ticket {
        self.submit_all([(object, index, deadline)])
            .pop()
            .expect("one")
    }

    /// Queues several blocks at once (they are ordered among themselves by deadline before
    /// any worker picks one).
    pub fn submit_all(
        &self,
        items: impl IntoIterator<Item = (ObjectVersion, u64, Instant)>,
    ) -> Vec<Ticket> {
        let mut tickets = Vec::new();
        {
            let mut q = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            for (object, index, deadline) in items {
                let cancelled = Arc::new(AtomicBool::new(false));
                tickets.push(Ticket(cancelled.clone()));
                let seq = self.shared.seq.fetch_add(1, Ordering::Relaxed);
                q.push(Reverse(Request {
                    deadline,
                    seq,
                    object,
                    index,
                    cancelled,
                }));
            }
            metrics::gauge!("strata_cache_prefetch_queue").set(q.len() as f64);
        }
        for _ in 0..tickets.len() {
            self.shared.wake.notify_one();
        }
        tickets
    }

    /// Drops every queued request; fetches already running finish.
    pub fn cancel_all(&self) {
        let mut q = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        self.shared
            .skipped
            .fetch_add(q.len() as u64, Ordering::Relaxed);
        q.clear();
        metrics::gauge!("strata_cache_prefetch_queue").set(0.0);
    }

    /// Counters.
    pub fn stats(&self) -> PrefetchStats {
        PrefetchStats {
            queued: self
                .shared
                .queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len(),
            done: self.shared.done.load(Ordering::Relaxed),
            skipped: self.shared.skipped.load(Ordering::Relaxed),
        }
    }

    /// Waits until the queue is empty and no request is running.
    pub async fn idle(&self) {
        loop {
            let s = self.stats();
            let submitted = self.shared.seq.load(Ordering::Relaxed);
            if s.queued == 0 && s.done + s.skipped >= submitted {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for w in &self.workers {
            w.abort();
        }
    }
}

async fn work(shared: Arc<Shared>, cache: Arc<BlockCache>, source: Arc<dyn BlockSource>) {
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let next = {
            let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            let r = q.pop().map(|Reverse(r)| r);
            metrics::gauge!("strata_cache_prefetch_queue").set(q.len() as f64);
            r
        };
        let Some(req) = next else {
            shared.wake.notified().await;
            continue;
        };
        if req.cancelled.load(Ordering::Relaxed) {
            shared.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let ok = cache.contains(&req.object, req.index)
            || cache
                .get_block(&*source, &req.object, req.index, Why::Prefetch)
                .await
                .is_ok();
        if ok {
            shared.done.fetch_add(1, Ordering::Relaxed);
        } else {
            // A failed prefetch is not an error: the demand read will fetch (and report).
            shared.skipped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
