//! Stored objects, their versions, and typed access to them.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ObjectKey, StoreError};
use crate::ipam::{Block, BlockKey, Cursor, PoolKey};
use crate::model::{DanmEp, Network, PodRecord, TenantConfig};
use crate::service::ServiceRecord;

/// An opaque version of a stored object: a counter in the local stores, the `resourceVersion` on
/// Kubernetes. Only ever compared for equality, and only for the same key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Version(String);

impl Version {
    /// A version from its backend representation.
    pub fn new(v: impl Into<String>) -> Self {
        Self(v.into())
    }

    /// The backend representation.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<u64> for Version {
    fn from(v: u64) -> Self {
        Self(v.to_string())
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value together with the version it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The version to hand back on the next write.
    pub version: Version,
    /// The value.
    pub value: T,
}

/// Every kind of object a [`Datastore`](super::Datastore) holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// A DanmNet, TenantNetwork or ClusterNetwork.
    Network(Network),
    /// A TenantConfig.
    TenantConfig(TenantConfig),
    /// A DanmEp.
    Endpoint(DanmEp),
    /// A pod record.
    Pod(PodRecord),
    /// A Service.
    Service(ServiceRecord),
    /// An IPAM allocation block.
    Block {
        /// Which block.
        key: BlockKey,
        /// Its allocations.
        block: Block,
    },
    /// An allocator's next-fit cursor.
    Cursor {
        /// The pool.
        pool: PoolKey,
        /// The cursor (it names its allocator).
        cursor: Cursor,
    },
}

impl Object {
    /// The key this object is stored under.
    pub fn key(&self) -> ObjectKey {
        match self {
            Self::Network(n) => ObjectKey::Network(n.key()),
            Self::TenantConfig(t) => ObjectKey::TenantConfig(t.metadata.name.clone()),
            Self::Endpoint(e) => ObjectKey::Endpoint {
                namespace: e.metadata.namespace.clone().unwrap_or_default(),
                name: e.metadata.name.clone(),
            },
            Self::Pod(p) => ObjectKey::Pod {
                namespace: p.metadata.namespace.clone().unwrap_or_default(),
                name: p.metadata.name.clone(),
            },
            Self::Service(s) => ObjectKey::Service {
                namespace: s.metadata.namespace.clone().unwrap_or_default(),
                name: s.metadata.name.clone(),
            },
            Self::Block { key, .. } => ObjectKey::Block(key.clone()),
            Self::Cursor { pool, cursor } => {
                ObjectKey::Cursor { pool: pool.clone(), allocator: cursor.allocator.clone() }
            }
        }
    }

    /// The object's payload as JSON: what a backend stores (keys are stored beside it).
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        match self {
            Self::Network(n) => serde_json::to_vec(n),
            Self::TenantConfig(t) => serde_json::to_vec(t),
            Self::Endpoint(e) => serde_json::to_vec(e),
            Self::Pod(p) => serde_json::to_vec(p),
            Self::Service(s) => serde_json::to_vec(s),
            Self::Block { block, .. } => serde_json::to_vec(block),
            Self::Cursor { cursor, .. } => serde_json::to_vec(cursor),
        }
    }

    /// Decodes a payload written by [`Object::to_json`] for `key`.
    pub fn from_json(key: &ObjectKey, bytes: &[u8]) -> Result<Self, StoreError> {
        let invalid = |e: serde_json::Error| StoreError::Invalid { key: key.to_string(), reason: e.to_string() };
        Ok(match key {
            ObjectKey::Network(_) => Self::Network(serde_json::from_slice(bytes).map_err(invalid)?),
            ObjectKey::TenantConfig(_) => Self::TenantConfig(serde_json::from_slice(bytes).map_err(invalid)?),
            ObjectKey::Endpoint { .. } => Self::Endpoint(serde_json::from_slice(bytes).map_err(invalid)?),
            ObjectKey::Pod { .. } => Self::Pod(serde_json::from_slice(bytes).map_err(invalid)?),
            ObjectKey::Service { .. } => Self::Service(serde_json::from_slice(bytes).map_err(invalid)?),
            ObjectKey::Block(k) => {
                Self::Block { key: k.clone(), block: serde_json::from_slice(bytes).map_err(invalid)? }
            }
            ObjectKey::Cursor { pool, .. } => {
                Self::Cursor { pool: pool.clone(), cursor: serde_json::from_slice(bytes).map_err(invalid)? }
            }
        })
    }
}

/// A type stored as one [`Object`] variant, for typed reads with
/// [`DatastoreExt`](super::DatastoreExt).
pub trait Record: Sized + Send + 'static {
    /// Takes the value out of an object read for `key`; `Invalid` if the object is of another kind.
    fn from_object(object: Object, key: &ObjectKey) -> Result<Self, StoreError>;
}

fn wrong_kind(key: &ObjectKey, want: &str) -> StoreError {
    StoreError::Invalid { key: key.to_string(), reason: format!("the stored object is not a {want}") }
}

macro_rules! record {
    ($ty:ty, $variant:ident, $name:literal) => {
        impl Record for $ty {
            fn from_object(object: Object, key: &ObjectKey) -> Result<Self, StoreError> {
                match object {
                    Object::$variant(v) => Ok(v),
                    _ => Err(wrong_kind(key, $name)),
                }
            }
        }
    };
}

record!(Network, Network, "network");
record!(TenantConfig, TenantConfig, "TenantConfig");
record!(DanmEp, Endpoint, "DanmEp");
record!(PodRecord, Pod, "pod record");
record!(ServiceRecord, Service, "Service");

impl Record for Block {
    fn from_object(object: Object, key: &ObjectKey) -> Result<Self, StoreError> {
        match object {
            Object::Block { block, .. } => Ok(block),
            _ => Err(wrong_kind(key, "allocation block")),
        }
    }
}

impl Record for Cursor {
    fn from_object(object: Object, key: &ObjectKey) -> Result<Self, StoreError> {
        match object {
            Object::Cursor { cursor, .. } => Ok(cursor),
            _ => Err(wrong_kind(key, "allocation cursor")),
        }
    }
}
