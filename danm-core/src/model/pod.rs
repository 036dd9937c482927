//! The pod metadata DANM reads: identity, labels, annotations and readiness.

use serde::{Deserialize, Serialize};

use super::ObjectMeta;

/// What DANM needs to know of a pod. On Kubernetes it comes from the Pod object; on the local store it is a
/// record set with `danmctl apply`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodRecord {
    /// Namespace, name, uid, labels and annotations.
    pub metadata: ObjectMeta,
    /// The node the pod runs on.
    #[serde(rename = "nodeName", default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// `spec.hostname`, published in Service endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Whether the pod is Ready.
    #[serde(default)]
    pub ready: bool,
}
