//! danmctl's verbs over any Datastore: `apply`, `delete`, `get` and `describe`.
//!
//! Each verb is an async function that takes a store and returns the text danmctl prints, so that it can
//! be tested on the in-memory store and used on the local SQLite file or on Kubernetes alike.

mod apply;
mod delete;
mod show;

pub use apply::{Applied, apply};
pub use delete::delete;
pub use show::{Format, describe_network, get, service_endpoints};

use danm_core::model::NetworkKind;

/// What danmctl can be asked to list or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// Networks of every kind (`networks`, `net`).
    Networks,
    /// Networks of one kind (`danmnets`/`dn`, `tenantnetworks`/`tn`, `clusternetworks`/`cn`).
    Kind(NetworkKind),
    /// TenantConfigs (`tenantconfigs`, `tc`).
    TenantConfigs,
    /// DanmEps (`eps`, `danmeps`, `de`).
    Endpoints,
    /// Pod records (`pods`, `po`).
    Pods,
    /// Services (`services`, `svc`).
    Services,
    /// What DANM Services publish (`endpoints`).
    ServiceEndpoints,
}

impl std::str::FromStr for Resource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "networks" | "network" | "net" => Self::Networks,
            "danmnets" | "danmnet" | "dn" | "dnet" => Self::Kind(NetworkKind::DanmNet),
            "tenantnetworks" | "tenantnetwork" | "tn" | "tnet" => Self::Kind(NetworkKind::TenantNetwork),
            "clusternetworks" | "clusternetwork" | "cn" | "cnet" => Self::Kind(NetworkKind::ClusterNetwork),
            "tenantconfigs" | "tenantconfig" | "tc" | "tconf" => Self::TenantConfigs,
            "eps" | "ep" | "danmeps" | "danmep" | "de" | "dep" => Self::Endpoints,
            "pods" | "pod" | "po" => Self::Pods,
            "services" | "service" | "svc" => Self::Services,
            "endpoints" | "endpoint" => Self::ServiceEndpoints,
            other => {
                return Err(format!(
                    "unknown resource `{other}`: use networks, danmnets, tenantnetworks, clusternetworks, \
                     tenantconfigs, eps, pods, services or endpoints"
                ));
            }
        })
    }
}

/// Why a danmctl verb failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The input could not be decoded.
    #[error(transparent)]
    Manifest(#[from] danm_core::manifest::ManifestError),
    /// A document broke a rule; nothing was written.
    #[error("document {index} ({object}) was rejected, nothing was applied:\n{errors}")]
    Rejected {
        /// The document's position (0-based).
        index: usize,
        /// `Kind namespace/name`.
        object: String,
        /// Every broken rule.
        errors: String,
    },
    /// The object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The network is still in use.
    #[error("{0}")]
    InUse(String),
    /// A Service's annotations are malformed.
    #[error(transparent)]
    Service(#[from] danm_core::service::ServiceAnnotationError),
    /// The request makes no sense (a namespace for a cluster-scoped kind, ...).
    #[error("{0}")]
    Usage(String),
    /// The store failed.
    #[error("datastore")]
    Store(#[from] danm_core::store::StoreError),
    /// IPAM state could not be read.
    #[error("IPAM")]
    Ipam(#[from] danm_core::ipam::IpamError),
}
