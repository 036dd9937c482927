//! The DANM object model, serde-exact with upstream DANM v4.3 (`danm.k8s.io/v1`).
//!
//! These are plain data types: they parse upstream manifests unchanged and serialise back to the same
//! field names. Rules live in [`crate::validate`]; addressing in [`crate::ipam`].

mod endpoint;
mod meta;
mod network;
mod pod;
mod tenant;

pub use endpoint::{DanmEp, DanmEpIface, DanmEpSpec, labels};
pub use meta::ObjectMeta;
pub use network::{
    API_GROUP, API_GROUP_ALT, API_VERSION, IpPool, IpPoolV6, Network, NetworkKey, NetworkKind, NetworkOptions,
    NetworkSpec,
};
pub use pod::{ContainerPort, PodRecord};
pub use tenant::{AllowedClusterNetwork, IfaceProfile, TenantConfig};
