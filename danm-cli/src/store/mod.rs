//! Datastores the binaries can be configured with, beyond `danm-core`'s in-memory one.
//!
//! - [`SqliteStore`]: an embedded store in one SQLite file, for nodes without a Kubernetes API to keep
//!   DANM's objects in (and for tests and demos). It implements the `danm_core::store::Datastore`
//!   contract and passes its conformance suite.
//! - [`AnyStore`]: that store or danm-k8s's Kubernetes store, chosen at run time.

mod any;
mod sqlite;

pub use any::AnyStore;
pub use sqlite::{BUSY_TIMEOUT, SCHEMA_VERSION, SqliteError, SqliteStore};
