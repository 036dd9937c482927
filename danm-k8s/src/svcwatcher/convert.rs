//! The Kubernetes objects svcwatcher watches, as the records danm-core's Service index keeps: only the
//! fields Service discovery reads, so the index holds a few hundred bytes per pod, not the whole Pod.

use std::collections::BTreeMap;

use danm_core::model::{self, ContainerPort, ObjectMeta, PodRecord};
use danm_core::service::{ServicePort, ServiceRecord, TargetPort};
use k8s_openapi::api::core::v1::{Pod, PodSpec, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::crd;

fn meta(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, annotations: bool) -> ObjectMeta {
    let mut out = ObjectMeta::new(m.name.clone().unwrap_or_default(), m.namespace.as_deref());
    out.uid = m.uid.clone();
    out.labels = m.labels.clone().unwrap_or_default();
    if annotations {
        out.annotations = m.annotations.clone().unwrap_or_default();
    }
    out
}

/// A Pod as a pod record: identity, labels, node, hostname, the Ready condition and the container ports.
pub(crate) fn pod_record(pod: &Pod) -> PodRecord {
    let spec = pod.spec.as_ref();
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    PodRecord {
        metadata: meta(&pod.metadata, false),
        node_name: spec.and_then(|s| s.node_name.clone()),
        hostname: spec.and_then(|s| s.hostname.clone()),
        ready,
        container_ports: spec.map(container_ports).unwrap_or_default(),
    }
}

/// The ports of the containers, then of the sidecars (init containers with `restartPolicy: Always`): the
/// order Kubernetes looks a named `targetPort` up in.
fn container_ports(spec: &PodSpec) -> Vec<ContainerPort> {
    let sidecars = spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .map(|p| {
            ContainerPort::new(
                p.name.clone().unwrap_or_default(),
                p.container_port,
                p.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
            )
        })
        .collect()
}

/// A Service as a Service record: identity, annotations, ports, cluster IP and `spec.selector`.
pub(crate) fn service_record(service: &Service) -> ServiceRecord {
    let spec = service.spec.as_ref();
    let ports = spec
        .and_then(|s| s.ports.as_ref())
        .map(|ports| {
            ports
                .iter()
                .map(|p| ServicePort {
                    name: p.name.clone().unwrap_or_default(),
                    port: p.port,
                    protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
                    target_port: p.target_port.as_ref().map(|t| match t {
                        IntOrString::Int(n) => TargetPort::Number(*n),
                        IntOrString::String(s) => TargetPort::Name(s.clone()),
                    }),
                })
                .collect()
        })
        .unwrap_or_default();
    ServiceRecord {
        metadata: meta(&service.metadata, true),
        cluster_ip: spec.and_then(|s| s.cluster_ip.clone()),
        ports,
        selector: spec.and_then(|s| s.selector.clone()).map(|s: BTreeMap<String, String>| s),
        publish_not_ready_addresses: spec.and_then(|s| s.publish_not_ready_addresses).unwrap_or(false),
    }
}

/// A DanmEp custom resource as the model's DanmEp, without the look-up labels the Kubernetes store adds.
pub(crate) fn endpoint(ep: crd::DanmEp) -> model::DanmEp {
    crate::store::endpoint_from_crd(ep)
}
