//! Probing an object store: PUT test objects of each size, then GET them with a number of
//! requests in flight for a while, counting the bytes as they arrive (so a point can be
//! shorter than one large GET) and timing each request to its first byte.
//!
//! The objects go under `PREFIX/.strata-probe-PID/` and are deleted when the probe ends,
//! also on error (best effort: a crash leaves them, and the next probe does not read them).

use crate::error::PlanError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use strata_store::Store;

use super::{ProbeKind, ProbeReport, percentiles};
use crate::tier::CurvePoint;

/// Settings of an object-store probe.
#[derive(Debug, Clone)]
pub struct ObjectProbe {
    /// Object sizes, bytes. Default: 4 KiB, 64 KiB, 1 MiB, 8 MiB, 16 MiB; quick: 64 KiB,
    /// 1 MiB, 8 MiB.
    pub sizes: Vec<u64>,
    /// GETs in flight. Default: 1, 4, 16, 32, 64; quick: 1, 8, 32.
    pub concurrency: Vec<u32>,
    /// Seconds per point. Default: 1.5 (0.6 with `quick`).
    pub point_secs: f64,
    /// Test bytes per size at most (fewer objects of the large sizes; GETs reuse them).
    /// Default: 256 MiB (64 MiB with `quick`).
    pub bytes_per_size: u64,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

impl ObjectProbe {
    /// The default probe (`quick`: fewer points, shorter).
    pub fn new(quick: bool) -> Self {
        if quick {
            Self {
                sizes: vec![64 * KIB, MIB, 8 * MIB],
                concurrency: vec![1, 8, 32],
                point_secs: 0.6,
                bytes_per_size: 64 * MIB,
            }
        } else {
            Self {
                sizes: vec![4 * KIB, 64 * KIB, MIB, 8 * MIB, 16 * MIB],
                concurrency: vec![1, 4, 16, 32, 64],
                point_secs: 1.5,
                bytes_per_size: 256 * MIB,
            }
        }
    }

    /// Runs the probe against `store` (its root is the URL given), under `prefix`.
    pub async fn run(&self, store: &Store, prefix: &str) -> Result<ProbeReport, PlanError> {
        let start = Instant::now();
        let dir = format!(
            "{}{}.strata-probe-{}",
            prefix.trim_matches('/'),
            if prefix.trim_matches('/').is_empty() {
                ""
            } else {
                "/"
            },
            std::process::id()
        );
        let mut written = Vec::new();
        let res = self.measure(store, &dir, &mut written).await;
        for k in &written {
            let _ = store.delete(k).await;
        }
        let (points, bytes) = res?;
        Ok(ProbeReport::new(
            store.root().to_string(),
            ProbeKind::Object,
            false,
            bytes,
            start.elapsed().as_secs_f64(),
            points,
            Vec::new(),
        ))
    }

    async fn measure(
        &self,
        store: &Store,
        dir: &str,
        written: &mut Vec<String>,
    ) -> Result<(Vec<CurvePoint>, u64), PlanError> {
        let max_c = self.concurrency.iter().copied().max().unwrap_or(1) as u64;
        let mut points = Vec::new();
        let mut total = 0;
        for &size in &self.sizes {
            let count = (self.bytes_per_size / size).clamp(1, max_c);
            let keys: Vec<String> = (0..count).map(|i| format!("{dir}/{size}-{i}")).collect();
            // PUT phase: the write point, up to 16 in flight.
            let data = Bytes::from(
                (0..size)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                    .collect::<Vec<u8>>(),
            );
            let put_c = count.min(16) as usize;
            let t = Instant::now();
            let lat: Vec<Result<f64, PlanError>> = futures::stream::iter(keys.iter().cloned())
                .map(|k| {
                    let data = data.clone();
                    async move {
                        let t = Instant::now();
                        store
                            .put(&k, data)
                            .await
                            .map_err(|e| PlanError::Invalid(format!("probe PUT: {e}")))?;
                        Ok(t.elapsed().as_secs_f64())
                    }
                })
                .buffer_unordered(put_c)
                .collect()
                .await;
            let put_secs = t.elapsed().as_secs_f64();
            written.extend(keys.iter().cloned());
            let lat: Vec<f64> = lat.into_iter().collect::<Result<_, _>>()?;
            total += size * count;
            let (p50, p95, p99) = percentiles(lat);
            points.push(CurvePoint {
                op: "write".into(),
                random: false,
                block: size,
                depth: put_c as u32,
                bytes_per_sec: (size * count) as f64 / put_secs,
                iops: count as f64 / put_secs,
                p50,
                p95,
                p99,
            });
            for &c in &self.concurrency {
                points.push(self.get_point(store, &keys, size, c).await?);
            }
        }
        Ok((points, total))
    }

    /// `c` workers GET the objects round-robin until the point's time is up; bytes count as
    /// they arrive.
    async fn get_point(
        &self,
        store: &Store,
        keys: &[String],
        size: u64,
        c: u32,
    ) -> Result<CurvePoint, PlanError> {
        let bytes = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_secs_f64(self.point_secs);
        let workers = (0..c).map(|w| {
            let bytes = bytes.clone();
            let done = done.clone();
            let keys = keys.to_vec();
            async move {
                let mut lat = Vec::new();
                let mut i = w as usize;
                while Instant::now() < deadline {
                    let key = &keys[i % keys.len()];
                    i += c as usize;
                    let t = Instant::now();
                    let mut stream = store
                        .get_stream(key)
                        .await
                        .map_err(|e| PlanError::Invalid(format!("probe GET {key}: {e}")))?;
                    let mut first = true;
                    let mut got = 0u64;
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk
                            .map_err(|e| PlanError::Invalid(format!("probe GET {key}: {e}")))?;
                        if first {
                            lat.push(t.elapsed().as_secs_f64());
                            first = false;
                        }
                        if Instant::now() < deadline {
                            bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        }
                        got += chunk.len() as u64;
                        if Instant::now() >= deadline {
                            break;
                        }
                    }
                    if got == size {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok::<_, PlanError>(lat)
            }
        });
        let lats = futures::future::join_all(workers).await;
        let elapsed = self.point_secs.max(1e-9);
        let mut lat = Vec::new();
        for l in lats {
            lat.extend(l?);
        }
        let b = bytes.load(Ordering::Relaxed);
        let (p50, p95, p99) = percentiles(lat);
        let _ = t0;
        Ok(CurvePoint {
            op: "read".into(),
            random: false,
            block: size,
            depth: c,
            bytes_per_sec: b as f64 / elapsed,
            iops: b as f64 / size as f64 / elapsed,
            p50,
            p95,
            p99,
        })
    }
}
