//! Benchmark support for danm-rs: baselines that behave like upstream DANM, and shared set-up.
//!
//! The baselines exist to be measured side by side with danm-rs in the same run, on the same store.
//! They are not used by any danm-rs crate.

pub mod setup;
pub mod upstream_ipam;
