//! The pod metadata DANM reads: identity, labels, annotations, readiness and named container ports.

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
    /// The ports of the pod's containers (`spec.containers[].ports`, then those of its sidecars, the init
    /// containers with `restartPolicy: Always`), in that order; a Service's named `targetPort` is resolved
    /// against them. A record written without them has none.
    #[serde(rename = "containerPorts", default, skip_serializing_if = "Vec::is_empty")]
    pub container_ports: Vec<ContainerPort>,
}

impl PodRecord {
    /// The number of the first container port named `name` with `protocol`, as Kubernetes resolves a
    /// named `targetPort`; `None` when the pod has no such port.
    pub fn named_port(&self, name: &str, protocol: &str) -> Option<i32> {
        self.container_ports.iter().find(|p| p.name == name && p.protocol == protocol).map(|p| p.container_port)
    }
}

/// One port a container of a pod listens on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerPort {
    /// The port's name, which a Service's `targetPort` may refer to; empty when unnamed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The port number in the pod.
    #[serde(rename = "containerPort")]
    pub container_port: i32,
    /// `TCP`, `UDP` or `SCTP`; Kubernetes' default `TCP` when absent.
    #[serde(default = "default_protocol")]
    pub protocol: String,
}

impl ContainerPort {
    /// A port `name` (may be empty) listening on `container_port` over `protocol`.
    pub fn new(name: impl Into<String>, container_port: i32, protocol: impl Into<String>) -> Self {
        Self { name: name.into(), container_port, protocol: protocol.into() }
    }
}

fn default_protocol() -> String {
    "TCP".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ports_default_to_none_and_tcp() {
        let old: PodRecord = serde_json::from_str(r#"{"metadata":{"name":"p"},"ready":true}"#).unwrap();
        assert!(old.container_ports.is_empty(), "a record stored without ports reads as having none");
        assert!(!serde_json::to_string(&old).unwrap().contains("containerPorts"));
        let new: PodRecord = serde_json::from_str(
            r#"{"metadata":{"name":"p"},"containerPorts":[{"name":"http","containerPort":8080}]}"#,
        )
        .unwrap();
        assert_eq!(new.container_ports, [ContainerPort::new("http", 8080, "TCP")]);
        assert_eq!(new.named_port("http", "TCP"), Some(8080));
        assert_eq!(new.named_port("http", "UDP"), None, "the protocol must match too");
        assert_eq!(new.named_port("https", "TCP"), None);
    }
}
