//! The datastore a binary uses, chosen at run time: the local SQLite file or Kubernetes.

use async_trait::async_trait;
use danm_core::store::{Datastore, Object, ObjectKey, Query, Result, Version, Versioned};
use danm_k8s::KubeStore;

use super::SqliteStore;

/// The local store or the Kubernetes store.
#[derive(Debug)]
pub enum AnyStore {
    /// One SQLite file on this host.
    Local(SqliteStore),
    /// A Kubernetes API server.
    Kube(KubeStore),
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Local($s) => $e,
            AnyStore::Kube($s) => $e,
        }
    };
}

#[async_trait]
impl Datastore for AnyStore {
    async fn get(&self, key: &ObjectKey) -> Result<Option<Versioned<Object>>> {
        each!(self, s => s.get(key).await)
    }
    async fn list(&self, query: &Query) -> Result<Vec<Versioned<Object>>> {
        each!(self, s => s.list(query).await)
    }
    async fn create(&self, object: &Object) -> Result<Version> {
        each!(self, s => s.create(object).await)
    }
    async fn update(&self, object: &Object, expected: &Version) -> Result<Version> {
        each!(self, s => s.update(object, expected).await)
    }
    async fn delete(&self, key: &ObjectKey, expected: Option<&Version>) -> Result<()> {
        each!(self, s => s.delete(key, expected).await)
    }
    async fn annotate_pod(&self, namespace: &str, name: &str, key: &str, value: Option<&str>) -> Result<()> {
        each!(self, s => s.annotate_pod(namespace, name, key, value).await)
    }
}
