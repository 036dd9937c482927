//! Where each stored object lives in Kubernetes, and the conversions between danm-core's values and the
//! objects the API server keeps.

use std::fmt;

use danm_core::manifest::{Manifest, decode_manifests};
use danm_core::model::{DanmEp, NetworkKind, labels};
use danm_core::store::{Object, ObjectKey, Result, StoreError, Version, Versioned};
use kube::api::DynamicObject;
use kube::discovery::ApiResource;
use serde_json::Value;

use crate::crd::ipam::names::{block_name, cursor_name};
use crate::crd::{self, DanmIpamBlock, DanmIpamCursor};

/// The Kubernetes kind an object is stored as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Network(NetworkKind),
    TenantConfig,
    Endpoint,
    Pod,
    Service,
    Block,
    Cursor,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.resource().kind)
    }
}

fn core(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

impl Kind {
    pub(super) fn resource(self) -> ApiResource {
        match self {
            Self::Network(NetworkKind::DanmNet) => ApiResource::erase::<crd::DanmNet>(&()),
            Self::Network(NetworkKind::TenantNetwork) => ApiResource::erase::<crd::TenantNetwork>(&()),
            Self::Network(NetworkKind::ClusterNetwork) => ApiResource::erase::<crd::ClusterNetwork>(&()),
            Self::TenantConfig => ApiResource::erase::<crd::TenantConfig>(&()),
            Self::Endpoint => ApiResource::erase::<crd::DanmEp>(&()),
            Self::Block => ApiResource::erase::<DanmIpamBlock>(&()),
            Self::Cursor => ApiResource::erase::<DanmIpamCursor>(&()),
            Self::Pod => core("Pod", "pods"),
            Self::Service => core("Service", "services"),
        }
    }

    pub(super) fn namespaced(self) -> bool {
        match self {
            Self::Network(k) => k.is_namespaced(),
            Self::TenantConfig | Self::Block | Self::Cursor => false,
            Self::Endpoint | Self::Pod | Self::Service => true,
        }
    }
}

/// The labels a DanmEp is found by (its pod's UID, its container, its network, its node), derived from its
/// spec. The store sets them on every write and removes them again on read, so that DanmEp look-ups are
/// label selections whoever wrote the object, and values round-trip unchanged.
fn index_labels(ep: &DanmEp) -> Vec<(String, String)> {
    let s = &ep.spec;
    let mut out = vec![
        (labels::POD_UID.to_owned(), labels::value(&s.pod_uid)),
        (labels::CONTAINER_ID.to_owned(), labels::value(&s.cid)),
        (labels::NETWORK_NAME.to_owned(), labels::value(&s.network_name)),
        (labels::HOST.to_owned(), labels::value(&s.host)),
    ];
    if let Some(kind) = s.network_kind() {
        out.push((labels::NETWORK_KIND.to_owned(), kind.to_string()));
    }
    out.retain(|(_, v)| !v.is_empty());
    out
}

/// A DanmEp custom resource as the model's DanmEp, without the look-up labels this store adds.
pub(crate) fn endpoint_from_crd(ep: crd::DanmEp) -> DanmEp {
    let mut ep: DanmEp = ep.into();
    for (k, v) in index_labels(&ep) {
        if ep.metadata.labels.get(&k) == Some(&v) {
            ep.metadata.labels.remove(&k);
        }
    }
    ep
}

/// The kind, namespace and object name `key` is stored under.
pub(super) fn locate(key: &ObjectKey) -> (Kind, Option<String>, String) {
    match key {
        ObjectKey::Network(k) => (Kind::Network(k.kind), k.namespace.clone(), k.name.clone()),
        ObjectKey::TenantConfig(name) => (Kind::TenantConfig, None, name.clone()),
        ObjectKey::Endpoint { namespace, name } => (Kind::Endpoint, Some(namespace.clone()), name.clone()),
        ObjectKey::Pod { namespace, name } => (Kind::Pod, Some(namespace.clone()), name.clone()),
        ObjectKey::Service { namespace, name } => (Kind::Service, Some(namespace.clone()), name.clone()),
        ObjectKey::Block(b) => (Kind::Block, None, block_name(b)),
        ObjectKey::Cursor { pool, allocator } => (Kind::Cursor, None, cursor_name(pool, allocator)),
    }
}

fn invalid(key: impl fmt::Display, reason: impl fmt::Display) -> StoreError {
    StoreError::Invalid { key: key.to_string(), reason: reason.to_string() }
}

/// The Kubernetes object of `object`, carrying `version` as its `resourceVersion` (none on create).
pub(super) fn to_dynamic(object: &Object, version: Option<&Version>) -> Result<DynamicObject> {
    let key = object.key();
    let bad = |e: &dyn fmt::Display| invalid(&key, e);
    let mut value = match object {
        Object::Network(n) => match n.kind {
            NetworkKind::DanmNet => serde_json::to_value(crd::DanmNet::try_from(n.clone()).map_err(|e| bad(&e))?),
            NetworkKind::TenantNetwork => {
                serde_json::to_value(crd::TenantNetwork::try_from(n.clone()).map_err(|e| bad(&e))?)
            }
            NetworkKind::ClusterNetwork => {
                serde_json::to_value(crd::ClusterNetwork::try_from(n.clone()).map_err(|e| bad(&e))?)
            }
        },
        Object::TenantConfig(t) => serde_json::to_value(crd::TenantConfig::try_from(t.clone()).map_err(|e| bad(&e))?),
        Object::Endpoint(e) => {
            let mut indexed = e.clone();
            indexed.metadata.labels.extend(index_labels(e));
            serde_json::to_value(crd::DanmEp::try_from(indexed).map_err(|e| bad(&e))?)
        }
        Object::Block { key, block } => serde_json::to_value(DanmIpamBlock::from_block(key, block.clone())),
        Object::Cursor { pool, cursor } => serde_json::to_value(DanmIpamCursor::from_cursor(pool, cursor.clone())),
        Object::Pod(p) => serde_json::to_value(Manifest::Pod(p.clone())),
        Object::Service(s) => serde_json::to_value(Manifest::Service(s.clone())),
    }
    .map_err(|e| bad(&e))?;
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        match version {
            Some(v) => meta.insert("resourceVersion".into(), Value::String(v.as_str().to_owned())),
            None => meta.remove("resourceVersion"),
        };
    }
    serde_json::from_value(value).map_err(|e| bad(&e))
}

