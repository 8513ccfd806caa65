//! Hydration through the daemon: `strata warm --daemon ADDR URL` fills the node's own cache
//! (its NVMe tier and, as far as it holds, its DRAM tier), which outlives the command and
//! serves every process on the node.
//!
//! - `POST /v1/warm?url=URL`: lists what `URL` names (everything under a prefix, else the
//!   object), answers `202` with the status below at once, and hydrates in the background,
//!   [`FETCH_CONCURRENCY`](crate::node::FETCH_CONCURRENCY) blocks at a time.
//! - `GET /v1/warm?id=N`: the status of warm-up `N` ([`WarmStatus`]): bytes done of all,
//!   and when it has finished, what it did or why it failed.
//!
//! The daemon keeps the last [`KEEP`] warm-ups' statuses.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http::StatusCode;
use strata_cache::ObjectVersion;

use crate::http::{ApiError, Req, Resp, json, query};
use crate::node::Node;

/// Statuses kept; the oldest finished ones are forgotten first.
pub const KEEP: usize = 64;

pub use strata_daemon_client::wire::WarmStatus;

/// One warm-up: its status, and the bytes done (counted while it runs).
struct Warmup {
    status: Mutex<WarmStatus>,
    done: AtomicU64,
}

impl Warmup {
    fn snapshot(&self) -> WarmStatus {
        let mut s = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        s.done_bytes = self.done.load(Ordering::Relaxed);
        s
    }
}

/// The node's warm-ups.
#[derive(Default)]
pub struct Warmups {
    next: AtomicU64,
    all: Mutex<BTreeMap<u64, Arc<Warmup>>>,
}

impl Warmups {
    fn add(&self, status: WarmStatus) -> (u64, Arc<Warmup>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let w = Arc::new(Warmup {
            status: Mutex::new(WarmStatus { id, ..status }),
            done: AtomicU64::new(0),
        });
        let mut all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        while all.len() >= KEEP {
            let oldest_finished = all
                .iter()
                .find(|(_, w)| w.snapshot().finished)
                .map(|(k, _)| *k);
            match oldest_finished.or_else(|| all.keys().next().copied()) {
                Some(k) => all.remove(&k),
                None => break,
            };
        }
        all.insert(id, w.clone());
        (id, w)
    }

    fn get(&self, id: u64) -> Option<WarmStatus> {
        self.all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .map(|w| w.snapshot())
    }

    /// Warm-ups still running.
    pub fn running(&self) -> usize {
        self.all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|w| !w.snapshot().finished)
            .count()
    }
}

/// `POST /v1/warm?url=URL`.
pub async fn start(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    let q = query(req);
    let url = crate::local::url_param(node, &q)?;
    let store = node.store(&url)?;
    let objects = strata_cache::objects_named(&store, &url).await?;
    let (id, w) = node.warmups.add(WarmStatus {
        url: url.to_string(),
        objects: objects.len(),
        total_bytes: objects.iter().map(|o| o.size).sum(),
        ..Default::default()
    });
    let task_node = node.clone();
    let task_w = w.clone();
    tokio::spawn(async move {
        let (node, w) = (task_node, task_w);
        let progress = |n: u64| {
            w.done.fetch_add(n, Ordering::Relaxed);
        };
        let started = std::time::Instant::now();
        let result = strata_cache::warm(
            &node.cache,
            &store,
            &objects,
            crate::node::FETCH_CONCURRENCY,
            &progress,
        )
        .await;
        let (dram_bytes, dram_capacity) = dram_held(&node, &objects);
        let mut s = w.status.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(r) => {
                s.fetched_bytes = r.fetched_bytes;
                s.not_cached_blocks = r.not_cached_blocks;
                s.not_cached_reason = r.not_cached_reason;
            }
            Err(e) => {
                tracing::warn!("warm {}: {e}", s.url);
                s.error = Some(e.to_string());
            }
        }
        s.dram_bytes = dram_bytes;
        s.dram_capacity = dram_capacity;
        s.elapsed_secs = started.elapsed().as_secs_f64();
        s.finished = true;
    });
    let status = node.warmups.get(id).unwrap_or_else(|| w.snapshot());
    Ok(json(StatusCode::ACCEPTED, &serde_json::json!(status)))
}

/// `GET /v1/warm?id=N`.
pub async fn status(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    let q = query(req);
    let id = q
        .get("id")
        .ok_or_else(|| ApiError::bad_request("the id parameter is missing"))?;
    let n: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("id={id:?} is not a whole number")))?;
    let s = node.warmups.get(n).ok_or_else(|| {
        ApiError::not_found(
            "NoSuchWarmup",
            format!("no warm-up {n} (the daemon keeps the last {KEEP}, and none across restarts)"),
        )
    })?;
    Ok(json(StatusCode::OK, &serde_json::json!(s)))
}

/// Bytes of `objects` in the node's DRAM tier, and the tier's size.
fn dram_held(node: &Node, objects: &[ObjectVersion]) -> (u64, u64) {
    let Some(d) = node.cache.dram() else {
        return (0, 0);
    };
    let g = node.cache.geometry();
    let held = objects
        .iter()
        .flat_map(|o| (0..g.block_count(o.size)).map(move |i| (o, i)))
        .filter(|(o, i)| d.contains(o.block(*i)))
        .map(|(o, i)| {
            let r = g.block_range(i, o.size);
            r.end - r.start
        })
        .sum();
    (held, d.capacity())
}
