//! Settings and reports shared by the download and upload engines.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Called with the number of bytes each time a part completes; used for progress bars.
pub type ProgressFn = Arc<dyn Fn(u64) + Send + Sync>;

/// A budget shared by several uploads: parts in flight, and uploads sending parts (each
/// upload still keeps at most its own `upload_concurrency` parts in flight). The objects of
/// one large file share one budget: while one object's last parts and its completion run,
/// the next objects' parts take the freed slots, so the link stays full instead of emptying
/// at every object boundary. An upload gives its `uploads` slot back when its last part is
/// sent, before its completion (which some stores, assembling the object, take seconds for),
/// so slow completions never hold back the parts of the next objects.
#[derive(Debug, Clone)]
pub struct PartSlots {
    parts: Arc<tokio::sync::Semaphore>,
    uploads: Arc<tokio::sync::Semaphore>,
}

impl PartSlots {
    /// A budget of `parts` parts in flight among at most `uploads` uploads sending parts
    /// (each at least 1). Slots are granted in the order asked.
    pub fn new(parts: usize, uploads: usize) -> Self {
        Self {
            parts: Arc::new(tokio::sync::Semaphore::new(parts.max(1))),
            uploads: Arc::new(tokio::sync::Semaphore::new(uploads.max(1))),
        }
    }

    /// Waits for a part slot; it is free again when the permit drops.
    pub(crate) async fn part(&self) -> tokio::sync::OwnedSemaphorePermit {
        acquire(&self.parts).await
    }

    /// Waits for an upload slot; it is free again when the permit drops.
    pub(crate) async fn upload(&self) -> tokio::sync::OwnedSemaphorePermit {
        acquire(&self.uploads).await
    }
}

async fn acquire(s: &Arc<tokio::sync::Semaphore>) -> tokio::sync::OwnedSemaphorePermit {
    s.clone()
        .acquire_owned()
        .await
        .expect("the semaphore is never closed")
}

/// What a transfer did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TransferReport {
    /// Payload bytes moved.
    pub bytes: u64,
    /// Parts (requests carrying payload).
    pub parts: usize,
    /// Wall time, seconds.
    pub elapsed_secs: f64,
    /// ETag of the source (downloads) or of the new object (uploads), if known.
    pub e_tag: Option<String>,
    /// CRC32C of the whole object, combined from the per-part checksums.
    pub crc32c: u32,
    /// Per-part CRC32C checksums, in part order (uploads only; empty otherwise).
    pub part_crc32c: Vec<u32>,
    /// Whether a multipart upload was used.
    pub multipart: bool,
    /// The most payload bytes held in memory at once by the engine.
    pub peak_buffered: u64,
    /// Seconds the store took to complete a multipart upload (server-side assembly; some
    /// stores copy the whole object), included in `elapsed_secs`. 0 otherwise.
    pub complete_secs: f64,
}

impl TransferReport {
    /// Throughput in MiB/s.
    pub fn mib_per_sec(&self) -> f64 {
        if self.elapsed_secs <= 0.0 {
            return 0.0;
        }
        self.bytes as f64 / (1024.0 * 1024.0) / self.elapsed_secs
    }
}

/// Splits `size` bytes into consecutive ranges of `part` bytes (the last may be shorter).
pub fn plan_parts(size: u64, part: u64) -> Vec<std::ops::Range<u64>> {
    let part = part.max(1);
    (0..size.div_ceil(part))
        .map(|i| i * part..((i + 1) * part).min(size))
        .collect()
}

/// Combines per-part CRC32C values (in order) into the CRC32C of the whole.
pub fn combine_crc32c(parts: &[(u32, u64)]) -> u32 {
    parts.iter().fold(0u32, |acc, &(crc, len)| {
        crc32c::crc32c_combine(acc, crc, len as usize)
    })
}

/// Counts payload bytes held by an engine and remembers the peak.
#[derive(Debug, Default)]
pub(crate) struct Buffered {
    now: AtomicU64,
    peak: AtomicU64,
}

impl Buffered {
    pub(crate) fn add(&self, n: u64) {
        let v = self.now.fetch_add(n, Ordering::SeqCst) + n;
        self.peak.fetch_max(v, Ordering::SeqCst);
    }
    pub(crate) fn sub(&self, n: u64) {
        self.now.fetch_sub(n, Ordering::SeqCst);
    }
    pub(crate) fn peak(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_object() {
        assert!(plan_parts(0, 8).is_empty());
        assert_eq!(plan_parts(20, 8), vec![0..8, 8..16, 16..20]);
        assert_eq!(plan_parts(16, 8), vec![0..8, 8..16]);
    }

    #[test]
    fn crc_combination_matches_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let parts: Vec<(u32, u64)> = data
            .chunks(30_000)
            .map(|c| (crc32c::crc32c(c), c.len() as u64))
            .collect();
        assert_eq!(combine_crc32c(&parts), crc32c::crc32c(&data));
    }
}
