//! Object metadata shared by every DANM object, in the Kubernetes `metadata` shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The `metadata` of a DANM object: the fields DANM reads, plus everything else kept verbatim.
///
/// Unknown metadata fields (`creationTimestamp`, `managedFields`, ...) are kept in [`ObjectMeta::other`]
/// so that an object read from Kubernetes and written back loses nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// The object's name.
    #[serde(default)]
    pub name: String,
    /// The namespace; `None` for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The UID the API server assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The version of the stored object, as the store reported it.
    #[serde(default, rename = "resourceVersion", skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Every other metadata field, kept as it was read.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl ObjectMeta {
    /// Metadata with a name and an optional namespace.
    pub fn new(name: impl Into<String>, namespace: Option<&str>) -> Self {
        Self { name: name.into(), namespace: namespace.map(str::to_owned), ..Self::default() }
    }
}
