//! The custom resources of `danm.k8s.io/v1` and their CustomResourceDefinitions.
//!
//! | kind | scope | short names | spec | status |
//! | --- | --- | --- | --- | --- |
//! | [`DanmNet`] | namespaced | `dn`, `dnet` | [`NetworkSpec`](danm_core::model::NetworkSpec) | [`NetworkStatus`] |
//! | [`TenantNetwork`] | namespaced | `tn`, `tnet` | [`NetworkSpec`](danm_core::model::NetworkSpec) | [`NetworkStatus`] |
//! | [`ClusterNetwork`] | cluster | `cn`, `cnet` | [`NetworkSpec`](danm_core::model::NetworkSpec) | [`NetworkStatus`] |
//! | [`TenantConfig`] | cluster | `tc`, `tconf` | none: [`TenantConfigFields`] at the top level | none |
//! | [`DanmEp`] | namespaced | `de`, `dep` | [`DanmEpSpec`](danm_core::model::DanmEpSpec) | none |
//! | [`DanmIpamBlock`] | cluster | `dib` | [`DanmIpamBlockSpec`] | none |
//! | [`DanmIpamCursor`] | cluster | `dic` | [`DanmIpamCursorSpec`] | none |
//!
//! The first five are upstream DANM's, with its group, version, kinds, short names and field names: an
//! object serializes exactly as the danm-core model value does, so upstream manifests apply unchanged.
//! The IPAM kinds are danm-rs's own (see [`ipam`]). All are in the `danm` category (`kubectl get danm`).
//!
//! Each type converts to and from its danm-core value (`TryFrom` one way, as Kubernetes metadata is
//! typed; `From` the other). The schemas are generated from the Rust types with schemars, and check
//! upstream's CRD-level ranges: `vlan` 1–4094, `vxlan` 1–16777214, `rt_tables` 0–255. Upstream's
//! CIDR/IP formats on `cidr`, `net6` and the pool fields are left to validation (danm-core's
//! [`validate`](danm_core::validate) and the admission webhook), which gives errors that name the rule.
//!
//! [`all_crds`] lists every CRD; [`manifest`] renders them as the YAML under `deploy/crds/`.

mod definition;
mod endpoint;
mod error;
pub mod ipam;
pub mod manifest;
pub mod meta;
mod network;
mod tenant;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::CustomResourceExt;

pub use endpoint::DanmEp;
pub use error::ConversionError;
pub use ipam::{DanmIpamBlock, DanmIpamBlockSpec, DanmIpamCursor, DanmIpamCursorSpec};
pub use network::{ClusterNetwork, DanmNet, NetworkResource, NetworkStatus, TenantNetwork};
pub use tenant::{TenantConfig, TenantConfigFields};

/// The API group of every DANM custom resource.
pub const GROUP: &str = danm_core::model::API_GROUP;
/// The API version of every DANM custom resource.
pub const VERSION: &str = "v1";
/// `danm.k8s.io/v1`.
pub const API_VERSION: &str = danm_core::model::API_VERSION;
/// The category every DANM CRD is in: `kubectl get danm` lists them all.
pub const CATEGORY: &str = "danm";

/// Every CRD of danm-rs, upstream's kinds first: DanmNet, TenantNetwork, ClusterNetwork, TenantConfig,
/// DanmEp, DanmIpamBlock, DanmIpamCursor.
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    vec![
        DanmNet::crd(),
        TenantNetwork::crd(),
        ClusterNetwork::crd(),
        TenantConfig::crd(),
        DanmEp::crd(),
        DanmIpamBlock::crd(),
        DanmIpamCursor::crd(),
    ]
}

#[cfg(test)]
mod tests;
