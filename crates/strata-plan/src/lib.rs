//! The planner: see the I/O wall before you hit it.
//!
//! Pure models (no I/O) beside one measuring module, the probe:
//!
//! - [`scenario`]: what `strata plan SCENARIO.toml` reads, validated once; errors name the
//!   field. Quantities take units (`strata_units`).
//! - [`tier`]: how fast a tier serves requests of a size with some in flight, from a
//!   scenario's figures or from a probe's measured curve (`--calibrate`).
//! - [`pipeline`]: the data pipeline equation tier by tier, the bottleneck, the predicted
//!   accelerator utilization, and the I/O wall (sequential versus shuffled).
//! - [`sizing`]: the smallest balanced tiering (cache, buffer, download bandwidth) for the
//!   target utilization.
//! - [`interval`] and [`checkpoint`]: Young and Daly, wasted work and run time, the
//!   checkpoint storm and its staggered alternative; [`sim`] checks Daly by simulation.
//! - [`cost`]: monthly cost with lifecycle transitions from a price book.
//! - [`recommend`]: local-first or cloud-native, with reasons.
//! - [`lessons`]: the workbench's three questions (random access, a cache behind a slow
//!   link, 10-minute checkpoints), answered for a scenario by planning variants of it.
//! - [`machine`]: the plan for the machine Strata runs on (`strata demo` ends with it).
//! - [`personas`]: the four crises of the workbench, with numbers and answers.
//! - [`overrides`]: knobs over a scenario (`strata plan`'s flags, the workbench's sliders).
//! - [`plan`]: all of it for one scenario, as one serializable report.
//! - [`svg`] and [`plots`]: the Sankey, IOPS versus throughput, Young–Daly, waterfall and
//!   saturation plots, as standalone SVG.
//! - [`probe`]: the one module that does I/O: sequential and random reads and writes over
//!   block sizes and queue depths on a file system (O_DIRECT where allowed), and GET latency
//!   and throughput against object size and concurrency on an object store.
//!
//! Why a planner calibrated by measurement: a spreadsheet takes a datasheet's figures; the
//! planner takes the figures `strata probe` measured on the user's own devices, and
//! `strata bench plan` checks its predictions against the engine's own runs.

pub mod checkpoint;
pub mod cost;
pub mod error;
pub mod interval;
pub mod lessons;
pub mod machine;
pub mod overrides;
pub mod personas;
pub mod pipeline;
pub mod plan;
pub mod plots;
pub mod probe;
pub mod recommend;
pub mod scenario;
pub mod sim;
pub mod sizing;
pub mod svg;
pub mod tier;

/// Quantities as people read them, for every report and plot of the planner.
use strata_units::format as units;

pub use overrides::Overrides;
pub use plan::{Plan, plan};
pub use scenario::{Scenario, ScenarioError};
