//! The analytical models of the planner. Pure functions, no I/O.
//!
//! - [`interval`]: the optimal checkpoint interval (Young 1974, Daly 2006), the expected
//!   waste, and advice against a measured checkpoint cost and drain time.

pub mod interval;
