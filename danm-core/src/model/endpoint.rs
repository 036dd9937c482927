//! DanmEp: the record of one pod interface DANM set up.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::network::default_api_version;
use super::{NetworkKind, ObjectMeta};

/// Labels danm-rs puts on every DanmEp, so that look-ups use a selector or an index, never a full list.
pub mod labels {
    /// The pod's UID.
    pub const POD_UID: &str = "danm.k8s.io/pod-uid";
    /// The infra container ID (CNI_CONTAINERID).
    pub const CONTAINER_ID: &str = "danm.k8s.io/container-id";
    /// The network's kind (`apiType`).
    pub const NETWORK_KIND: &str = "danm.k8s.io/network-kind";
    /// The network's name.
    pub const NETWORK_NAME: &str = "danm.k8s.io/network";
    /// The node that set the endpoint up.
    pub const HOST: &str = "danm.k8s.io/host";

    /// `value` as a Kubernetes label value: at most 63 characters, starting and ending with an
    /// alphanumeric character, only `[A-Za-z0-9._-]` (other characters become `_`). Long values (a
    /// 64-digit container ID, a long host name) are cut, so a selector on such a label narrows the search
    /// and the exact value is then compared on the object itself.
    pub fn value(value: &str) -> String {
        let cleaned: String = value
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
            .take(63)
            .collect();
        cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_owned()
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn label_values_are_valid() {
            let cid = "a".repeat(64);
            assert_eq!(super::value(&cid).len(), 63);
            assert_eq!(super::value("-node.example.com-"), "node.example.com");
            assert_eq!(super::value("a/b c"), "a_b_c");
            assert_eq!(super::value(""), "");
        }
    }
}

/// A DanmEp object: one per pod interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DanmEp {
    /// `danm.k8s.io/v1`.
    #[serde(rename = "apiVersion", default = "default_api_version")]
    pub api_version: String,
    /// Always `DanmEp`.
    #[serde(default = "danm_ep_kind")]
    pub kind: String,
    /// Object metadata; the name is the EndpointID, the namespace the pod's.
    pub metadata: ObjectMeta,
    /// What was set up.
    pub spec: DanmEpSpec,
}

fn danm_ep_kind() -> String {
    "DanmEp".to_owned()
}

/// Upstream `DanmEpSpec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DanmEpSpec {
    /// The network object's name.
    #[serde(rename = "NetworkName", default)]
    pub network_name: String,
    /// The network's NetworkType at the time of the ADD.
    #[serde(rename = "NetworkType", default)]
    pub network_type: String,
    /// The endpoint's unique ID (also its object name).
    #[serde(rename = "EndpointID", default)]
    pub endpoint_id: String,
    /// The interface inside the pod.
    #[serde(rename = "Interface", default)]
    pub interface: DanmEpIface,
    /// The node that set the interface up.
    #[serde(rename = "Host", default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// The pod's name.
    #[serde(rename = "Pod", default)]
    pub pod: String,
    /// The pod's UID.
    #[serde(rename = "PodUID", default, skip_serializing_if = "String::is_empty")]
    pub pod_uid: String,
    /// The infra container ID.
    #[serde(rename = "CID", default, skip_serializing_if = "String::is_empty")]
    pub cid: String,
    /// The netns path.
    #[serde(rename = "netns", default, skip_serializing_if = "String::is_empty")]
    pub netns: String,
    /// The network's kind: `DanmNet` (also when empty), `TenantNetwork` or `ClusterNetwork`.
    #[serde(rename = "apiType", default)]
    pub api_type: String,
}

impl DanmEpSpec {
    /// The network kind named by `apiType`, if it is a known one.
    pub fn network_kind(&self) -> Option<NetworkKind> {
        NetworkKind::from_api_type(&self.api_type)
    }
}

/// Upstream `DanmEpIface`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DanmEpIface {
    /// The interface name inside the pod.
    #[serde(rename = "Name", default)]
    pub name: String,
    /// The IPv4 address in CIDR form with the network's prefix, `none`, or empty.
    #[serde(rename = "Address", default)]
    pub address: String,
    /// The IPv6 address in CIDR form, `none`, or empty.
    #[serde(rename = "AddressIPv6", default)]
    pub address_ipv6: String,
    /// The MAC address.
    #[serde(rename = "MacAddress", default)]
    pub mac_address: String,
    /// IPv4 policy routes.
    #[serde(default)]
    pub proutes: BTreeMap<String, String>,
    /// IPv6 policy routes.
    #[serde(default)]
    pub proutes6: BTreeMap<String, String>,
    /// The PCI address of a device-based interface.
    #[serde(rename = "DeviceID", default, skip_serializing_if = "String::is_empty")]
    pub device_id: String,
    /// The interface MTU (upstream's continuation line).
    #[serde(rename = "Mtu", default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}
