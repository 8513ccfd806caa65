//! One file per command. Each turns its arguments into calls to the libraries and prints.

#[cfg(feature = "testkit")]
pub mod bench;
pub mod cache;
pub mod cat;
pub mod ckpt;
pub mod cp;
pub mod dataset;
#[cfg(feature = "testkit")]
pub mod demo;
pub mod ls;
pub mod models;
pub mod plan;
pub mod rm;
pub mod serve;
#[cfg(feature = "testkit")]
pub mod test_server;
