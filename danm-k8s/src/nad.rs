//! Multus' NetworkAttachmentDefinition (`k8s.cni.cncf.io/v1`, the Network Plumbing Working Group's
//! kind), as netwatcher reads and rewrites it.
//!
//! It is not one of DANM's kinds: its CustomResourceDefinition belongs to Multus (or whoever installs
//! the NPWG CRD), and danm-rs neither generates nor installs it. The type keeps the members of `spec` it
//! does not know, so that a replace writes back what it read with only `spec.config` and the
//! annotations netwatcher sets changed.

use std::borrow::Cow;
use std::collections::BTreeMap;

use danm_core::netwatch::Attachment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{NamespaceResourceScope, Resource};
use serde::{Deserialize, Serialize};

/// The API group.
pub const GROUP: &str = "k8s.cni.cncf.io";
/// The API version.
pub const VERSION: &str = "v1";
/// `k8s.cni.cncf.io/v1`.
pub const API_VERSION: &str = "k8s.cni.cncf.io/v1";
/// The kind.
pub const KIND: &str = danm_core::netwatch::attachment::KIND;
/// The plural, as in the resource's path.
pub const PLURAL: &str = "network-attachment-definitions";

/// A NetworkAttachmentDefinition: a namespaced object whose `spec.config` is a CNI configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NetworkAttachmentDefinition {
    /// Object metadata.
    pub metadata: ObjectMeta,
    /// The specification; an object without one reads as an empty one.
    #[serde(default)]
    pub spec: NetworkAttachmentDefinitionSpec,
}

/// The specification of a NetworkAttachmentDefinition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkAttachmentDefinitionSpec {
    /// The CNI configuration (a single plugin or a list), a JSON document in a string; empty when Multus
    /// is to read it from the node's CNI configuration directory.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub config: String,
    /// Any other member, kept as it is.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl NetworkAttachmentDefinition {
    /// An object named `name` with the CNI configuration `config`.
    pub fn new(name: &str, config: impl Into<String>) -> Self {
        Self {
            metadata: ObjectMeta { name: Some(name.to_owned()), ..ObjectMeta::default() },
            spec: NetworkAttachmentDefinitionSpec { config: config.into(), other: BTreeMap::new() },
        }
    }

    /// The object as danm-core's netwatch reads it.
    pub fn attachment(&self) -> Attachment {
        Attachment {
            namespace: self.metadata.namespace.clone().unwrap_or_default(),
            name: self.metadata.name.clone().unwrap_or_default(),
            config: self.spec.config.clone(),
            annotations: self.metadata.annotations.clone().unwrap_or_default(),
        }
    }
}

impl Serialize for NetworkAttachmentDefinition {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Repr<'a> {
            api_version: &'a str,
            kind: &'a str,
            metadata: &'a ObjectMeta,
            spec: &'a NetworkAttachmentDefinitionSpec,
        }
        Repr { api_version: API_VERSION, kind: KIND, metadata: &self.metadata, spec: &self.spec }.serialize(serializer)
    }
}

impl Resource for NetworkAttachmentDefinition {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        KIND.into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        VERSION.into()
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        API_VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        PLURAL.into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_the_npwg_shape_keeping_unknown_members() {
        let json = serde_json::json!({
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "m", "namespace": "ns"},
            "spec": {"config": "{\"name\":\"ext\"}", "x-extra": [1]},
        });
        let nad: NetworkAttachmentDefinition = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(nad.attachment().key().to_string(), "NetworkAttachmentDefinition/ns/m");
        assert_eq!(serde_json::to_value(&nad).unwrap(), json);
        let bare: NetworkAttachmentDefinition =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "b"}})).unwrap();
        assert_eq!(bare.spec.config, "");
        assert_eq!(
            NetworkAttachmentDefinition::url_path(&(), Some("ns")),
            format!("/apis/{API_VERSION}/namespaces/ns/{PLURAL}")
        );
    }
}
