//! TenantConfig: cluster-scoped, with its fields at the top level and no `spec`, as upstream has it.
//!
//! kube 5's `#[kube(no_spec)]` covers this shape: the derive's root type keeps a Rust `spec` field
//! ([`TenantConfigFields`]) but flattens it, on the wire and in the schema, onto the object's root.

use std::collections::BTreeMap;

use danm_core::model::{self, AllowedClusterNetwork, IfaceProfile};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{API_VERSION, ConversionError, meta};

/// The fields of a TenantConfig (`danm.k8s.io/v1`, cluster-scoped, short names `tc`, `tconf`): the
/// administrator's interface profiles and NetworkIDs for TenantNetworks. They sit at the top level of
/// the object, beside `metadata`; the root type is [`TenantConfig`].
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
// Repeated `printcolumn` and `shortname` entries are how kube's derive takes lists.
#[allow(clippy::duplicated_attributes)]
#[kube(
    group = "danm.k8s.io",
    version = "v1",
    kind = "TenantConfig",
    plural = "tenantconfigs",
    shortname = "tc",
    shortname = "tconf",
    category = "danm",
    no_spec,
    derive = "PartialEq",
    doc = "A TenantConfig: the administrator's profiles for TenantNetworks (fields at the top level)."
)]
pub struct TenantConfigFields {
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

impl TryFrom<model::TenantConfig> for TenantConfig {
    type Error = ConversionError;

    /// The resource of a danm-core TenantConfig; fails only on metadata Kubernetes cannot carry.
    fn try_from(tc: model::TenantConfig) -> Result<Self, ConversionError> {
        Ok(Self {
            metadata: meta::to_kube(&tc.metadata)?,
            spec: TenantConfigFields {
                host_devices: tc.host_devices,
                network_ids: tc.network_ids,
                allowed_cluster_networks: tc.allowed_cluster_networks,
            },
        })
    }
}

impl From<TenantConfig> for model::TenantConfig {
    fn from(tc: TenantConfig) -> Self {
        Self {
            api_version: API_VERSION.to_owned(),
            kind: "TenantConfig".to_owned(),
            metadata: meta::from_kube(tc.metadata),
            host_devices: tc.spec.host_devices,
            network_ids: tc.spec.network_ids,
            allowed_cluster_networks: tc.spec.allowed_cluster_networks,
        }
    }
}

#[cfg(test)]
mod tests {
    use kube::core::{CustomResourceExt, Resource};

    use super::*;

    const UPSTREAM: &str = r#"
apiVersion: danm.k8s.io/v1
kind: TenantConfig
metadata:
  name: tconf
hostDevices:
- name: ens4
  vniType: vlan
  vniRange: 700-710,720
- name: nokia.k8s.io/sriov_ens1f0
networkIds:
  flannel: flannel
allowedClusterNetworks:
- name: management
  privileges: [reservedIp]
"#;

    #[test]
    fn upstream_manifest_parses_and_round_trips() {
        let core: model::TenantConfig = serde_yaml::from_str(UPSTREAM).unwrap();
        let resource: TenantConfig = serde_yaml::from_str(UPSTREAM).unwrap();
        assert_eq!(resource.spec.host_devices.len(), 2);
        assert_eq!(TenantConfig::try_from(core.clone()).unwrap(), resource);
        assert_eq!(model::TenantConfig::from(resource.clone()), core);
        // The fields stay at the top level: no `spec` on the wire.
        let json = serde_json::to_value(&resource).unwrap();
        assert_eq!(json, serde_json::to_value(&core).unwrap());
        assert!(json.get("spec").is_none());
        assert_eq!(json["kind"], "TenantConfig");
    }

    #[test]
    fn tenant_config_is_cluster_scoped_with_a_flat_schema() {
        assert_eq!(TenantConfig::url_path(&(), None), "/apis/danm.k8s.io/v1/tenantconfigs");
        let crd = TenantConfig::crd();
        assert_eq!(crd.spec.scope, "Cluster");
        let schema = crd.spec.versions[0].schema.clone().unwrap().open_api_v3_schema.unwrap();
        let props = schema.properties.unwrap();
        assert!(props.contains_key("hostDevices") && props.contains_key("networkIds"));
        assert!(!props.contains_key("spec"));
    }
}
