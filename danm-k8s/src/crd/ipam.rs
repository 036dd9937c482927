//! danm-rs's own IPAM state on Kubernetes: one `DanmIpamBlock` per allocation block and one
//! `DanmIpamCursor` per allocator and pool, both in `danm.k8s.io/v1`.
//!
//! # Design
//!
//! - **Cluster-scoped.** One kind serves the pools of all three network kinds (a ClusterNetwork has no
//!   namespace to put its blocks in); the CNI plugin on every node needs write access to blocks of every
//!   namespace anyway; and a tenant who administers a namespace cannot edit the allocation state of its
//!   networks, so it cannot hand itself an address that is in use.
//! - **One object per block and per cursor**, as the IPAM driver reads and writes them: a write is
//!   about 2 KB whatever the pool's size, and nodes allocating from different blocks never contend.
//! - **Names** encode the key stably and readably (see [`names`]): `dn.blue.internal.ipv4.3` is block 3
//!   of DanmNet `blue/internal`'s IPv4 pool; `dn.blue.internal.ipv4.n-node-1` is node-1's cursor there.
//! - **Labels** give the network's kind, namespace, name and family, so that
//!   [`names::pool_selector`] lists one pool with one request. Each object also carries its full key in
//!   its spec, which decides (label values may be cut, digests in names could collide).
//! - **Cleanup.** Kubernetes does not garbage-collect a cluster-scoped object owned by a namespaced one,
//!   so the blocks of a deleted network are removed by danm-rs's controllers (by label selector), not by
//!   owner references.

pub mod names;

use danm_core::ipam::{AllocatorId, Block, BlockKey, Cursor, Family, PoolKey};
use danm_core::model::{NetworkKey, NetworkKind};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ConversionError;

/// The spec of a DanmIpamBlock: which block of which pool, and its allocations.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
// Repeated `printcolumn` and `shortname` entries are how kube's derive takes lists.
#[allow(clippy::duplicated_attributes)]
#[kube(
    group = "danm.k8s.io",
    version = "v1",
    kind = "DanmIpamBlock",
    plural = "danmipamblocks",
    shortname = "dib",
    category = "danm",
    derive = "PartialEq",
    doc = "One IPAM allocation block of danm-rs (cluster-scoped): 64 consecutive addresses of a network's pool.",
    printcolumn(
        name = "NetworkKind",
        type_ = "string",
        json_path = ".spec.networkKind",
        description = "The network's kind"
    ),
    printcolumn(
        name = "Namespace",
        type_ = "string",
        json_path = ".spec.namespace",
        description = "The network's namespace"
    ),
    printcolumn(name = "Network", type_ = "string", json_path = ".spec.network", description = "The network's name"),
    printcolumn(name = "Family", type_ = "string", json_path = ".spec.family", description = "The address family"),
    printcolumn(
        name = "Index",
        type_ = "string",
        json_path = ".spec.index",
        description = "The block's index in the subnet"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "How long ago the object was created"
    )
)]
pub struct DanmIpamBlockSpec {
    /// The kind of the network whose pool this block belongs to.
    #[serde(rename = "networkKind")]
    pub network_kind: NetworkKind,
    /// The network's namespace; none for a ClusterNetwork.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The network's name.
    pub network: String,
    /// The pool's address family.
    pub family: Family,
    /// The block's index: its first address is at offset `index * 64` in the subnet. A decimal string,
    /// as it may exceed what JSON numbers carry exactly.
    #[serde(with = "danm_core::ipam::serde_u128")]
    #[schemars(with = "String", regex(pattern = r"^[0-9]+$"))]
    pub index: u128,
    /// The allocations.
    pub block: Block,
}

