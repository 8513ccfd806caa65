//! The machine's own limits, measured in the same run as a benchmark.

use std::time::Instant;

/// Limits of this machine.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MachineLimits {
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// Single-thread memory copy bandwidth, GiB/s (256 MiB buffers, best of 3).
    pub memcpy_gib_per_sec: f64,
}

impl MachineLimits {
    /// Measures the limits (about half a second).
    pub fn measure() -> Self {
        let n = 256 << 20;
        let src = vec![1u8; n];
        let mut dst = vec![0u8; n];
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            dst.copy_from_slice(&src);
            std::hint::black_box(&dst);
            best = best.min(t.elapsed().as_secs_f64());
        }
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memcpy_gib_per_sec: n as f64 / (1u64 << 30) as f64 / best,
        }
    }
}
