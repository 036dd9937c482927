//! danm-cli: the code the DANM reference binaries share, kept out of their `main` functions.
//!
//! This crate does the I/O that `danm-core` leaves out: it reads a plugin's environment and stdin,
//! runs other CNI plugins as processes, and hosts the small plugins DANM ships and danmctl's verbs. It
//! holds no network model, IPAM or validation of its own; those live in `danm-core`.
//!
//! - [`danm`]: the `danm` CNI plugin: danm-core's meta-plugin on the local store, with the netlink
//!   provisioner and the process executor.
//! - [`demo`]: `danmctl demo`, upstream DANM's service discovery demo end to end on the embedded store.
//! - [`cni_main`]: the `main` of a CNI plugin binary: environment and stdin in, dispatch, stdout and
//!   exit code out.
//! - [`delegate`]: [`ProcessExecutor`], the `DelegateExecutor` that runs plugins found on `CNI_PATH`.
//! - [`fakeipam`]: the IPAM plugin that hands out exactly the addresses its configuration lists.
//! - [`ctl`]: danmctl's verbs over any Datastore.
//! - [`controller`]: what the controller binaries share: logs, the client, telemetry until shutdown.
//! - [`store`]: the embedded local store, one SQLite file safe for many processes at once.

pub mod cni_main;
pub mod controller;
pub mod ctl;
pub mod danm;
pub mod delegate;
pub mod demo;
pub mod fakeipam;
pub mod store;

pub use delegate::ProcessExecutor;
pub use fakeipam::FakeIpam;
