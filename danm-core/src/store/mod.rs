//! The Datastore seam: where DANM keeps networks, tenant configs, endpoints, pod metadata and IPAM state.
//!
//! The trait is deliberately small — get, list, create, update, delete over a closed set of object kinds —
//! so that a backend implements five methods and every backend behaves alike. Every write is
//! compare-and-swap: [`Datastore::update`] and [`Datastore::delete`] take the [`Version`] the caller read,
//! and a stale version is answered with [`StoreError::Conflict`], a typed error that never needs a message
//! matched. Creating an object that exists is a `Conflict` too (Kubernetes answers both with 409).
//!
//! Backends: [`MemoryStore`] (feature `memory`, on by default) here; the SQLite file store lives in
//! `danm-cli`, the Kubernetes store in `danm-k8s`. [`Latency`] and [`Metered`] wrap any backend to add a round
//! trip delay or to count reads, writes and bytes written. The `conformance` module (feature `test-util`)
//! holds the checks every backend must pass.

#[cfg(any(test, feature = "test-util"))]
pub mod conformance;
mod error;
mod key;
#[cfg(feature = "memory")]
mod memory;
mod object;
mod wrap;

use std::sync::Arc;

use async_trait::async_trait;

pub use error::{Result, StoreError};
pub use key::{EndpointQuery, ObjectKey, Query};
#[cfg(feature = "memory")]
pub use memory::MemoryStore;
pub use object::{Object, Record, Version, Versioned};
pub use wrap::{Latency, Metered, StoreStats};

/// A versioned object store with compare-and-swap writes.
///
/// Implementations must be safe to call from many tasks and threads at once, and the futures they return
/// must be `Send`. What each method must guarantee:
///
/// - [`get`](Self::get) returns the object and the version it was stored with, or `None`.
/// - [`list`](Self::list) returns the objects a [`Query`] selects, each with its version. It is answered
///   from an index or a key range where the backend has one; callers never list everything to find one
///   object.
/// - [`create`](Self::create) stores a new object; `Conflict` if one with the same key exists.
/// - [`update`](Self::update) replaces an object only if its stored version is still `expected`;
///   `Conflict` otherwise, `NotFound` if it is gone.
/// - [`delete`](Self::delete) removes an object, only if its version is still `expected` when one is
///   given; `NotFound` if it is gone, `Conflict` on a stale version.
///
/// Versions are opaque: a caller only hands back a version it was given for the same key.
#[async_trait]
pub trait Datastore: Send + Sync {
    /// Reads one object.
    async fn get(&self, key: &ObjectKey) -> Result<Option<Versioned<Object>>>;
    /// Lists the objects a query selects, in key order.
    async fn list(&self, query: &Query) -> Result<Vec<Versioned<Object>>>;
    /// Stores a new object and returns its version.
    async fn create(&self, object: &Object) -> Result<Version>;
    /// Replaces an object if it is still at version `expected`, and returns the new version.
    async fn update(&self, object: &Object, expected: &Version) -> Result<Version>;
    /// Removes an object, if it is still at version `expected` when one is given.
    async fn delete(&self, key: &ObjectKey, expected: Option<&Version>) -> Result<()>;

    /// Sets (`Some`) or removes (`None`) one annotation of a pod and leaves the rest of the pod alone;
    /// `NotFound` if the pod is gone.
    ///
    /// The provided method reads the pod record and writes it back compare-and-swap, re-reading after a
    /// `Conflict` (up to [`ANNOTATE_ATTEMPTS`] times). A backend whose pods belong to someone else (the
    /// Kubernetes store) overrides it with a patch of that one annotation.
    async fn annotate_pod(&self, namespace: &str, name: &str, key: &str, value: Option<&str>) -> Result<()> {
        let pod_key = ObjectKey::Pod { namespace: namespace.to_owned(), name: name.to_owned() };
        for _ in 0..ANNOTATE_ATTEMPTS {
            let Some(current) = self.get(&pod_key).await? else {
                return Err(StoreError::NotFound { key: pod_key.to_string() });
            };
            let Object::Pod(mut pod) = current.value else {
                return Err(StoreError::Invalid { key: pod_key.to_string(), reason: "not a pod record".into() });
            };
            let annotations = &mut pod.metadata.annotations;
            let unchanged = match value {
                Some(v) => annotations.insert(key.to_owned(), v.to_owned()).as_deref() == Some(v),
                None => annotations.remove(key).is_none(),
            };
            if unchanged {
                return Ok(());
            }
            match self.update(&Object::Pod(pod), &current.version).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => return other.map(|_| ()),
            }
        }
        Err(StoreError::Conflict { key: pod_key.to_string() })
    }
}

/// How often [`Datastore::annotate_pod`]'s provided method re-reads a pod after a lost race.
pub const ANNOTATE_ATTEMPTS: usize = 16;

macro_rules! forward_datastore {
    ($ty:ty) => {
        #[async_trait]
        impl<T: Datastore + ?Sized> Datastore for $ty {
            async fn get(&self, key: &ObjectKey) -> Result<Option<Versioned<Object>>> {
                (**self).get(key).await
            }
            async fn list(&self, query: &Query) -> Result<Vec<Versioned<Object>>> {
                (**self).list(query).await
            }
            async fn create(&self, object: &Object) -> Result<Version> {
                (**self).create(object).await
            }
            async fn update(&self, object: &Object, expected: &Version) -> Result<Version> {
                (**self).update(object, expected).await
            }
            async fn delete(&self, key: &ObjectKey, expected: Option<&Version>) -> Result<()> {
                (**self).delete(key, expected).await
            }
            async fn annotate_pod(&self, namespace: &str, name: &str, key: &str, value: Option<&str>) -> Result<()> {
                (**self).annotate_pod(namespace, name, key, value).await
            }
        }
    };
}

forward_datastore!(Arc<T>);
forward_datastore!(&T);
forward_datastore!(Box<T>);

/// Typed reads on top of any [`Datastore`].
#[async_trait]
pub trait DatastoreExt: Datastore {
    /// Reads one object and checks that it is of type `R`.
    async fn get_as<R: Record>(&self, key: &ObjectKey) -> Result<Option<Versioned<R>>> {
        match self.get(key).await? {
            None => Ok(None),
            Some(v) => Ok(Some(Versioned { version: v.version, value: R::from_object(v.value, key)? })),
        }
    }

    /// Lists objects and checks that each is of type `R`.
    async fn list_as<R: Record>(&self, query: &Query) -> Result<Vec<Versioned<R>>> {
        let items = self.list(query).await?;
        items
            .into_iter()
            .map(|v| {
                let key = v.value.key();
                Ok(Versioned { version: v.version, value: R::from_object(v.value, &key)? })
            })
            .collect()
    }
}

impl<T: Datastore + ?Sized> DatastoreExt for T {}
