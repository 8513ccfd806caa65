//! The plan for the machine Strata runs on: the MLPerf resnet50 workload (H100 profile) read
//! from a local directory through this machine's disk and memory, as measured by a device
//! probe and a memory copy. `strata demo` ends with it; `strata plan --machine DIR` prints it.

use crate::error::PlanError;
use crate::probe::ProbeReport;
use crate::scenario::{Scenario, TierKind};

/// Single-thread memory copy bandwidth, bytes/s (256 MiB, best of 3; about half a second).
pub fn memcpy_bandwidth() -> f64 {
    let n = 256 << 20;
    let src = vec![1u8; n];
    let mut dst = vec![0u8; n];
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        dst.copy_from_slice(&src);
        std::hint::black_box(&dst);
        best = best.min(t.elapsed().as_secs_f64());
    }
    n as f64 / best.max(1e-9)
}

/// Bytes free for an unprivileged user on the file system of `dir`, and its total RAM.
pub fn free_and_ram(dir: &std::path::Path) -> (f64, f64) {
    use std::os::unix::ffi::OsStrExt;
    let mut free = 0.0;
    if let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) {
        // SAFETY: a valid C string and a zeroed out-parameter.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } == 0 {
            free = st.f_bavail as f64 * st.f_frsize as f64;
        }
    }
    // SAFETY: sysconf has no preconditions.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) } as f64;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    (free, (pages * page).max(0.0))
}

/// The scenario text for this machine (the figures the probe replaces are placeholders).
pub fn scenario_text(probe: &ProbeReport, memcpy: f64, free: f64, ram: f64) -> String {
    format!(
        r#"# This machine, as `strata plan --machine` measured it on {date}.
# The disk tiers carry the probe's figures (strata probe {target}); DRAM the memory copy.
name = "this machine: resnet50 (MLPerf, H100 profile) from a local directory"
description = "ImageNet-sized resnet50 data (1.28 M samples of 114,660 B) in shards on this disk, one H100-class accelerator."

[dataset]
size = "147 GB"
sample_size = "114660 B"
layout = "shards"
shuffle = "window"
epochs = 3

[accelerators]
nodes = 1
per_node = 1
batch = 400
step_time = "0.224 s"
target_utilization = 0.9

[[tier]]
name = "local directory"
kind = "file"
read_bandwidth = {seq:.0}
write_bandwidth = {seq:.0}
latency = "100 us"

[[tier]]
name = "NVMe cache"
kind = "nvme"
read_bandwidth = {seq:.0}
capacity = {cap:.0}

[[tier]]
name = "DRAM"
kind = "dram"
read_bandwidth = {memcpy:.0}
capacity = {ram:.0}

[pipeline]
buffer = "1 GiB"
concurrency = 32
block_size = "8 MiB"
cache = 0
"#,
        date = probe.date,
        target = probe.target,
        seq = probe.sequential_read.max(1.0),
        cap = free.max(1.0),
        memcpy = memcpy.max(1.0),
        ram = ram.max(1.0),
    )
}

/// The scenario for this machine, its disk tiers calibrated by `probe`.
pub fn scenario(
    probe: &ProbeReport,
    memcpy: f64,
    free: f64,
    ram: f64,
) -> Result<Scenario, PlanError> {
    let mut s = Scenario::from_toml(&scenario_text(probe, memcpy, free, ram), "this machine")?;
    for kind in [TierKind::File, TierKind::Nvme] {
        if let Some(t) = s.tier_mut(kind) {
            t.calibrate(probe.curve());
        }
    }
    Ok(s)
}

/// This machine's scenario from a device probe of `dir`: measures the memory copy, the free
/// space of `dir` and the RAM, and returns the scenario's text (what `--print-scenario`
/// shows) and the scenario, its disk tiers calibrated by `probe`.
pub fn this_machine(
    dir: &std::path::Path,
    probe: &ProbeReport,
) -> Result<(String, Scenario), PlanError> {
    let memcpy = memcpy_bandwidth();
    let (free, ram) = free_and_ram(dir);
    Ok((
        scenario_text(probe, memcpy, free, ram),
        scenario(probe, memcpy, free, ram)?,
    ))
}

/// How many accelerators of the scenario's kind one node's source tier could feed at the
/// target utilization (the pipeline equation solved for per_node).
pub fn accelerators_fed(s: &Scenario) -> Option<f64> {
    let d = s.dataset.as_ref()?;
    let a = s.accelerators.as_ref()?;
    let src = s.source()?;
    let (req, random) = crate::pipeline::access(s);
    let supply = crate::pipeline::source_rate(s, src, req, random);
    let one = a.node_demand(d.sample_size) / a.per_node as f64;
    Some(supply / (one * a.target))
}
