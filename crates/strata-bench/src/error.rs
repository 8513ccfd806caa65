//! Why a benchmark could not run or measure: the layer that failed, or a check of its own.

/// A benchmark error: the library error of the layer that failed, or a measurement or check
/// the benchmark could not make (the message says which and why).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The store.
    #[error(transparent)]
    Store(#[from] strata_store::StoreError),
    /// The block cache.
    #[error(transparent)]
    Cache(#[from] strata_cache::CacheError),
    /// The dataset engine.
    #[error(transparent)]
    Dataset(#[from] strata_dataset::DatasetError),
    /// The checkpoint engine.
    #[error(transparent)]
    Ckpt(#[from] strata_ckpt::CkptError),
    /// The model cache.
    #[error(transparent)]
    Models(#[from] strata_models::ModelError),
    /// The planner or its probe.
    #[error(transparent)]
    Plan(#[from] strata_plan::error::PlanError),
    /// The settings of a store the benchmark points at its servers.
    #[error(transparent)]
    Config(#[from] strata_config::ConfigError),
    /// A scenario the benchmark plans.
    #[error(transparent)]
    Scenario(#[from] strata_plan::ScenarioError),
    /// The Garage node the benchmark runs against.
    #[error(transparent)]
    Garage(#[from] strata_testkit::GarageError),
    /// A local file or process.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A measurement that could not be made, or a check of the results that failed.
    #[error("{0}")]
    Failed(String),
}

impl From<&str> for BenchError {
    fn from(m: &str) -> Self {
        Self::Failed(m.to_string())
    }
}

impl From<String> for BenchError {
    fn from(m: String) -> Self {
        Self::Failed(m)
    }
}

/// Results of the benchmarks.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
