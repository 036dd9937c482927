//! DanmNet, TenantNetwork and ClusterNetwork: one shared spec, three kinds.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::ObjectMeta;

/// The API group and version of every DANM object, as upstream DANM v4.3 uses it.
pub const API_VERSION: &str = "danm.k8s.io/v1";
/// The API group of upstream DANM v4.3.
pub const API_GROUP: &str = "danm.k8s.io";
/// The group that upstream's unreleased master and its continuation moved to; accepted on input.
pub const API_GROUP_ALT: &str = "danm.io";

/// The three kinds of network object. They share [`NetworkSpec`] and differ in scope and rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum NetworkKind {
    /// Namespaced; usable only by pods of its namespace; users set every field.
    DanmNet,
    /// Namespaced; physical attributes come from the TenantConfig, not from the user.
    TenantNetwork,
    /// Cluster-scoped; usable from the namespaces in `AllowedTenants` (all when empty).
    ClusterNetwork,
}

impl NetworkKind {
    /// Every kind, in the order of the `default` network fallback.
    pub const ALL: [NetworkKind; 3] = [Self::DanmNet, Self::TenantNetwork, Self::ClusterNetwork];

    /// The kind name as it appears in `kind` and in a DanmEp's `apiType`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DanmNet => "DanmNet",
            Self::TenantNetwork => "TenantNetwork",
            Self::ClusterNetwork => "ClusterNetwork",
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn is_namespaced(self) -> bool {
        !matches!(self, Self::ClusterNetwork)
    }

    /// Parses a kind name; an empty `apiType` means DanmNet, as upstream.
    pub fn from_api_type(s: &str) -> Option<Self> {
        match s {
            "" | "DanmNet" => Some(Self::DanmNet),
            "TenantNetwork" => Some(Self::TenantNetwork),
            "ClusterNetwork" => Some(Self::ClusterNetwork),
            _ => None,
        }
    }
}

impl fmt::Display for NetworkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies one network object: its kind, namespace (none for ClusterNetwork) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NetworkKey {
    /// The kind.
    pub kind: NetworkKind,
    /// The namespace; always `None` for a ClusterNetwork.
    pub namespace: Option<String>,
    /// The object name.
    pub name: String,
}

impl NetworkKey {
    /// The key of a network of `kind` named `name`, seen from `namespace`: the namespace is dropped for a
    /// ClusterNetwork, which is cluster-scoped.
    pub fn new(kind: NetworkKind, namespace: &str, name: impl Into<String>) -> Self {
        let namespace = kind.is_namespaced().then(|| namespace.to_owned());
        Self { kind, namespace, name: name.into() }
    }
}

impl fmt::Display for NetworkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// A DanmNet, TenantNetwork or ClusterNetwork object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// `danm.k8s.io/v1` (`danm.io/v1` is accepted on input).
    #[serde(rename = "apiVersion", default = "default_api_version")]
    pub api_version: String,
    /// Which of the three kinds this is.
    pub kind: NetworkKind,
    /// Object metadata.
    pub metadata: ObjectMeta,
    /// The network's specification, exactly as the user applied it.
    pub spec: NetworkSpec,
    /// The status subresource, kept verbatim when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

pub(crate) fn default_api_version() -> String {
    API_VERSION.to_owned()
}

impl Network {
    /// A network of `kind` with the given metadata and spec.
    pub fn new(kind: NetworkKind, metadata: ObjectMeta, spec: NetworkSpec) -> Self {
        Self { api_version: API_VERSION.to_owned(), kind, metadata, spec, status: None }
    }

    /// The key that identifies this object.
    pub fn key(&self) -> NetworkKey {
        NetworkKey {
            kind: self.kind,
            namespace: if self.kind.is_namespaced() { self.metadata.namespace.clone() } else { None },
            name: self.metadata.name.clone(),
        }
    }
}