/// The danm-core value of a Kubernetes object of `kind`, with its version.
pub(super) fn from_dynamic(kind: Kind, object: DynamicObject) -> Result<Versioned<Object>> {
    let name = object.metadata.name.clone().unwrap_or_default();
    let what = format!("{kind} {name}");
    let version = object
        .metadata
        .resource_version
        .clone()
        .map(Version::new)
        .ok_or_else(|| invalid(&what, "the API server returned no resourceVersion"))?;
    let mut value = serde_json::to_value(&object).map_err(|e| invalid(&what, e))?;
    // List items come without their type; the models want it.
    let resource = kind.resource();
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(resource.api_version.clone()));
        map.insert("kind".into(), Value::String(resource.kind.clone()));
    }
    let decode = |e: serde_json::Error| invalid(&what, e);
    let converted = |e: crd::ConversionError| invalid(&what, e);
    let value = match kind {
        Kind::Network(NetworkKind::DanmNet) => {
            Object::Network(serde_json::from_value::<crd::DanmNet>(value).map_err(decode)?.into())
        }
        Kind::Network(NetworkKind::TenantNetwork) => {
            Object::Network(serde_json::from_value::<crd::TenantNetwork>(value).map_err(decode)?.into())
        }
        Kind::Network(NetworkKind::ClusterNetwork) => {
            Object::Network(serde_json::from_value::<crd::ClusterNetwork>(value).map_err(decode)?.into())
        }
        Kind::TenantConfig => {
            Object::TenantConfig(serde_json::from_value::<crd::TenantConfig>(value).map_err(decode)?.into())
        }
        Kind::Endpoint => Object::Endpoint(endpoint_from_crd(serde_json::from_value(value).map_err(decode)?)),
        Kind::Block => {
            let (key, block) =
                serde_json::from_value::<DanmIpamBlock>(value).map_err(decode)?.into_block().map_err(converted)?;
            Object::Block { key, block }
        }
        Kind::Cursor => {
            let (pool, cursor) =
                serde_json::from_value::<DanmIpamCursor>(value).map_err(decode)?.into_cursor().map_err(converted)?;
            Object::Cursor { pool, cursor }
        }
        Kind::Pod | Kind::Service => {
            let mut docs = decode_manifests(&value.to_string()).map_err(|e| invalid(&what, e))?;
            match (kind, docs.pop()) {
                (Kind::Pod, Some(Manifest::Pod(p))) => Object::Pod(p),
                (Kind::Service, Some(Manifest::Service(s))) => Object::Service(s),
                _ => return Err(invalid(&what, "not a decodable object of its kind")),
            }
        }
    };
    Ok(Versioned { version, value })
}
