//! Command-line syntax (clap derive). Turned into settings in exactly one place,
//! [`crate::settings::Settings::from_args`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Strata: a tiered storage engine for machine-learning fleets.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings every command accepts; they override the config file and the environment.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Config file (TOML). Default: $STRATA_CONFIG, else ~/.config/strata/config.toml if present.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// S3 endpoint URL (overrides AWS_ENDPOINT_URL). http:// endpoints are allowed.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint: Option<String>,
    /// S3 region (overrides AWS_REGION).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Part size for ranged downloads, e.g. 8MiB.
    #[arg(long, global = true, value_name = "SIZE")]
    pub part_size: Option<String>,
    /// Parts in flight per object.
    #[arg(value_parser = positive::<usize>, long, global = true, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Limit transfer bandwidth, e.g. 100MiB (per second).
    #[arg(long, global = true, value_name = "SIZE")]
    pub bytes_per_sec: Option<String>,
    /// Read through the block cache in this directory (cp, cat), or use it (warm, cache).
    /// Default for warm and cache: $STRATA_CACHE_DIR, else ~/.cache/strata.
    #[arg(long, global = true, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Read through the node's daemon (`strata serve`) at this address: http://HOST:PORT or
    /// unix:/path (cat, stat; warm fills the daemon's cache). Default: $STRATA_DAEMON. The token, if any, from $STRATA_TOKEN.
    #[arg(long, global = true, value_name = "ADDR", env = "STRATA_DAEMON")]
    pub daemon: Option<String>,
    /// Print machine-readable JSON on standard output.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy objects and files: local↔remote and remote↔remote, parallel across and within files.
    Cp(CpArgs),
    /// List objects and prefixes.
    Ls(LsArgs),
    /// Write objects to standard output, one after another.
    Cat(CatArgs),
    /// Show an object's size, ETag and modification time.
    Stat(UrlArg),
    /// Delete an object, or with -r everything under a prefix.
    Rm(RmArgs),
    /// Total size and object count under a prefix.
    Du(DuArgs),
    /// Hydrate the NVMe cache with everything under a prefix (or one object).
    Warm(WarmArgs),
    /// Inspect and manage the block cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Pack a directory or prefix of raw files into WebDataset tar shards with an index and a
    /// manifest.
    Pack(PackArgs),
    /// Build the sample index (and a manifest) for existing .tar or .tfrecord shards, or the
    /// manifest of a raw dataset (--raw).
    Index(IndexArgs),
    /// Inspect and read datasets.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Checkpoints: save files as a checkpoint, list, show, verify, restore, collect.
    #[command(subcommand)]
    Ckpt(CkptCommand),
    /// Models: pull into the node cache once, inspect, list, verify, remove.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Plan a storage hierarchy: the pipeline equation tier by tier, the bottleneck and
    /// predicted accelerator utilization, the balanced tiering, the checkpoint interval and
    /// storm, monthly cost with lifecycle, and a recommendation. From a scenario file
    /// (see docs/planner.md), a persona, or this machine.
    Plan(Box<PlanArgs>),
    /// Measure a tier: a directory (sequential and random reads and writes over block sizes
    /// and queue depths, O_DIRECT where allowed) or an object store URL (GET latency and
    /// throughput against object size and concurrency). Table, JSON (--json or --out) and
    /// an SVG plot; the JSON feeds `strata plan --calibrate`.
    Probe(ProbeArgs),
    /// Run the node daemon: one cache per node for every process on it, an S3-compatible read
    /// endpoint, Prometheus /metrics, the dashboard and the workbench (http://127.0.0.1:7420).
    Serve(ServeArgs),
    /// Run a short tour of Strata on local directories (no servers to start).
    #[cfg(feature = "testkit")]
    Demo(DemoArgs),
    /// Start a throwaway S3 server on 127.0.0.1 (files in a temporary directory), optionally
    /// behind the link emulator, for experiments and tests. Prints its endpoint, bucket and
    /// keys as one JSON line, and runs until stdin closes or the process is stopped.
    #[command(name = "test-s3-server")]
    #[cfg(feature = "testkit")]
    TestS3Server(TestS3ServerArgs),
    /// Benchmarks, measured against the machine's limits and the naive way.
    #[command(subcommand)]
    #[cfg(feature = "testkit")]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum CkptCommand {
    /// Save files as checkpoint STEP of this rank (the drain to the store runs before the
    /// command returns; with --no-wait, after the local copy is durable it returns).
    Save(CkptSaveArgs),
    /// List checkpoints: step, complete or not, tiers, size.
    Ls(CkptRootArgs),
    /// A checkpoint's manifest: files, sizes, ranks, tiers.
    Show(CkptStepArgs),
    /// Read every chunk of a checkpoint on each tier and check it against the manifest.
    Verify(CkptStepArgs),
    /// Restore a checkpoint's files (every rank's, or one rank's) into a directory.
    Restore(CkptRestoreArgs),
    /// Remove incomplete checkpoints and those the retention rules retire.
    Gc(CkptGcArgs),
    /// Drain the local tier's complete checkpoints that never reached the store (a save
    /// killed after its local copy), those newer than the store's newest, oldest first.
    Sync(CkptRootArgs),
}

