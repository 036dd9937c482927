//! The parts of core `v1` Pod and Service objects that DANM reads, in their Kubernetes shape.
//!
//! These types only carry data between a Kubernetes document and [`PodRecord`] / [`ServiceRecord`]. Fields
//! not listed here are ignored on input and not written on output.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{ContainerPort, ObjectMeta, PodRecord};
use crate::service::{ServicePort, ServiceRecord};

/// The `apiVersion` of core Pods and Services.
pub(crate) const CORE_V1: &str = "v1";

/// A core `v1` Pod, reduced to what DANM reads.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct KubePod {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spec: Option<KubePodSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<KubePodStatus>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KubePodSpec {
    #[serde(rename = "nodeName", default, skip_serializing_if = "Option::is_none")]
    node_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    containers: Option<Vec<KubeContainer>>,
    #[serde(rename = "initContainers", default, skip_serializing_if = "Option::is_none")]
    init_containers: Option<Vec<KubeContainer>>,
}

/// A container, reduced to its ports (and, for an init container, whether it is a sidecar).
#[derive(Debug, Default, Serialize, Deserialize)]
struct KubeContainer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ports: Option<Vec<ContainerPort>>,
    #[serde(rename = "restartPolicy", default, skip_serializing_if = "Option::is_none")]
    restart_policy: Option<String>,
}

impl KubePodSpec {
    /// The ports of the containers, then of the sidecars (init containers that keep running), the order
    /// Kubernetes looks a named port up in.
    fn container_ports(&self) -> Vec<ContainerPort> {
        let sidecars = self.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
        self.containers.iter().flatten().chain(sidecars).flat_map(|c| c.ports.iter().flatten()).cloned().collect()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KubePodStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conditions: Option<Vec<KubeCondition>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct KubeCondition {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

impl From<KubePod> for PodRecord {
    fn from(pod: KubePod) -> Self {
        let spec = pod.spec.unwrap_or_default();
        let conditions = pod.status.and_then(|s| s.conditions).unwrap_or_default();
        let ready =
            conditions.iter().any(|c| c.kind.as_deref() == Some("Ready") && c.status.as_deref() == Some("True"));
        let container_ports = spec.container_ports();
        PodRecord { metadata: pod.metadata, node_name: spec.node_name, hostname: spec.hostname, ready, container_ports }
    }
}

impl From<&PodRecord> for KubePod {
    fn from(pod: &PodRecord) -> Self {
        let status = if pod.ready { "True" } else { "False" };
        KubePod {
            api_version: CORE_V1.to_owned(),
            kind: "Pod".to_owned(),
            metadata: pod.metadata.clone(),
            spec: Some(KubePodSpec {
                node_name: pod.node_name.clone(),
                hostname: pod.hostname.clone(),
                // The record keeps the ports, not which container has them: one container holds them all.
                containers: (!pod.container_ports.is_empty()).then(|| {
                    vec![KubeContainer { ports: Some(pod.container_ports.clone()), ..KubeContainer::default() }]
                }),
                init_containers: None,
            }),
            status: Some(KubePodStatus {
                conditions: Some(vec![KubeCondition {
                    kind: Some("Ready".to_owned()),
                    status: Some(status.to_owned()),
                }]),
            }),
        }
    }
}

/// A core `v1` Service, reduced to what DANM reads.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct KubeService {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spec: Option<KubeServiceSpec>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KubeServiceSpec {
    #[serde(rename = "clusterIP", default, skip_serializing_if = "Option::is_none")]
    cluster_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ports: Option<Vec<ServicePort>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    selector: Option<BTreeMap<String, String>>,
    #[serde(rename = "publishNotReadyAddresses", default, skip_serializing_if = "Option::is_none")]
    publish_not_ready_addresses: Option<bool>,
}

impl From<KubeService> for ServiceRecord {
    fn from(svc: KubeService) -> Self {
        let spec = svc.spec.unwrap_or_default();
        ServiceRecord {
            metadata: svc.metadata,
            cluster_ip: spec.cluster_ip,
            ports: spec.ports.unwrap_or_default(),
            selector: spec.selector,
            publish_not_ready_addresses: spec.publish_not_ready_addresses.unwrap_or(false),
        }
    }
}

impl From<&ServiceRecord> for KubeService {
    fn from(svc: &ServiceRecord) -> Self {
        KubeService {
            api_version: CORE_V1.to_owned(),
            kind: "Service".to_owned(),
            metadata: svc.metadata.clone(),
            spec: Some(KubeServiceSpec {
                cluster_ip: svc.cluster_ip.clone(),
                ports: (!svc.ports.is_empty()).then(|| svc.ports.clone()),
                selector: svc.selector.clone(),
                publish_not_ready_addresses: svc.publish_not_ready_addresses.then_some(true),
            }),
        }
    }
}
