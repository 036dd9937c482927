//! Keys of stored objects and the queries that select them.

use std::fmt;

use crate::ipam::{AllocatorId, BlockKey, PoolKey};
use crate::model::{DanmEp, NetworkKey, NetworkKind, labels};

/// The key of one stored object. Keys are ordered so that a backend can answer range queries
/// (all blocks of a pool, all networks of a namespace) from an ordered index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKey {
    /// A DanmNet, TenantNetwork or ClusterNetwork.
    Network(NetworkKey),
    /// A TenantConfig (cluster-scoped) by name.
    TenantConfig(String),
    /// A DanmEp by namespace and name.
    Endpoint {
        /// The pod's namespace.
        namespace: String,
        /// The endpoint's name (its EndpointID).
        name: String,
    },
    /// A pod record by namespace and name.
    Pod {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// A Service by namespace and name.
    Service {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// One IPAM allocation block.
    Block(BlockKey),
    /// One allocator's next-fit cursor in one pool.
    Cursor {
        /// The pool.
        pool: PoolKey,
        /// The allocator (a node) that owns the cursor.
        allocator: AllocatorId,
    },
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Network(k) => write!(f, "network {k}"),
            Self::TenantConfig(n) => write!(f, "TenantConfig {n}"),
            Self::Endpoint { namespace, name } => write!(f, "DanmEp {namespace}/{name}"),
            Self::Pod { namespace, name } => write!(f, "pod {namespace}/{name}"),
            Self::Service { namespace, name } => write!(f, "Service {namespace}/{name}"),
            Self::Block(b) => write!(f, "allocation block {b}"),
            Self::Cursor { pool, allocator } => write!(f, "allocation cursor {pool} of {allocator}"),
        }
    }
}

/// What [`Datastore::list`](super::Datastore::list) should return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Networks, optionally of one kind and one namespace (ClusterNetworks have none).
    Networks {
        /// Only this kind.
        kind: Option<NetworkKind>,
        /// Only this namespace (ignored for ClusterNetworks, which have none).
        namespace: Option<String>,
    },
    /// Every TenantConfig.
    TenantConfigs,
    /// DanmEps that match every given criterion.
    Endpoints(EndpointQuery),
    /// Pod records, optionally of one namespace.
    Pods {
        /// Only this namespace.
        namespace: Option<String>,
    },
    /// Services, optionally of one namespace.
    Services {
        /// Only this namespace.
        namespace: Option<String>,
    },
    /// Every allocation block of one pool.
    Blocks(PoolKey),
}

/// Criteria for DanmEps; every criterion given must hold. Backends answer it from an index (labels on
/// Kubernetes, indexed columns in SQLite), never by reading every endpoint of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointQuery {
    /// The pod's namespace.
    pub namespace: Option<String>,
    /// The pod's UID.
    pub pod_uid: Option<String>,
    /// The infra container ID.
    pub container_id: Option<String>,
    /// The network the endpoint is attached to.
    pub network: Option<NetworkKey>,
    /// The node that set the endpoint up (`Host`).
    pub host: Option<String>,
}

impl EndpointQuery {
    /// Endpoints of one container.
    pub fn container(container_id: impl Into<String>) -> Self {
        Self { container_id: Some(container_id.into()), ..Self::default() }
    }

    /// Endpoints of one pod.
    pub fn pod(pod_uid: impl Into<String>) -> Self {
        Self { pod_uid: Some(pod_uid.into()), ..Self::default() }
    }

    /// Endpoints set up by one node.
    pub fn host(host: impl Into<String>) -> Self {
        Self { host: Some(host.into()), ..Self::default() }
    }

    /// Endpoints attached to one network.
    pub fn network(network: NetworkKey) -> Self {
        Self { network: Some(network), ..Self::default() }
    }

    /// Whether an endpoint matches. The criteria are read from the spec, not from labels, so that the
    /// answer holds for endpoints written by any client.
    pub fn matches(&self, ep: &DanmEp) -> bool {
        let ns = ep.metadata.namespace.as_deref().unwrap_or_default();
        if self.namespace.as_deref().is_some_and(|n| n != ns) {
            return false;
        }
        if self.pod_uid.as_deref().is_some_and(|u| u != ep.spec.pod_uid) {
            return false;
        }
        if self.container_id.as_deref().is_some_and(|c| c != ep.spec.cid) {
            return false;
        }
        if self.host.as_deref().is_some_and(|h| h != ep.spec.host) {
            return false;
        }
        if let Some(net) = &self.network {
            if ep.spec.network_kind() != Some(net.kind) || ep.spec.network_name != net.name {
                return false;
            }
            if net.namespace.as_deref().is_some_and(|n| n != ns) {
                return false;
            }
        }
        true
    }

    /// The Kubernetes label selector that narrows a search for this query (labels danm-rs sets on every
    /// DanmEp). Label values are cut to 63 characters, so results must still be checked with
    /// [`EndpointQuery::matches`].
    pub fn label_selector(&self) -> String {
        let mut parts = Vec::new();
        if let Some(u) = &self.pod_uid {
            parts.push(format!("{}={}", labels::POD_UID, labels::value(u)));
        }
        if let Some(c) = &self.container_id {
            parts.push(format!("{}={}", labels::CONTAINER_ID, labels::value(c)));
        }
        if let Some(n) = &self.network {
            parts.push(format!("{}={}", labels::NETWORK_KIND, n.kind));
            parts.push(format!("{}={}", labels::NETWORK_NAME, labels::value(&n.name)));
        }
        if let Some(h) = &self.host {
            parts.push(format!("{}={}", labels::HOST, labels::value(h)));
        }
        parts.join(",")
    }
}