#[derive(Debug, Args)]
pub struct CkptRootArgs {
    /// The checkpoint root: s3://bucket/prefix, a path, …
    pub url: String,
    /// The local tier directory (NVMe) that mirrors the root (ckpt.local,
    /// $STRATA_CKPT_LOCAL).
    #[arg(long)]
    pub local: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CkptStepArgs {
    #[command(flatten)]
    pub root: CkptRootArgs,
    /// The step, or `latest`.
    pub step: String,
}

#[derive(Debug, Args)]
pub struct CkptSaveArgs {
    #[command(flatten)]
    pub root: CkptRootArgs,
    /// The step.
    #[arg(long)]
    pub step: u64,
    /// Files to save; each is stored under its file name (or NAME=PATH).
    #[arg(required = true)]
    pub files: Vec<String>,
    /// This rank.
    #[arg(long, default_value_t = 0)]
    pub rank: u32,
    /// Ranks saving this checkpoint.
    #[arg(value_parser = positive::<u32>, long, default_value_t = 1)]
    pub world: u32,
    /// durable-local (return once the local copy is fsynced; the default with a local
    /// directory) or snapshot (once copied into memory; the default without). Config:
    /// ckpt.mode. Every flag below overrides the config file's [ckpt] section.
    #[arg(long)]
    pub mode: Option<String>,
    /// Return once saved locally (or staged) instead of waiting for the drain.
    #[arg(long)]
    pub no_wait: bool,
    /// How long the commit waits for every rank, e.g. 10m (default 10m; ckpt.commit_timeout).
    #[arg(long)]
    pub commit_timeout: Option<String>,
    /// Upper bound of the random delay before the drain, e.g. 2s (default 0s; ckpt.jitter).
    #[arg(long)]
    pub jitter: Option<String>,
    /// Drain admission: auto, leases, slots or off (default auto; ckpt.admission).
    #[arg(long)]
    pub admission: Option<String>,
    /// Drains uploading at once across the fleet (default 8; ckpt.max_writers).
    #[arg(long)]
    pub max_writers: Option<u32>,
    /// Where the fleet's upload leases live (default: .strata-leases under the root;
    /// ckpt.lease_root). Writers that share a lease root share the --max-writers limit.
    #[arg(long)]
    pub lease_root: Option<String>,
    /// Keep the newest N complete checkpoints in the store (default all; ckpt.keep_last).
    #[arg(long)]
    pub keep_last: Option<usize>,
    /// Keep the newest M drained checkpoints on the local tier (default 2;
    /// ckpt.local_keep_last).
    #[arg(long)]
    pub local_keep_last: Option<usize>,
}

#[derive(Debug, Args)]
pub struct CkptRestoreArgs {
    #[command(flatten)]
    pub root: CkptRootArgs,
    /// The step, or `latest`.
    pub step: String,
    /// The directory to write into (created; files go to DIR/rank-NNNNN/NAME, or DIR/NAME
    /// with --rank).
    pub dir: PathBuf,
    /// Restore only this rank's files, directly into DIR.
    #[arg(long)]
    pub rank: Option<u32>,
}

#[derive(Debug, Args)]
pub struct CkptGcArgs {
    #[command(flatten)]
    pub root: CkptRootArgs,
    /// Remove incomplete checkpoints untouched for this long, e.g. 1h (0s: all; only when
    /// no save is running).
    #[arg(long, default_value = "1h")]
    pub older_than: String,
    /// Keep the newest N complete checkpoints (ckpt.keep_last).
    #[arg(long)]
    pub keep_last: Option<usize>,
    /// Also keep every step that is a multiple of K (ckpt.keep_every).
    #[arg(long)]
    pub keep_every: Option<u64>,
    /// Remove complete checkpoints older than this, e.g. 30d (never the newest;
    /// ckpt.max_age).
    #[arg(long)]
    pub max_age: Option<String>,
    /// Keep the newest M drained checkpoints on the local tier (default 2;
    /// ckpt.local_keep_last).
    #[arg(long)]
    pub local_keep_last: Option<usize>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PlanArgs {
    #[command(subcommand)]
    pub command: Option<PlanCommand>,
    /// A scenario file (TOML). With --persona, a persona file whose figures replace the
    /// persona's own.
    pub scenario: Option<std::path::PathBuf>,
    /// A persona of the workbench: cloud-titan, edge-guardian, mobile-nomad, tiny-pioneer.
    #[arg(long)]
    pub persona: Option<String>,
    /// Print the scenario file (of --persona, or of --machine) instead of planning.
    #[arg(long)]
    pub print_scenario: bool,
    /// Plan for this machine: probe DIR quickly and plan the resnet50 workload from a local
    /// directory through the NVMe and DRAM tiers as measured.
    #[arg(long, value_name = "DIR")]
    pub machine: Option<std::path::PathBuf>,
    /// Measured figures from `strata probe --json`: FILE (an object probe calibrates the
    /// source tier, a device probe the NVMe tier) or TIER=FILE (the tier of that name).
    /// Repeatable.
    #[arg(long, value_name = "[TIER=]FILE")]
    pub calibrate: Vec<String>,
    /// A price book over the defaults (same layout as crates/strata-plan/data/pricebook.toml).
    #[arg(long, value_name = "FILE")]
    pub prices: Option<std::path::PathBuf>,
    /// Write the plots (Sankey, waterfall, saturation, Young–Daly, IOPS) as SVG files here.
    #[arg(long, value_name = "DIR")]
    pub svg: Option<std::path::PathBuf>,
    /// Override: nodes reading the dataset.
    #[arg(long)]
    pub nodes: Option<u32>,
    /// Override: epochs.
    #[arg(long)]
    pub epochs: Option<u32>,
    /// Override: per-node download bandwidth, e.g. 25Gbps or 2GB/s.
    #[arg(long)]
    pub download: Option<String>,
    /// Override: NVMe read bandwidth, e.g. 6GB/s.
    #[arg(long)]
    pub nvme_bandwidth: Option<String>,
    /// Override: NVMe cache per node, e.g. 2TB (0 turns the cache off).
    #[arg(long)]
    pub cache_size: Option<String>,
    /// Override: prefetch buffer per node, e.g. 4GiB.
    #[arg(long)]
    pub buffer: Option<String>,
    /// Override: how samples are stored: shards or raw (one object per sample).
    #[arg(long)]
    pub layout: Option<strata_plan::scenario::Layout>,
    /// Override: the read order: none, window (shards + a shuffle buffer) or global.
    #[arg(long)]
    pub shuffle: Option<strata_plan::scenario::Shuffle>,
    /// Override: the checkpoint interval in use, e.g. 30min.
    #[arg(long)]
    pub checkpoint_interval: Option<String>,
    /// Override: the store's shared write bandwidth for checkpoints, e.g. 50GB/s.
    #[arg(long)]
    pub write_bandwidth: Option<String>,
    /// Override: one node's mean time between failures, e.g. 265d.
    #[arg(long)]
    pub node_mtbf: Option<String>,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// A directory (a plain path or file:///…) or an object store URL (s3://bucket/prefix/).
    pub target: String,
    /// A short grid that finishes within 20 seconds.
    #[arg(long)]
    pub quick: bool,
    /// Write the report as JSON to this file (for `strata plan --calibrate`).
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    /// Write the IOPS-versus-throughput plot to this file.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<std::path::PathBuf>,
    /// Device probes: the test file size, e.g. 1GiB (default 1 GiB; 256 MiB with --quick).
    #[arg(long)]
    pub size: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// The checkpoint interval that minimizes lost time (Young, Daly), its expected waste,
    /// and warnings.
    Interval(PlanIntervalArgs),
}

#[derive(Debug, Args)]
pub struct PlanIntervalArgs {
    /// The training time a checkpoint costs (its stall), e.g. 30s.
    #[arg(long)]
    pub ckpt_cost: String,
    /// Mean time between failures of one node, e.g. 4h or 30d.
    #[arg(long)]
    pub mtbf: String,
    /// Nodes in the job.
    #[arg(long, default_value_t = 1)]
    pub nodes: u64,
    /// Time to restart after a failure, e.g. 5m.
    #[arg(long, default_value = "0s")]
    pub restart: String,
    /// The interval in use, to compare, e.g. 30m.
    #[arg(long)]
    pub interval: Option<String>,
    /// The time a checkpoint takes to become durable in the store, e.g. 2m.
    #[arg(long)]
    pub drain: Option<String>,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    /// s3://bucket/key, gs://…, az://…, file:///path, a plain path, or memory://name/key.
    #[arg(required = true, num_args = 1..)]
    pub urls: Vec<String>,
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// The shards' prefix (or the raw objects', with --raw).
    pub url: String,
    /// Write the indexes and manifest here (another prefix or a local directory) instead of
    /// beside the shards: for a dataset in a bucket this job may only read. Readers take it
    /// with `--index` (`strata.Dataset(url, index=...)`).
    #[arg(long, value_name = "URL")]
    pub out: Option<String>,
    /// A raw dataset (one object per sample): write the manifest of every object with an
    /// extension, with its size and ETag, so readers neither list nor HEAD the objects.
    #[arg(long)]
    pub raw: bool,
}

#[derive(Debug, Args)]
pub struct UrlArg {
    /// s3://bucket/key, gs://…, az://…, file:///path, a plain path, or memory://name/key.
    pub url: String,
}

#[derive(Debug, Args)]
pub struct TestS3ServerArgs {
    /// Put the link emulator in front with this profile: s3, nfs, lustre or local.
    #[arg(long)]
    pub link: Option<String>,
    /// The server: `s3s` (the in-process server, files in a temporary directory; the
    /// default) or `garage` (a Garage node, the binary from $STRATA_GARAGE_BIN or PATH).
    #[arg(long)]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct WarmArgs {
    /// s3://bucket/prefix/, an object URL, or any URL `cp` takes.
    pub url: String,
    /// Where the data should be when warm returns: `nvme` (block files in the cache
    /// directory) or `dram` (those block files also loaded into the node's page cache, which
    /// every process shares; reported with how much of it stayed resident). With --daemon,
    /// the daemon's own cache: `dram` then requires its DRAM tier to hold all of it.
    #[arg(long, default_value = "nvme")]
    pub tier: String,
}

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Source URL or path.
    pub src: String,
    /// Destination URL or path. A trailing / (or an existing directory) means "into".
    pub dst: String,
    /// Copy everything under the source prefix or directory.
    #[arg(short, long)]
    pub recursive: bool,
    /// Follow symbolic links in a local source directory (a link back to a directory being
    /// copied is reported as a loop and not entered). By default links are skipped, each
    /// named in a warning.
    #[arg(long)]
    pub follow_symlinks: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Prefix or object to list.
    pub url: String,
    /// List everything under the prefix, not one level.
    #[arg(short, long)]
    pub recursive: bool,
    /// Human-readable sizes (KiB, MiB, ...).
    #[arg(short = 'H', long)]
    pub human_readable: bool,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Object or prefix to delete.
    pub url: String,
    /// Delete everything under the prefix.
    #[arg(short, long)]
    pub recursive: bool,
    /// Do not ask before deleting a prefix.
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct DuArgs {
    /// Prefix (or object) to measure.
    pub url: String,
    /// Human-readable sizes.
    #[arg(short = 'H', long)]
    pub human_readable: bool,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Pull a model (every file under the URL) into the node cache: parallel ranged reads,
    /// one download however many processes pull at once, resumable, published atomically.
    Pull(ModelsPullArgs),
    /// Read and validate the safetensors headers on the store and list the tensors, without
    /// downloading the data.
    Inspect(ModelsInspectArgs),
    /// The models in the node cache.
    Ls,
    /// Check a cached model's files against its manifest (sizes, CRC32C, headers).
    Verify(ModelsRefArgs),
    /// Remove a cached model (every version pulled from a URL, or one directory).
    Rm(ModelsRefArgs),
}

#[derive(Debug, Args)]
pub struct ModelsPullArgs {
    /// s3://bucket/models/name/ (a prefix: every file under it) or one file's URL.
    pub url: String,
    /// Only these tensors: names, or prefixes ending in `.` or `*` (one tensor-parallel
    /// rank's slice). Comma-separated or repeated.
    #[arg(long, value_delimiter = ',')]
    pub tensors: Vec<String>,
    /// Ranged reads in flight across all files.
    #[arg(value_parser = positive::<usize>, long, default_value_t = 32)]
    pub parts_in_flight: usize,
    /// Before serving a cached copy, read it and check every file's CRC32C (otherwise only
    /// the sizes are checked); a damaged copy is pulled again.
    #[arg(long)]
    pub verify: bool,
}

#[derive(Debug, Args)]
pub struct ModelsInspectArgs {
    /// The model's URL.
    pub url: String,
    /// Only these tensors (as for pull).
    #[arg(long, value_delimiter = ',')]
    pub tensors: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ModelsRefArgs {
    /// The URL it was pulled from, or its directory in the cache.
    pub model: String,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Blocks, bytes, capacity and free space of the cache directory.
    Stats,
    /// Delete every cached block.
    Clear {
        /// Do not ask first.
        #[arg(short, long)]
        yes: bool,
    },
    /// Drop the cached blocks of an object, or of every object under a prefix.
    Invalidate(UrlArg),
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for the demo's store and files. Default: ./strata-demo
    #[arg(long, default_value = "strata-demo")]
    pub dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Download and upload one object through the link emulator: engine vs single stream.
    Transfer(BenchTransferArgs),
    /// Cold, NVMe-warm and DRAM-warm reads of a dataset, and eviction policies on shuffled epochs.
    Cache(BenchCacheArgs),
    /// Emulated training on the MLPerf Storage workloads: audit (sequential vs shuffled, shards
    /// vs raw), accelerator utilization, cache policies, and the largest N that keeps up.
    Train(BenchTrainArgs),
    /// Checkpoint stall (snapshot, durable-local), drain and restore against memcpy, the
    /// local disk and the link cap.
    Ckpt(BenchCkptArgs),
    /// A model's cold start: pull through the emulated link against its cap and one stream
    /// per file; time to first tensor; concurrent processes download once.
    Models(BenchModelsArgs),
    /// Many writers checkpointing at once into an overloaded store: all at once with plain
    /// retries against Strata's paced drain.
    CkptStorm(BenchStormArgs),
    /// Does the planner predict what the engine does? Probe the link, plan each MLPerf
    /// workload and layout of `bench train`, run it, and compare AU and throughput (±15%).
    Plan(BenchPlanArgs),
    /// Processes on one node reading the same dataset: through the node's daemon against each
    /// with its own cache (bytes from the store, throughput against the link cap).
    Daemon(BenchDaemonArgs),
    /// Reads, saves, restores and model pulls together for N minutes through a faulty link
    /// against a three-node Garage cluster losing a node every minute: wrong bytes, lost
    /// checkpoints and peak RSS (exits 1 when one is off).
    Soak(BenchSoakArgs),
}

#[derive(Debug, Args)]
pub struct BenchDaemonArgs {
    /// Dataset size.
    #[arg(long, default_value = "1GiB")]
    pub size: String,
    /// Objects the dataset is cut into.
    #[arg(value_parser = positive::<usize>, long, default_value_t = 8)]
    pub objects: usize,
    /// Reader processes.
    #[arg(value_parser = positive::<usize>, long, default_value_t = 4)]
    pub processes: usize,
    /// Link emulator profile: s3, nfs, lustre or local.
    #[arg(long, default_value = "s3")]
    pub link: String,
    /// S3 server: in-process or garage.
    #[arg(long, default_value = "in-process")]
    pub server: String,
}

#[derive(Debug, Args)]
pub struct BenchPlanArgs {
    /// Workloads, comma-separated: resnet50, cosmoflow, unet3d.
    #[arg(long, default_value = "resnet50,cosmoflow,unet3d")]
    pub workloads: String,
    /// Layouts: raw, shards or both.
    #[arg(long, default_value = "both")]
    pub layout: String,
    /// Dataset size per workload (default 2 GiB; 4 GiB for unet3d).
    #[arg(long)]
    pub dataset_size: Option<String>,
    /// Shard size.
    #[arg(long, default_value = "256MiB")]
    pub shard_size: String,
    /// Seconds per probe point.
    #[arg(long, default_value_t = 3.0)]
    pub probe_secs: f64,
    /// Link emulator profile: s3, nfs, lustre or local.
    #[arg(long, default_value = "s3")]
    pub link: String,
    /// Keep generated datasets here and reuse them (shared with `bench train`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Directory for the caches.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Exit non-zero when a prediction is outside the tolerance.
    #[arg(long)]
    pub strict: bool,
    /// The tolerance of a prediction, in percent of the measurement.
    #[arg(long, default_value_t = 15.0)]
    pub tolerance: f64,
}

#[derive(Debug, Args)]
pub struct BenchCkptArgs {
    /// Checkpoint size.
    #[arg(long, default_value = "2GiB")]
    pub size: String,
    /// Files the checkpoint is cut into.
    #[arg(value_parser = positive::<usize>, long, default_value_t = 4)]
    pub files: usize,
    /// Link emulator profile: s3, nfs, lustre or local.
    #[arg(long, default_value = "s3")]
    pub link: String,
    /// The local tier's directory (default: a temporary directory).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// The S3 server behind the emulator: in-process (s3s-fs) or garage (needs the `garage`
    /// binary, which scripts/test installs).
    #[arg(long, default_value = "in-process")]
    pub server: String,
}

#[derive(Debug, Args)]
pub struct BenchModelsArgs {
    /// Model size (safetensors shards).
    #[arg(long, default_value = "2GiB")]
    pub size: String,
    /// Safetensors shards.
    #[arg(value_parser = positive::<usize>, long, default_value_t = 2)]
    pub shards: usize,
    /// Processes pulling the model at once.
    #[arg(value_parser = positive::<usize>, long, default_value_t = 4)]
    pub processes: usize,
    /// Link emulator profile: s3, nfs, lustre or local.
    #[arg(long, default_value = "s3")]
    pub link: String,
    /// The S3 server behind the emulator: in-process or garage.
    #[arg(long, default_value = "in-process")]
    pub server: String,
}

#[derive(Debug, Args)]
pub struct BenchStormArgs {
    /// Writer processes saving at once.
    #[arg(value_parser = positive::<u32>, long, default_value_t = 32)]
    pub writers: u32,
    /// Checkpoint size per writer.
    #[arg(long, default_value = "32MiB")]
    pub size: String,
    /// The store answers 503 SlowDown above this many requests in flight.
    #[arg(value_parser = positive::<usize>, long, default_value_t = 32)]
    pub overload_above: usize,
    /// Drains admitted at once in the paced run (default: overload_above / parts in flight
    /// per writer).
    #[arg(long)]
    pub max_writers: Option<u32>,
}

#[derive(Debug, Args)]
pub struct BenchSoakArgs {
    /// How long the workers run, minutes (fractions allowed).
    #[arg(long, default_value_t = 1.0)]
    pub minutes: f64,
    /// Peak RSS any strata process may reach.
    #[arg(long, default_value = "1GiB")]
    pub rss_budget: String,
}

#[derive(Debug, Args)]
pub struct BenchTrainArgs {
    /// Workload: resnet50, unet3d or cosmoflow.
    #[arg(long, default_value = "resnet50")]
    pub workload: String,
    /// Emulated accelerators in the training phase (0 skips it).
    #[arg(long, default_value_t = 4)]
    pub accelerators: u32,
    /// Epochs of the training phase.
    #[arg(value_parser = positive::<u32>, long, default_value_t = 1)]
    pub epochs: u32,
    /// Link emulator profile: s3, nfs, lustre or local.
    #[arg(long, default_value = "s3")]
    pub link: String,
    /// Layout of the training phase: raw, shards or both.
    #[arg(long, default_value = "shards")]
    pub layout: String,
    /// Total dataset size.
    #[arg(long, default_value = "2GiB")]
    pub dataset_size: String,
    /// Shard size.
    #[arg(long, default_value = "256MiB")]
    pub shard_size: String,
    /// Multiply compute times by this (default: so that one accelerator wants 1/4 of the link).
    #[arg(long)]
    pub compute_scale: Option<f64>,
    /// Search the largest number of accelerators that meets the AU threshold.
    #[arg(long)]
    pub find_max: bool,
    /// Seconds per find-max trial.
    #[arg(long, default_value_t = 20.0)]
    pub trial_secs: f64,
    /// Only the training phase (no audit, no policy phase).
    #[arg(long)]
    pub training_only: bool,
    /// Keep generated datasets here and reuse them (default: a temporary directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Directory for the caches.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchCacheArgs {
    /// Dataset size (cut into 8 objects).
    #[arg(long, default_value = "2GiB")]
    pub size: String,
    /// Block size.
    #[arg(long, default_value = "8MiB")]
    pub block_size: String,
    /// Link emulator profile: s3, nfs, lustre or local.
    #[arg(long, default_value = "s3")]
    pub profile: String,
    /// Blocks read at once (16 cannot fill the s3 profile: 16 connections × 10 MiB/s is its
    /// whole cap, with no room for latency).
    #[arg(value_parser = positive::<usize>, long, default_value_t = 32)]
    pub concurrency: usize,
    /// Skip the block-size sweep.
    #[arg(long)]
    pub no_sweep: bool,
    /// Directory for the cache and probe files (it should be on the device to measure).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchTransferArgs {
    /// Object size.
    #[arg(long, default_value = "1GiB")]
    pub size: String,
    /// Link emulator profile: s3, nfs, lustre or local.
    #[arg(long, default_value = "s3")]
    pub profile: String,
    /// Bytes moved by the single-stream baseline.
    #[arg(long, default_value = "64MiB")]
    pub single_sample: String,
    /// Directory for the source and downloaded files. Default: a temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// Source: a local directory, or a URL prefix, of raw files (grouped into samples by
    /// basename: `a.jpg` and `a.json` are sample `a`).
    pub src: String,
    /// Destination URL or directory for the shards, their indexes and manifest.json.
    pub dst: String,
    /// Target shard size.
    #[arg(long, default_value = "256MiB")]
    pub shard_size: String,
    /// Shards written at once.
    #[arg(value_parser = positive::<usize>, long, default_value_t = 4)]
    pub parallel: usize,
}

#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// The manifest: shards, samples, bytes; and the shuffle quality of a plan.
    Info(DatasetReadArgs),
    /// Read a worker's share of an epoch and print each sample's key and size.
    Read(DatasetReadArgs),
}

#[derive(Debug, Args)]
pub struct DatasetReadArgs {
    /// The dataset's URL or directory (where manifest.json is).
    pub url: String,
    /// Shuffle: none, window or global.
    #[arg(long, default_value = "window")]
    pub shuffle: String,
    /// Shuffle seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Epoch.
    #[arg(long, default_value_t = 0)]
    pub epoch: u64,
    /// Shuffle window in samples.
    #[arg(long, default_value_t = 1024)]
    pub window: u64,
    /// Interleaved streams (set to the number of nodes of the first run).
    #[arg(value_parser = positive::<u32>, long, default_value_t = 1)]
    pub streams: u32,
    /// Ranks in the world.
    #[arg(value_parser = positive::<u32>, long, default_value_t = 1)]
    pub ranks: u32,
    /// This rank.
    #[arg(long, default_value_t = 0)]
    pub rank: u32,
    /// Plan positions already consumed (resume).
    #[arg(long, default_value_t = 0)]
    pub consumed: u64,
    /// Drop the last samples instead of padding.
    #[arg(long)]
    pub drop_last: bool,
    /// Skip corrupt samples (logged and counted) instead of failing.
    #[arg(long)]
    pub skip_corrupt: bool,
    /// Stop after this many samples.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Read every object under the URL as one sample (the raw layout): from the raw
    /// manifest given by --index, else from a listing.
    #[arg(long)]
    pub raw: bool,
    /// Where the manifest and shard indexes are, when not beside the shards
    /// (`strata index URL --out INDEX`).
    #[arg(long, value_name = "URL")]
    pub index: Option<String>,
    /// Stream the .tar shards under the URL in order, without an index or manifest (plain
    /// WebDataset reading: no shuffle, no ranks).
    #[arg(long)]
    pub stream: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TCP address. Default: 127.0.0.1:7420 (or daemon.listen, $STRATA_LISTEN). Any address
    /// that is not loopback requires a token ($STRATA_TOKEN or daemon.token_file).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Also serve on this Unix socket (or daemon.socket, $STRATA_SOCKET).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// A bucket of the S3-compatible endpoint: NAME=URL (repeatable), for example
    /// train=s3://my-bucket/datasets/imagenet.
    #[arg(long = "bucket", value_name = "NAME=URL")]
    pub buckets: Vec<String>,
    /// A directory under which local clients may read local files (file:// URLs and paths)
    /// through the daemon (repeatable; or daemon.local_roots). Default: none, so clients
    /// read only object stores through it.
    #[arg(long = "local-root", value_name = "DIR")]
    pub local_roots: Vec<PathBuf>,
    /// Print the effective settings (secrets shown only as set or not) and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// A count given on the command line, which must be at least 1 (`--ranks 0`, `--parallel 0`
/// and the like are refused with a clear message instead of hanging or dividing by zero).
fn positive<T>(s: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialEq + From<u8>,
    T::Err: std::fmt::Display,
{
    let v: T = s.parse().map_err(|e: T::Err| e.to_string())?;
    if v == T::from(0) {
        return Err("must be at least 1".into());
    }
    Ok(v)
}