/// The spec of a DanmIpamCursor: one allocator's next-fit position in one pool.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
// Repeated `printcolumn` and `shortname` entries are how kube's derive takes lists.
#[allow(clippy::duplicated_attributes)]
#[kube(
    group = "danm.k8s.io",
    version = "v1",
    kind = "DanmIpamCursor",
    plural = "danmipamcursors",
    shortname = "dic",
    category = "danm",
    derive = "PartialEq",
    doc = "One allocator's next-fit cursor in a danm-rs IPAM pool (cluster-scoped).",
    printcolumn(
        name = "NetworkKind",
        type_ = "string",
        json_path = ".spec.networkKind",
        description = "The network's kind"
    ),
    printcolumn(
        name = "Namespace",
        type_ = "string",
        json_path = ".spec.namespace",
        description = "The network's namespace"
    ),
    printcolumn(name = "Network", type_ = "string", json_path = ".spec.network", description = "The network's name"),
    printcolumn(name = "Family", type_ = "string", json_path = ".spec.family", description = "The address family"),
    printcolumn(
        name = "Allocator",
        type_ = "string",
        json_path = ".spec.cursor.allocator",
        description = "The allocator (node)"
    ),
    printcolumn(
        name = "Block",
        type_ = "string",
        json_path = ".spec.cursor.block",
        description = "The block it allocates from next"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "How long ago the object was created"
    )
)]
pub struct DanmIpamCursorSpec {
    /// The kind of the network whose pool this cursor moves in.
    #[serde(rename = "networkKind")]
    pub network_kind: NetworkKind,
    /// The network's namespace; none for a ClusterNetwork.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The network's name.
    pub network: String,
    /// The pool's address family.
    pub family: Family,
    /// The cursor: its allocator and block.
    pub cursor: Cursor,
}

/// The pool a spec names, checked: namespaced kinds need a namespace, ClusterNetworks have none.
fn pool_of(
    kind: NetworkKind,
    namespace: Option<&String>,
    name: &str,
    family: Family,
) -> Result<PoolKey, ConversionError> {
    match (kind.is_namespaced(), namespace) {
        (true, None) => return Err(ConversionError::invalid("spec.namespace", format!("a {kind} pool needs one"))),
        (false, Some(_)) => return Err(ConversionError::invalid("spec.namespace", "a ClusterNetwork pool has none")),
        _ => {}
    }
    let network = NetworkKey { kind, namespace: namespace.cloned(), name: name.to_owned() };
    Ok(PoolKey::new(network, family))
}

fn object_meta(
    name: String,
    labels: std::collections::BTreeMap<String, String>,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        name: Some(name),
        labels: Some(labels),
        ..Default::default()
    }
}

impl DanmIpamBlock {
    /// The object of block `key` holding `block`, with its name and labels.
    pub fn from_block(key: &BlockKey, block: Block) -> Self {
        let net = &key.pool.network;
        Self {
            metadata: object_meta(names::block_name(key), names::pool_labels(&key.pool)),
            spec: DanmIpamBlockSpec {
                network_kind: net.kind,
                namespace: net.namespace.clone(),
                network: net.name.clone(),
                family: key.pool.family,
                index: key.index,
                block,
            },
        }
    }

    /// The key of the block this object holds, from its spec.
    pub fn key(&self) -> Result<BlockKey, ConversionError> {
        let s = &self.spec;
        Ok(BlockKey { pool: pool_of(s.network_kind, s.namespace.as_ref(), &s.network, s.family)?, index: s.index })
    }

    /// The block's key and allocations.
    pub fn into_block(self) -> Result<(BlockKey, Block), ConversionError> {
        Ok((self.key()?, self.spec.block))
    }
}

impl DanmIpamCursor {
    /// The object of `cursor` in `pool`, with its name and labels (the pool's, plus the allocator).
    pub fn from_cursor(pool: &PoolKey, cursor: Cursor) -> Self {
        let net = &pool.network;
        let mut labels = names::pool_labels(pool);
        labels.insert(names::ALLOCATOR_LABEL.to_owned(), danm_core::model::labels::value(&cursor.allocator.0));
        Self {
            metadata: object_meta(names::cursor_name(pool, &cursor.allocator), labels),
            spec: DanmIpamCursorSpec {
                network_kind: net.kind,
                namespace: net.namespace.clone(),
                network: net.name.clone(),
                family: pool.family,
                cursor,
            },
        }
    }

