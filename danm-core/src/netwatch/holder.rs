//! Who holds a host interface: a DANM network, or a NetworkAttachmentDefinition.

use std::fmt;

use crate::model::NetworkKey;

/// One holder of host interfaces, as the plan and the reports name it. It prints as it is recorded on
/// the interface: `Kind/namespace/name` (`Kind/name` for a ClusterNetwork).
///
/// Holders order DANM networks first (by kind, namespace and name), then NetworkAttachmentDefinitions
/// (by namespace and name); when holders want one interface name with different attributes and none
/// of them is already there, the first one decides.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HolderKey {
    /// A DanmNet, TenantNetwork or ClusterNetwork.
    Network(NetworkKey),
    /// A NetworkAttachmentDefinition (`k8s.cni.cncf.io/v1`), which is namespaced.
    Attachment {
        /// The namespace.
        namespace: String,
        /// The object name.
        name: String,
    },
}

impl From<NetworkKey> for HolderKey {
    fn from(key: NetworkKey) -> Self {
        Self::Network(key)
    }
}

impl fmt::Display for HolderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Network(key) => key.fmt(f),
            Self::Attachment { namespace, name } => write!(f, "{}/{namespace}/{name}", super::attachment::KIND),
        }
    }
}
