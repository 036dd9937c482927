//! Wrappers that add behaviour to any Datastore: a round-trip delay, and counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::{Datastore, Object, ObjectKey, Query, Result, Version, Versioned};
use crate::retry::Sleeper;

/// Adds a fixed delay before every operation, to model a store that is one network round trip away
/// (an API server, etcd). Used by the contention benchmarks and tests.
#[derive(Debug)]
pub struct Latency<S> {
    inner: S,
    round_trip: Duration,
    sleeper: Arc<dyn Sleeper>,
}

impl<S> Latency<S> {
    /// Wraps `inner` so that every call first waits `round_trip` on `sleeper`.
    pub fn new(inner: S, round_trip: Duration, sleeper: Arc<dyn Sleeper>) -> Self {
        Self { inner, round_trip, sleeper }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

#[async_trait]
impl<S: Datastore> Datastore for Latency<S> {
    async fn get(&self, key: &ObjectKey) -> Result<Option<Versioned<Object>>> {
        self.sleeper.sleep(self.round_trip).await;
        self.inner.get(key).await
    }
    async fn list(&self, query: &Query) -> Result<Vec<Versioned<Object>>> {
        self.sleeper.sleep(self.round_trip).await;
        self.inner.list(query).await
    }
    async fn create(&self, object: &Object) -> Result<Version> {
        self.sleeper.sleep(self.round_trip).await;
        self.inner.create(object).await
    }
    async fn update(&self, object: &Object, expected: &Version) -> Result<Version> {
        self.sleeper.sleep(self.round_trip).await;
        self.inner.update(object, expected).await
    }
    async fn delete(&self, key: &ObjectKey, expected: Option<&Version>) -> Result<()> {
        self.sleeper.sleep(self.round_trip).await;
        self.inner.delete(key, expected).await
    }
    async fn annotate_pod(&self, namespace: &str, name: &str, key: &str, value: Option<&str>) -> Result<()> {
        self.sleeper.sleep(self.round_trip).await;
        self.inner.annotate_pod(namespace, name, key, value).await
    }
}

/// Counts what passes through to the wrapped store: round trips, writes, conflicts and the bytes of
/// every object written (its JSON payload, as a backend would store it).
#[derive(Debug, Default)]
pub struct Metered<S> {
    inner: S,
    reads: AtomicU64,
    lists: AtomicU64,
    writes: AtomicU64,
    deletes: AtomicU64,
    conflicts: AtomicU64,
    bytes_written: AtomicU64,
}

/// A snapshot of [`Metered`]'s counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// `get` calls.
    pub reads: u64,
    /// `list` calls.
    pub lists: u64,
    /// `create` and `update` calls, successful or not.
    pub writes: u64,
    /// `delete` calls.
    pub deletes: u64,
    /// Calls answered with a version conflict.
    pub conflicts: u64,
    /// JSON bytes of every object sent in `create` and `update`.
    pub bytes_written: u64,
}

impl StoreStats {
    /// Every call that crossed to the store.
    pub fn round_trips(&self) -> u64 {
        self.reads + self.lists + self.writes + self.deletes
    }
}

impl<S> Metered<S> {
    /// Wraps `inner` with zeroed counters.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            reads: AtomicU64::new(0),
            lists: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The counters so far.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            reads: self.reads.load(Ordering::Relaxed),
            lists: self.lists.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            deletes: self.deletes.load(Ordering::Relaxed),
            conflicts: self.conflicts.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
        }
    }

    fn record<T>(&self, r: Result<T>) -> Result<T> {
        if r.as_ref().is_err_and(|e| e.is_conflict()) {
            self.conflicts.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    fn count_write(&self, object: &Object) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let len = object.to_json().map(|b| b.len() as u64).unwrap_or_default();
        self.bytes_written.fetch_add(len, Ordering::Relaxed);
    }
}

#[async_trait]
impl<S: Datastore> Datastore for Metered<S> {
    async fn get(&self, key: &ObjectKey) -> Result<Option<Versioned<Object>>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.get(key).await
    }
    async fn list(&self, query: &Query) -> Result<Vec<Versioned<Object>>> {
        self.lists.fetch_add(1, Ordering::Relaxed);
        self.inner.list(query).await
    }
    async fn create(&self, object: &Object) -> Result<Version> {
        self.count_write(object);
        self.record(self.inner.create(object).await)
    }
    async fn update(&self, object: &Object, expected: &Version) -> Result<Version> {
        self.count_write(object);
        self.record(self.inner.update(object, expected).await)
    }
    async fn delete(&self, key: &ObjectKey, expected: Option<&Version>) -> Result<()> {
        self.deletes.fetch_add(1, Ordering::Relaxed);
        self.record(self.inner.delete(key, expected).await)
    }
    async fn annotate_pod(&self, namespace: &str, name: &str, key: &str, value: Option<&str>) -> Result<()> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.bytes_written.fetch_add((key.len() + value.map_or(0, str::len)) as u64, Ordering::Relaxed);
        self.record(self.inner.annotate_pod(namespace, name, key, value).await)
    }
}