/// The spec shared by all three network kinds (upstream `DanmNetSpec`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// The second identifier: names static delegate configs and host interfaces. Mandatory.
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    /// The backend: empty or `ipvlan` for the built-in IPVLAN, `macvlan`, `sriov`, or a delegate plugin name.
    #[serde(rename = "NetworkType", default, skip_serializing_if = "String::is_empty")]
    pub network_type: String,
    /// ClusterNetwork only: the namespaces that may connect (all when empty).
    #[serde(rename = "AllowedTenants", default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_tenants: Vec<String>,
    /// Every other attribute of the network.
    #[serde(rename = "Options", default)]
    pub options: NetworkOptions,
}

/// Upstream `DanmNetOption`: addressing, parent device, VLAN/VXLAN, routing and naming.
///
/// Integer fields are `i64` so that an out-of-range value reaches validation and gets an error naming the
/// field, instead of failing to decode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct NetworkOptions {
    /// The parent host interface of pod interfaces and of host VLAN/VXLAN interfaces.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_device: String,
    /// A device-plugin resource name (SR-IOV), e.g. `nokia.k8s.io/sriov_ens1f0`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device_pool: String,
    /// The VXLAN VNI of the host interface `vx_<NetworkID>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schemars", schemars(range(min = 1, max = 16777214)))]
    pub vxlan: Option<i64>,
    /// The VLAN ID of the host interface `<NetworkID>.<vlan>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schemars", schemars(range(min = 1, max = 4094)))]
    pub vlan: Option<i64>,
    /// The prefix of pod interface names.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_prefix: String,
    /// The IPv4 subnet; empty for a network without IPv4 addressing.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cidr: String,
    /// IPv4 routes (destination CIDR to gateway) added to every pod on this network.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub routes: BTreeMap<String, String>,
    /// Upstream's IPv4 allocation bitmask. Never written by danm-rs; refused on create.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alloc: String,
    /// The IPv4 dynamic allocation range.
    #[serde(default, skip_serializing_if = "IpPool::is_empty")]
    pub allocation_pool: IpPool,
    /// The IPv6 subnet.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub net6: String,
    /// IPv6 routes (destination CIDR to gateway).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub routes6: BTreeMap<String, String>,
    /// Upstream's IPv6 allocation bitmask. Never written by danm-rs; refused on create.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alloc6: String,
    /// The IPv6 dynamic allocation range, inside its own CIDR.
    #[serde(default, skip_serializing_if = "IpPoolV6::is_empty")]
    pub allocation_pool_v6: IpPoolV6,
    /// The routing table of the pods' policy routes (`proutes`); 0 disables policy routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schemars", schemars(range(min = 0, max = 255)))]
    pub rt_tables: Option<i64>,
    /// The MTU of host and pod interfaces (upstream's continuation line); 1500 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<i64>,
}

/// An IPv4 allocation range (upstream `IpPool`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct IpPool {
    /// First address handed out dynamically.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub start: String,
    /// Last address handed out dynamically.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub end: String,
    /// Upstream's next-fit cursor; kept for compatibility, not used by danm-rs.
    #[serde(rename = "lastIp", default, skip_serializing_if = "String::is_empty")]
    pub last_ip: String,
}

impl IpPool {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.start.is_empty() && self.end.is_empty() && self.last_ip.is_empty()
    }
}

/// An IPv6 allocation range with its own CIDR (upstream `IpPoolV6`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct IpPoolV6 {
    /// The pool's CIDR, inside `net6`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cidr: String,
    /// First address handed out dynamically.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub start: String,
    /// Last address handed out dynamically.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub end: String,
    /// Upstream's next-fit cursor; kept for compatibility, not used by danm-rs.
    #[serde(rename = "lastIp", default, skip_serializing_if = "String::is_empty")]
    pub last_ip: String,
}

impl IpPoolV6 {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.cidr.is_empty() && self.start.is_empty() && self.end.is_empty() && self.last_ip.is_empty()
    }
}
