//! danm-cli: the code the reference binaries share.
//!
//! The binaries (`danmctl`, and the others as they land) are thin: they parse arguments, build backends
//! and call into this library. This crate is not a general-purpose library; embedders use danm-core.

pub mod ctl;
