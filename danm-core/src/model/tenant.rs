//! TenantConfig: the administrator's profiles for TenantNetworks (cluster-scoped, no `spec`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ObjectMeta;
use super::network::default_api_version;

/// A TenantConfig object. Its fields are top-level, as upstream has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// `danm.k8s.io/v1`.
    #[serde(rename = "apiVersion", default = "default_api_version")]
    pub api_version: String,
    /// Always `TenantConfig`.
    #[serde(default = "tenant_config_kind")]
    pub kind: String,
    /// Object metadata (cluster-scoped: no namespace).
    pub metadata: ObjectMeta,
    /// Interface profiles TenantNetworks may use.
    #[serde(rename = "hostDevices", default, skip_serializing_if = "Vec::is_empty")]
    pub host_devices: Vec<IfaceProfile>,
    /// NetworkType (matched case-insensitively) to the NetworkID tenants' networks of that type get.
    #[serde(rename = "networkIds", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub network_ids: BTreeMap<String, String>,
    /// Per-ClusterNetwork privileges (upstream's continuation line).
    #[serde(rename = "allowedClusterNetworks", default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_cluster_networks: Vec<AllowedClusterNetwork>,
}

fn tenant_config_kind() -> String {
    "TenantConfig".to_owned()
}

/// One interface profile: a host NIC or a device pool, optionally with a VLAN/VXLAN ID range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct IfaceProfile {
    /// A kernel interface name, or a device pool name (any name containing `/`).
    #[serde(default)]
    pub name: String,
    /// `vlan` or `vxlan`.
    #[serde(rename = "vniType", default, skip_serializing_if = "String::is_empty")]
    pub vni_type: String,
    /// IDs in cpuset-list syntax, e.g. `"2000-2500,2601"`.
    #[serde(rename = "vniRange", default, skip_serializing_if = "String::is_empty")]
    pub vni_range: String,
    /// Upstream's VNI allocation bitmask; refused on create.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alloc: String,
}

impl IfaceProfile {
    /// Whether this profile names a device pool rather than a host interface.
    pub fn is_device_pool(&self) -> bool {
        self.name.contains('/')
    }
}

/// Privileges a tenant has on one ClusterNetwork.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AllowedClusterNetwork {
    /// The ClusterNetwork's name.
    pub name: String,
    /// Privilege names, e.g. `reservedIp`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privileges: Vec<String>,
}