    /// The pool this cursor moves in, from its spec.
    pub fn pool(&self) -> Result<PoolKey, ConversionError> {
        let s = &self.spec;
        pool_of(s.network_kind, s.namespace.as_ref(), &s.network, s.family)
    }

    /// The allocator that owns the cursor.
    pub fn allocator(&self) -> &AllocatorId {
        &self.spec.cursor.allocator
    }

    /// The cursor's pool and the cursor.
    pub fn into_cursor(self) -> Result<(PoolKey, Cursor), ConversionError> {
        Ok((self.pool()?, self.spec.cursor))
    }
}

#[cfg(test)]
mod tests {
    use danm_core::ipam::OwnerId;
    use kube::core::{CustomResourceExt, Resource};

    use super::*;

    fn pool(kind: NetworkKind) -> PoolKey {
        PoolKey::new(NetworkKey::new(kind, "blue", "internal"), Family::V6)
    }

    #[test]
    fn blocks_round_trip() {
        let mut block = Block::default();
        block.allocate(5, OwnerId(0xab), true).unwrap();
        for kind in NetworkKind::ALL {
            let key = BlockKey { pool: pool(kind), index: 1 << 70 };
            let object = DanmIpamBlock::from_block(&key, block.clone());
            let json = serde_json::to_value(&object).unwrap();
            assert_eq!(json["spec"]["index"], "1180591620717411303424");
            assert_eq!(json["spec"]["block"], serde_json::to_value(&block).unwrap());
            let parsed: DanmIpamBlock = serde_json::from_value(json).unwrap();
            assert_eq!(parsed, object);
            assert_eq!(parsed.into_block().unwrap(), (key, block.clone()));
        }
    }

    #[test]
    fn cursors_round_trip() {
        let cursor = Cursor { allocator: AllocatorId::new("node-1"), block: 7 };
        let object = DanmIpamCursor::from_cursor(&pool(NetworkKind::DanmNet), cursor.clone());
        assert_eq!(object.metadata.name.as_deref(), Some("dn.blue.internal.ipv6.n-node-1"));
        assert_eq!(object.metadata.labels.as_ref().unwrap()[names::ALLOCATOR_LABEL], "node-1");
        assert_eq!(object.allocator(), &cursor.allocator);
        let parsed: DanmIpamCursor = serde_json::from_str(&serde_json::to_string(&object).unwrap()).unwrap();
        assert_eq!(parsed.into_cursor().unwrap(), (pool(NetworkKind::DanmNet), cursor));
    }

    #[test]
    fn specs_must_name_a_consistent_pool() {
        let mut object =
            DanmIpamBlock::from_block(&BlockKey { pool: pool(NetworkKind::DanmNet), index: 0 }, Block::default());
        object.spec.namespace = None;
        assert!(matches!(object.key(), Err(ConversionError::Invalid { field, .. }) if field == "spec.namespace"));
        object.spec.network_kind = NetworkKind::ClusterNetwork;
        assert!(object.key().is_ok());
        object.spec.namespace = Some("blue".into());
        assert!(object.key().is_err());
        let bad = serde_json::json!({
            "apiVersion": "danm.k8s.io/v1", "kind": "DanmIpamBlock", "metadata": {"name": "x"},
            "spec": {"networkKind": "DanmNet", "namespace": "a", "network": "b", "family": "V4", "index": "-1",
                     "block": {"owners": {}}},
        });
        assert!(serde_json::from_value::<DanmIpamBlock>(bad).is_err());
    }

    #[test]
    fn ipam_objects_are_cluster_scoped() {
        assert_eq!(DanmIpamBlock::url_path(&(), None), "/apis/danm.k8s.io/v1/danmipamblocks");
        assert_eq!(DanmIpamCursor::crd().spec.scope, "Cluster");
        assert_eq!(DanmIpamBlock::crd().spec.names.short_names, Some(vec!["dib".to_owned()]));
    }
}
